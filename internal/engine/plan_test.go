package engine_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
)

// planningUOW is a fakeUOW that implements engine.Planner and records what the operation did beyond its
// plan.
type planningUOW struct {
	*fakeUOW
	plans                     []*engine.Plan
	calls                     int // calls of the port before Plan
	unplannedLoads            []uuid.UUID
	unplannedGuards           []domain.StreamRef
	keyAsked, keyWithoutAPlan bool
}

func (p *planningUOW) Plan(_ context.Context, plan *engine.Plan) error {
	p.plans = append(p.plans, plan)
	return nil
}

func (p *planningUOW) plan() *engine.Plan {
	if len(p.plans) == 0 {
		p.calls++
		return &engine.Plan{}
	}
	return p.plans[len(p.plans)-1]
}

func (p *planningUOW) Load(ctx context.Context, tenantID, streamID uuid.UUID) (*engine.Stream, error) {
	if pl := p.plan(); pl.TenantID != tenantID || !slices.Contains(pl.Streams, streamID) {
		p.unplannedLoads = append(p.unplannedLoads, streamID)
	}
	return p.fakeUOW.Load(ctx, tenantID, streamID)
}

func (p *planningUOW) Guard(ctx context.Context, ref domain.StreamRef, version int64) error {
	if pl := p.plan(); pl.TenantID != ref.TenantID || !slices.Contains(pl.Streams, ref.ID) {
		p.unplannedGuards = append(p.unplannedGuards, ref)
	}
	return p.fakeUOW.Guard(ctx, ref, version)
}

func (p *planningUOW) Idempotency(ctx context.Context, tenantID uuid.UUID, key string) (*engine.IdempotencyRecord, error) {
	p.keyAsked = true
	if pl := p.plan(); pl.IdempotencyKey != key || pl.TenantID != tenantID {
		p.keyWithoutAPlan = true
	}
	return p.fakeUOW.Idempotency(ctx, tenantID, key)
}

// TestPlanCoversTheReads runs every mutation through a unit of work that implements Planner: Plan
// comes first, once, and names the idempotency key and every stream the operation loads or guards — all
// but the dependents a cascade finds (DeleteUser's, DeleteApplication's), which no plan can know. A
// stream missing from a plan costs pgstore a round trip per command.
func TestPlanCoversTheReads(t *testing.T) {
	h := setup(t)
	fake := h.uow
	ctx := h.ctx
	keyed := func(k string) userstore.Mutation { return userstore.Mutation{IdempotencyKey: k} }

	type step struct {
		name string
		run  func(u engine.UnitOfWork) error
	}
	var (
		user    *userstore.User
		other   *userstore.User
		account *userstore.Account
		ident   *userstore.ExternalIdentity
		app     *userstore.Application
		binding *userstore.Binding
		catalog *userstore.Catalog
	)
	mustOp := func(op any, err error) any {
		t.Helper()
		require.NoError(t, err)
		return op
	}
	steps := []step{
		{"CreateUser", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.CreateUser(ctx, &userstore.CreateUserParams{Mutation: keyed("k1"), DisplayName: "Ann", Email: "ann@x.io"})).(*engine.Op[*userstore.User])
			user, err = op.Run(ctx, u)
			return err
		}},
		{"CreateUser again (recorded key)", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.CreateUser(ctx, &userstore.CreateUserParams{Mutation: keyed("k1"), DisplayName: "Ann", Email: "ann@x.io"})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"CreateUser other", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Bob", Email: "bob@x.io"})).(*engine.Op[*userstore.User])
			other, err = op.Run(ctx, u)
			return err
		}},
		{"UpdateUserProfile", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: user.ID, DisplayName: "Ann B"})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"ChangeUserEmail", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{ID: user.ID, Email: "ann2@x.io"})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DisableUser", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.DisableUser(ctx, &userstore.UserParams{ID: other.ID})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"EnableUser", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.EnableUser(ctx, &userstore.UserParams{ID: other.ID})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"OpenAccount", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: user.ID, LoginName: "ann", Kind: userstore.AccountPassword})).(*engine.Op[*userstore.Account])
			account, err = op.Run(ctx, u)
			return err
		}},
		{"RenameAccountLogin", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.RenameAccountLogin(ctx, &userstore.RenameAccountLoginParams{ID: account.ID, LoginName: "ann2"})).(*engine.Op[*userstore.Account])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"LockAccount", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.LockAccount(ctx, &userstore.AccountParams{ID: account.ID})).(*engine.Op[*userstore.Account])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"UnlockAccount", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.UnlockAccount(ctx, &userstore.AccountParams{ID: account.ID})).(*engine.Op[*userstore.Account])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"LinkIdentity", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: user.ID, Issuer: "https://i.io", Subject: "s"})).(*engine.Op[*userstore.ExternalIdentity])
			ident, err = op.Run(ctx, u)
			return err
		}},
		{"RegisterApplication", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb})).(*engine.Op[*userstore.Application])
			app, err = op.Run(ctx, u)
			return err
		}},
		{"UpdateApplication", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.UpdateApplication(ctx, &userstore.UpdateApplicationParams{ID: app.ID, Name: "App 2", Kind: userstore.AppWeb})).(*engine.Op[*userstore.Application])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"Bind", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.Bind(ctx, &userstore.BindParams{UserID: user.ID, ApplicationID: app.ID, Roles: []string{"r"}})).(*engine.Op[*userstore.Binding])
			binding, err = op.Run(ctx, u)
			return err
		}},
		{"ChangeBindingRoles", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.ChangeBindingRoles(ctx, &userstore.ChangeBindingRolesParams{ID: binding.ID, Roles: []string{"s"}})).(*engine.Op[*userstore.Binding])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DefineCatalog", func(u engine.UnitOfWork) (err error) {
			op := mustOp(h.e.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "P", Attributes: []userstore.Attribute{{Key: "a", Type: userstore.AttrInt}}})).(*engine.Op[*userstore.Catalog])
			catalog, err = op.Run(ctx, u)
			return err
		}},
		{"AddCatalogAttribute", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.AddCatalogAttribute(ctx, &userstore.AddCatalogAttributeParams{CatalogID: catalog.ID, Attribute: userstore.Attribute{Key: "b", Type: userstore.AttrInt}})).(*engine.Op[*userstore.Catalog])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DeprecateCatalogAttribute", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.DeprecateCatalogAttribute(ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: catalog.ID, Key: "b"})).(*engine.Op[*userstore.Catalog])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"SetProfileValues", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: user.ID, CatalogID: catalog.ID, Values: map[string]userstore.Value{"a": userstore.IntValue(1)}})).(*engine.Op[*userstore.Profile])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"ClearProfileValues", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.ClearProfileValues(ctx, &userstore.ClearProfileValuesParams{UserID: user.ID, CatalogID: catalog.ID, Keys: []string{"a"}})).(*engine.Op[*userstore.Profile])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"AddMember", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.AddMember(ctx, &userstore.AddMemberParams{UserID: user.ID, Role: userstore.RoleOwner})).(*engine.Op[*userstore.Membership])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"AddMember other", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.AddMember(ctx, &userstore.AddMemberParams{UserID: other.ID, Role: userstore.RoleMember})).(*engine.Op[*userstore.Membership])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"ChangeMemberRole", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.ChangeMemberRole(ctx, &userstore.ChangeMemberRoleParams{UserID: other.ID, Role: userstore.RoleOwner})).(*engine.Op[*userstore.Membership])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"RemoveMember", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.RemoveMember(ctx, &userstore.RemoveMemberParams{UserID: other.ID})).(*engine.Op[struct{}])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"UnlinkIdentity", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.UnlinkIdentity(ctx, &userstore.UnlinkIdentityParams{ID: ident.ID})).(*engine.Op[struct{}])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"Unbind", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.Unbind(ctx, &userstore.UnbindParams{ID: binding.ID})).(*engine.Op[struct{}])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"CloseAccount", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.CloseAccount(ctx, &userstore.AccountParams{ID: account.ID})).(*engine.Op[*userstore.Account])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DisableApplication", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.DisableApplication(ctx, &userstore.ApplicationParams{ID: app.ID})).(*engine.Op[*userstore.Application])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"EnableApplication", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.EnableApplication(ctx, &userstore.ApplicationParams{ID: app.ID})).(*engine.Op[*userstore.Application])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DeleteApplication", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.DeleteApplication(ctx, &userstore.ApplicationParams{ID: app.ID})).(*engine.Op[*userstore.Application])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"DeleteUser", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.DeleteUser(ctx, &userstore.UserParams{ID: other.ID})).(*engine.Op[*userstore.User])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"RenameTenant", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.RenameTenant(ctx, &userstore.RenameTenantParams{Name: "Acme 2"})).(*engine.Op[*userstore.Tenant])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"SuspendTenant", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.SuspendTenant(ctx, &userstore.TenantStatusParams{})).(*engine.Op[*userstore.Tenant])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"ReactivateTenant", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.ReactivateTenant(ctx, &userstore.TenantStatusParams{})).(*engine.Op[*userstore.Tenant])
			_, err := op.Run(ctx, u)
			return err
		}},
		{"CreateTenant", func(u engine.UnitOfWork) error {
			tctx := userstore.WithTenant(ctx, uuid.MustParse("01970000-0000-7000-8000-0000000000aa"))
			op := mustOp(h.e.CreateTenant(tctx, &userstore.CreateTenantParams{Slug: "other", Name: "Other"})).(*engine.Op[*userstore.Tenant])
			_, err := op.Run(tctx, u)
			return err
		}},
		{"CloseTenant", func(u engine.UnitOfWork) error {
			op := mustOp(h.e.CloseTenant(ctx, &userstore.TenantStatusParams{})).(*engine.Op[*userstore.Tenant])
			_, err := op.Run(ctx, u)
			return err
		}},
	}
	for _, s := range steps {
		u := &planningUOW{fakeUOW: fake}
		require.NoError(t, s.run(u), s.name)
		require.Len(t, u.plans, 1, "%s: Plan is called once", s.name)
		require.Zero(t, u.calls, "%s: Plan comes before any other call", s.name)
		require.Empty(t, u.unplannedLoads, "%s: loads a stream its plan does not name", s.name)
		require.Empty(t, u.unplannedGuards, "%s: guards a stream its plan does not name", s.name)
		require.False(t, u.keyWithoutAPlan, "%s: asks for a key its plan does not name", s.name)
		require.Equal(t, u.keyAsked, u.plans[0].IdempotencyKey != "", s.name)
	}
	names := map[string]bool{}
	for _, s := range steps {
		names[s.name] = true
	}
	for name := range prepareMethods(t, h.e) {
		require.True(t, names[name], "mutation %s is not covered", name)
	}

	// A cascade reads its dependents beyond its plan, and nothing else.
	h = setup(t)
	ctx = h.ctx
	del := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: "Cy", Email: "cy@x.io"}))
	acc := must[*userstore.Account](t)(run(t, h, h.e.OpenAccount, &userstore.OpenAccountParams{UserID: del.ID, LoginName: "cy", Kind: userstore.AccountPassword}))
	u := &planningUOW{fakeUOW: h.uow}
	op := mustOp(h.e.DeleteUser(ctx, &userstore.UserParams{ID: del.ID})).(*engine.Op[*userstore.User])
	_, err := op.Run(ctx, u)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{acc.ID}, u.unplannedLoads)
}
