package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/eventstore"
)

// maxBatchesPerTurn bounds how many batches a worker runs on one partition before it lets the scheduler
// hand out other partitions; a partition with more waiting goes back to the queue at once.
const maxBatchesPerTurn = 8

// Runner runs projections over the event log: it keeps every projection's checkpoints moving on every
// partition, in short batch transactions. Several Runners — in one process or in many — share the work
// on one database without a leader, leases or session state: a batch takes its (projection, partition)
// with pg_try_advisory_xact_lock, and a partition whose lock another transaction holds is left to that
// one. A Runner is safe for concurrent use.
type Runner struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	cfg     *Config
	log     *slog.Logger
	projs   []*registered
	byName  map[string]*registered
	wake    notifier
	running atomic.Bool
	// counters counts each projection's batches and events, by name, for the metrics (metrics.go). The
	// map is filled by New and only read afterwards.
	counters map[string]*projectionCounters
	// idleTimeout is Config.TxIdleTimeout in milliseconds, as set_config takes it.
	idleTimeout string
}

// New returns a Runner of projections on pool, which must connect as the projector role
// (userstore_projector: it reads every tenant's events and writes the projections' tables); store must
// be an event store on the same database and role. A nil cfg is valid (all defaults). New does no I/O.
func New(pool *pgxpool.Pool, store *eventstore.Store, projections []Projection, cfg *Config) (*Runner, error) {
	switch {
	case pool == nil:
		return nil, errors.New("projections: pool must not be nil")
	case store == nil:
		return nil, errors.New("projections: store must not be nil")
	case len(projections) == 0:
		return nil, errors.New("projections: at least one projection is required")
	}
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
	}
	cfg = cfg.WithDefaults()
	r := &Runner{pool: pool, store: store, cfg: cfg, log: cfg.Logger, byName: map[string]*registered{},
		counters: map[string]*projectionCounters{}, idleTimeout: strconv.FormatInt(cfg.TxIdleTimeout.Milliseconds(), 10)}
	for _, p := range projections {
		rp, err := register(p)
		if err != nil {
			return nil, err
		}
		if _, dup := r.byName[rp.name]; dup {
			return nil, fmt.Errorf("projections: projection %s is given twice", rp.name)
		}
		r.projs = append(r.projs, rp)
		r.byName[rp.name] = rp
		r.counters[rp.name] = &projectionCounters{}
	}
	return r, nil
}

// Notify wakes a running Run so that it polls the log at once: call it after committing events in the
// same process (or from a NOTIFY listener) to cut the projection's latency below the poll interval.
func (r *Runner) Notify() { r.wake.notify() }

// slot is one (projection, partition) as Run schedules it. Only Run's goroutine touches its fields.
type slot struct {
	rp   *registered
	part int16
	// inFlight: queued for or being processed by a worker.
	inFlight bool
	// notBefore: the partition's lock was held elsewhere, or its last batch failed: leave it until then.
	notBefore time.Time
	failures  int
}

type outcome int

const (
	caughtUp outcome = iota // nothing more below the horizon
	more                    // the turn ended with more to do
	held                    // another transaction holds the partition
	failed                  // a batch failed; it is tried again after a backoff
)

type turnResult struct {
	s       *slot
	outcome outcome
}

// Run processes the log until ctx ends, then returns nil once every goroutine it started has ended
// (a batch in progress is rolled back). It polls with adaptive backoff: one probe statement per
// projection finds the partitions with work; Config.Workers goroutines process them, each partition by
// at most one of them at a time and for a bounded number of batches per turn. A probe that found new
// work is repeated after Config.PollIntervalMin, one that found none doubles the wait up to
// Config.PollIntervalMax; Notify wakes it at once. A partition another process holds is tried again
// after PollIntervalMax — so the partitions of a process that died (its transactions abort with its
// connections) are taken over within about one PollIntervalMax (at most two). A failed batch (a lost
// connection, a projection's Flush error) is logged and its partition backs off; Run never returns
// because of one.
//
// Run returns ErrRunning if the Runner is already running.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)

	slots := make([][]*slot, len(r.projs))
	total := 0
	for i, rp := range r.projs {
		slots[i] = make([]*slot, eventstore.Partitions)
		for p := range eventstore.Partitions {
			slots[i][p] = &slot{rp: rp, part: int16(p)}
			total++
		}
	}
	// Each slot is at most once in the queue or in flight, so neither channel ever blocks a sender.
	queue := make(chan *slot, total)
	done := make(chan turnResult, total)

	var wg sync.WaitGroup
	defer wg.Wait()
	for range r.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s := <-queue:
					done <- turnResult{s: s, outcome: r.turn(ctx, s)}
				}
			}
		})
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	delay := r.cfg.PollIntervalMin
	for {
		// Take the wake-up channel before probing, so a Notify during the probe is not missed.
		woken := r.wake.wait()
		dispatched := 0
		now := time.Now()
		for i, rp := range r.projs {
			parts, err := r.probe(ctx, rp)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.WarnContext(ctx, "projections: poll failed", slog.String("projection", rp.name),
					slog.Int("version", rp.version), slog.String("error", err.Error()))
				continue
			}
			// Different processes try the partitions in different orders, so they collide less.
			rand.Shuffle(len(parts), func(a, b int) { parts[a], parts[b] = parts[b], parts[a] })
			for _, p := range parts {
				s := slots[i][p]
				if s.inFlight || now.Before(s.notBefore) {
					continue
				}
				s.inFlight = true
				queue <- s
				dispatched++
			}
		}
		if dispatched > 0 {
			delay = r.cfg.PollIntervalMin
		} else {
			delay = min(2*delay, r.cfg.PollIntervalMax)
		}
		timer.Reset(delay)

	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-woken:
				delay = r.cfg.PollIntervalMin
				break wait
			case <-timer.C:
				break wait
			case tr := <-done:
				s := tr.s
				s.inFlight = false
				switch tr.outcome {
				case caughtUp:
					s.failures = 0
				case more:
					s.failures = 0
					s.inFlight = true
					queue <- s
				case held:
					s.notBefore = time.Now().Add(jitter(r.cfg.PollIntervalMax))
				case failed:
					s.failures++
					backoff := r.cfg.PollIntervalMin << min(s.failures, 20)
					s.notBefore = time.Now().Add(jitter(min(backoff, r.cfg.PollIntervalMax)))
				}
			}
		}
	}
}

// jitter returns d shortened by up to a quarter, at random, so that processes do not poll in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - rand.N(d/4+1)
}

// turn runs batches on one partition until it is caught up, held elsewhere, a batch fails, or
// maxBatchesPerTurn batches ran.
func (r *Runner) turn(ctx context.Context, s *slot) outcome {
	for range maxBatchesPerTurn {
		res, err := r.runBatch(ctx, s.rp, s.part)
		if err != nil {
			level := slog.LevelWarn
			if ctx.Err() != nil {
				level = slog.LevelDebug
			}
			r.log.Log(ctx, level, "projections: batch failed", slog.String("projection", s.rp.name),
				slog.Int("version", s.rp.version), slog.Int("partition", int(s.part)), slog.String("error", err.Error()))
			return failed
		}
		if res.held {
			return held
		}
		if !res.full && !res.retriesLeft {
			return caughtUp
		}
	}
	return more
}

// probe returns the partitions in which a projection has work.
func (r *Runner) probe(ctx context.Context, rp *registered) ([]int16, error) {
	rows, err := r.pool.Query(ctx, sqlProbe, rp.name, rp.version, eventstore.Partitions)
	if err != nil {
		return nil, translate("poll", err)
	}
	defer rows.Close()
	var parts []int16
	for rows.Next() {
		var p int16
		if err := rows.Scan(&p); err != nil {
			return nil, translate("poll", err)
		}
		parts = append(parts, p)
	}
	return parts, translate("poll", rows.Err())
}

// CatchUp processes every projection on every partition until every event that was committed when
// CatchUp was called has been processed (applied or parked), and returns nil. Events become readable
// only below the log's horizon, so a transaction that was running when CatchUp was called — anywhere in
// the cluster — delays it until it ends. A partition that another Runner holds meanwhile is awaited
// (polled with backoff) until its checkpoint has passed that point. Due automatic retries run on the
// way. CatchUp may run beside Run. It returns the first batch error, or ctx's error.
//
// Tests, `make demo` and a rebuild's "wait until caught up" use it.
func (r *Runner) CatchUp(ctx context.Context) error {
	var target string
	if err := r.pool.QueryRow(ctx, sqlNextXid).Scan(&target); err != nil {
		return translate("catch up: read the next transaction id", err)
	}
	type job struct {
		rp   *registered
		part int16
	}
	jobs := make(chan job, len(r.projs)*eventstore.Partitions)
	for _, rp := range r.projs {
		for p := range eventstore.Partitions {
			jobs <- job{rp, int16(p)}
		}
	}
	close(jobs)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					return
				}
				if err := r.catchUpPartition(ctx, j.rp, j.part, target); err != nil {
					cancel(fmt.Errorf("projections: catch up %s partition %d: %w", j.rp.name, j.part, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// catchUpPartition runs batches on a partition until no committed event below transaction id target
// follows its checkpoint.
func (r *Runner) catchUpPartition(ctx context.Context, rp *registered, part int16, target string) error {
	wait := r.cfg.PollIntervalMin
	for {
		res, err := r.runBatch(ctx, rp, part)
		if err != nil {
			return err
		}
		if res.full && !res.held {
			wait = r.cfg.PollIntervalMin
			continue
		}
		var done bool
		if err := r.pool.QueryRow(ctx, sqlCaughtUp, rp.name, rp.version, part, target).Scan(&done); err != nil {
			return translate("catch up", err)
		}
		if done {
			return nil
		}
		if res.read > 0 {
			wait = r.cfg.PollIntervalMin
			continue
		}
		// Held by another process, or the events wait below a transaction that is still running.
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, r.cfg.PollIntervalMax)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseXid parses a transaction id (xid8) read as text.
func parseXid(s string) (uint64, error) {
	x, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("projections: parse transaction id: %w", err)
	}
	return x, nil
}

// notifier wakes Run's poll loop: wait returns a channel that notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
