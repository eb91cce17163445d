package userstore

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Sentinel errors. Match them with errors.Is; the structs below carry details and match their sentinel.
var (
	// ErrNotFound: the entity does not exist in the caller's tenant (another tenant's entity looks the same).
	ErrNotFound = errors.New("userstore: not found")
	// ErrConflict: optimistic concurrency failed — the entity changed since the version the caller saw.
	// See *VersionConflictError for the actual version.
	ErrConflict = errors.New("userstore: version conflict")
	// ErrDuplicate: a uniqueness rule refused the value. See *DuplicateError for the kind (never the value).
	ErrDuplicate = errors.New("userstore: duplicate")
	// ErrValidation: bad input; nothing was changed. See *ValidationError for the field.
	ErrValidation = errors.New("userstore: validation failed")
	// ErrFailedPrecondition: the request is well-formed but the current state refuses it (the last owner,
	// a closed tenant, an inactive user, …). See *PreconditionError for the reason code.
	ErrFailedPrecondition = errors.New("userstore: failed precondition")
	// ErrIdempotencyConflict: the idempotency key was used before with a different request.
	ErrIdempotencyConflict = errors.New("userstore: idempotency key reused with a different request")
	// ErrTenantRequired: the call carries no tenant.
	ErrTenantRequired = errors.New("userstore: tenant required")
	// ErrActorRequired: the mutation carries no actor.
	ErrActorRequired = errors.New("userstore: actor required")
	// ErrCommitOutcomeUnknown: the connection failed after COMMIT was sent; the mutation may or may not
	// have been committed. Retry only with the same idempotency key, which then returns the original
	// result if it did commit.
	ErrCommitOutcomeUnknown = errors.New("userstore: commit outcome unknown")
	// ErrUnavailable: the backing database could not be reached or refused the work for now; retrying
	// later may succeed.
	ErrUnavailable = errors.New("userstore: unavailable")
	// ErrSchemaMismatch: the database schema is older or newer than this code expects.
	ErrSchemaMismatch = errors.New("userstore: schema version mismatch")
	// ErrUnsupported: the implementation does not offer the operation in this configuration.
	ErrUnsupported = errors.New("userstore: unsupported")
)

// ValidationError reports bad input in one field. Nothing was changed.
type ValidationError struct {
	// Field names the offending input, as a dotted path of the params' fields in snake_case
	// ("email", "attributes[2].key", "values.birthday").
	Field string
	// Reason says what is wrong, without repeating the value.
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("userstore: invalid %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrValidation) true.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Invalid returns a *ValidationError for field.
func Invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// Uniqueness kinds: each names one uniqueness rule of the store.
const (
	KindTenantSlug       = "tenant_slug"
	KindEmail            = "email"
	KindLoginName        = "login_name"
	KindExternalIdentity = "external_identity"
	KindClientKey        = "client_key"
	KindCatalogName      = "catalog_name"
	KindBinding          = "binding"
	KindMembership       = "membership"
	KindCatalogAttribute = "catalog_attribute"
	KindEntityID         = "entity_id"
)

// DuplicateError reports that a uniqueness rule refused a value. It names the kind of rule and never the
// value itself.
type DuplicateError struct {
	// Kind is one of the Kind… constants.
	Kind string
}

func (e *DuplicateError) Error() string { return "userstore: duplicate " + e.Kind }

// Is makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// VersionConflictError reports that an entity is not at the version the caller expected.
type VersionConflictError struct {
	// Entity is the entity type ("user", "account", …).
	Entity string
	// ID is the entity's id.
	ID uuid.UUID
	// Expected is the version the caller passed.
	Expected int64
	// Actual is the entity's current version.
	Actual int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("userstore: version conflict on %s %s: expected version %d, actual %d", e.Entity, e.ID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrConflict }

// Precondition reason codes.
const (
	ReasonLastOwner       = "last_owner"
	ReasonTenantInactive  = "tenant_inactive"
	ReasonTenantClosed    = "tenant_closed"
	ReasonUserInactive    = "user_inactive"
	ReasonUserDeleted     = "user_deleted"
	ReasonAccountClosed   = "account_closed"
	ReasonAppInactive     = "application_inactive"
	ReasonAppDeleted      = "application_deleted"
	ReasonAttrDeprecated  = "attribute_deprecated"
	ReasonInvalidState    = "invalid_state_transition"
	ReasonAlreadyExists   = "already_exists"
	ReasonNotAMember      = "not_a_member"
	ReasonCatalogMismatch = "catalog_mismatch"
)

// PreconditionError reports that the current state refuses a well-formed request.
type PreconditionError struct {
	// Reason is one of the Reason… constants.
	Reason string
	// Message explains it for humans, without stored values.
	Message string
}

func (e *PreconditionError) Error() string {
	if e.Message == "" {
		return "userstore: failed precondition: " + e.Reason
	}
	return "userstore: failed precondition: " + e.Reason + ": " + e.Message
}

// Is makes errors.Is(err, ErrFailedPrecondition) true.
func (e *PreconditionError) Is(target error) bool { return target == ErrFailedPrecondition }

// SchemaMismatchError reports the database's schema version against the one the code expects.
type SchemaMismatchError struct {
	Current  int64
	Expected int64
}

func (e *SchemaMismatchError) Error() string {
	return fmt.Sprintf("userstore: schema version mismatch: database is at %d, code expects %d", e.Current, e.Expected)
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaMismatchError) Is(target error) bool { return target == ErrSchemaMismatch }
