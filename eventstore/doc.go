// Package eventstore is the PostgreSQL event log of userstore (DESIGN §3, docs/adr/0002): one
// append-only table, userstore.events, for every tenant and every stream. It knows no domain.
//
// # Writing
//
// [Store.Append] appends events to one stream in a transaction of its own; [Store.AppendTx] does
// so inside the caller's REPEATABLE READ transaction, several streams per transaction if need be.
// Each append names its optimistic-concurrency condition — [Any], [NoStream], [StreamExists] or
// [Exact] — and gets contiguous stream versions; a failed condition is a *[VersionConflictError]
// carrying the actual version. The version check and the insert are one statement, so an append
// costs one round trip. Input is validated before any SQL runs (errors match [ErrValidation]).
//
// # Reading
//
// [Store.ReadStream] reads one stream by version. [Store.ReadAll] pages through the whole log, one
// partition ([PartitionOf]) or one tenant, in (transaction id, global position) order, and
// [Store.Follow] keeps delivering it as it grows. Both only return events below the horizon — the
// oldest transaction id still running — so a reader never skips an event that commits late: the
// price is that a long-running write transaction anywhere in the cluster holds every reader back,
// which [Store.Horizon] makes visible (who, since when).
//
// # Tenants and roles
//
// Row-level security scopes the app role (userstore_app) to one tenant per transaction; the store
// sets it with set_config('userstore.tenant_id', ..., true), never a session SET. The projector
// role (userstore_projector) reads every tenant. No statement keeps session state, so the store
// works with any pgx query exec mode, including QueryExecModeExec behind PgBouncer in transaction
// mode.
//
// # Errors
//
// Errors are this package's own (sentinels and typed errors, matched with errors.Is and errors.As).
// They never carry a connection string, a password, a PostgreSQL message or detail, or a bind value.
package eventstore
