package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// scrape gathers reg (a pedantic registry: it checks the collector's metrics against its descriptions).
type scrape map[string]*dto.MetricFamily

func gather(t *testing.T, reg *prometheus.Registry) scrape {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	out := scrape{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// series returns the metrics of a family whose labels include want.
func (s scrape) series(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	f := s[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// sum adds up the matching series; max returns the largest.
func (s scrape) sum(name string, want map[string]string) float64 {
	var total float64
	for _, m := range s.series(name, want) {
		total += value(m)
	}
	return total
}

func (s scrape) max(name string, want map[string]string) float64 {
	var out float64
	for _, m := range s.series(name, want) {
		out = max(out, value(m))
	}
	return out
}

func newCollector(t *testing.T, r *projections.Runner) *prometheus.Registry {
	t.Helper()
	c, err := projections.NewCollector(r, nil)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return reg
}

var auditLabels = map[string]string{"projection": audit.Name, "version": strconv.Itoa(audit.Version)}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

// TestCollectorLagAndCounters: before a catch-up the collector reports every event as lag (events and
// seconds) and no batch; after it, no lag, the batches and events this process processed, and the
// checkpoints.
func TestCollectorLagAndCounters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	g.addTenants(t, ctx, 10)
	g.steps(t, ctx, 60)
	appended := float64(g.appended.Load())

	r := e.runner(t, "metrics-lag", []projections.Projection{audit.New(nil)},
		&projections.Config{BatchSize: 10, Logger: testLogger(t)})
	reg := newCollector(t, r)

	before := gather(t, reg)
	require.Equal(t, 1.0, before.sum(projections.MetricStatusUp, nil))
	require.Equal(t, 1.0, before.sum(projections.MetricHorizonUp, nil))
	require.Equal(t, appended, before.sum(projections.MetricLagEvents, auditLabels))
	require.Positive(t, before.max(projections.MetricLagSeconds, auditLabels))
	require.Len(t, before.series(projections.MetricLagEvents, auditLabels), eventstore.Partitions)
	require.Zero(t, before.sum(projections.MetricBatches, auditLabels))
	require.Zero(t, before.sum(projections.MetricEvents, auditLabels))
	require.Zero(t, before.sum(projections.MetricCheckpointProcessed, auditLabels))
	require.Empty(t, before.series(projections.MetricCheckpointUpdated, auditLabels))
	require.Zero(t, before.sum(projections.MetricDeadLettersParked, auditLabels))

	require.NoError(t, r.CatchUp(ctx))

	after := gather(t, reg)
	require.Zero(t, after.sum(projections.MetricLagEvents, auditLabels))
	require.Zero(t, after.max(projections.MetricLagSeconds, auditLabels))
	require.Equal(t, appended, after.sum(projections.MetricEvents, with(auditLabels, "result", "applied")))
	require.Zero(t, after.sum(projections.MetricEvents, with(auditLabels, "result", "parked")))
	require.Zero(t, after.sum(projections.MetricBatches, with(auditLabels, "outcome", "failed")))
	// At least one committed batch per partition with events, and BatchSize events at most per batch.
	parts := len(after.series(projections.MetricCheckpointUpdated, auditLabels))
	require.Positive(t, parts)
	require.GreaterOrEqual(t, after.sum(projections.MetricBatches, with(auditLabels, "outcome", "committed")),
		max(float64(parts), appended/10))
	require.Equal(t, appended, after.sum(projections.MetricCheckpointProcessed, auditLabels))
	require.Zero(t, after.sum(projections.MetricDeadLettersParked, auditLabels))
}

// TestCollectorDeadLetters: a parked event (and its tenant's later events behind it) shows in the
// parked dead-letter gauge and the parked events counter.
func TestCollectorDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 4)
	g.touchAll(t, ctx)
	bad := tenantEvents(t, ctx, e, tenants[0])
	require.Greater(t, len(bad), 1)

	p := &poison{ids: map[uuid.UUID]bool{bad[0].EventID: true}}
	r := e.runner(t, "metrics-dead-letters", withHook(p.hook), &projections.Config{Logger: testLogger(t)})
	reg := newCollector(t, r)
	require.NoError(t, r.CatchUp(ctx))

	s := gather(t, reg)
	parked := float64(len(bad))
	require.Equal(t, parked, s.sum(projections.MetricDeadLettersParked, auditLabels))
	require.Equal(t, parked, s.sum(projections.MetricEvents, with(auditLabels, "result", "parked")))
	require.Equal(t, float64(g.appended.Load())-parked, s.sum(projections.MetricEvents, with(auditLabels, "result", "applied")))
	// Parked events are processed: the checkpoints have passed them, nothing lags.
	require.Zero(t, s.sum(projections.MetricLagEvents, auditLabels))

	p.fix(bad[0].EventID)
	res, err := r.Retry(ctx, &projections.RetryParams{Projection: audit.Name, TenantID: tenants[0], By: "metrics-test"})
	require.NoError(t, err)
	require.Equal(t, len(bad), res.Retried)
	require.Zero(t, gather(t, reg).sum(projections.MetricDeadLettersParked, auditLabels))
}

// failingFlush wraps the audit projection; its batches' Flush fails while fail is set.
type failingFlush struct {
	*audit.Projection
	fail atomic.Bool
}

var errFlush = errors.New("test: flush failed")

func (f *failingFlush) StartBatch(ctx context.Context, tx pgx.Tx, info *projections.BatchInfo) (projections.BatchApplier, error) {
	inner, err := f.Projection.StartBatch(ctx, tx, info)
	if err != nil {
		return nil, err
	}
	return &failingBatch{BatchApplier: inner, f: f}, nil
}

type failingBatch struct {
	projections.BatchApplier
	f *failingFlush
}

func (b *failingBatch) Flush(ctx context.Context, tx pgx.Tx) error {
	if b.f.fail.Load() {
		return errFlush
	}
	return b.BatchApplier.Flush(ctx, tx)
}

// TestCollectorFailedBatches: a batch that fails (and is rolled back) counts as failed, and its events
// count only once a batch commits them.
func TestCollectorFailedBatches(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	g.addTenants(t, ctx, 3)

	proj := &failingFlush{Projection: audit.New(nil)}
	proj.fail.Store(true)
	r := e.runner(t, "metrics-failed", []projections.Projection{proj}, &projections.Config{Logger: testLogger(t)})
	reg := newCollector(t, r)

	require.ErrorContains(t, r.CatchUp(ctx), errFlush.Error())
	s := gather(t, reg)
	require.GreaterOrEqual(t, s.sum(projections.MetricBatches, with(auditLabels, "outcome", "failed")), 1.0)
	require.Zero(t, s.sum(projections.MetricBatches, with(auditLabels, "outcome", "committed")))
	require.Zero(t, s.sum(projections.MetricEvents, auditLabels))
	require.Equal(t, float64(g.appended.Load()), s.sum(projections.MetricLagEvents, auditLabels))

	proj.fail.Store(false)
	require.NoError(t, r.CatchUp(ctx))
	s = gather(t, reg)
	require.Positive(t, s.sum(projections.MetricBatches, with(auditLabels, "outcome", "committed")))
	require.Equal(t, float64(g.appended.Load()), s.sum(projections.MetricEvents, with(auditLabels, "result", "applied")))
}

// TestCollectorHorizon: an open transaction that holds a transaction id holds the log's horizon back;
// the collector names its backend (pid, application_name) and reports its age, and drops it once the
// transaction ends.
func TestCollectorHorizon(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	r := e.runner(t, "metrics-horizon", []projections.Projection{audit.New(nil)}, &projections.Config{Logger: testLogger(t)})
	reg := newCollector(t, r)

	name := "metrics-holder-" + uuid.NewString()[:8]
	cfg := e.db.PoolConfig(t, pgtest.App)
	cfg.ConnConfig.RuntimeParams["application_name"] = name
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	holder := map[string]string{"application_name": name, "pid": strconv.Itoa(int(conn.PgConn().PID()))}

	// Older transactions of other tests, if any, hold the horizon first: wait for ours to be named.
	var s scrape
	waitFor(t, "the collector to name the horizon holder", func() bool {
		s = gather(t, reg)
		return len(s.series(projections.MetricHorizonHolder, holder)) == 1
	})
	require.Equal(t, 1.0, s.sum(projections.MetricHorizonUp, nil))
	require.Len(t, s.series(projections.MetricHorizonHolder, nil), 1)
	require.GreaterOrEqual(t, s.sum(projections.MetricHorizonHolderAge, nil), 0.0)

	require.NoError(t, tx.Rollback(ctx))
	waitFor(t, "the holder to go", func() bool {
		return len(gather(t, reg).series(projections.MetricHorizonHolder, holder)) == 0
	})
}

// TestCollectorStatusDown: a failing status query is reported as status_up 0, without lag series, and
// the scrape still succeeds.
func TestCollectorStatusDown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, "metrics-down", []projections.Projection{audit.New(nil)}, &projections.Config{Logger: testLogger(t)})
	c, err := projections.NewCollector(r, &projections.CollectorConfig{
		StatusFunc: func(context.Context) (*projections.StatusResult, error) { return nil, projections.ErrUnavailable },
	})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	s := gather(t, reg)
	require.Zero(t, s.sum(projections.MetricStatusUp, nil))
	require.Empty(t, s.series(projections.MetricLagEvents, nil))
	require.Len(t, s.series(projections.MetricBatches, auditLabels), 3)

	_, err = projections.NewCollector(nil, nil)
	require.Error(t, err)
	_, err = projections.NewCollector(r, &projections.CollectorConfig{Timeout: -1})
	require.ErrorIs(t, err, projections.ErrValidation)
}

// A Runner's metrics, registered with a Prometheus registry (a program serves it with promhttp).
func ExampleNewCollector() {
	ctx := context.Background()
	pool := pgtest.ExamplePool(pgtest.Projector)
	store, err := eventstore.New(pool, nil)
	if err != nil {
		panic(err)
	}
	runner, err := projections.New(pool, store, []projections.Projection{audit.New(nil)}, nil)
	if err != nil {
		panic(err)
	}
	collector, err := projections.NewCollector(runner, nil)
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector)

	if err := runner.CatchUp(ctx); err != nil {
		panic(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		switch f.GetName() {
		case projections.MetricStatusUp:
			fmt.Println(f.GetName(), f.GetMetric()[0].GetGauge().GetValue())
		case projections.MetricLagEvents:
			var lag float64
			for _, m := range f.GetMetric() {
				lag += m.GetGauge().GetValue()
			}
			fmt.Println(f.GetName(), len(f.GetMetric()), "partitions,", lag, "events behind")
		}
	}
	// Output:
	// userstore_projector_lag_events 64 partitions, 0 events behind
	// userstore_projector_status_up 1
}
