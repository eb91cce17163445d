// Package userstore defines the protocol of the durable, event-sourced, multi-tenant store behind the
// user engine: the entity types, the parameters and results of every operation, the errors callers branch
// on, and the tenant / actor context every call runs in. It does no I/O.
//
// Two implementations ship with the module and pass the same conformance suite (adapter/storetest):
//
//   - adapter/memstore: the whole protocol in memory — the reference semantics, and a fake for a
//     consumer's own unit tests;
//   - adapter/pgstore: the durable store on PostgreSQL, where every mutation appends immutable events to
//     an event log in one transaction with its uniqueness claims and read-table rows.
//
// # Tenant and actor
//
// Every call runs in one tenant and every mutation on behalf of one actor. Both come from the context
// (WithTenant, WithActor) or, for mutations, from the embedded Mutation of the params. A call without a
// tenant fails with ErrTenantRequired and a mutation without an actor with ErrActorRequired, before
// anything else happens. Another tenant's entities are invisible: reading or writing one by id looks
// exactly like ErrNotFound.
//
// # Errors
//
// Errors are matched with errors.Is against the sentinels (ErrNotFound, ErrConflict, ErrDuplicate,
// ErrValidation, ErrFailedPrecondition, ErrIdempotencyConflict, ErrTenantRequired, ErrActorRequired,
// ErrCommitOutcomeUnknown, ErrUnavailable, ErrSchemaMismatch) and with errors.As against the structs
// that carry data (*ValidationError names the field, *DuplicateError the kind, *VersionConflictError the
// actual version). No error ever carries a stored value of another row, a password or a connection string.
//
// # Versions
//
// Every entity carries the version of its aggregate: 1 after creation, +1 per change. A mutation of an
// existing entity may pass the version it saw as ExpectedVersion; when non-zero and stale, the mutation
// fails with a *VersionConflictError carrying the actual version, and changes nothing.
//
// # Idempotency
//
// A mutation that carries an IdempotencyKey may be retried safely: the same key with the same request
// returns the original result without a second change; the same key with a different request fails with
// ErrIdempotencyConflict. This is how a caller resolves ErrCommitOutcomeUnknown.
package userstore
