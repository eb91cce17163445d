package pgtest_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
)

func TestBouncerPoolConfig(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.Default(t)

	for role, want := range map[pgtest.Role]string{
		pgtest.Owner:     "userstore_owner",
		pgtest.App:       "userstore_app",
		pgtest.Projector: "userstore_projector",
	} {
		cfg := db.BouncerPoolConfig(t, role)
		require.Equal(t, os.Getenv("USERSTORE_PGBOUNCER_PORT"), strconv.Itoa(int(cfg.ConnConfig.Port)), "the pool goes through the bouncer")
		require.Equal(t, pgx.QueryExecModeExec, cfg.ConnConfig.DefaultQueryExecMode)
		pool := pgtest.NewPool(t, cfg)
		var user, database string
		require.NoError(t, pool.QueryRow(ctx, `SELECT current_user, current_database()`).Scan(&user, &database))
		require.Equal(t, want, user)
		require.Equal(t, db.Name, database, "the wildcard entry forwards the package database")
	}
}

// TestSingleBouncerTransactionLocalSettingDoesNotLeak: through the bouncer whose pool holds one server
// connection, two client connections take turns on the same server session; a transaction-local
// set_config is gone for the next transaction, while a session-level one (what DESIGN §7 forbids)
// would leak to the other client — the control that shows the test can see a leak.
func TestSingleBouncerTransactionLocalSettingDoesNotLeak(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := pgtest.Default(t).SingleBouncerPoolConfig(t, pgtest.App)
	cfg.MaxConns = 2
	pool := pgtest.NewPool(t, cfg)

	// Hold two distinct client connections: a and b are different clients of the bouncer.
	a, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer a.Release()
	b, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer b.Release()

	const probe = "pgtest.probe"
	var pidA, pidB int32
	var seen string
	require.NoError(t, pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT set_config($1, 'tenant-a', true), pg_backend_pid()`, probe).Scan(&seen, &pidA)
	}))
	require.Equal(t, "tenant-a", seen)

	require.NoError(t, pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(current_setting($1, true), ''), pg_backend_pid()`, probe).Scan(&seen, &pidB)
	}))
	require.Equal(t, pidA, pidB, "both clients run on the bouncer's one server connection")
	require.Empty(t, seen, "a transaction-local setting must not reach the next transaction")

	// Control: a session-level setting does leak from a to b through the shared server session.
	resetProbe := func(c *pgxpool.Conn) {
		_, err := c.Exec(context.WithoutCancel(ctx), `SELECT set_config($1, '', false)`, probe)
		require.NoError(t, err)
	}
	defer resetProbe(a)
	_, err = a.Exec(ctx, `SELECT set_config($1, 'leaked', false)`, probe)
	require.NoError(t, err)
	require.NoError(t, b.QueryRow(ctx, `SELECT coalesce(current_setting($1, true), ''), pg_backend_pid()`, probe).Scan(&seen, &pidB))
	require.Equal(t, pidA, pidB)
	require.Equal(t, "leaked", seen, "session state leaks through a transaction-mode bouncer")
}
