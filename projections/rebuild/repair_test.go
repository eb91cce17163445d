package rebuild_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// TestRepairRerunsWaitingWriters: a mutation that took its snapshot before a repair and waited for the
// read tables' lock must not act on that old snapshot afterwards. Here a binding's live row is missing
// (drift); the repair re-inserts it while an Unbind of that binding waits for the lock. Had the Unbind
// gone on with its old snapshot, its DELETE would not see the re-inserted row and leave it behind —
// drift again, with the unbinding acknowledged. The repair rewrites the tenant rows, so the waiting
// Unbind fails its tenant guard with a serialization failure and is re-run on a new snapshot.
func TestRepairRerunsWaitingWriters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	w := newWriter(t, ctx, e.store, e.store)
	b, err := e.store.Bind(w.ctx, &userstore.BindParams{ApplicationID: w.app, UserID: w.owner, Roles: []string{"r"}})
	require.NoError(t, err)
	_, err = e.admin.Exec(ctx, `DELETE FROM userstore.bindings WHERE tenant_id = $1 AND id = $2`, w.tenant, b.ID)
	require.NoError(t, err)

	unbound := make(chan error, 1)
	started := false
	progress := func(p rebuild.Progress) {
		if p.Phase != rebuild.PhaseVerify || started {
			return
		}
		// The swap holds the lock now: start the Unbind and return once it waits for the lock.
		started = true
		go func() { unbound <- e.store.Unbind(w.ctx, &userstore.UnbindParams{ID: b.ID}) }()
		require.Eventually(t, func() bool {
			var waiting int
			_ = e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND usename = 'userstore_app' AND wait_event_type = 'Lock'`).Scan(&waiting)
			return waiting > 0
		}, time.Minute, time.Millisecond)
	}
	res, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{Force: true, Progress: progress})
	require.NoError(t, err)
	require.True(t, res.Repaired)
	select {
	case err := <-unbound:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the unbind did not return")
	}
	_, err = e.store.GetBinding(w.ctx, b.ID)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	// No drift left behind.
	_, err = rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), nil)
	require.NoError(t, err)
}
