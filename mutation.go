package userstore

import (
	"github.com/google/uuid"
)

// Mutation carries what every write shares. Every params struct of a write embeds it; all fields are
// optional where the context supplies them.
type Mutation struct {
	// TenantID is the tenant the mutation runs in. Zero: the context's tenant (WithTenant). Set in both
	// places, the two must agree. For CreateTenant it is the id of the tenant being created.
	TenantID uuid.UUID
	// Actor performs the mutation. Zero: the context's actor (WithActor).
	Actor Actor
	// IdempotencyKey, when set, makes the mutation safe to retry: per tenant, the same key with the same
	// request returns the original result; with another request, ErrIdempotencyConflict.
	// At most 255 bytes. Default: none.
	IdempotencyKey string
	// RequestID is recorded with the mutation's events and audit records. Zero: the context's request id.
	// At most 255 bytes.
	RequestID string
}

// Mut returns the embedded Mutation; it lets generic code reach the common fields of any params.
func (m *Mutation) Mut() *Mutation { return m }

// Page is one page of a list. NextCursor is empty on the last page; pass it back as the Cursor of the
// next call to continue. Cursors are opaque and only valid for the list and filters that produced them.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// ListOpts are the paging options every list takes.
type ListOpts struct {
	// Cursor continues a previous list. Default: the start.
	Cursor string
	// Limit is the page size, 1..MaxLimit. Default: DefaultLimit.
	Limit int
}

// Paging limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Limits on free-form input, shared by every implementation.
const (
	MaxNameLength       = 200  // display names, tenant, application and catalog names, in characters
	MaxEmailLength      = 254  // bytes, after normalization
	MaxLoginNameLength  = 128  // characters
	MaxURLLength        = 2048 // bytes
	MaxSubjectLength    = 255  // bytes
	MaxKeyLength        = 255  // idempotency keys, request ids, client keys, actor ids, bytes
	MaxCredentialRef    = 512  // bytes
	MaxRoles            = 64   // roles in one binding
	MaxAttributes       = 256  // attributes in one catalog
	MaxValueLength      = 4096 // characters of one string profile value
	MaxValuesPerRequest = 256  // profile values in one set or clear
)
