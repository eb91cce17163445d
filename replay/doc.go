// Package replay reconstructs, from the immutable event log alone, what happened in a tenant and what
// its state was, and proves that the tables derived from the log tell the truth (DESIGN §5, §6). It is
// the library behind cmd/replay.
//
//   - [Replayer.Audit] rebuilds a tenant's audit trail from its events — domain.Audit and
//     domain.ChainAudit in the log's order, the functions the audit projection uses — without reading
//     userstore.audit_records.
//   - [Replayer.State] folds one entity's stream up to a log position or a time with the deciders'
//     Evolve (domain.Evolve) and returns its View(), optionally with the change of every event.
//   - [Replayer.VerifyChain] recomputes each tenant's hash chain and compares it record for record with
//     userstore.audit_records, reporting the first divergence.
//   - [Replayer.VerifyProjections] folds every stream of each tenant and compares the result row by row
//     with the live read tables (tenants, users, accounts, external_identities, applications, bindings,
//     catalogs, profiles, memberships).
//
// # Read-only and consistent
//
// Every operation runs in ONE transaction BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY and never
// writes, so it runs as the projector role (which reads every tenant) and against a hot-standby
// replica. The snapshot makes everything an operation reads consistent: the audit trail and the chain
// use the events below the snapshot's horizon (transaction ids below pg_snapshot_xmin, the complete
// prefix of the log in (transaction id, global position) order, as the projector reads it); the
// projection check uses every event visible in the snapshot, which is exactly what the read tables
// (written in the events' transactions) show in the same snapshot.
//
// # Bounded memory
//
// The log is read in batches of Config.BatchSize events with keyset cursors, never as a whole: the
// audit trail and the chain hold one batch, the chain's last link and the tenant's skipped dead
// letters; the state holds one stream's state; the projection check holds one batch of events and of
// each table's rows, plus the profiles and the membership roster of the tenant being checked.
//
// Errors never carry a connection string, a password, a server message or a bind value: a database
// error names its SQLSTATE only.
package replay
