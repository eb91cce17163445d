package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func rosterCmd(c domain.RosterCommand) func(domain.RosterState) ([]domain.Event, error) {
	return func(s domain.RosterState) ([]domain.Event, error) { return s.Decide(c) }
}

// AddMember prepares AddMember: the user must be active in the tenant (it is guarded) and not yet a
// member (a duplicate of KindMembership).
func (e *Engine) AddMember(ctx context.Context, p *userstore.AddMemberParams) (*Op[*userstore.Membership], error) {
	m, err := begin(e, ctx, "AddMember", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("user_id", p.UserID), validRole(p.Role)); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Membership, error) {
		status, err := x.userFacts(p.UserID)
		if err != nil {
			return nil, err
		}
		return x.roster(p.UserID, domain.AddMember{UserID: p.UserID, UserStatus: status, Role: p.Role, At: m.now})
	}).reads(m.ref(domain.StreamUser, p.UserID), domain.RosterRef(m.tenantID)), nil
}

// ChangeMemberRole prepares ChangeMemberRole. ExpectedVersion is the membership's version (the roster
// version of its last change). The same role changes nothing; demoting the last owner is refused with
// ReasonLastOwner; a user who is not a member with ReasonNotAMember.
func (e *Engine) ChangeMemberRole(ctx context.Context, p *userstore.ChangeMemberRoleParams) (*Op[*userstore.Membership], error) {
	m, err := begin(e, ctx, "ChangeMemberRole", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("user_id", p.UserID), validRole(p.Role), checkExpected(p.ExpectedVersion)); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Membership, error) {
		if _, _, err := mustFind[domain.UserState](x, x.ref(domain.StreamUser, p.UserID)); err != nil {
			return nil, err
		}
		return x.roster(p.UserID, domain.ChangeMemberRole{UserID: p.UserID, Role: p.Role, ExpectedVersion: p.ExpectedVersion, At: m.now})
	}).reads(m.ref(domain.StreamUser, p.UserID), domain.RosterRef(m.tenantID)), nil
}

// RemoveMember prepares RemoveMember; removing the last owner is refused with ReasonLastOwner.
func (e *Engine) RemoveMember(ctx context.Context, p *userstore.RemoveMemberParams) (*Op[struct{}], error) {
	m, err := begin(e, ctx, "RemoveMember", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("user_id", p.UserID), checkExpected(p.ExpectedVersion)); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (struct{}, error) {
		if _, _, err := mustFind[domain.UserState](x, x.ref(domain.StreamUser, p.UserID)); err != nil {
			return struct{}{}, err
		}
		_, err := x.roster(p.UserID, domain.RemoveMember{UserID: p.UserID, ExpectedVersion: p.ExpectedVersion, At: m.now})
		return struct{}{}, err
	}).reads(m.ref(domain.StreamUser, p.UserID), domain.RosterRef(m.tenantID)), nil
}

// roster runs a command on the tenant's roster and returns the membership of the user afterwards (nil
// when it has none).
func (x *txn) roster(userID uuid.UUID, cmd domain.RosterCommand) (*userstore.Membership, error) {
	ref := domain.RosterRef(x.tenantID)
	s, v, err := load[domain.RosterState](x, ref)
	if err != nil {
		return nil, err
	}
	s, err = appendDecided(x, ref, v, s, rosterCmd(cmd))
	if err != nil {
		return nil, err
	}
	ms, _ := s.Membership(userID)
	return ms, nil
}

func validRole(r userstore.MemberRole) error {
	if !domain.ValidMemberRole(r) {
		return userstore.Invalid("role", "must be owner, admin or member")
	}
	return nil
}
