// Package rebuild rebuilds a projection from position zero of the event log into shadow tables while
// the live tables keep serving, verifies the live tables against it, and swaps (DESIGN §5, issue 5;
// docs/adr/0009-rebuild-shadow-tables.md). `projector rebuild <target>` calls [Run].
//
// Two targets:
//
//   - "readmodel": the nine read tables adapter/pgstore writes inline (projections/readmodel). The log
//     is folded stream by stream with the domain's fold into shadow copies of the tables; the swap takes
//     the tables' write lock (readers go on, mutations wait), folds the last events, and compares every
//     table. The live rows must already be the fold of the log — they are written in the same
//     transaction as the events — so the swap changes nothing, unless they drifted: then the run is
//     refused with a *DriftError, or, with Opts.Force, the differing live rows are replaced.
//   - "audit": userstore.audit_records, the asynchronous audit projection (projections/audit). The same
//     projection runs into a shadow table under a name of its own; the swap pauses the live projection
//     (its partition locks), verifies the records the live table holds, appends those it had not
//     written yet, and hands it the shadow's checkpoints: it goes on from there.
//
// The outbox is refused (ErrNotRebuildable): it is a delivery, not state.
//
// The shadow tables live in a schema of their own ([ShadowSchema]), copied from the live tables'
// definitions in the catalog (LIKE … INCLUDING ALL, plus the foreign keys), and are dropped at the end.
// The live tables are never replaced by them: PostgreSQL's DDL is not MVCC-safe, and a table swapped in
// by renaming hides the rows the swap wrote from every transaction whose snapshot is older than the swap
// (the ADR shows it). Changing rows in place keeps every snapshot right, keeps the tables' OIDs (and
// with them every prepared statement, index name, policy and grant) and needs no ACCESS EXCLUSIVE lock
// unless drift is repaired.
//
// # Roles
//
// [Params] takes two pools. The owner role (userstore_owner) creates the shadow schema (CREATE on the
// database), locks the read tables and repairs drift; but row-level security is forced on every tenant
// table and gives the owner no policy, so it sees no event and no live row. The projector role
// (userstore_projector) reads the log and the live tables (it sees every tenant) and writes the shadow
// tables, which the owner grants it for the run. A repair (Opts.Force) lifts FORCE ROW LEVEL SECURITY
// on the repaired tables for its transaction only.
//
// # Progress
//
// Opts.Progress receives the phase (copy, catch-up, swap, verify), the events done and an estimate of
// the total, for a progress bar or log lines; the package prints nothing itself.
package rebuild
