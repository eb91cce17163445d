package replay_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/replay"
)

// TestEveryOperationIsReadOnly: with default_transaction_read_only on for the session — what a hot
// standby imposes on every transaction — every operation works: none writes, none needs a transaction
// id, and all run in READ ONLY transactions of their own.
func TestEveryOperationIsReadOnly(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 1, 1)
	cfg := e.db.PoolConfig(t, pgtest.Projector)
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool := pgtest.NewPool(t, cfg)
	var on string
	require.NoError(t, pool.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&on))
	require.Equal(t, "on", on)

	r, err := replay.New(pool, &replay.Config{ProgressFunc: func(replay.Progress) {}})
	require.NoError(t, err)
	for _, tenant := range e.tenants {
		_, err := r.Audit(ctx, &replay.AuditParams{TenantID: tenant}, func(*userstore.AuditRecord) error { return nil })
		require.NoError(t, err)
		rep, err := r.VerifyChain(ctx, &replay.VerifyChainParams{TenantID: tenant})
		require.NoError(t, err)
		require.False(t, rep.Diverged())
		prep, err := r.VerifyProjections(ctx, &replay.VerifyProjectionsParams{TenantID: tenant})
		require.NoError(t, err)
		require.False(t, prep.Drifted())
	}
	chain, err := r.VerifyChain(ctx, &replay.VerifyChainParams{All: true})
	require.NoError(t, err)
	require.False(t, chain.Diverged())
	proj, err := r.VerifyProjections(ctx, nil)
	require.NoError(t, err)
	require.False(t, proj.Drifted())
	for _, s := range e.snaps {
		_, err := r.State(ctx, &replay.StateParams{Entity: s.entity, AtPosition: s.position, Diff: true})
		require.NoError(t, err)
	}
}

// TestWorksThroughPgBouncer: every operation runs through PgBouncer in transaction pooling mode — one
// transaction, its cursors included, stays on one server connection.
func TestWorksThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 1, 1)
	pool := pgtest.NewPool(t, e.db.BouncerPoolConfig(t, pgtest.Projector))
	r, err := replay.New(pool, &replay.Config{BatchSize: 2})
	require.NoError(t, err)
	n := 0
	_, err = r.Audit(ctx, &replay.AuditParams{TenantID: e.tenants[1]}, func(*userstore.AuditRecord) error { n++; return nil })
	require.NoError(t, err)
	require.Len(t, e.trail(t, ctx, e.tenants[1]), n)
	chain, err := r.VerifyChain(ctx, &replay.VerifyChainParams{All: true})
	require.NoError(t, err)
	require.False(t, chain.Diverged())
	proj, err := r.VerifyProjections(ctx, nil)
	require.NoError(t, err)
	require.False(t, proj.Drifted())
	s := e.snaps[len(e.snaps)-1]
	res, err := r.State(ctx, &replay.StateParams{Entity: s.entity, AtPosition: s.position})
	require.NoError(t, err)
	require.Equal(t, s.found, res.Found)
}
