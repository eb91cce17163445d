package rebuild_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// liveCheckpoints returns the live audit projection's checkpoints as text.
func liveCheckpoints(t *testing.T, ctx context.Context, e *env) []string {
	t.Helper()
	rows, err := e.admin.Query(ctx, `SELECT cp::text FROM userstore.projection_checkpoints AS cp
		WHERE projection = 'audit' ORDER BY partition`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// TestCancel: a rebuild cancelled in any phase — in the copy, in the catch-up, waiting for or holding
// the swap's locks — returns the context's error, leaves the live tables (rows, checkpoints, catalog)
// as they were and no shadow schema or shadow checkpoints behind, and releases the target: the next
// run succeeds.
func TestCancel(t *testing.T) {
	t.Parallel()
	for _, target := range rebuild.Targets() {
		for _, phase := range []rebuild.Phase{rebuild.PhaseCopy, rebuild.PhaseCatchUp, rebuild.PhaseSwap, rebuild.PhaseVerify} {
			t.Run(target+"/"+string(phase), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t)
				e := setup(t)
				fullHistory(t, ctx, e.store)
				workload.History(t, ctx, e.store, 2)
				live := e.auditRunner(t, nil)
				require.NoError(t, live.CatchUp(ctx))
				fullHistory(t, ctx, e.store) // the live audit projection lags
				rows, checkpoints, records := liveRows(t, ctx, e.admin), liveCheckpoints(t, ctx, e), trails(t, ctx, e)
				catalog := describe(t, ctx, e.admin, append(readModelTableNames(), auditTables...)...)

				runCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				cancelled := false
				_, err := rebuild.Run(runCtx, e.params(t, target), &rebuild.Opts{BatchSize: 2, Progress: func(p rebuild.Progress) {
					if p.Phase == phase && (phase != rebuild.PhaseCopy || p.Done > 0 || target == rebuild.TargetAudit) {
						cancelled = true
						cancel()
					}
				}})
				require.True(t, cancelled)
				require.ErrorIs(t, err, context.Canceled)

				require.Equal(t, rows, liveRows(t, ctx, e.admin))
				require.Equal(t, checkpoints, liveCheckpoints(t, ctx, e))
				require.Equal(t, records, trails(t, ctx, e))
				require.Equal(t, catalog, describe(t, ctx, e.admin, append(readModelTableNames(), auditTables...)...))
				requireNoShadowLeft(t, ctx, e)
				require.False(t, shadowExists(t, ctx, e.admin, rebuild.TargetReadModel))

				_, err = rebuild.Run(ctx, e.params(t, target), nil)
				require.NoError(t, err)
			})
		}
	}
}

// TestRunsOfOneTargetExclude: while a rebuild of a target runs, another rebuild or a cleanup of the
// same target is refused with ErrRunning; a rebuild of the other target runs meanwhile.
func TestRunsOfOneTargetExclude(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	fullHistory(t, ctx, e.store)
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		_, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{Progress: func(p rebuild.Progress) {
			if first {
				first = false
				close(entered)
				<-release
			}
		}})
		done <- err
	}()
	<-entered
	_, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), nil)
	require.ErrorIs(t, err, rebuild.ErrRunning)
	require.ErrorIs(t, rebuild.Cleanup(ctx, e.params(t, rebuild.TargetReadModel)), rebuild.ErrRunning)
	_, err = rebuild.Run(ctx, e.params(t, rebuild.TargetAudit), nil)
	require.NoError(t, err)
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, rebuild.Cleanup(ctx, e.params(t, rebuild.TargetReadModel)))
}

// TestValidation: the outbox is refused as not rebuildable, an unknown target as unknown, and invalid
// parameters and options with errors naming the field — all before any SQL runs.
func TestValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	owner, projector := pgtest.OwnerPool(t), pgtest.ProjectorPool(t)
	p := func(target string) *rebuild.Params {
		return &rebuild.Params{Owner: owner, Projector: projector, Target: target}
	}
	_, err := rebuild.Run(ctx, p(rebuild.TargetOutbox), nil)
	require.ErrorIs(t, err, rebuild.ErrNotRebuildable)
	_, err = rebuild.Run(ctx, p("users"), nil)
	require.ErrorIs(t, err, rebuild.ErrUnknownTarget)
	require.ErrorIs(t, rebuild.Cleanup(ctx, p(rebuild.TargetOutbox)), rebuild.ErrNotRebuildable)
	for name, c := range map[string]struct {
		params *rebuild.Params
		opts   *rebuild.Opts
		field  string
	}{
		"nil params":    {nil, nil, "Params"},
		"no owner":      {&rebuild.Params{Projector: projector, Target: rebuild.TargetAudit}, nil, "Params.Owner"},
		"no projector":  {&rebuild.Params{Owner: owner, Target: rebuild.TargetAudit}, nil, "Params.Projector"},
		"batch size":    {p(rebuild.TargetAudit), &rebuild.Opts{BatchSize: -1}, "Opts.BatchSize"},
		"workers":       {p(rebuild.TargetAudit), &rebuild.Opts{Workers: -1}, "Opts.Workers"},
		"lock timeout":  {p(rebuild.TargetAudit), &rebuild.Opts{LockTimeout: time.Microsecond}, "Opts.LockTimeout"},
		"swap attempts": {p(rebuild.TargetAudit), &rebuild.Opts{SwapAttempts: -1}, "Opts.SwapAttempts"},
		"rounds":        {p(rebuild.TargetAudit), &rebuild.Opts{CatchUpRounds: -1}, "Opts.CatchUpRounds"},
	} {
		_, err := rebuild.Run(ctx, c.params, c.opts)
		require.ErrorIs(t, err, projections.ErrValidation, name)
		require.ErrorContains(t, err, c.field, name)
	}
}

// TestSwapRetriesAfterLockTimeout: a transaction that holds a read table keeps the swap from taking its
// write lock; the attempt gives up after LockTimeout (writers wait for the swap only that long), and the
// next attempt, once the table is free, swaps.
func TestSwapRetriesAfterLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	fullHistory(t, ctx, e.store)
	holder, err := e.admin.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `LOCK TABLE userstore.users IN ROW EXCLUSIVE MODE`)
	require.NoError(t, err)
	res, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{LockTimeout: 200 * time.Millisecond,
		Progress: func(p rebuild.Progress) {
			if p.Phase == rebuild.PhaseSwap && p.Attempt == 2 {
				require.NoError(t, holder.Rollback(ctx))
			}
		}})
	require.NoError(t, err)
	require.Equal(t, 2, res.SwapAttempts)
}

// TestAuditSwapGivesUp: the audit swap pauses the live projection while it catches the shadow up; when
// that cannot finish within LockTimeout (here a transaction holds the log's horizon back), it gives up
// and, after its last attempt, returns ErrLocked, having changed nothing.
func TestAuditSwapGivesUp(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	workload.History(t, ctx, e.store, 1)
	live := e.auditRunner(t, nil)
	require.NoError(t, live.CatchUp(ctx))
	fullHistory(t, ctx, e.store)
	checkpoints, records := liveCheckpoints(t, ctx, e), trails(t, ctx, e)
	var holder pgx.Tx
	defer func() {
		if holder != nil {
			_ = holder.Rollback(ctx)
		}
	}()
	_, err := rebuild.Run(ctx, e.params(t, rebuild.TargetAudit), &rebuild.Opts{LockTimeout: 300 * time.Millisecond, SwapAttempts: 1,
		Progress: func(p rebuild.Progress) {
			if p.Phase == rebuild.PhaseSwap && holder == nil {
				var err error
				holder, err = e.admin.Begin(ctx)
				require.NoError(t, err)
				_, err = holder.Exec(ctx, `SELECT pg_current_xact_id()`)
				require.NoError(t, err)
				fullHistory(t, ctx, e.store) // events after the holder's transaction id
			}
		}})
	require.ErrorIs(t, err, rebuild.ErrLocked)
	require.Equal(t, checkpoints, liveCheckpoints(t, ctx, e))
	after := trails(t, ctx, e)
	for tenant, recs := range after {
		require.Len(t, recs, len(records[tenant]), "no record appended") // the new tenant's: none
		if len(recs) > 0 {
			require.Equal(t, records[tenant], recs)
		}
	}
	require.NoError(t, holder.Rollback(ctx))
	requireNoShadowLeft(t, ctx, e)
}
