package userstore

import (
	"time"

	"github.com/google/uuid"
)

// MemberRole is a user's role in its tenant.
type MemberRole string

// Member roles.
const (
	RoleOwner  MemberRole = "owner"
	RoleAdmin  MemberRole = "admin"
	RoleMember MemberRole = "member"
)

// Membership is a user's role in the tenant; a user has at most one. A tenant that has an owner always
// keeps at least one: demoting or removing the last owner fails with ReasonLastOwner, also when requests
// race.
type Membership struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Role     MemberRole
	// Version is the version of the tenant's membership roster at this membership's last change; pass it
	// as ExpectedVersion to change this membership only if it is unchanged.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// AddMemberParams makes an active user a member of the tenant.
type AddMemberParams struct {
	Mutation
	UserID uuid.UUID
	Role   MemberRole
}

// ChangeMemberRoleParams changes a member's role.
type ChangeMemberRoleParams struct {
	Mutation
	UserID          uuid.UUID
	Role            MemberRole
	ExpectedVersion int64
}

// RemoveMemberParams removes a member.
type RemoveMemberParams struct {
	Mutation
	UserID          uuid.UUID
	ExpectedVersion int64
}

// ListMembersParams lists the tenant's members in user id order.
type ListMembersParams struct {
	ListOpts
	// Role filters by role. Default: all.
	Role MemberRole
}
