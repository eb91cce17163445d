package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func applicationCmd(c domain.ApplicationCommand) func(domain.ApplicationState) ([]domain.Event, error) {
	return func(s domain.ApplicationState) ([]domain.Event, error) { return s.Decide(c) }
}

// RegisterApplication prepares RegisterApplication.
func (e *Engine) RegisterApplication(ctx context.Context, p *userstore.RegisterApplicationParams) (*Op[*userstore.Application], error) {
	m, err := begin(e, ctx, "RegisterApplication", p)
	if err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("name", p.Name)
	if err != nil {
		return nil, err
	}
	key, err := domain.NormalizeClientKey(p.ClientKey)
	if err != nil {
		return nil, err
	}
	if !domain.ValidApplicationKind(p.Kind) {
		return nil, userstore.Invalid("kind", "must be web, native or service")
	}
	cmd := domain.RegisterApplication{ID: e.idOr(p.ID), TenantID: m.tenantID, Name: name, ClientKey: key, Kind: p.Kind, At: m.now}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Application, error) {
		return viewOf(create(x, x.ref(domain.StreamApplication, cmd.ID), applicationCmd(cmd)))
	}).reads(m.ref(domain.StreamApplication, cmd.ID)), nil
}

// UpdateApplication prepares UpdateApplication; the same name and kind change nothing.
func (e *Engine) UpdateApplication(ctx context.Context, p *userstore.UpdateApplicationParams) (*Op[*userstore.Application], error) {
	m, err := begin(e, ctx, "UpdateApplication", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("id", p.ID); err != nil {
		return nil, err
	}
	name, err := domain.NormalizeName("name", p.Name)
	if err != nil {
		return nil, err
	}
	if !domain.ValidApplicationKind(p.Kind) {
		return nil, userstore.Invalid("kind", "must be web, native or service")
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.applicationOp(m, p, p.ID, p.ExpectedVersion, domain.UpdateApplication{Name: name, Kind: p.Kind, At: m.now}), nil
}

// DisableApplication prepares DisableApplication: active → disabled.
func (e *Engine) DisableApplication(ctx context.Context, p *userstore.ApplicationParams) (*Op[*userstore.Application], error) {
	m, err := applicationParams(e, ctx, "DisableApplication", p)
	if err != nil {
		return nil, err
	}
	return e.applicationOp(m, p, p.ID, p.ExpectedVersion, domain.DisableApplication{At: m.now}), nil
}

// EnableApplication prepares EnableApplication: disabled → active.
func (e *Engine) EnableApplication(ctx context.Context, p *userstore.ApplicationParams) (*Op[*userstore.Application], error) {
	m, err := applicationParams(e, ctx, "EnableApplication", p)
	if err != nil {
		return nil, err
	}
	return e.applicationOp(m, p, p.ID, p.ExpectedVersion, domain.EnableApplication{At: m.now}), nil
}

// DeleteApplication prepares DeleteApplication: the application becomes a tombstone, releases its
// client key and, in the same unit of work, its bindings are removed.
func (e *Engine) DeleteApplication(ctx context.Context, p *userstore.ApplicationParams) (*Op[*userstore.Application], error) {
	m, err := applicationParams(e, ctx, "DeleteApplication", p)
	if err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Application, error) {
		app, err := update(x, x.ref(domain.StreamApplication, p.ID), p.ExpectedVersion, applicationCmd(domain.DeleteApplication{At: m.now}))
		if err != nil {
			return nil, err
		}
		bindings, err := x.uow.ApplicationBindings(x.ctx, x.tenantID, p.ID)
		if err != nil {
			return nil, err
		}
		for _, id := range bindings {
			if _, err := update(x, x.ref(domain.StreamBinding, id), 0, bindingCmd(domain.Unbind{At: m.now})); err != nil {
				return nil, err
			}
		}
		return app.View(), nil
	}).reads(m.ref(domain.StreamApplication, p.ID)), nil
}

func applicationParams(e *Engine, ctx context.Context, name string, p *userstore.ApplicationParams) (*mutation, error) {
	m, err := begin(e, ctx, name, p)
	if err != nil {
		return nil, err
	}
	return m, first(requireID("id", p.ID), checkExpected(p.ExpectedVersion))
}

func (e *Engine) applicationOp(m *mutation, p any, id uuid.UUID, expected int64, cmd domain.ApplicationCommand) *Op[*userstore.Application] {
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Application, error) {
		return viewOf(update(x, x.ref(domain.StreamApplication, id), expected, applicationCmd(cmd)))
	}).reads(m.ref(domain.StreamApplication, id))
}
