package projections

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of a [Collector]. Every metric of a projection carries the labels "projection" (its
// name) and "version"; the per-partition ones also "partition" (0 to eventstore.Partitions−1).
const (
	// MetricBatches counts the batch transactions this process ran, by "outcome": committed, failed
	// (rolled back by an error; not counted when the Runner's context ended) or held (the partition's
	// lock was held by another transaction, nothing done). Batches that found nothing to do are not
	// counted. Counter.
	MetricBatches = "userstore_projector_batches_total"
	// MetricEvents counts the events this process's committed batches processed, by "result": applied,
	// parked (as a dead letter, or behind one of its tenant) or retried (a dead letter applied by an
	// automatic retry). rate() of it is the events/s of this process. Counter.
	MetricEvents = "userstore_projector_events_total"
	// MetricLagEvents is the number of committed events after a partition's checkpoint — including
	// those above the log's horizon, which no batch can read yet. Gauge.
	MetricLagEvents = "userstore_projector_lag_events"
	// MetricLagSeconds is the age of the oldest event after a partition's checkpoint (0 when caught
	// up). Gauge.
	MetricLagSeconds = "userstore_projector_lag_seconds"
	// MetricCheckpointProcessed is the number of events a partition's checkpoint has processed since
	// it was created, by every process: the database's count, so rate() of it is the throughput of the
	// whole fleet. Counter.
	MetricCheckpointProcessed = "userstore_projector_checkpoint_processed_total"
	// MetricCheckpointUpdated is when a partition's checkpoint last moved, in Unix seconds; absent for
	// a partition without a checkpoint. Gauge.
	MetricCheckpointUpdated = "userstore_projector_checkpoint_updated_timestamp_seconds"
	// MetricDeadLettersParked is the number of parked dead letters of a projection (not per
	// partition: a tenant's parked events all sit in its partition anyway). Gauge.
	MetricDeadLettersParked = "userstore_projector_dead_letters_parked"
	// MetricStatusUp is 1 when the scrape's status query (Runner.Status) succeeded, 0 when it failed;
	// the lag, checkpoint and dead-letter metrics are absent then. Gauge.
	MetricStatusUp = "userstore_projector_status_up"
	// MetricHorizonUp is 1 when the scrape's horizon query (eventstore.Store.Horizon) succeeded. Gauge.
	MetricHorizonUp = "userstore_projector_horizon_up"
	// MetricHorizonHolderAge is how long the transaction that holds the log's read horizon back has
	// been running, in seconds; 0 when none does (or the role cannot see it). Gauge.
	MetricHorizonHolderAge = "userstore_projector_horizon_holder_age_seconds"
	// MetricHorizonHolderXidAge is age(backend_xid) of that transaction: the transaction ids assigned
	// since it took its own; 0 when none holds the horizon. Gauge.
	MetricHorizonHolderXidAge = "userstore_projector_horizon_holder_xid_age"
	// MetricHorizonHolder is 1, labelled with the "pid" and "application_name" of the backend that
	// holds the horizon back; absent when none does. One series at a time: a new holder is a new
	// series and the old one goes stale. Gauge.
	MetricHorizonHolder = "userstore_projector_horizon_holder_info"
)

// CollectorTimeoutDefault is the default bound of a Collector's queries in one scrape.
const CollectorTimeoutDefault = 10 * time.Second

// CollectorConfig configures a [Collector]. A nil *CollectorConfig is valid: every zero field takes its
// default.
type CollectorConfig struct {
	// Timeout bounds the queries of one scrape (status and horizon), which Prometheus's Collect runs
	// without a context of its own. Default: CollectorTimeoutDefault (10s).
	Timeout time.Duration

	// StatusFunc returns the status that the lag, checkpoint and dead-letter metrics report. A program
	// that needs the status elsewhere too (a readiness check) may pass a cached one: Runner.Status
	// costs O(lag). Default: the Runner's Status.
	StatusFunc func(ctx context.Context) (*StatusResult, error)
}

// Collector is a prometheus.Collector of a Runner's metrics (see the Metric… constants): at every
// scrape it reads the Runner's status (lag per projection and partition in events and seconds, parked
// dead letters, checkpoints) and the log's horizon (the age and backend of the transaction that holds
// it back), and it reports the counters of the batches and events the Runner processed in this
// process. A failed query is logged with the Runner's logger and reported as 0 in MetricStatusUp or
// MetricHorizonUp; the scrape itself does not fail. The projections package serves no HTTP: register
// the Collector with a prometheus.Registerer and serve it from the program.
type Collector struct {
	r       *Runner
	timeout time.Duration
	status  func(ctx context.Context) (*StatusResult, error)

	batches, events                             *prometheus.Desc
	lagEvents, lagSeconds, processed, updatedAt *prometheus.Desc
	parked, statusUp                            *prometheus.Desc
	horizonUp, holderAge, holderXidAge, holder  *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the Collector of r's metrics; cfg may be nil. It does no I/O.
func NewCollector(r *Runner, cfg *CollectorConfig) (*Collector, error) {
	if r == nil {
		return nil, errors.New("projections: NewCollector: runner must not be nil")
	}
	if cfg == nil {
		cfg = &CollectorConfig{}
	}
	if cfg.Timeout < 0 {
		return nil, invalid("CollectorConfig.Timeout", "must not be negative, got %s", cfg.Timeout)
	}
	c := &Collector{r: r, timeout: cmp.Or(cfg.Timeout, CollectorTimeoutDefault), status: cfg.StatusFunc}
	if c.status == nil {
		c.status = r.Status
	}
	proj := []string{"projection", "version"}
	part := []string{"projection", "version", "partition"}
	c.batches = prometheus.NewDesc(MetricBatches,
		"Batch transactions this process ran, by outcome (committed, failed, held).", append(proj, "outcome"), nil)
	c.events = prometheus.NewDesc(MetricEvents,
		"Events this process's committed batches processed, by result (applied, parked, retried).", append(proj, "result"), nil)
	c.lagEvents = prometheus.NewDesc(MetricLagEvents,
		"Committed events after the partition's checkpoint (including those above the log's horizon).", part, nil)
	c.lagSeconds = prometheus.NewDesc(MetricLagSeconds,
		"Age of the oldest event after the partition's checkpoint, in seconds (0 when caught up).", part, nil)
	c.processed = prometheus.NewDesc(MetricCheckpointProcessed,
		"Events the partition's checkpoint has processed since it was created, by every process.", part, nil)
	c.updatedAt = prometheus.NewDesc(MetricCheckpointUpdated,
		"When the partition's checkpoint last moved, in Unix seconds.", part, nil)
	c.parked = prometheus.NewDesc(MetricDeadLettersParked,
		"Parked dead letters of the projection.", proj, nil)
	c.statusUp = prometheus.NewDesc(MetricStatusUp,
		"1 when the scrape's status query succeeded, else 0.", nil, nil)
	c.horizonUp = prometheus.NewDesc(MetricHorizonUp,
		"1 when the scrape's horizon query succeeded, else 0.", nil, nil)
	c.holderAge = prometheus.NewDesc(MetricHorizonHolderAge,
		"How long the transaction holding the log's read horizon back has run, in seconds (0: none).", nil, nil)
	c.holderXidAge = prometheus.NewDesc(MetricHorizonHolderXidAge,
		"Transaction ids assigned since the horizon holder took its own (0: none).", nil, nil)
	c.holder = prometheus.NewDesc(MetricHorizonHolder,
		"The backend whose transaction holds the log's read horizon back.", []string{"pid", "application_name"}, nil)
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.batches, c.events, c.lagEvents, c.lagSeconds, c.processed, c.updatedAt,
		c.parked, c.statusUp, c.horizonUp, c.holderAge, c.holderXidAge, c.holder} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the counters, then one status and one horizon query.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, rp := range c.r.projs {
		v := strconv.Itoa(rp.version)
		k := c.r.counters[rp.name]
		counter := func(d *prometheus.Desc, n *atomic.Uint64, label string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n.Load()), rp.name, v, label)
		}
		counter(c.batches, &k.committed, "committed")
		counter(c.batches, &k.failed, "failed")
		counter(c.batches, &k.held, "held")
		counter(c.events, &k.applied, "applied")
		counter(c.events, &k.parked, "parked")
		counter(c.events, &k.retried, "retried")
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collectStatus(ctx, ch)
	c.collectHorizon(ctx, ch)
}

func (c *Collector) collectStatus(ctx context.Context, ch chan<- prometheus.Metric) {
	st, err := c.status(ctx)
	if err != nil {
		c.r.log.WarnContext(ctx, "projections: metrics: status failed", slog.String("error", err.Error()))
		ch <- prometheus.MustNewConstMetric(c.statusUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.statusUp, prometheus.GaugeValue, 1)
	for _, ps := range st.Projections {
		v := strconv.Itoa(ps.Version)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(ps.Parked), ps.Name, v)
		for _, p := range ps.Partitions {
			part := strconv.Itoa(int(p.Partition))
			ch <- prometheus.MustNewConstMetric(c.lagEvents, prometheus.GaugeValue, float64(p.EventsBehind), ps.Name, v, part)
			ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, p.Behind.Seconds(), ps.Name, v, part)
			ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(p.Processed), ps.Name, v, part)
			if !p.UpdatedAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.updatedAt, prometheus.GaugeValue,
					float64(p.UpdatedAt.UnixMicro())/1e6, ps.Name, v, part)
			}
		}
	}
}

func (c *Collector) collectHorizon(ctx context.Context, ch chan<- prometheus.Metric) {
	h, err := c.r.store.Horizon(ctx)
	if err != nil {
		c.r.log.WarnContext(ctx, "projections: metrics: horizon failed", slog.String("error", err.Error()))
		ch <- prometheus.MustNewConstMetric(c.horizonUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.horizonUp, prometheus.GaugeValue, 1)
	var age, xidAge float64
	if h.Holder != nil {
		age, xidAge = h.Holder.XactAge.Seconds(), float64(h.Holder.XidAge)
		ch <- prometheus.MustNewConstMetric(c.holder, prometheus.GaugeValue, 1,
			strconv.Itoa(h.Holder.PID), h.Holder.ApplicationName)
	}
	ch <- prometheus.MustNewConstMetric(c.holderAge, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(c.holderXidAge, prometheus.GaugeValue, xidAge)
}

// projectionCounters counts one projection's batches and events in this process; runBatch updates it.
type projectionCounters struct {
	committed, failed, held  atomic.Uint64
	applied, parked, retried atomic.Uint64
}

// count records the outcome of one batch. A batch that failed because ctx ended (the Runner stopping)
// is not a failure; one that found nothing to do is not counted.
func (k *projectionCounters) count(ctx context.Context, res *batchResult, err error) {
	switch {
	case err != nil:
		if ctx.Err() == nil {
			k.failed.Add(1)
		}
	case res.held:
		k.held.Add(1)
	case res.committed:
		k.committed.Add(1)
		k.applied.Add(uint64(res.applied))
		k.parked.Add(uint64(res.parked))
		k.retried.Add(uint64(res.retried))
	}
}
