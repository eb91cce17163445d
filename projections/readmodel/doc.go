// Package readmodel is the row mapping of the inline read model (DESIGN §5) in one place: which tables
// there are, which of their columns the read model writes, how a stream's folded state becomes rows, and
// how rows are scanned back into entities.
//
// The read tables — tenants, users, accounts, external_identities, applications, bindings, catalogs,
// profiles and memberships — hold one row per stream (the roster stream of a tenant: one row per
// member), each row the View() of the stream's state. Two writers use this package:
//
//   - adapter/pgstore writes a stream's rows inline, in the transaction that appends the stream's events
//     ([Writer.QueueWrite]);
//   - projections/rebuild writes them into shadow tables from a fold of the log ([Rows] with COPY, then
//     [Writer.QueueReplace]), and compares and repairs the live tables with [Tables]' column lists.
//
// A [Writer] targets one schema ([SchemaDefault] for the live tables) and builds its SQL once. Every
// statement is schema-qualified, casts each parameter explicitly and keeps no session state, so it runs
// in every pgx exec mode, QueryExecModeExec behind PgBouncer in transaction mode included.
//
// The column lists ([UserColumns], …) and scan functions ([ScanUser], …) are what the store's queries
// and the replay tool read rows back with.
package readmodel
