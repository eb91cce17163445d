package userstore

import (
	"time"

	"github.com/google/uuid"
)

// AccountKind is how an account authenticates.
type AccountKind string

// Account kinds.
const (
	AccountPassword AccountKind = "password"
	AccountPasskey  AccountKind = "passkey"
	AccountService  AccountKind = "service"
)

// AccountStatus is the lifecycle state of an account.
type AccountStatus string

// Account statuses. Closed is terminal and releases the login name.
const (
	AccountActive AccountStatus = "active"
	AccountLocked AccountStatus = "locked"
	AccountClosed AccountStatus = "closed"
)

// Account is a way for a user to sign in.
type Account struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	UserID   uuid.UUID
	// LoginName is trimmed and NFC-normalized; unique per tenant after case folding among open accounts.
	LoginName string
	Kind      AccountKind
	Status    AccountStatus
	// CredentialRef is an opaque pointer into an external secret store (never a secret itself).
	CredentialRef string
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// OpenAccountParams opens an account for an active user.
type OpenAccountParams struct {
	Mutation
	// ID is the new account's id. Default: a new UUIDv7.
	ID            uuid.UUID
	UserID        uuid.UUID
	LoginName     string
	Kind          AccountKind
	CredentialRef string
}

// RenameAccountLoginParams changes an account's login name.
type RenameAccountLoginParams struct {
	Mutation
	ID              uuid.UUID
	LoginName       string
	ExpectedVersion int64
}

// AccountParams targets one account (lock, unlock, close).
type AccountParams struct {
	Mutation
	ID              uuid.UUID
	ExpectedVersion int64
}

// ListAccountsParams lists one user's accounts in id order.
type ListAccountsParams struct {
	ListOpts
	UserID uuid.UUID
}
