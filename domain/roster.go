package domain

import (
	"bytes"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Roster event types.
const (
	EventRosterMemberAdded       = "roster.member_added"
	EventRosterMemberRoleChanged = "roster.member_role_changed"
	EventRosterMemberRemoved     = "roster.member_removed"
)

// RosterMemberAdded makes a user a member.
type RosterMemberAdded struct {
	UserID uuid.UUID            `json:"user_id"`
	Role   userstore.MemberRole `json:"role"`
	At     time.Time            `json:"at"`
}

// RosterMemberRoleChanged changes a member's role.
type RosterMemberRoleChanged struct {
	UserID       uuid.UUID            `json:"user_id"`
	Role         userstore.MemberRole `json:"role"`
	PreviousRole userstore.MemberRole `json:"previous_role"`
	At           time.Time            `json:"at"`
}

// RosterMemberRemoved removes a member; Role is the role it had.
type RosterMemberRemoved struct {
	UserID uuid.UUID            `json:"user_id"`
	Role   userstore.MemberRole `json:"role"`
	At     time.Time            `json:"at"`
}

func (RosterMemberAdded) EventType() string       { return EventRosterMemberAdded }
func (e RosterMemberAdded) OccurredAt() time.Time { return e.At }

func (RosterMemberRoleChanged) EventType() string       { return EventRosterMemberRoleChanged }
func (e RosterMemberRoleChanged) OccurredAt() time.Time { return e.At }

func (RosterMemberRemoved) EventType() string       { return EventRosterMemberRemoved }
func (e RosterMemberRemoved) OccurredAt() time.Time { return e.At }

// RosterUser returns the user a roster event is about.
func RosterUser(ev Event) (uuid.UUID, bool) {
	switch e := ev.(type) {
	case RosterMemberAdded:
		return e.UserID, true
	case RosterMemberRoleChanged:
		return e.UserID, true
	case RosterMemberRemoved:
		return e.UserID, true
	}
	return uuid.Nil, false
}

// RosterCommand is a command of the roster aggregate.
type RosterCommand interface{ rosterCommand() }

// AddMember makes an active user (UserStatus: its current status) a member; a user has at most one
// membership (DuplicateError of KindMembership).
type AddMember struct {
	UserID     uuid.UUID
	UserStatus userstore.UserStatus
	Role       userstore.MemberRole
	At         time.Time
}

// ChangeMemberRole changes a member's role. ExpectedVersion, when non-zero, must equal the membership's
// version. The same role changes nothing; demoting the last owner is refused with ReasonLastOwner.
type ChangeMemberRole struct {
	UserID          uuid.UUID
	Role            userstore.MemberRole
	ExpectedVersion int64
	At              time.Time
}

// RemoveMember removes a member. ExpectedVersion as for ChangeMemberRole; removing the last owner is
// refused with ReasonLastOwner. A user's deletion removes its membership with this command.
type RemoveMember struct {
	UserID          uuid.UUID
	ExpectedVersion int64
	At              time.Time
}

func (AddMember) rosterCommand()        {}
func (ChangeMemberRole) rosterCommand() {}
func (RemoveMember) rosterCommand()     {}

// Member is one membership in the roster.
type Member struct {
	Role userstore.MemberRole
	// Version is the roster version of the membership's last change.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RosterState is the roster aggregate: a tenant's memberships. Keeping them in one stream makes the
// last-owner invariant a single-aggregate rule that optimistic concurrency serializes.
type RosterState struct {
	TenantID uuid.UUID
	// Members maps user ids to memberships. Evolve never modifies a map it was given.
	Members map[uuid.UUID]Member
	Version int64
}

// StreamType implements Aggregate.
func (RosterState) StreamType() StreamType { return StreamRoster }

// Found implements Aggregate: every tenant has a roster, empty at version 0.
func (RosterState) Found() bool { return true }

// Owners returns the number of owners.
func (s RosterState) Owners() int {
	n := 0
	for _, m := range s.Members {
		if m.Role == userstore.RoleOwner {
			n++
		}
	}
	return n
}

// member returns the membership of a user or ReasonNotAMember.
func (s RosterState) member(userID uuid.UUID) (Member, error) {
	m, ok := s.Members[userID]
	if !ok {
		return Member{}, precondition(userstore.ReasonNotAMember, "the user is not a member")
	}
	return m, nil
}

// Decide decides a roster command.
func (s RosterState) Decide(cmd RosterCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case AddMember:
		if err := requireActiveUser(c.UserStatus); err != nil {
			return nil, err
		}
		if _, ok := s.Members[c.UserID]; ok {
			return nil, duplicate(userstore.KindMembership)
		}
		return []Event{RosterMemberAdded{UserID: c.UserID, Role: c.Role, At: c.At}}, nil
	case ChangeMemberRole:
		m, err := s.member(c.UserID)
		if err != nil {
			return nil, err
		}
		if err := CheckVersion(StreamRoster.Entity(), c.UserID, c.ExpectedVersion, m.Version); err != nil {
			return nil, err
		}
		if c.Role == m.Role {
			return nil, nil
		}
		if m.Role == userstore.RoleOwner && s.Owners() == 1 {
			return nil, precondition(userstore.ReasonLastOwner, "the tenant must keep an owner")
		}
		return []Event{RosterMemberRoleChanged{UserID: c.UserID, Role: c.Role, PreviousRole: m.Role, At: c.At}}, nil
	case RemoveMember:
		m, err := s.member(c.UserID)
		if err != nil {
			return nil, err
		}
		if err := CheckVersion(StreamRoster.Entity(), c.UserID, c.ExpectedVersion, m.Version); err != nil {
			return nil, err
		}
		if m.Role == userstore.RoleOwner && s.Owners() == 1 {
			return nil, precondition(userstore.ReasonLastOwner, "the tenant must keep an owner")
		}
		return []Event{RosterMemberRemoved{UserID: c.UserID, Role: m.Role, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one roster event.
func (s RosterState) Evolve(ev Event) RosterState {
	if ev == nil {
		return s
	}
	s.Version++
	at := ev.OccurredAt()
	switch e := ev.(type) {
	case RosterMemberAdded:
		s.Members = cloneMembers(s.Members)
		s.Members[e.UserID] = Member{Role: e.Role, Version: s.Version, CreatedAt: at, UpdatedAt: at}
	case RosterMemberRoleChanged:
		s.Members = cloneMembers(s.Members)
		m := s.Members[e.UserID]
		m.Role, m.Version, m.UpdatedAt = e.Role, s.Version, at
		s.Members[e.UserID] = m
	case RosterMemberRemoved:
		s.Members = cloneMembers(s.Members)
		delete(s.Members, e.UserID)
	}
	return s
}

func cloneMembers(m map[uuid.UUID]Member) map[uuid.UUID]Member {
	if m == nil {
		return map[uuid.UUID]Member{}
	}
	return maps.Clone(m)
}

// Membership returns the view of a user's membership.
func (s RosterState) Membership(userID uuid.UUID) (*userstore.Membership, bool) {
	m, ok := s.Members[userID]
	if !ok {
		return nil, false
	}
	return &userstore.Membership{
		TenantID: s.TenantID, UserID: userID, Role: m.Role, Version: m.Version,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}, true
}

// Memberships returns the views of every membership in user id order.
func (s RosterState) Memberships() []userstore.Membership {
	ids := slices.SortedFunc(maps.Keys(s.Members), compareIDs)
	out := make([]userstore.Membership, 0, len(ids))
	for _, id := range ids {
		m, _ := s.Membership(id)
		out = append(out, *m)
	}
	return out
}

// compareIDs orders uuids by their bytes, which is also the order of their canonical strings.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
