package crashtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// TestCrashDurability crashes PostgreSQL under concurrent writers through pgstore — the whole cluster
// with `pg_ctl stop -m immediate`, or one backend of a writer's transaction with SIGKILL — at random
// moments, while the same Go pools, store and projections.Runner keep running, and then checks that
// every acknowledged mutation is there exactly once with everything it wrote, that in-flight mutations
// are all or nothing, that the store and the projector recovered, and that the audit trail and the
// outbox hold exactly one record per event.
func TestCrashDurability(t *testing.T) {
	size := durabilityConfig()
	s := seed(t)
	c := newCluster(t)
	t.Run("checks-detect-defects", func(t *testing.T) { checksDetectDefects(t, c) })
	variants := []string{"immediate-stop", "kill-backend"}
	if long() {
		variants = append(variants, "mixed")
	}
	run := 0
	for _, variant := range variants {
		for round := range size.Rounds {
			run++
			t.Run(fmt.Sprintf("%s/%d", variant, round+1), func(t *testing.T) {
				crashRun(t, c, size, variant, s+uint64(run)*1_000_003)
			})
		}
	}
}

// stats are the numbers of one crash-durability run.
type stats struct {
	Ops, Attempts, Acked              int
	Unknown, UnknownCommitted         int // attempts with ErrCommitOutcomeUnknown; of those, the ones that had committed
	Failed                            int // attempts with an error that promises nothing committed
	Faults                            int
	Events                            int
	Losses, Duplicates, Phantoms      int
	Half, Gaps                        int // consistency problems: a transaction applied in part; a stream with a gap
	Unresolved, Unexpected            int
	Resubmitted                       int
	AuditRecords, OutboxMessages      int
	AckedAfterLastFault, MidRunChecks int
}

// count counts the consistency problems by kind and returns them.
func (st *stats) count(problems []string) []string {
	for _, p := range problems {
		switch {
		case strings.HasPrefix(p, "HALF:"):
			st.Half++
		case strings.HasPrefix(p, "DUPLICATE:"):
			st.Duplicates++
		case strings.HasPrefix(p, "GAP:"):
			st.Gaps++
		}
	}
	return problems
}

func (st stats) String() string {
	return fmt.Sprintf("operations=%d attempts=%d acknowledged=%d in-flight(unknown outcome)=%d (committed %d) "+
		"failed-attempts=%d faults=%d events=%d losses=%d duplicates=%d phantoms=%d half=%d gaps=%d unresolved=%d "+
		"unexpected=%d resubmitted=%d audit=%d outbox=%d acked-after-last-fault=%d mid-run-checks=%d",
		st.Ops, st.Attempts, st.Acked, st.Unknown, st.UnknownCommitted, st.Failed, st.Faults, st.Events,
		st.Losses, st.Duplicates, st.Phantoms, st.Half, st.Gaps, st.Unresolved, st.Unexpected, st.Resubmitted,
		st.AuditRecords, st.OutboxMessages, st.AckedAfterLastFault, st.MidRunChecks)
}

func crashRun(t *testing.T, c *cluster, size durabilitySize, variant string, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := newRand(seed, 0)
	db := c.newDatabase(t, ctx, fmt.Sprintf("crash_%s_%d", strings.ReplaceAll(variant, "-", "_"), seed%1_000_000))

	appPool := c.storePool(t, ctx, roleApp, db, appApplication, int32(size.Writers+2))
	store, err := pgstore.New(ctx, appPool, nil)
	require.NoError(t, err)
	projPool := c.storePool(t, ctx, roleProjector, db, projectorApplication, 6)
	admin := c.adminPool(t, ctx, db)

	// The tenants, before any fault.
	tenants := make([]uuid.UUID, size.Tenants)
	for i := range tenants {
		tenants[i] = userstore.NewID()
		tctx := userstore.WithActor(userstore.WithTenant(ctx, tenants[i]), userstore.Actor{Type: userstore.ActorService, ID: "crashtest"})
		_, err := store.CreateTenant(tctx, &userstore.CreateTenantParams{Slug: "crash-" + tenants[i].String()[24:], Name: "Crash tenant"})
		require.NoError(t, err)
	}

	// The projector runs throughout, in this process, and is never restarted.
	runner := newRunner(t, projPool)
	runCtx, stopRunner := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(runCtx) }()
	defer func() {
		stopRunner()
		<-runDone
	}()

	start := time.Now()
	inj := newInjector(c, admin, start)
	var recovered atomic.Int64
	users := &userRegistry{users: map[uuid.UUID][]uuid.UUID{}}
	writers := make([]*writer, size.Writers)
	stop := make(chan struct{})
	stopWriters := sync.OnceFunc(func() { close(stop) })
	wctx, cancelWriters := context.WithTimeout(ctx, 5*time.Minute)
	var wg sync.WaitGroup
	defer func() { // also when the test fails half-way: no writer outlives it
		stopWriters()
		cancelWriters()
		wg.Wait()
	}()
	for i := range writers {
		writers[i] = &writer{id: i + 1, tenant: tenants[i%len(tenants)], store: store, users: users,
			rng: newRand(seed, uint64(i+1)), start: start, recovered: &recovered}
		wg.Go(func() { writers[i].run(wctx, stop) })
	}

	// The faults, at random moments; after each, a consistency check of a snapshot taken while the
	// writers go on.
	var st stats
	var problems []string
	for i := range size.Faults {
		gap := size.GapMin + time.Duration(rng.Int64N(int64(size.GapMax-size.GapMin)+1))
		require.NoError(t, sleep(ctx, gap))
		kind := faultImmediateStop
		switch variant {
		case "kill-backend":
			kind = faultKillBackend
		case "mixed":
			kind = faultKind(rng.IntN(3))
		}
		if err := inj.inject(ctx, rng, kind); err != nil {
			t.Fatalf("fault %d: %v", i+1, err)
		}
		recovered.Store(int64(time.Since(start)))
		problems = append(problems, st.count(consistency(t, ctx, admin, tenants))...)
		st.MidRunChecks++
	}
	require.NoError(t, sleep(ctx, size.Tail))
	stopWriters()
	wg.Wait()
	require.NoError(t, wctx.Err(), "the writers did not finish: the store did not recover")
	faults := inj.records()
	for _, f := range faults {
		t.Logf("fault: %s", f)
	}
	st.Faults = len(faults)

	var ops []*op
	for _, w := range writers {
		ops = append(ops, w.ops...)
	}
	lastFault := time.Duration(recovered.Load())
	for _, o := range ops {
		st.Ops++
		st.Attempts += len(o.Attempts)
		if o.Acked {
			st.Acked++
			if o.Attempts[len(o.Attempts)-1].At > lastFault {
				st.AckedAfterLastFault++
			}
		}
		for _, a := range o.Attempts {
			switch a.Outcome {
			case outUnknown:
				st.Unknown++
			case outFailed:
				st.Failed++
			case outUnexpected:
				st.Unexpected++
				problems = append(problems, fmt.Sprintf("op %s (%s): unexpected error: %s", o.Key, o.Kind, a.Err))
			}
		}
	}
	logErrorKinds(t, ops)

	// The final state: consistent, every op exactly once, acknowledgements kept.
	problems = append(problems, st.count(consistency(t, ctx, admin, tenants))...)
	problems = append(problems, checkOps(t, ctx, admin, ops, &st)...)
	requireNoProblems(t, "after the faults", problems, st)

	// Nothing is applied twice: resubmitting acknowledged ops with their keys returns their results and
	// appends nothing.
	problems = append(problems, resubmit(t, ctx, admin, store, ops, size.Resubmit, rng, &st)...)
	requireNoProblems(t, "resubmission", problems, st)

	// The projector caught up by itself (Run was never restarted): one audit record and one outbox
	// message per event.
	select {
	case err := <-runDone:
		t.Fatalf("the projector's Run returned during the faults: %v", err)
	default:
	}
	problems = append(problems, checkProjections(t, ctx, admin, projPool, runner, &st)...)
	requireNoProblems(t, "projections", problems, st)

	require.Positive(t, st.AckedAfterLastFault, "no mutation was acknowledged after the last fault")
	for _, w := range writers {
		require.Greater(t, w.lastAck, lastFault, "writer %d was never acknowledged after the last fault", w.id)
	}
	t.Logf("crash durability (%s): %s", variant, st)
}

// newRunner returns the projector: the audit and outbox projections on the projector role, polling
// often so that it notices the cluster's return quickly.
func newRunner(t *testing.T, pool *pgxpool.Pool) *projections.Runner {
	t.Helper()
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	relay, err := outbox.New(nil)
	require.NoError(t, err)
	r, err := projections.New(pool, es, []projections.Projection{audit.New(nil), relay}, &projections.Config{
		Workers: 2, PollIntervalMax: 200 * time.Millisecond, TxIdleTimeout: 10 * time.Second,
	})
	require.NoError(t, err)
	return r
}

// logErrorKinds logs how often each error text occurred (the store's errors carry no values).
func logErrorKinds(t *testing.T, ops []*op) {
	t.Helper()
	counts := map[string]int{}
	for _, o := range ops {
		for _, a := range o.Attempts {
			if a.Err != "" {
				counts[a.Outcome.String()+": "+a.Err]++
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	for i, k := range keys {
		if i == 12 {
			t.Logf("errors: … %d more kinds", len(keys)-i)
			break
		}
		t.Logf("errors: %5d × %s", counts[k], k)
	}
}

// requireNoProblems fails the test with the first problems found.
func requireNoProblems(t *testing.T, phase string, problems []string, st stats) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	shown := problems[:min(len(problems), 40)]
	t.Fatalf("%s: %d problems (%s):\n%s", phase, len(problems), st, strings.Join(shown, "\n"))
}
