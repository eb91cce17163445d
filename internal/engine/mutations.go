package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Operation is what an Executor sees of a prepared Op: its name, tenant and request hash.
type Operation interface {
	Name() string
	TenantID() uuid.UUID
	RequestHash() string
}

// Executor runs operations in an adapter's units of work. Execute calls prepare exactly once (an
// adapter may hold a lock around it, e.g. so that Config.Now and NewID never run concurrently); when it
// fails, Execute returns its error. Otherwise Execute opens a unit of work, calls run with it and
// commits when run succeeds, or rolls back when it fails. An adapter whose database may refuse a
// transaction for a reason a re-run cures calls run again in a new unit of work: the prepared
// operation (its ids and times) stays the same.
type Executor interface {
	Execute(ctx context.Context, prepare func() (Operation, error), run func(context.Context, UnitOfWork) error) error
}

// Mutations implements every mutation of userstore.Store by preparing the engine's Op and running it
// through an Executor. An adapter embeds it, so that the list of mutations and their wiring live in one
// place:
//
//	type Store struct {
//		engine.Mutations
//		…
//	}
//	s.Mutations = engine.NewMutations(engine.New(cfg), s) // s implements Executor
type Mutations struct {
	engine *Engine
	exec   Executor
}

// NewMutations returns the mutations of e, run by x.
func NewMutations(e *Engine, x Executor) Mutations { return Mutations{engine: e, exec: x} }

// execute prepares an Op from p and runs it with x, returning its result.
func execute[P, R any](ctx context.Context, x Executor, prepare func(context.Context, P) (*Op[R], error), p P) (R, error) {
	var (
		op  *Op[R]
		res R
	)
	err := x.Execute(ctx,
		func() (Operation, error) {
			var err error
			if op, err = prepare(ctx, p); err != nil {
				return nil, err
			}
			return op, nil
		},
		func(ctx context.Context, u UnitOfWork) error {
			r, err := op.Run(ctx, u)
			if err != nil {
				return err
			}
			res = r
			return nil
		})
	if err != nil {
		var zero R
		return zero, err
	}
	return res, nil
}

// CreateTenant implements userstore.TenantStore.
func (m *Mutations) CreateTenant(ctx context.Context, p *userstore.CreateTenantParams) (*userstore.Tenant, error) {
	return execute(ctx, m.exec, m.engine.CreateTenant, p)
}

// RenameTenant implements userstore.TenantStore.
func (m *Mutations) RenameTenant(ctx context.Context, p *userstore.RenameTenantParams) (*userstore.Tenant, error) {
	return execute(ctx, m.exec, m.engine.RenameTenant, p)
}

// SuspendTenant implements userstore.TenantStore.
func (m *Mutations) SuspendTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return execute(ctx, m.exec, m.engine.SuspendTenant, p)
}

// ReactivateTenant implements userstore.TenantStore.
func (m *Mutations) ReactivateTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return execute(ctx, m.exec, m.engine.ReactivateTenant, p)
}

// CloseTenant implements userstore.TenantStore.
func (m *Mutations) CloseTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return execute(ctx, m.exec, m.engine.CloseTenant, p)
}

// CreateUser implements userstore.UserStore.
func (m *Mutations) CreateUser(ctx context.Context, p *userstore.CreateUserParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.CreateUser, p)
}

// UpdateUserProfile implements userstore.UserStore.
func (m *Mutations) UpdateUserProfile(ctx context.Context, p *userstore.UpdateUserProfileParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.UpdateUserProfile, p)
}

// ChangeUserEmail implements userstore.UserStore.
func (m *Mutations) ChangeUserEmail(ctx context.Context, p *userstore.ChangeUserEmailParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.ChangeUserEmail, p)
}

// DisableUser implements userstore.UserStore.
func (m *Mutations) DisableUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.DisableUser, p)
}

// EnableUser implements userstore.UserStore.
func (m *Mutations) EnableUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.EnableUser, p)
}

// DeleteUser implements userstore.UserStore.
func (m *Mutations) DeleteUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return execute(ctx, m.exec, m.engine.DeleteUser, p)
}

// OpenAccount implements userstore.AccountStore.
func (m *Mutations) OpenAccount(ctx context.Context, p *userstore.OpenAccountParams) (*userstore.Account, error) {
	return execute(ctx, m.exec, m.engine.OpenAccount, p)
}

// RenameAccountLogin implements userstore.AccountStore.
func (m *Mutations) RenameAccountLogin(ctx context.Context, p *userstore.RenameAccountLoginParams) (*userstore.Account, error) {
	return execute(ctx, m.exec, m.engine.RenameAccountLogin, p)
}

// LockAccount implements userstore.AccountStore.
func (m *Mutations) LockAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return execute(ctx, m.exec, m.engine.LockAccount, p)
}

// UnlockAccount implements userstore.AccountStore.
func (m *Mutations) UnlockAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return execute(ctx, m.exec, m.engine.UnlockAccount, p)
}

// CloseAccount implements userstore.AccountStore.
func (m *Mutations) CloseAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return execute(ctx, m.exec, m.engine.CloseAccount, p)
}

// LinkIdentity implements userstore.IdentityStore.
func (m *Mutations) LinkIdentity(ctx context.Context, p *userstore.LinkIdentityParams) (*userstore.ExternalIdentity, error) {
	return execute(ctx, m.exec, m.engine.LinkIdentity, p)
}

// UnlinkIdentity implements userstore.IdentityStore.
func (m *Mutations) UnlinkIdentity(ctx context.Context, p *userstore.UnlinkIdentityParams) error {
	_, err := execute(ctx, m.exec, m.engine.UnlinkIdentity, p)
	return err
}

// RegisterApplication implements userstore.ApplicationStore.
func (m *Mutations) RegisterApplication(ctx context.Context, p *userstore.RegisterApplicationParams) (*userstore.Application, error) {
	return execute(ctx, m.exec, m.engine.RegisterApplication, p)
}

// UpdateApplication implements userstore.ApplicationStore.
func (m *Mutations) UpdateApplication(ctx context.Context, p *userstore.UpdateApplicationParams) (*userstore.Application, error) {
	return execute(ctx, m.exec, m.engine.UpdateApplication, p)
}

// DisableApplication implements userstore.ApplicationStore.
func (m *Mutations) DisableApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return execute(ctx, m.exec, m.engine.DisableApplication, p)
}

// EnableApplication implements userstore.ApplicationStore.
func (m *Mutations) EnableApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return execute(ctx, m.exec, m.engine.EnableApplication, p)
}

// DeleteApplication implements userstore.ApplicationStore.
func (m *Mutations) DeleteApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return execute(ctx, m.exec, m.engine.DeleteApplication, p)
}

// Bind implements userstore.BindingStore.
func (m *Mutations) Bind(ctx context.Context, p *userstore.BindParams) (*userstore.Binding, error) {
	return execute(ctx, m.exec, m.engine.Bind, p)
}

// ChangeBindingRoles implements userstore.BindingStore.
func (m *Mutations) ChangeBindingRoles(ctx context.Context, p *userstore.ChangeBindingRolesParams) (*userstore.Binding, error) {
	return execute(ctx, m.exec, m.engine.ChangeBindingRoles, p)
}

// Unbind implements userstore.BindingStore.
func (m *Mutations) Unbind(ctx context.Context, p *userstore.UnbindParams) error {
	_, err := execute(ctx, m.exec, m.engine.Unbind, p)
	return err
}

// DefineCatalog implements userstore.CatalogStore.
func (m *Mutations) DefineCatalog(ctx context.Context, p *userstore.DefineCatalogParams) (*userstore.Catalog, error) {
	return execute(ctx, m.exec, m.engine.DefineCatalog, p)
}

// AddCatalogAttribute implements userstore.CatalogStore.
func (m *Mutations) AddCatalogAttribute(ctx context.Context, p *userstore.AddCatalogAttributeParams) (*userstore.Catalog, error) {
	return execute(ctx, m.exec, m.engine.AddCatalogAttribute, p)
}

// DeprecateCatalogAttribute implements userstore.CatalogStore.
func (m *Mutations) DeprecateCatalogAttribute(ctx context.Context, p *userstore.DeprecateCatalogAttributeParams) (*userstore.Catalog, error) {
	return execute(ctx, m.exec, m.engine.DeprecateCatalogAttribute, p)
}

// SetProfileValues implements userstore.ProfileStore.
func (m *Mutations) SetProfileValues(ctx context.Context, p *userstore.SetProfileValuesParams) (*userstore.Profile, error) {
	return execute(ctx, m.exec, m.engine.SetProfileValues, p)
}

// ClearProfileValues implements userstore.ProfileStore.
func (m *Mutations) ClearProfileValues(ctx context.Context, p *userstore.ClearProfileValuesParams) (*userstore.Profile, error) {
	return execute(ctx, m.exec, m.engine.ClearProfileValues, p)
}

// AddMember implements userstore.MembershipStore.
func (m *Mutations) AddMember(ctx context.Context, p *userstore.AddMemberParams) (*userstore.Membership, error) {
	return execute(ctx, m.exec, m.engine.AddMember, p)
}

// ChangeMemberRole implements userstore.MembershipStore.
func (m *Mutations) ChangeMemberRole(ctx context.Context, p *userstore.ChangeMemberRoleParams) (*userstore.Membership, error) {
	return execute(ctx, m.exec, m.engine.ChangeMemberRole, p)
}

// RemoveMember implements userstore.MembershipStore.
func (m *Mutations) RemoveMember(ctx context.Context, p *userstore.RemoveMemberParams) error {
	_, err := execute(ctx, m.exec, m.engine.RemoveMember, p)
	return err
}
