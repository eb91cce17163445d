// Package crashtest holds fault-injection harnesses of userstore that crash PostgreSQL itself (issue 8,
// items 1 and 2). It has no code of its own outside its tests.
//
// Each test starts a PRIVATE PostgreSQL cluster (initdb into a temporary directory, a unix socket only,
// no TCP port, never the shared cluster of scripts/pg.sh), creates the roles the store needs, migrates
// a fresh database, and stops and deletes the cluster when it ends — also when the test binary dies:
// a small watchdog process does it then.
//
//   - TestCrashDurability: N writers run mutations through adapter/pgstore with idempotency keys and log
//     every attempt; the cluster is stopped with `pg_ctl stop -m immediate` (or one backend that runs a
//     writer's transaction is killed with SIGKILL, which makes the postmaster restart every backend) at
//     random moments and restarted, while the same pools, store and projections.Runner keep running.
//     Afterwards every acknowledged mutation is present exactly once with its events, read rows, claims
//     and idempotency record, in-flight ones are all or nothing, stream versions are contiguous, and the
//     audit trail and the outbox hold one record per event.
//
//   - TestLinearizability: clients append to and read a few streams through eventstore under the same
//     faults; the history is checked with github.com/anishathalye/porcupine against a model of a
//     versioned stream. A failing history is saved as a porcupine visualization (HTML) and as JSON.
//
//   - TestStreamExistsAppendRace: the regression test of the defect the linearizability harness found
//     (an eventstore append with StreamExists that lost a race reported a version conflict).
//
// `go test` runs a small configuration (a few seconds per test). USERSTORE_FAULTS_LONG=1 runs more
// rounds with more writers and faults, and a "mixed" variant that also ends backends with
// pg_terminate_backend (make test-faults). USERSTORE_FAULTS_SEED=<n> fixes the random choices (not the
// timing); USERSTORE_FAULTS_ARTIFACTS=<dir> says where failing histories go (default:
// $TMPDIR/userstore-faults). The tests log their numbers (operations, acknowledgements, outcomes,
// faults, losses, duplicates) with -v; docs/reliability.md records the last ones.
//
// The PostgreSQL server binaries must be installed (scripts/pg.sh up installs them); when running as
// root, the cluster runs as the "postgres" (or "userstore-svc") OS user, as scripts/pg.sh does.
package crashtest
