// Package faultsuite holds the store's fault and isolation harnesses; it has no code of its own, only
// tests (run with `go test ./internal/faultsuite`, against the local PostgreSQL like every test here):
//
//   - network faults between pgstore and PostgreSQL through internal/faultproxy: latency above the
//     caller's deadline, a blackholed connection, the reply to COMMIT lost, the database unreachable at
//     start and back later — each ends in one of the library's typed errors within the configured
//     bounds, a lost COMMIT reply is resolved by the idempotency key, readiness follows the network,
//     and no connection or goroutine is left behind;
//   - the tenant isolation sweep: every table of schema userstore, found in the catalog (so a new table
//     is covered, or fails the sweep until it is classified), read and written as userstore_app with
//     another tenant set and with none — directly and through PgBouncer in transaction mode on one
//     server connection;
//   - differential fuzzing of the store's public queries and mutations: pgstore and memstore accept and
//     reject the same inputs, and pgstore rejects only with validation errors, never a database error;
//   - the redaction sweep of the projector and replay programs.
//
// docs/reliability.md records what each scenario injects and checks, with the numbers of the last run.
package faultsuite
