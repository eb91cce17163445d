package rebuild_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections/readmodel"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// TestReadModelRebuild: on a history that leaves rows in every read table (and removed some), the
// rebuild's shadow tables equal the live tables row for row; the live tables — rows, guard_seq included,
// and catalog description (oid, columns, indexes, constraints, policies, grants, RLS flags, triggers) —
// are the same after the rebuild as before; the phases are reported in order; the shadow schema is
// gone after Cleanup; and the store keeps working, in both pgx exec modes.
func TestReadModelRebuild(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	for range 3 {
		fullHistory(t, ctx, e.store)
	}
	workload.History(t, ctx, e.store, 3)
	cached := e.cachedStore(t)
	exerciseStore(t, ctx, cached) // statements prepared and cached before the rebuild

	before := liveRows(t, ctx, e.admin)
	for _, name := range readModelTableNames() {
		require.NotEmpty(t, before[name], name)
	}
	catalog := describe(t, ctx, e.admin, readModelTableNames()...)

	var progress progressLog
	res, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{KeepShadow: true, BatchSize: 7, Progress: progress.add})
	require.NoError(t, err)
	require.False(t, res.Repaired)
	require.Equal(t, 1, res.SwapAttempts)
	require.Len(t, res.Tables, len(readmodel.Tables()))
	for _, tr := range res.Tables {
		require.True(t, tr.Match(), "%+v", tr)
		require.Equal(t, int64(len(before[tr.Table])), tr.LiveRows, tr.Table)
	}
	var events int64
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&events))
	require.Equal(t, events, res.Events())
	require.Equal(t, []rebuild.Phase{rebuild.PhaseCopy, rebuild.PhaseCatchUp, rebuild.PhaseSwap, rebuild.PhaseVerify}, progress.phases())

	// Row for row, the rebuild equals the live tables.
	require.Equal(t, readModelRows(t, ctx, e.admin, "userstore"), readModelRows(t, ctx, e.admin, rebuild.ShadowSchema(rebuild.TargetReadModel)))
	// The live tables are untouched.
	require.Equal(t, before, liveRows(t, ctx, e.admin))
	require.Equal(t, catalog, describe(t, ctx, e.admin, readModelTableNames()...))

	require.NoError(t, rebuild.Cleanup(ctx, e.params(t, rebuild.TargetReadModel)))
	require.False(t, shadowExists(t, ctx, e.admin, rebuild.TargetReadModel))

	exerciseStore(t, ctx, e.store)
	exerciseStore(t, ctx, cached)

	// A run without KeepShadow leaves nothing behind.
	_, err = rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), nil)
	require.NoError(t, err)
	require.False(t, shadowExists(t, ctx, e.admin, rebuild.TargetReadModel))
}

// TestDrift: rows changed behind the store's back — a user's name edited, a membership deleted, a
// binding invented — make the rebuild refuse with a *DriftError naming exactly those tables and
// changing nothing; with Force it repairs them: the live tables equal the fold of the log again, the
// catalog description is what it was (FORCE ROW LEVEL SECURITY is back on), and the store keeps
// working — also a store whose connections cached prepared statements before the repair.
func TestDrift(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	tenant := fullHistory(t, ctx, e.store)
	fullHistory(t, ctx, e.store)
	cached := e.cachedStore(t)
	exerciseStore(t, ctx, cached)
	want := readModelRows(t, ctx, e.admin, "userstore")
	catalog := describe(t, ctx, e.admin, readModelTableNames()...)

	for _, sql := range []string{
		`UPDATE userstore.users SET display_name = 'tampered' WHERE tenant_id = $1 AND id = (SELECT id FROM userstore.users WHERE tenant_id = $1 ORDER BY id LIMIT 1)`,
		`DELETE FROM userstore.memberships WHERE tenant_id = $1`,
		`INSERT INTO userstore.bindings (tenant_id, id, application_id, user_id, roles, version, created_at, updated_at)
		 VALUES ($1, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), '{}', 1, now(), now())`,
	} {
		_, err := e.admin.Exec(ctx, sql, tenant)
		require.NoError(t, err)
	}
	drifted := liveRows(t, ctx, e.admin)

	_, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), nil)
	require.ErrorIs(t, err, rebuild.ErrDrift)
	var de *rebuild.DriftError
	require.ErrorAs(t, err, &de)
	var tables []string
	for _, tr := range de.Tables {
		tables = append(tables, tr.Table)
		require.False(t, tr.Match())
	}
	require.Equal(t, []string{readmodel.TableUsers, readmodel.TableBindings, readmodel.TableMemberships}, tables)
	require.Equal(t, drifted, liveRows(t, ctx, e.admin), "a refused rebuild changes nothing")
	require.False(t, shadowExists(t, ctx, e.admin, rebuild.TargetReadModel))

	res, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{Force: true})
	require.NoError(t, err)
	require.True(t, res.Repaired)
	for _, tr := range res.Tables {
		switch tr.Table {
		case readmodel.TableUsers:
			require.Equal(t, [2]int64{1, 1}, [2]int64{tr.Deleted, tr.Inserted})
		case readmodel.TableBindings:
			require.Equal(t, [2]int64{1, 0}, [2]int64{tr.Deleted, tr.Inserted})
		case readmodel.TableMemberships:
			require.Equal(t, [2]int64{0, 1}, [2]int64{tr.Deleted, tr.Inserted})
		default:
			require.True(t, tr.Match(), tr.Table)
			require.Zero(t, tr.Deleted+tr.Inserted, tr.Table)
		}
	}
	require.Equal(t, want, readModelRows(t, ctx, e.admin, "userstore"))
	require.Equal(t, catalog, describe(t, ctx, e.admin, readModelTableNames()...))

	// The drift is gone: a rebuild without Force finds none.
	_, err = rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), nil)
	require.NoError(t, err)
	exerciseStore(t, ctx, e.store)
	exerciseStore(t, ctx, cached)
}
