package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func userCmd(c domain.UserCommand) func(domain.UserState) ([]domain.Event, error) {
	return func(s domain.UserState) ([]domain.Event, error) { return s.Decide(c) }
}

// CreateUser prepares CreateUser.
func (e *Engine) CreateUser(ctx context.Context, p *userstore.CreateUserParams) (*Op[*userstore.User], error) {
	m, err := begin(e, ctx, "CreateUser", p)
	if err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("display_name", p.DisplayName)
	if err != nil {
		return nil, err
	}
	email, err := domain.NormalizeEmail(p.Email)
	if err != nil {
		return nil, err
	}
	cmd := domain.CreateUser{ID: e.idOr(p.ID), TenantID: m.tenantID, DisplayName: name, Email: email, At: m.now}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.User, error) {
		return viewOf(create(x, x.ref(domain.StreamUser, cmd.ID), userCmd(cmd)))
	}).reads(m.ref(domain.StreamUser, cmd.ID)), nil
}

// UpdateUserProfile prepares UpdateUserProfile; the same display name changes nothing.
func (e *Engine) UpdateUserProfile(ctx context.Context, p *userstore.UpdateUserProfileParams) (*Op[*userstore.User], error) {
	m, err := begin(e, ctx, "UpdateUserProfile", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("id", p.ID); err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("display_name", p.DisplayName)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.userOp(m, p, p.ID, p.ExpectedVersion, domain.UpdateUserProfile{DisplayName: name, At: m.now}), nil
}

// ChangeUserEmail prepares ChangeUserEmail; the same email changes nothing, one that differs only in
// case keeps the claim.
func (e *Engine) ChangeUserEmail(ctx context.Context, p *userstore.ChangeUserEmailParams) (*Op[*userstore.User], error) {
	m, err := begin(e, ctx, "ChangeUserEmail", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("id", p.ID); err != nil {
		return nil, err
	}
	email, err := domain.NormalizeEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.userOp(m, p, p.ID, p.ExpectedVersion, domain.ChangeUserEmail{Email: email, At: m.now}), nil
}

// DisableUser prepares DisableUser: active → disabled.
func (e *Engine) DisableUser(ctx context.Context, p *userstore.UserParams) (*Op[*userstore.User], error) {
	m, err := userParams(e, ctx, "DisableUser", p)
	if err != nil {
		return nil, err
	}
	return e.userOp(m, p, p.ID, p.ExpectedVersion, domain.DisableUser{At: m.now}), nil
}

// EnableUser prepares EnableUser: disabled → active.
func (e *Engine) EnableUser(ctx context.Context, p *userstore.UserParams) (*Op[*userstore.User], error) {
	m, err := userParams(e, ctx, "EnableUser", p)
	if err != nil {
		return nil, err
	}
	return e.userOp(m, p, p.ID, p.ExpectedVersion, domain.EnableUser{At: m.now}), nil
}

// DeleteUser prepares DeleteUser: the user becomes a tombstone and, in the same unit of work, its open
// accounts are closed, its identities unlinked, its bindings removed, its profiles cleared and its
// membership removed. The last owner cannot be deleted (ReasonLastOwner); then nothing changes.
func (e *Engine) DeleteUser(ctx context.Context, p *userstore.UserParams) (*Op[*userstore.User], error) {
	m, err := userParams(e, ctx, "DeleteUser", p)
	if err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.User, error) {
		at := m.now
		userRef := x.ref(domain.StreamUser, p.ID)
		user, err := update(x, userRef, p.ExpectedVersion, userCmd(domain.DeleteUser{At: at}))
		if err != nil {
			return nil, err
		}
		rosterRef := domain.RosterRef(x.tenantID)
		roster, v, err := load[domain.RosterState](x, rosterRef)
		if err != nil {
			return nil, err
		}
		if _, member := roster.Members[p.ID]; member {
			if _, err := appendDecided(x, rosterRef, v, roster, rosterCmd(domain.RemoveMember{UserID: p.ID, At: at})); err != nil {
				return nil, err
			}
		}
		deps, err := x.uow.UserDependents(x.ctx, x.tenantID, p.ID)
		if err != nil {
			return nil, err
		}
		for _, id := range deps.Accounts {
			if _, err := update(x, x.ref(domain.StreamAccount, id), 0, accountCmd(domain.CloseAccount{At: at})); err != nil {
				return nil, err
			}
		}
		for _, id := range deps.Identities {
			if _, err := update(x, x.ref(domain.StreamIdentity, id), 0, identityCmd(domain.UnlinkIdentity{At: at})); err != nil {
				return nil, err
			}
		}
		for _, id := range deps.Bindings {
			if _, err := update(x, x.ref(domain.StreamBinding, id), 0, bindingCmd(domain.Unbind{At: at})); err != nil {
				return nil, err
			}
		}
		for _, catalogID := range deps.Catalogs {
			ref := domain.ProfileRef(x.tenantID, p.ID, catalogID)
			profile, v, err := load[domain.ProfileState](x, ref)
			if err != nil {
				return nil, err
			}
			cmd := domain.ClearProfile{UserID: p.ID, CatalogID: catalogID, At: at}
			if _, err := appendDecided(x, ref, v, profile, profileCmd(cmd)); err != nil {
				return nil, err
			}
		}
		return user.View(), nil
	}).reads(m.ref(domain.StreamUser, p.ID), domain.RosterRef(m.tenantID)), nil
}

func userParams(e *Engine, ctx context.Context, name string, p *userstore.UserParams) (*mutation, error) {
	m, err := begin(e, ctx, name, p)
	if err != nil {
		return nil, err
	}
	return m, first(requireID("id", p.ID), checkExpected(p.ExpectedVersion))
}

func (e *Engine) userOp(m *mutation, p any, id uuid.UUID, expected int64, cmd domain.UserCommand) *Op[*userstore.User] {
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.User, error) {
		return viewOf(update(x, x.ref(domain.StreamUser, id), expected, userCmd(cmd)))
	}).reads(m.ref(domain.StreamUser, id))
}

// userFacts loads the user a command on another aggregate depends on, guards it and returns its status.
// A user that does not exist in the tenant is ErrNotFound.
func (x *txn) userFacts(userID uuid.UUID) (userstore.UserStatus, error) {
	ref := x.ref(domain.StreamUser, userID)
	u, v, err := mustFind[domain.UserState](x, ref)
	if err != nil {
		return "", err
	}
	return u.Status, x.guard(ref, v)
}

// idOr returns id, or a new id when it is zero.
func (e *Engine) idOr(id uuid.UUID) uuid.UUID {
	if id == uuid.Nil {
		return e.newID()
	}
	return id
}
