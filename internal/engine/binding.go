package engine

import (
	"context"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func bindingCmd(c domain.BindingCommand) func(domain.BindingState) ([]domain.Event, error) {
	return func(s domain.BindingState) ([]domain.Event, error) { return s.Decide(c) }
}

// Bind prepares Bind: the user and the application must be active in the tenant (both are guarded);
// a second binding of the same (application, user) is a duplicate of KindBinding.
func (e *Engine) Bind(ctx context.Context, p *userstore.BindParams) (*Op[*userstore.Binding], error) {
	m, err := begin(e, ctx, "Bind", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("application_id", p.ApplicationID), requireID("user_id", p.UserID)); err != nil {
		return nil, err
	}
	roles, err := domain.NormalizeRoles(p.Roles)
	if err != nil {
		return nil, err
	}
	cmd := domain.Bind{ID: e.idOr(p.ID), TenantID: m.tenantID, ApplicationID: p.ApplicationID, UserID: p.UserID, Roles: roles, At: m.now}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Binding, error) {
		c := cmd
		var err error
		if c.UserStatus, err = x.userFacts(c.UserID); err != nil {
			return nil, err
		}
		appRef := x.ref(domain.StreamApplication, c.ApplicationID)
		app, v, err := mustFind[domain.ApplicationState](x, appRef)
		if err != nil {
			return nil, err
		}
		if err := x.guard(appRef, v); err != nil {
			return nil, err
		}
		c.ApplicationStatus = app.Status
		return viewOf(create(x, x.ref(domain.StreamBinding, c.ID), bindingCmd(c)))
	}).reads(m.ref(domain.StreamUser, cmd.UserID), m.ref(domain.StreamApplication, cmd.ApplicationID),
		m.ref(domain.StreamBinding, cmd.ID)), nil
}

// ChangeBindingRoles prepares ChangeBindingRoles; the same set of roles changes nothing.
func (e *Engine) ChangeBindingRoles(ctx context.Context, p *userstore.ChangeBindingRolesParams) (*Op[*userstore.Binding], error) {
	m, err := begin(e, ctx, "ChangeBindingRoles", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("id", p.ID); err != nil {
		return nil, err
	}
	roles, err := domain.NormalizeRoles(p.Roles)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Binding, error) {
		return viewOf(update(x, x.ref(domain.StreamBinding, p.ID), p.ExpectedVersion, bindingCmd(domain.ChangeBindingRoles{Roles: roles, At: m.now})))
	}).reads(m.ref(domain.StreamBinding, p.ID)), nil
}

// Unbind prepares Unbind; a removed binding is gone (ErrNotFound afterwards).
func (e *Engine) Unbind(ctx context.Context, p *userstore.UnbindParams) (*Op[struct{}], error) {
	m, err := begin(e, ctx, "Unbind", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("id", p.ID), checkExpected(p.ExpectedVersion)); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (struct{}, error) {
		_, err := update(x, x.ref(domain.StreamBinding, p.ID), p.ExpectedVersion, bindingCmd(domain.Unbind{At: m.now}))
		return struct{}{}, err
	}).reads(m.ref(domain.StreamBinding, p.ID)), nil
}
