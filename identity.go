package userstore

import (
	"time"

	"github.com/google/uuid"
)

// ExternalIdentity links a user to a subject at an external identity provider.
type ExternalIdentity struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	UserID   uuid.UUID
	// Issuer is an absolute http(s) URL; (Issuer, Subject) is unique per tenant.
	Issuer    string
	Subject   string
	Version   int64
	CreatedAt time.Time
}

// LinkIdentityParams links an external identity to an active user.
type LinkIdentityParams struct {
	Mutation
	// ID is the new link's id. Default: a new UUIDv7.
	ID      uuid.UUID
	UserID  uuid.UUID
	Issuer  string
	Subject string
}

// UnlinkIdentityParams removes a link and releases its (issuer, subject).
type UnlinkIdentityParams struct {
	Mutation
	ID              uuid.UUID
	ExpectedVersion int64
}

// ListIdentitiesParams lists one user's linked identities in id order.
type ListIdentitiesParams struct {
	ListOpts
	UserID uuid.UUID
}
