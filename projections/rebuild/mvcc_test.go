package rebuild_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
)

// TestRenameSwapWouldHideRows records why the rebuild never swaps tables by renaming (docs/adr/0009):
// PostgreSQL's DDL is not MVCC-safe. A REPEATABLE READ transaction whose snapshot was taken before the
// swap committed, and that reaches the table only afterwards (it waited for the swap's lock), resolves
// the name to the new table — and sees none of the rows the swap's transaction wrote into it. pgstore's
// reads and mutations take their snapshot with their first statement and wait for a swap's lock at a
// later one, so a renaming swap would hide writes acknowledged just before it (a read misses them, a
// DELETE leaves them behind). If this test ever fails, PostgreSQL changed, and the ADR should be
// revisited.
func TestRenameSwapWouldHideRows(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	admin := db.Pool(t, pgtest.Admin)
	_, err := admin.Exec(ctx, `CREATE SCHEMA demo;
		CREATE TABLE demo.live (id int PRIMARY KEY); INSERT INTO demo.live VALUES (1), (2), (3);
		CREATE TABLE demo.shadow (id int PRIMARY KEY); INSERT INTO demo.shadow VALUES (1), (2)`)
	require.NoError(t, err)

	reader, err := admin.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	require.NoError(t, err)
	defer func() { _ = reader.Rollback(ctx) }()
	_, err = reader.Exec(ctx, `SELECT 1`) // the snapshot
	require.NoError(t, err)

	swap, err := admin.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = swap.Rollback(ctx) }()
	_, err = swap.Exec(ctx, `INSERT INTO demo.shadow VALUES (3);
		ALTER TABLE demo.live RENAME TO old; ALTER TABLE demo.shadow RENAME TO live`)
	require.NoError(t, err)

	counted := make(chan int, 1)
	go func() {
		var n int
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM demo.live`).Scan(&n); err != nil {
			n = -1
		}
		counted <- n
	}()
	require.Eventually(t, func() bool {
		var waiting int
		_ = admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'SELECT count(*) FROM demo.live%'`).Scan(&waiting)
		return waiting == 1
	}, time.Minute, time.Millisecond)
	require.NoError(t, swap.Commit(ctx))
	require.Equal(t, 2, <-counted, "the renamed-in table hides the row its swap wrote from the older snapshot")
}
