// Package pgstore is the durable userstore.Store on PostgreSQL: event-sourced, tenant-isolated by
// row-level security, with the same command engine (internal/engine) and domain rules (package
// domain) as the in-memory reference store, and the same conformance suite (adapter/storetest).
//
// # Writes
//
// Every mutation runs the engine's prepared operation in one REPEATABLE READ transaction scoped to its
// tenant with set_config('userstore.tenant_id', …, true) — never a session SET — and with
// synchronous_commit on. In that transaction it loads the aggregates' streams from the event log
// (package eventstore), appends the decided events (eventstore.QueueAppend), sets the inline read model
// (one table per area; each row is the aggregate state's View()), takes and releases the uniqueness
// claims, and records the idempotency key with its result. All of it commits, or none of it does. The
// transaction costs three round trips (docs/adr/0010): BEGIN with the settings, the idempotency lookup
// and every stream the operation planned to read (engine.Planner); then the guards, claims, appends,
// read rows and the idempotency record; then COMMIT.
//
// A transaction that fails for a reason a re-run may cure — a serialization failure (40001), a
// deadlock (40P01), an append that lost the race for a stream's next version, a concurrent request with
// the same idempotency key — is rolled back and the same operation is run again from BEGIN, at most
// Config.MaxRetries times, with a jittered, growing wait; if it still fails, the error matches
// userstore.ErrConflict. Domain errors are returned at once. A COMMIT whose connection broke before the
// server answered is userstore.ErrCommitOutcomeUnknown and is never re-run: retry it with the same
// idempotency key, which returns the original result if it did commit.
//
// Commands that depend on another aggregate without writing it guard it (docs/adr/0004): the user and
// the application by a real write of their read row, the tenant and the catalog by a shared row lock,
// so that DeleteUser racing OpenAccount (LinkIdentity, Bind, SetProfileValues, …) can never leave a
// live dependent of a deleted user.
//
// # Reads
//
// Queries read the read tables in a short READ ONLY REPEATABLE READ transaction scoped to the caller's
// tenant, sent with its statements as one pipelined round trip; they see every mutation that returned
// (read-your-writes). Lists are keyset-paged by id with opaque cursors. GetTenantBySlug resolves the
// slug through a SECURITY DEFINER function: the app role cannot read the platform's slugs, so
// ListTenants is ErrUnsupported here.
//
// The audit trail and the outbox derive from the log, never from rows written beside it. The audit
// trail is the projector's: the audit projection (package projections/audit, run by cmd/projector as the
// projector role) writes every event's record into userstore.audit_records with the tenant's gapless
// sequence and hash chain, and ListAuditRecords reads that table — the app role may read its tenant's
// records there and nothing else — with one indexed keyset scan per filter. A mutation's records appear
// once the projector has processed its events, so the trail lags by the projector's lag. The outbox
// (ReadOutbox) is still derived on each call from the log below its read horizon: it shows a mutation
// once every transaction older than it has ended. Store.Sync waits for that; it cannot wait for the
// projector, which the app role cannot run — a test that needs both calls projections.Runner.CatchUp
// after Sync.
//
// # Connections and roles
//
// New takes a ready *pgxpool.Pool whose connections log in as the app role (userstore_app: owns
// nothing, no BYPASSRLS); the caller owns credentials, TLS and the pool. Nothing relies on session
// state, so the pool may go through PgBouncer in transaction mode (use pgx.QueryExecModeExec). New
// refuses a database whose schema is older or newer than this build (ErrSchemaMismatch); Ready checks
// connectivity, schema version, row-level security, the role's privileges, synchronous_commit, the
// server version, and warns about a held read horizon.
//
// Errors are the protocol's (package userstore); they never carry a connection string, a password,
// PostgreSQL's message or detail, or a bind value.
package pgstore
