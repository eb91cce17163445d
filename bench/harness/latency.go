package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/projections"
)

// --- 5. Commit-to-delivery latency ------------------------------------------------------------------

// observeEvery is the observers' poll interval: it bounds the resolution of the latencies.
const observeEvery = 2 * time.Millisecond

// latencyRun runs writers that commit mutations for a while, and an observer that polls the sink's
// topic table, and returns the commit-to-visible latency of every message.
type latencyRun struct {
	writers int
	d       time.Duration
	// write commits one mutation of writer w and returns the key its message will carry.
	write func(ctx context.Context, w int) (string, error)
	// pool and table: where the messages become visible; key is the SQL expression of a row's key.
	pool  *pgxpool.Pool
	table string
	key   string
	// srcTable and srcKey: where the mutations put what the pipeline reads (the log, the forwarder's
	// topic table), and the key there. Both pipelines read below the horizon (transaction ids below
	// pg_snapshot_xmin): the observer also records when the horizon passed each source row, which
	// splits the latency into the wait for the horizon and the rest.
	srcTable string
	srcKey   string
}

// observer polls the sink table for new rows. Each poll reads the rows of transactions at or after
// the previous poll's snapshot xmin — every transaction that was still running then, or began later —
// in one statement with its own snapshot's xmin, so no committed row is missed whatever order the
// relay's transactions commit in; rows seen before are ignored. A row's time is the start of the first
// poll that saw it. The same goes for the source rows, whose transaction ids it keeps.
type observer struct {
	lr   *latencyRun
	mu   sync.Mutex
	seen map[string]time.Time
	// srcXid: the source row's transaction id, by key; polls: each poll's start and xmin, in order.
	srcXid map[string]uint64
	polls  []xminAt
	low    string
}

type xminAt struct {
	at   time.Time
	xmin uint64
}

func (o *observer) poll(ctx context.Context) error {
	t := time.Now()
	var (
		xmin      string
		keys, src []string
	)
	srcSQL := "'{}'::text[]"
	if o.lr.srcTable != "" {
		srcSQL = fmt.Sprintf("ARRAY(SELECT (%s) || ' ' || transaction_id::text FROM %s WHERE transaction_id >= $1::text::xid8)",
			o.lr.srcKey, o.lr.srcTable)
	}
	err := o.lr.pool.QueryRow(ctx, fmt.Sprintf(`SELECT pg_snapshot_xmin(pg_current_snapshot())::text,
		ARRAY(SELECT %s FROM %s WHERE transaction_id >= $1::text::xid8), %s`, o.lr.key, o.lr.table, srcSQL), o.low).Scan(&xmin, &keys, &src)
	if err != nil {
		return err
	}
	x, err := strconv.ParseUint(xmin, 10, 64)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range keys {
		if _, ok := o.seen[k]; !ok {
			o.seen[k] = t
		}
	}
	for _, kx := range src {
		k, xs, _ := strings.Cut(kx, " ")
		if xid, err := strconv.ParseUint(xs, 10, 64); err == nil {
			o.srcXid[k] = xid
		}
	}
	o.polls = append(o.polls, xminAt{t, x})
	o.low = xmin
	return nil
}

// horizonPassed returns the start of the first poll whose xmin was above the source row of key.
func (o *observer) horizonPassed(key string) (time.Time, bool) {
	xid, ok := o.srcXid[key]
	if !ok {
		return time.Time{}, false
	}
	i, _ := slices.BinarySearchFunc(o.polls, xid, func(p xminAt, x uint64) int {
		if p.xmin <= x {
			return -1
		}
		return 1
	})
	if i == len(o.polls) {
		return time.Time{}, false
	}
	return o.polls[i].at, true
}

func (o *observer) has(keys []string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range keys {
		if _, ok := o.seen[k]; !ok {
			return false
		}
	}
	return true
}

func (lr *latencyRun) run(ctx context.Context) (RunStats, error) {
	o := &observer{lr: lr, seen: map[string]time.Time{}, srcXid: map[string]uint64{}}
	if err := lr.pool.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&o.low); err != nil {
		return RunStats{}, err
	}
	octx, stopObserver := context.WithCancel(ctx)
	defer stopObserver()
	obsErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(observeEvery)
		defer t.Stop()
		for {
			if err := o.poll(octx); err != nil {
				if octx.Err() != nil {
					err = nil
				}
				obsErr <- err
				return
			}
			select {
			case <-octx.Done():
				obsErr <- nil
				return
			case <-t.C:
			}
		}
	}()

	type commit struct {
		key string
		at  time.Time
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		commits  = make([][]commit, lr.writers)
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(lr.d)
	for w := range lr.writers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				key, err := lr.write(wctx, w)
				at := time.Now()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				commits[w] = append(commits[w], commit{key, at})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return RunStats{}, firstErr
	}
	all := slices.Concat(commits...)
	keys := make([]string, len(all))
	for i, c := range all {
		keys[i] = c.key
	}
	// Wait for the last messages (bounded: a stuck sink is an error, not a figure).
	wait := time.Now().Add(60 * time.Second)
	for !o.has(keys) {
		if time.Now().After(wait) {
			return RunStats{}, errors.New("not every message became visible within 60s of the last commit")
		}
		select {
		case err := <-obsErr:
			if err == nil {
				err = ctx.Err()
			}
			return RunStats{}, fmt.Errorf("observer: %w", err)
		case <-time.After(observeEvery):
		}
	}
	stopObserver()
	if err := <-obsErr; err != nil {
		return RunStats{}, fmt.Errorf("observer: %w", err)
	}
	lats := make([]time.Duration, len(all))
	var horizon, after []time.Duration
	for i, c := range all {
		seen := o.seen[c.key]
		lats[i] = max(0, seen.Sub(c.at))
		if h, ok := o.horizonPassed(c.key); ok {
			horizon = append(horizon, max(0, h.Sub(c.at)))
			after = append(after, max(0, seen.Sub(h)))
		}
	}
	slices.Sort(lats)
	slices.Sort(horizon)
	slices.Sort(after)
	extra := map[string]float64{"max_ms": ms(lats[len(lats)-1])}
	if len(horizon) > 0 {
		extra["horizon_p50_ms"] = ms(percentile(horizon, 0.50))
		extra["horizon_p99_ms"] = ms(percentile(horizon, 0.99))
		extra["after_horizon_p50_ms"] = ms(percentile(after, 0.50))
		extra["after_horizon_p99_ms"] = ms(percentile(after, 0.99))
	}
	return RunStats{
		Units: len(all), Ops: len(all), Seconds: elapsed.Seconds(), PerSecond: float64(len(all)) / elapsed.Seconds(),
		P50Ms: ms(percentile(lats, 0.50)), P99Ms: ms(percentile(lats, 0.99)), Extra: extra,
	}, nil
}

// latencyStore returns pgstore on the relay database with a tenant per writer (made once).
func (r *relayFixture) latencyStore(ctx context.Context, writers int) (*latencyStore, error) {
	if r.lat != nil {
		return r.lat, nil
	}
	st, err := pgstore.New(ctx, r.db.App, nil)
	if err != nil {
		return nil, err
	}
	ls := &latencyStore{store: st, runID: uuid.NewString()[:8]}
	for i := range writers {
		id := userstore.NewID()
		tctx := userstore.WithActor(userstore.WithTenant(ctx, id), benchActor)
		if _, err := st.CreateTenant(tctx, &userstore.CreateTenantParams{
			Slug: fmt.Sprintf("lat-%s-%d", ls.runID, i), Name: fmt.Sprintf("Latency %d", i),
		}); err != nil {
			return nil, fmt.Errorf("create tenant: %w", err)
		}
		ls.tenants = append(ls.tenants, id)
	}
	r.lat = ls
	return ls, nil
}

// latencyStore is pgstore on the relay database with a tenant per writer.
type latencyStore struct {
	store   *pgstore.Store
	tenants []uuid.UUID
	runID   string
	seq     int64
	mu      sync.Mutex
}

func (ls *latencyStore) next() int64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.seq++
	return ls.seq
}

// latencyCase is measurement 5: writers commit CreateUser through pgstore while the outbox relay
// (projections.Runner.Run with cfg, never notified: as in a projector process of its own) moves the
// events into its topic table; an observer polls the table. Baseline: the hand-written transaction of
// measurement 1 that also publishes its message, enveloped, into watermill's forwarder topic table in
// the same transaction (the outbox a team would write with watermill), and watermill's forwarder (a
// watermill-sql Subscriber polling every poll, 0: its default) moving it to the sink table.
func (l *Lab) latencyCase(ctx context.Context, id string, writers int, cfg *projections.Config, poll time.Duration) (*Case, error) {
	r, err := l.relayDB(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := r.latencyStore(ctx, writers)
	if err != nil {
		return nil, err
	}
	st := ls.store
	runner, err := relayRunner(r.logFixture, cfg)
	if err != nil {
		return nil, err
	}
	d := cfg.WithDefaults()
	ours := Side{
		Name: fmt.Sprintf("pgstore.CreateUser → outbox relay (Runner.Run: Workers %d, poll %s…%s, not notified)",
			d.Workers, d.PollIntervalMin, d.PollIntervalMax),
		// Start at the head: what measurement 4 or earlier runs left is not part of this run.
		Prepare: runner.CatchUp,
		Job: func(ctx context.Context) (RunStats, error) {
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- runner.Run(rctx) }()
			lr := &latencyRun{writers: writers, d: l.RunFor, pool: r.db.Projector, table: relayTopicTable,
				key: "metadata->>'aggregate_id'", srcTable: "userstore.events", srcKey: "stream_id::text", write: func(ctx context.Context, w int) (string, error) {
					n := ls.next()
					cctx := userstore.WithRequestID(userstore.WithActor(userstore.WithTenant(ctx, ls.tenants[w]), benchActor),
						fmt.Sprintf("lat-%s-%d", ls.runID, n))
					u, err := st.CreateUser(cctx, &userstore.CreateUserParams{
						Mutation:    userstore.Mutation{IdempotencyKey: fmt.Sprintf("lat-%s-%d", ls.runID, n)},
						DisplayName: fmt.Sprintf("User %d", n), Email: fmt.Sprintf("lat.%s.%d@example.com", ls.runID, n),
					})
					if err != nil {
						return "", err
					}
					return u.ID.String(), nil
				}}
			res, err := lr.run(ctx)
			stop()
			return res, errors.Join(err, <-done)
		},
	}

	pipe := &forwarderPipe{pool: r.fwd, in: topicLatencyIn, out: topicLatencyOut, poll: poll}
	var rf *runningForwarder
	subName := "defaults: poll 1s, batch 100"
	if poll != 0 {
		subName = fmt.Sprintf("poll %s, batch 100", poll)
	}
	baseline := Side{
		Name: "hand-written tx + forwarder envelope → watermill-sql Subscriber (" + subName + ") + forwarder",
		Job: func(ctx context.Context) (RunStats, error) {
			var err error
			if rf, err = pipe.start(ctx, 0, nil); err != nil {
				return RunStats{}, err
			}
			lr := &latencyRun{writers: writers, d: l.RunFor, pool: r.fwd, table: `bench."watermill_` + topicLatencyOut + `"`,
				key: "uuid", srcTable: `bench."watermill_` + topicLatencyIn + `"`, srcKey: "payload->>'uuid'", write: func(ctx context.Context, w int) (string, error) {
					return handWrittenOutbox(ctx, r.db.App, ls.tenants[w], ls.next(), ls.runID)
				}}
			res, err := lr.run(ctx)
			return res, errors.Join(err, rf.stop(context.WithoutCancel(ctx)))
		},
	}
	return &Case{
		ID: id, Unit: "messages", Workers: writers, NoRoundTrips: true, Warmup: true, Latency: true,
		What: fmt.Sprintf("5. commit-to-delivery latency into the sink's topic table, %d writers, %s", writers,
			map[bool]string{true: "default poll settings", false: "tuned poll settings and workers"}[cfg == nil]),
		RatioText: "baseline p99 / ours p99",
		RatioOf: func(p *Pair) float64 {
			if p.Ours.P99Ms == 0 {
				return 0
			}
			return p.Baseline.P99Ms / p.Ours.P99Ms
		},
		Meets:    func(r *Result) bool { return r.OursP99Ms < 100 },
		GoalText: "ours p99 < 100 ms",
		Ours:     ours, Baseline: baseline,
	}, nil
}

// handWrittenOutbox is measurement 1's hand-written transaction (users row, audit row) that also
// publishes the user's message, enveloped for watermill's forwarder, into the forwarder's topic table
// in the same transaction; the message UUID is the user id.
func handWrittenOutbox(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, n int64, runID string) (string, error) {
	id, now := userstore.NewID(), time.Now().UTC()
	name := fmt.Sprintf("User %d", n)
	email := strings.ToLower(fmt.Sprintf("lat.%s.%d@example.com", runID, n))
	payload, err := json.Marshal(map[string]any{"id": id, "tenant_id": tenant, "display_name": name, "email": email, "status": "active", "created_at": now})
	if err != nil {
		return "", err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlBaseUser, tenant, id, name, email, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlBaseAudit, tenant, string(benchActor.Type), benchActor.ID, "lat-"+runID, id, payload); err != nil {
			return err
		}
		wpub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: watermillSchema()}, watermill.NopLogger{})
		if err != nil {
			return err
		}
		msg := message.NewMessage(id.String(), message.Payload(payload))
		msg.Metadata.Set("tenant_id", tenant.String())
		msg.Metadata.Set("type", "user.created")
		msg.SetContext(ctx)
		return forwarder.NewPublisher(wpub, forwarder.PublisherConfig{ForwarderTopic: topicLatencyIn}).Publish(topicLatencyOut, msg)
	})
	return id.String(), err
}
