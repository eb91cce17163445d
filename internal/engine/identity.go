package engine

import (
	"context"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func identityCmd(c domain.IdentityCommand) func(domain.IdentityState) ([]domain.Event, error) {
	return func(s domain.IdentityState) ([]domain.Event, error) { return s.Decide(c) }
}

// LinkIdentity prepares LinkIdentity: the user must be active in the tenant (it is guarded).
func (e *Engine) LinkIdentity(ctx context.Context, p *userstore.LinkIdentityParams) (*Op[*userstore.ExternalIdentity], error) {
	m, err := begin(e, ctx, "LinkIdentity", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("user_id", p.UserID); err != nil {
		return nil, err
	}
	issuer, err := domain.NormalizeIssuer(p.Issuer)
	if err != nil {
		return nil, err
	}
	subject, err := domain.NormalizeSubject(p.Subject)
	if err != nil {
		return nil, err
	}
	cmd := domain.LinkIdentity{ID: e.idOr(p.ID), TenantID: m.tenantID, UserID: p.UserID, Issuer: issuer, Subject: subject, At: m.now}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.ExternalIdentity, error) {
		c := cmd
		var err error
		if c.UserStatus, err = x.userFacts(c.UserID); err != nil {
			return nil, err
		}
		return viewOf(create(x, x.ref(domain.StreamIdentity, c.ID), identityCmd(c)))
	}).reads(m.ref(domain.StreamUser, cmd.UserID), m.ref(domain.StreamIdentity, cmd.ID)), nil
}

// UnlinkIdentity prepares UnlinkIdentity; an unlinked identity is gone (ErrNotFound afterwards).
func (e *Engine) UnlinkIdentity(ctx context.Context, p *userstore.UnlinkIdentityParams) (*Op[struct{}], error) {
	m, err := begin(e, ctx, "UnlinkIdentity", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("id", p.ID), checkExpected(p.ExpectedVersion)); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (struct{}, error) {
		_, err := update(x, x.ref(domain.StreamIdentity, p.ID), p.ExpectedVersion, identityCmd(domain.UnlinkIdentity{At: m.now}))
		return struct{}{}, err
	}).reads(m.ref(domain.StreamIdentity, p.ID)), nil
}
