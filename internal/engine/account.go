package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func accountCmd(c domain.AccountCommand) func(domain.AccountState) ([]domain.Event, error) {
	return func(s domain.AccountState) ([]domain.Event, error) { return s.Decide(c) }
}

// OpenAccount prepares OpenAccount: the user must be active in the tenant (it is guarded).
func (e *Engine) OpenAccount(ctx context.Context, p *userstore.OpenAccountParams) (*Op[*userstore.Account], error) {
	m, err := begin(e, ctx, "OpenAccount", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("user_id", p.UserID); err != nil {
		return nil, err
	}
	login, err := domain.NormalizeLoginName(p.LoginName)
	if err != nil {
		return nil, err
	}
	if !domain.ValidAccountKind(p.Kind) {
		return nil, userstore.Invalid("kind", "must be password, passkey or service")
	}
	cred, err := domain.NormalizeCredentialRef(p.CredentialRef)
	if err != nil {
		return nil, err
	}
	cmd := domain.OpenAccount{
		ID: e.idOr(p.ID), TenantID: m.tenantID, UserID: p.UserID, LoginName: login, Kind: p.Kind,
		CredentialRef: cred, At: m.now,
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Account, error) {
		c := cmd
		var err error
		if c.UserStatus, err = x.userFacts(c.UserID); err != nil {
			return nil, err
		}
		return viewOf(create(x, x.ref(domain.StreamAccount, c.ID), accountCmd(c)))
	}).reads(m.ref(domain.StreamUser, cmd.UserID), m.ref(domain.StreamAccount, cmd.ID)), nil
}

// RenameAccountLogin prepares RenameAccountLogin; the same login changes nothing.
func (e *Engine) RenameAccountLogin(ctx context.Context, p *userstore.RenameAccountLoginParams) (*Op[*userstore.Account], error) {
	m, err := begin(e, ctx, "RenameAccountLogin", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("id", p.ID); err != nil {
		return nil, err
	}
	login, err := domain.NormalizeLoginName(p.LoginName)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.accountOp(m, p, p.ID, p.ExpectedVersion, domain.RenameAccountLogin{LoginName: login, At: m.now}), nil
}

// LockAccount prepares LockAccount: active → locked.
func (e *Engine) LockAccount(ctx context.Context, p *userstore.AccountParams) (*Op[*userstore.Account], error) {
	m, err := accountParams(e, ctx, "LockAccount", p)
	if err != nil {
		return nil, err
	}
	return e.accountOp(m, p, p.ID, p.ExpectedVersion, domain.LockAccount{At: m.now}), nil
}

// UnlockAccount prepares UnlockAccount: locked → active.
func (e *Engine) UnlockAccount(ctx context.Context, p *userstore.AccountParams) (*Op[*userstore.Account], error) {
	m, err := accountParams(e, ctx, "UnlockAccount", p)
	if err != nil {
		return nil, err
	}
	return e.accountOp(m, p, p.ID, p.ExpectedVersion, domain.UnlockAccount{At: m.now}), nil
}

// CloseAccount prepares CloseAccount: active or locked → closed, releasing the login name.
func (e *Engine) CloseAccount(ctx context.Context, p *userstore.AccountParams) (*Op[*userstore.Account], error) {
	m, err := accountParams(e, ctx, "CloseAccount", p)
	if err != nil {
		return nil, err
	}
	return e.accountOp(m, p, p.ID, p.ExpectedVersion, domain.CloseAccount{At: m.now}), nil
}

func accountParams(e *Engine, ctx context.Context, name string, p *userstore.AccountParams) (*mutation, error) {
	m, err := begin(e, ctx, name, p)
	if err != nil {
		return nil, err
	}
	return m, first(requireID("id", p.ID), checkExpected(p.ExpectedVersion))
}

func (e *Engine) accountOp(m *mutation, p any, id uuid.UUID, expected int64, cmd domain.AccountCommand) *Op[*userstore.Account] {
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Account, error) {
		return viewOf(update(x, x.ref(domain.StreamAccount, id), expected, accountCmd(cmd)))
	}).reads(m.ref(domain.StreamAccount, id))
}
