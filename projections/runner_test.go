package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// TestCatchUpAndStatus: Status reports the lag (events and age of the oldest unprocessed event) per
// partition; two runners catching up at once (one waiting for the partitions the other holds) leave
// every event applied exactly once and no lag.
func TestCatchUpAndStatus(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 20)
	g.steps(t, ctx, 150)

	cfg := &projections.Config{BatchSize: 7, Workers: 3, Logger: testLogger(t)}
	r1 := e.runner(t, "catch-up-1", []projections.Projection{audit.New(nil)}, cfg)
	r2 := e.runner(t, "catch-up-2", []projections.Projection{audit.New(nil)}, cfg)

	before, err := r1.Status(ctx)
	require.NoError(t, err)
	require.Len(t, before.Projections, 1)
	ps := before.Projections[0]
	require.Equal(t, audit.Name, ps.Name)
	require.Equal(t, audit.Version, ps.Version)
	require.Equal(t, g.appended.Load(), ps.EventsBehind)
	require.Positive(t, ps.Behind)
	require.Len(t, ps.Partitions, eventstore.Partitions)
	for _, p := range ps.Partitions {
		require.Zero(t, p.Checkpoint)
		require.True(t, p.UpdatedAt.IsZero())
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*projections.Runner{r1, r2} {
		wg.Go(func() { errs[i] = r.CatchUp(ctx) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])

	after, err := r2.Status(ctx)
	require.NoError(t, err)
	ps = after.Projections[0]
	require.Zero(t, ps.EventsBehind)
	require.Zero(t, ps.Behind)
	partitions := map[int16]bool{}
	for _, tenant := range tenants {
		partitions[eventstore.PartitionOf(tenant)] = true
	}
	for _, p := range ps.Partitions {
		require.Equal(t, partitions[p.Partition], p.Processed > 0, "partition %d", p.Partition)
		require.Equal(t, partitions[p.Partition], !p.UpdatedAt.IsZero(), "partition %d", p.Partition)
	}
	requireExactlyOnce(t, ctx, e, r1, tenants)

	// More events: CatchUp picks up from the checkpoints.
	g.steps(t, ctx, 30)
	require.NoError(t, r1.CatchUp(ctx))
	requireExactlyOnce(t, ctx, e, r1, tenants)
}

// TestRunFollowsAndStops: Run projects what is appended while it runs, is woken by Notify, refuses a
// second concurrent Run, and returns nil once its context ends.
func TestRunFollowsAndStops(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 5)
	r := e.runner(t, "run-follows", []projections.Projection{audit.New(nil)},
		&projections.Config{PollIntervalMin: time.Hour, PollIntervalMax: time.Hour, Logger: testLogger(t)})
	stop := start(t, ctx, r)

	// With a poll interval of an hour, only Notify gets the events projected in time. (It is called
	// again while waiting: events are readable only once the horizon has passed them, and other tests'
	// transactions hold it back.)
	notifyCaughtUp := func() {
		waitFor(t, "the projection to catch up", func() bool {
			r.Notify()
			st, err := r.Status(ctx)
			require.NoError(t, err)
			return st.Projections[0].EventsBehind == 0
		})
	}
	notifyCaughtUp()
	// Run is running now (nothing else projects here): a second Run is refused.
	require.ErrorIs(t, r.Run(ctx), projections.ErrRunning)
	g.steps(t, ctx, 20)
	notifyCaughtUp()
	stop()
	requireExactlyOnce(t, ctx, e, r, tenants)
}

// TestExactlyOnceKilledByCancel: a projector killed (its context cancelled) at random points — in the
// middle of a batch's applies, or at a random time — and restarted, twenty times while events keep
// coming: every event is applied exactly once, every tenant's sequence is gapless and its chain valid.
func TestExactlyOnceKilledByCancel(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	rng := rand.New(rand.NewPCG(seed(t), 1))
	g := newGen(e.app, rng.Uint64())
	g.addTenants(t, ctx, 16)
	g.steps(t, ctx, 100)
	stopWriter := g.writer(t, ctx, 2500)
	pool := e.projectorPool(t, "kill-cancel")

	const rounds = 20
	midBatch := 0
	for round := range rounds {
		runCtx, kill := context.WithCancel(ctx)
		var (
			applied atomic.Int64
			killed  atomic.Bool
		)
		killAt := int64(1 + rng.IntN(150))
		ps := withHook(func(_ context.Context, _ pgx.Tx, _ *eventstore.RecordedEvent) error {
			if applied.Add(1) == killAt {
				killed.Store(true)
				kill() // the rest of this Apply and the batch run into the cancelled context
			}
			return nil
		})
		// Odd rounds die at a random time instead (possibly while committing, or between batches);
		// even rounds die mid-batch, or after a while if fewer events come.
		after := 500 * time.Millisecond
		if round%2 == 1 {
			after = time.Duration(rng.IntN(40_000)) * time.Microsecond
		}
		timer := time.AfterFunc(after, kill)
		cfg := &projections.Config{BatchSize: 5 + rng.IntN(60), Workers: 1 + rng.IntN(4), PollIntervalMax: 50 * time.Millisecond}
		r := newRunner(t, pool, ps, cfg)
		require.NoError(t, r.Run(runCtx))
		timer.Stop()
		kill()
		if killed.Load() {
			midBatch++
		}
	}
	stopWriter()
	t.Logf("%d of %d rounds were killed in the middle of a batch", midBatch, rounds)
	require.Positive(t, midBatch)

	final := newRunner(t, pool, []projections.Projection{audit.New(nil)}, nil)
	require.NoError(t, final.CatchUp(ctx))
	requireExactlyOnce(t, ctx, e, final, g.tenantIDs())
}

// TestExactlyOnceKilledByTerminate: a running projector's connections are terminated with
// pg_terminate_backend — its own backend in the middle of a batch's applies, and all of its backends at
// random times — while events keep coming. The runner survives (it logs, and retries on new
// connections of its pool), catches up on its own, and every event is applied exactly once.
func TestExactlyOnceKilledByTerminate(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	rng := rand.New(rand.NewPCG(seed(t), 2))
	g := newGen(e.app, rng.Uint64())
	g.addTenants(t, ctx, 16)
	g.steps(t, ctx, 150) // about 380 events before the runner starts
	stopWriter := g.writer(t, ctx, 2500)

	appName := "kill-terminate-" + uuid.NewString()[:8]
	pool := e.projectorPool(t, appName)

	// Kill points: the n-th Apply calls terminate their own backend. All of them lie within the backlog
	// the runner starts with, so every one is reached.
	killAt := map[int64]bool{}
	for len(killAt) < 12 {
		killAt[int64(1+rng.IntN(350))] = true
	}
	var applied, selfKills atomic.Int64
	ps := withHook(func(ctx context.Context, tx pgx.Tx, _ *eventstore.RecordedEvent) error {
		if !killAt[applied.Add(1)] {
			return nil
		}
		var ok bool
		// Wait (up to 5 s) until the backend is gone: the rest of the batch runs into a dead connection.
		err := e.admin.QueryRow(context.WithoutCancel(ctx), `SELECT pg_terminate_backend($1, 5000)`, tx.Conn().PgConn().PID()).Scan(&ok)
		if err == nil && ok {
			selfKills.Add(1)
		}
		return nil
	})
	r := newRunner(t, pool, ps, &projections.Config{BatchSize: 20, Workers: 3, PollIntervalMax: 50 * time.Millisecond, Logger: testLogger(t)})
	stopRun := start(t, ctx, r)

	// Kill every backend of the runner at random times.
	outside := 0
	for range 10 {
		timer := time.NewTimer(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		<-timer.C
		var n int
		require.NoError(t, e.admin.QueryRow(ctx, `
			SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
			 WHERE application_name = $1 AND datname = current_database()`, appName).Scan(&n))
		outside += n
	}
	stopWriter()
	waitCaughtUp(t, ctx, r) // Run, not a new runner, finishes the work
	stopRun()
	t.Logf("terminated %d backends mid-batch and %d from outside", selfKills.Load(), outside)
	require.Positive(t, selfKills.Load())
	// Check on a pool of its own: the runner's pool may still hold connections terminated while idle.
	check := e.runner(t, "kill-terminate-check", []projections.Projection{audit.New(nil)}, nil)
	requireExactlyOnce(t, ctx, e, check, g.tenantIDs())
}

// partitionCounter counts, per partition, the events a runner's projection applied.
type partitionCounter struct {
	mu     sync.Mutex
	byPart map[int16]int64
}

func (c *partitionCounter) hook(_ context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byPart[ev.Partition]++
	return nil
}

func (c *partitionCounter) snapshot() map[int16]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int16]int64, len(c.byPart))
	for p, n := range c.byPart {
		out[p] = n
	}
	return out
}

// TestThreeRunnersShareAndTakeOver: three runners on one database share the 64 partitions without a
// leader; one of them is killed in the middle of the run (its connections terminated, its context
// cancelled), and the other two finish its partitions. Every event is applied exactly once.
func TestThreeRunnersShareAndTakeOver(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 96)
	g.steps(t, ctx, 400)
	partitions := map[int16]bool{}
	for _, tenant := range tenants {
		partitions[eventstore.PartitionOf(tenant)] = true
	}
	require.Greater(t, len(partitions), 40, "tenants spread over the partitions")

	const n = 3
	var (
		counters [n]*partitionCounter
		runners  [n]*projections.Runner
		stops    [n]func()
		names    [n]string
	)
	cfg := &projections.Config{BatchSize: 5, Workers: 2, PollIntervalMax: 100 * time.Millisecond, Logger: testLogger(t)}
	for i := range n {
		counters[i] = &partitionCounter{byPart: map[int16]int64{}}
		names[i] = fmt.Sprintf("three-runners-%d-%s", i, uuid.NewString()[:8])
		runners[i] = e.runner(t, names[i], withHook(counters[i].hook), cfg)
	}
	for i := range n {
		stops[i] = start(t, ctx, runners[i])
	}
	waitFor(t, "every runner to apply events", func() bool {
		for i := range n {
			if len(counters[i].snapshot()) == 0 {
				return false
			}
		}
		return true
	})

	// Kill runner 0 mid-run: its transactions abort on the server, its process is gone.
	const victim = 0
	var killed int
	require.NoError(t, e.admin.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
		 WHERE application_name = $1 AND datname = current_database()`, names[victim]).Scan(&killed))
	stops[victim]()
	victimParts := counters[victim].snapshot()
	atKill := [n]map[int16]int64{}
	for i := range n {
		atKill[i] = counters[i].snapshot()
	}
	st, err := runners[1].Status(ctx)
	require.NoError(t, err)
	t.Logf("killed runner %d (%d backends) in partitions %d; %d events were behind", victim, killed, len(victimParts),
		st.Projections[0].EventsBehind)

	// New events for every tenant: every partition the victim worked on has work again.
	g.touchAll(t, ctx)
	waitCaughtUp(t, ctx, runners[1])

	for p := range victimParts {
		var taken int64
		for i := range n {
			if i != victim {
				taken += counters[i].snapshot()[p] - atKill[i][p]
			}
		}
		require.Positive(t, taken, "partition %d of the killed runner was not taken over", p)
	}
	for i := range n {
		if i != victim {
			stops[i]()
			require.NotEmpty(t, counters[i].snapshot(), "runner %d did no work", i)
		}
	}
	requireExactlyOnce(t, ctx, e, runners[1], tenants)
}

// TestNewValidates: New refuses invalid configurations and projections, naming what is wrong.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	pool := e.projectorPool(t, "validate")
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	ok := []projections.Projection{audit.New(nil)}

	for field, cfg := range map[string]*projections.Config{
		"Config.BatchSize":       {BatchSize: eventstore.ReadLimitMax + 1},
		"Config.Workers":         {Workers: -1},
		"Config.PollIntervalMin": {PollIntervalMin: 2 * time.Second},
		"Config.PollIntervalMax": {PollIntervalMax: -1},
		"Config.RetryBackoffMin": {RetryBackoffMin: time.Hour},
		"Config.RetryAttempts":   {RetryAttempts: -1},
		"Config.TxIdleTimeout":   {TxIdleTimeout: time.Microsecond},
	} {
		_, err := projections.New(pool, st, ok, cfg)
		require.ErrorContains(t, err, field)
	}
	_, err = projections.New(pool, st, nil, nil)
	require.Error(t, err)
	_, err = projections.New(pool, st, []projections.Projection{audit.New(nil), audit.New(nil)}, nil)
	require.ErrorContains(t, err, "twice")
	_, err = projections.New(pool, st, []projections.Projection{named{"Bad Name", 1}}, nil)
	require.ErrorContains(t, err, "name")
	_, err = projections.New(pool, st, []projections.Projection{named{"good", 0}}, nil)
	require.ErrorContains(t, err, "version")
	r, err := projections.New(pool, st, ok, nil)
	require.NoError(t, err)
	require.NotNil(t, r)

	// LockKey is stable: it is part of how processes agree on a partition.
	require.Equal(t, projections.LockKey("audit", 1), projections.LockKey("audit", 1))
	require.NotEqual(t, projections.LockKey("audit", 1), projections.LockKey("audit", 2))
}

type named struct {
	name    string
	version int
}

func (n named) Name() string { return n.name }
func (n named) Version() int { return n.version }
func (named) Apply(context.Context, pgx.Tx, *eventstore.RecordedEvent) error {
	return nil
}

// TestHungProjectorLosesItsPartition: a projector that hangs in the middle of a batch (its Apply blocks)
// loses its transaction, and with it the partition's lock, after Config.TxIdleTimeout; another runner
// then takes the partition over and finishes it, long before the hung one wakes.
func TestHungProjectorLosesItsPartition(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 8)
	g.steps(t, ctx, 40)

	release := make(chan struct{})
	var hung atomic.Bool
	hang := withHook(func(ctx context.Context, _ pgx.Tx, _ *eventstore.RecordedEvent) error {
		if hung.CompareAndSwap(false, true) {
			select { // hangs until the end of the test
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	a := e.runner(t, "hung", hang, &projections.Config{Workers: 1, TxIdleTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
	stopA := start(t, ctx, a)
	waitFor(t, "the first runner to hang in a batch", hung.Load)

	b := e.runner(t, "healthy", []projections.Projection{audit.New(nil)}, &projections.Config{PollIntervalMax: 50 * time.Millisecond, Logger: testLogger(t)})
	stopB := start(t, ctx, b)
	waitCaughtUp(t, ctx, b)
	close(release)
	stopA()
	stopB()
	requireExactlyOnce(t, ctx, e, b, tenants)
}
