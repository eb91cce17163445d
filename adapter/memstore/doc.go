// Package memstore implements the whole userstore protocol in memory: the reference semantics of the
// store, and a fake that consumers use in their own unit tests.
//
// It runs the same command engine (internal/engine) and the same domain rules (package domain) as the
// PostgreSQL store, over an in-memory event log: every mutation appends events with a global position,
// an event id, its metadata and a recorded time; the read model (tenants, users, accounts, …) is the
// view of each aggregate's state after its events; the audit trail (a per-tenant, gapless, hash-chained
// sequence) and the outbox are derived from the log by domain.Audit and domain.Outbox as mutations
// commit, never written on their own.
//
// A Store is safe for concurrent use. Mutations are serialized by one lock and are atomic: a mutation
// that fails changes nothing at all — no event, no claim, no read-model row, no audit record, no outbox
// event. Queries are tenant-scoped (another tenant's entity is ErrNotFound), paged in id order with
// opaque keyset cursors, and see every committed mutation (read-your-writes).
//
// In a consumer's tests:
//
//	store, err := memstore.New(nil)
//	// with a fake clock and predictable ids:
//	store, err = memstore.New(&memstore.Config{Now: clock.Now, NewID: ids.Next})
//
// Differences from a durable store: nothing survives the process; ListTenants is allowed; Ready always
// reports ready with one "memory" check; SchemaVersion reports 0 of 0 (there is no schema).
package memstore
