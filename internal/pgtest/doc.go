// Package pgtest gives tests a real PostgreSQL: one throwaway database per test package, created
// and migrated by [Main] and dropped at the end, and pools for each role (owner, app, projector,
// admin) on it. The cluster is the local one of scripts/pg.sh, found through the environment
// variables that `scripts/pg.sh env` prints; `make test` sets them. Without them the tests fail
// with instructions — they never skip.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.AppPool(t) // shared by the package's tests; keep no session state on it
//		...
//	}
//
// [Database.BouncerPoolConfig] reaches the same database through the local PgBouncer in transaction
// pooling mode, and [Database.SingleBouncerPoolConfig] through a second one whose pool holds exactly
// one server connection per database and role (scripts/pg.sh runs both).
//
// Tests share the package database, so each test works in tenants and streams of its own (random
// UUIDs). A test that needs a database to itself calls [NewDatabase].
package pgtest
