package userstore

import (
	"time"

	"github.com/google/uuid"
)

// UserStatus is the lifecycle state of a user.
type UserStatus string

// User statuses. Deleted is terminal: a deleted user keeps its id as a tombstone, has released its email,
// and accepts no mutation.
const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
	UserDeleted  UserStatus = "deleted"
)

// User is a person or principal in a tenant.
type User struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// DisplayName is 1..MaxNameLength characters.
	DisplayName string
	// Email is the primary email, trimmed and NFC-normalized, as given otherwise. It is unique per tenant
	// after case folding. Empty once the user is deleted.
	Email     string
	Status    UserStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateUserParams creates a user.
type CreateUserParams struct {
	Mutation
	// ID is the new user's id. Default: a new UUIDv7.
	ID          uuid.UUID
	DisplayName string
	Email       string
}

// UpdateUserProfileParams changes a user's profile fields.
type UpdateUserProfileParams struct {
	Mutation
	ID              uuid.UUID
	DisplayName     string
	ExpectedVersion int64
}

// ChangeUserEmailParams changes a user's primary email: the old one is released, the new one claimed.
type ChangeUserEmailParams struct {
	Mutation
	ID              uuid.UUID
	Email           string
	ExpectedVersion int64
}

// UserParams targets one user (disable, enable, delete).
type UserParams struct {
	Mutation
	ID              uuid.UUID
	ExpectedVersion int64
}

// ListUsersParams lists the tenant's users in id (creation) order.
type ListUsersParams struct {
	ListOpts
	// Status filters by status. Default: active and disabled users (not deleted ones).
	Status UserStatus
}
