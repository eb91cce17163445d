package engine

import (
	"context"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func tenantCmd(c domain.TenantCommand) func(domain.TenantState) ([]domain.Event, error) {
	return func(s domain.TenantState) ([]domain.Event, error) { return s.Decide(c) }
}

// CreateTenant prepares CreateTenant. The mutation's tenant is the new tenant's id; an id already used
// is a duplicate of KindEntityID, a slug already used (by any tenant, closed ones included) of
// KindTenantSlug.
func (e *Engine) CreateTenant(ctx context.Context, p *userstore.CreateTenantParams) (*Op[*userstore.Tenant], error) {
	m, err := begin(e, ctx, "CreateTenant", p)
	if err != nil {
		return nil, err
	}
	slug, err := domain.NormalizeSlug(p.Slug)
	if err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("name", p.Name)
	if err != nil {
		return nil, err
	}
	cmd := domain.CreateTenant{ID: m.tenantID, Slug: slug, Name: name, At: m.now}
	return op(e, m, p, gateNone, func(x *txn) (*userstore.Tenant, error) {
		return viewOf(create(x, domain.TenantRef(m.tenantID), tenantCmd(cmd)))
	}).reads(domain.TenantRef(m.tenantID)), nil
}

// RenameTenant prepares RenameTenant; allowed while suspended, refused when closed.
func (e *Engine) RenameTenant(ctx context.Context, p *userstore.RenameTenantParams) (*Op[*userstore.Tenant], error) {
	m, err := begin(e, ctx, "RenameTenant", p)
	if err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("name", p.Name)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.tenantOp(m, p, p.ExpectedVersion, domain.RenameTenant{Name: name, At: m.now}), nil
}

// SuspendTenant prepares SuspendTenant: active → suspended.
func (e *Engine) SuspendTenant(ctx context.Context, p *userstore.TenantStatusParams) (*Op[*userstore.Tenant], error) {
	m, reason, err := tenantStatus(e, ctx, "SuspendTenant", p)
	if err != nil {
		return nil, err
	}
	return e.tenantOp(m, p, p.ExpectedVersion, domain.SuspendTenant{Reason: reason, At: m.now}), nil
}

// ReactivateTenant prepares ReactivateTenant: suspended → active.
func (e *Engine) ReactivateTenant(ctx context.Context, p *userstore.TenantStatusParams) (*Op[*userstore.Tenant], error) {
	m, reason, err := tenantStatus(e, ctx, "ReactivateTenant", p)
	if err != nil {
		return nil, err
	}
	return e.tenantOp(m, p, p.ExpectedVersion, domain.ReactivateTenant{Reason: reason, At: m.now}), nil
}

// CloseTenant prepares CloseTenant: active or suspended → closed, for good.
func (e *Engine) CloseTenant(ctx context.Context, p *userstore.TenantStatusParams) (*Op[*userstore.Tenant], error) {
	m, reason, err := tenantStatus(e, ctx, "CloseTenant", p)
	if err != nil {
		return nil, err
	}
	return e.tenantOp(m, p, p.ExpectedVersion, domain.CloseTenant{Reason: reason, At: m.now}), nil
}

func tenantStatus(e *Engine, ctx context.Context, name string, p *userstore.TenantStatusParams) (*mutation, string, error) {
	m, err := begin(e, ctx, name, p)
	if err != nil {
		return nil, "", err
	}
	reason, err := domain.NormalizeNote("reason", p.Reason)
	if err != nil {
		return nil, "", err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, "", err
	}
	return m, reason, nil
}

// tenantOp is an operation on the tenant's own stream.
func (e *Engine) tenantOp(m *mutation, p any, expected int64, cmd domain.TenantCommand) *Op[*userstore.Tenant] {
	return op(e, m, p, gateNone, func(x *txn) (*userstore.Tenant, error) {
		return viewOf(update(x, domain.TenantRef(m.tenantID), expected, tenantCmd(cmd)))
	}).reads(domain.TenantRef(m.tenantID))
}
