package projectorcmd

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
)

// holdHorizon opens a transaction that takes a transaction id on a connection of its own, holding the
// log's horizon back (cluster-wide) until release is called: events committed meanwhile stay unreadable.
func holdHorizon(t *testing.T, ctx context.Context, db *pgtest.Database) (release func()) {
	t.Helper()
	cfg := db.PoolConfig(t, pgtest.App)
	cfg.ConnConfig.RuntimeParams["application_name"] = "projectorcmd-holder-" + uuid.NewString()[:8]
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	return func() { require.NoError(t, tx.Rollback(ctx)) }
}

// TestRunEndToEnd: `projector run` serves /healthz at once; /readyz is not ready while events are
// behind with a lag threshold they exceed (0: any lag), and ready once the runner caught up; /metrics
// has the projections' metrics; a cancelled context (SIGINT/SIGTERM in the program) stops it with exit
// code 0.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	vars := map[string]string{EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db)}
	history(t, ctx, db, 2)

	// Events committed while a transaction holds the horizon back cannot be read: they stay behind.
	release := holdHorizon(t, ctx, db)
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	history(t, ctx, db, 1)

	r := startRun(t, ctx, vars, "-ready-max-lag", "0s", "-status-max-age", "0s", "-poll-interval-max", "100ms")
	code, body := r.get(t, "/healthz")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)

	var rb readyBody
	waitFor(t, "the runner to run", func() bool {
		_, rb = r.readyz(t)
		c, _ := rb.check(CheckRunner)
		return c.OK
	})
	code, rb = r.readyz(t)
	require.Equal(t, 503, code)
	require.False(t, rb.Ready)
	lag, ok := rb.check(CheckLag)
	require.True(t, ok)
	require.False(t, lag.OK)
	require.Contains(t, lag.Reason, "audit is")
	for _, name := range []string{pgstore.CheckConnectivity, pgstore.CheckSchemaVersion, pgstore.CheckRowLevelSecurity,
		pgstore.CheckRole, pgstore.CheckSynchronousCommit, pgstore.CheckServerVersion} {
		c, ok := rb.check(name)
		require.True(t, ok, name)
		require.True(t, c.OK, "%s: %s", name, c.Reason)
	}

	code, metrics := r.get(t, "/metrics")
	require.Equal(t, 200, code)
	for _, name := range []string{projections.MetricBatches, projections.MetricEvents, projections.MetricLagEvents,
		projections.MetricLagSeconds, projections.MetricCheckpointProcessed, projections.MetricDeadLettersParked,
		projections.MetricStatusUp, projections.MetricHorizonUp, projections.MetricHorizonHolderAge, "go_goroutines"} {
		require.Contains(t, metrics, name)
	}
	require.Contains(t, metrics, projections.MetricStatusUp+" 1")

	release()
	held = false
	waitFor(t, "/readyz to say ready", func() bool {
		code, _ := r.readyz(t)
		return code == 200
	})
	_, rb = r.readyz(t)
	require.True(t, rb.Ready)
	_, metrics = r.get(t, "/metrics")
	require.Contains(t, metrics, projections.MetricEvents+`{projection="audit",result="applied",version="1"}`)
	require.NotContains(t, metrics, projections.MetricEvents+`{projection="audit",result="applied",version="1"} 0`)

	require.Equal(t, ExitOK, r.stop(t))
	logs := r.stderr.String()
	require.Contains(t, logs, "projector: stopping")
	require.Contains(t, logs, "projector: stopped")
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		require.True(t, strings.HasPrefix(line, "{"), "a log line that is not JSON: %s", line)
	}
}

// TestRunWaitsForSchema: against a database without the schema, run serves /healthz, and /readyz says
// why it is not ready; once the database is migrated it starts the runner and becomes ready. With
// -wait=false it exits with 1 instead. A database migrated by a newer build is refused the same way.
func TestRunWaitsForSchema(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
	vars := map[string]string{
		EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db),
		EnvOwnerDatabaseURL:     dsn(t, pgtest.EnvOwnerURL, db),
	}

	res := runMain(t, ctx, vars, "run", "-listen", "", "-wait=false")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stderr, "schema version mismatch")
	require.Contains(t, res.stderr, "projector migrate")

	r := startRun(t, ctx, vars, "-wait-interval", "50ms")
	code, _ := r.get(t, "/healthz")
	require.Equal(t, 200, code)
	code, rb := r.readyz(t)
	require.Equal(t, 503, code)
	c, _ := rb.check(pgstore.CheckConnectivity)
	require.True(t, c.OK)
	c, _ = rb.check(pgstore.CheckSchemaVersion)
	require.False(t, c.OK)
	require.Contains(t, c.Reason, "database is at 0")
	c, _ = rb.check(CheckRunner)
	require.False(t, c.OK)
	require.Contains(t, c.Reason, "waiting")
	code, metrics := r.get(t, "/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, metrics, projections.MetricStatusUp+" 0")

	require.Equal(t, ExitOK, runMain(t, ctx, vars, "migrate").code)
	waitFor(t, "/readyz to say ready after the migration", func() bool {
		code, _ := r.readyz(t)
		return code == 200
	})
	require.Contains(t, r.stderr.String(), "waiting for the database and its schema version")
	require.Equal(t, ExitOK, r.stop(t))

	// A version this build does not know: the database was migrated by a newer build.
	_, err := db.Pool(t, pgtest.Owner).Exec(ctx,
		`INSERT INTO userstore.goose_db_version (version_id, is_applied) VALUES (99999, true)`)
	require.NoError(t, err)
	res = runMain(t, ctx, vars, "run", "-listen", "", "-wait=false")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stderr, "database is at 99999")
	r = startRun(t, ctx, vars, "-wait-interval", "50ms")
	code, rb = r.readyz(t)
	require.Equal(t, 503, code)
	c, _ = rb.check(pgstore.CheckSchemaVersion)
	require.False(t, c.OK)
	require.Equal(t, ExitOK, r.stop(t))
}
