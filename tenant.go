package userstore

import (
	"time"

	"github.com/google/uuid"
)

// TenantStatus is the lifecycle state of a tenant account.
type TenantStatus string

// Tenant statuses. A suspended tenant accepts only tenant-level mutations (rename, reactivate, close);
// a closed tenant accepts no mutation at all.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
	TenantClosed    TenantStatus = "closed"
)

// Tenant is a tenant account.
type Tenant struct {
	ID uuid.UUID
	// Slug is globally unique, lower-case [a-z0-9-]{3,63}.
	Slug      string
	Name      string
	Status    TenantStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateTenantParams creates a tenant. Mutation.TenantID (or the context's tenant) is the new tenant's id.
type CreateTenantParams struct {
	Mutation
	// Slug is normalized (trimmed, lower-cased) and must match [a-z0-9-]{3,63}. Required.
	Slug string
	// Name is the display name, 1..MaxNameLength characters. Required.
	Name string
}

// RenameTenantParams renames the context's tenant.
type RenameTenantParams struct {
	Mutation
	Name string
	// ExpectedVersion, when non-zero, must equal the tenant's current version.
	ExpectedVersion int64
}

// TenantStatusParams changes the context's tenant's status (suspend, reactivate, close).
type TenantStatusParams struct {
	Mutation
	// Reason is a free-form note recorded in the event, at most MaxNameLength characters. Optional.
	Reason string
	// ExpectedVersion, when non-zero, must equal the tenant's current version.
	ExpectedVersion int64
}

// ListTenantsParams lists tenants. Listing is a platform operation: an implementation may refuse it
// (ErrUnsupported) where the runtime role must not enumerate tenants.
type ListTenantsParams struct {
	ListOpts
	// Status filters by status. Default: all.
	Status TenantStatus
}
