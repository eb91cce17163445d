package userstore

import (
	"time"

	"github.com/google/uuid"
)

// Binding grants a user a set of roles in an application. There is at most one per (application, user).
type Binding struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	ApplicationID uuid.UUID
	UserID        uuid.UUID
	// Roles is a sorted set of role names, each [a-z0-9_.:-]{1,64}, at most MaxRoles.
	Roles     []string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// BindParams binds an active user to an active application.
type BindParams struct {
	Mutation
	// ID is the new binding's id. Default: a new UUIDv7.
	ID            uuid.UUID
	ApplicationID uuid.UUID
	UserID        uuid.UUID
	Roles         []string
}

// ChangeBindingRolesParams replaces a binding's roles.
type ChangeBindingRolesParams struct {
	Mutation
	ID              uuid.UUID
	Roles           []string
	ExpectedVersion int64
}

// UnbindParams removes a binding.
type UnbindParams struct {
	Mutation
	ID              uuid.UUID
	ExpectedVersion int64
}

// ListBindingsParams lists bindings of one user or one application (exactly one of the two) in id order.
type ListBindingsParams struct {
	ListOpts
	UserID        uuid.UUID
	ApplicationID uuid.UUID
}
