package pgstore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

var (
	sharedMu    sync.Mutex
	sharedStore *pgstore.Store
)

// shared returns the package's store on the package database, connected as userstore_app.
func shared(t *testing.T) *pgstore.Store {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedStore == nil {
		s, err := pgstore.New(t.Context(), pgtest.AppPool(t), nil)
		require.NoError(t, err)
		sharedStore = s
	}
	return sharedStore
}

// newStore returns a store on pool with cfg.
func newStore(t *testing.T, pool *pgxpool.Pool, cfg *pgstore.Config) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(t.Context(), pool, cfg)
	require.NoError(t, err)
	return s
}

// projectedStore is a store (as the app role) with the audit projection running beside it as the
// projector role on the same database, as cmd/projector runs it in production: a projections.Runner's
// Run, from creation to the end of the test. Its Sync waits for the outbox (pgstore.Store.Sync) and then
// until the audit projection has processed every event committed before the call: after it, the audit
// records and outbox events of every mutation that returned before the call are readable, as
// storetest.Syncer requires.
//
// Why not Runner.CatchUp in every Sync: a catch-up runs a batch transaction on each of the 64 partitions,
// and the suite syncs about 500 times; measured, that made the conformance suite 3 to 8 times slower
// (40s against 12s on an idle machine). The running Runner probes the log in one statement and works
// only on partitions with new events, and Sync asks for the checkpoints in one statement (Status).
type projectedStore struct {
	*pgstore.Store
	runner    *projections.Runner
	projector *pgxpool.Pool
}

// newProjectedStore returns a projectedStore on db; cfg configures the store.
func newProjectedStore(t *testing.T, db *pgtest.Database, cfg *pgstore.Config) *projectedStore {
	t.Helper()
	s, err := pgstore.New(t.Context(), db.Pool(t, pgtest.App), cfg)
	require.NoError(t, err)
	return withProjector(t, db, s)
}

// withProjector returns s, a store on db, with the audit projection running on db until the test ends.
func withProjector(t *testing.T, db *pgtest.Database, s *pgstore.Store) *projectedStore {
	t.Helper()
	proj := db.Pool(t, pgtest.Projector)
	events, err := eventstore.New(proj, nil)
	require.NoError(t, err)
	// PollIntervalMax bounds the wait for a wake-up that comes while a partition is in flight.
	r, err := projections.New(proj, events, []projections.Projection{audit.New(nil)},
		&projections.Config{PollIntervalMax: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &projectedStore{Store: s, runner: r, projector: proj}
}

// Sync waits until the outbox and the audit trail show every mutation that returned before the call.
//
// Target is the first transaction id not yet assigned when Sync is called: every mutation that returned
// before has a smaller one. Once pgstore's Sync has returned, every transaction below the target has
// ended. A partition of the log has then been processed up to the target when its checkpoint is at or
// past the target (the runner processes a partition in log order, (transaction id, position), and only
// below the horizon, so nothing below the checkpoint is left), or when no committed event follows its
// checkpoint at all. (A partition whose only events after its checkpoint are newer than the target is
// waited for too: the runner processes them at once, unless a transaction still open holds the log's
// horizon below them.)
func (s *projectedStore) Sync(ctx context.Context) error {
	var xmax string
	if err := s.projector.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`).Scan(&xmax); err != nil {
		return err
	}
	target, err := strconv.ParseUint(xmax, 10, 64)
	if err != nil {
		return err
	}
	if err := s.Store.Sync(ctx); err != nil {
		return err
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		s.runner.Notify()
		st, err := s.runner.Status(ctx)
		if err != nil {
			return err
		}
		behind := false
		for _, p := range st.Projections[0].Partitions {
			behind = behind || (p.EventsBehind > 0 && p.Checkpoint.TransactionID < target)
		}
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// tenantCtx creates a tenant on s and returns a context with the tenant and an actor.
func tenantCtx(t *testing.T, s userstore.Store) (context.Context, *userstore.Tenant) {
	t.Helper()
	id := userstore.NewID()
	ctx := userstore.WithActor(userstore.WithTenant(t.Context(), id), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-test"})
	tn, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + id.String()[24:], Name: "Tenant"})
	require.NoError(t, err)
	return ctx, tn
}

// bounded returns a context that ends after d or with the test.
func bounded(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
