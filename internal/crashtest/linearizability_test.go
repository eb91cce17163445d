package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
)

// linStreamType is the stream type of the linearizability test's streams.
const linStreamType = "crashtest"

// TestLinearizability records a history of concurrent appends and reads on a few streams through
// eventstore (Append, ReadStream) while PostgreSQL crashes — `pg_ctl stop -m immediate` and SIGKILL of
// a backend, at random moments — and checks it with porcupine against the model of a versioned stream
// (model_test.go). Appends whose outcome is unknown never return in the history; appends that failed
// with an error promising nothing was written must not show. A failing history is saved (see
// checkHistory). It also checks the log directly: every event belongs to an append that was
// acknowledged or of unknown outcome, whole.
func TestLinearizability(t *testing.T) {
	size := linearizabilityConfig()
	s := seed(t)
	c := newCluster(t)
	for round := range size.Rounds {
		t.Run(fmt.Sprint(round+1), func(t *testing.T) {
			linRun(t, c, size, s+uint64(round)*7_919)
		})
	}
}

// recorder collects a history; timestamps are nanoseconds of the monotonic clock since start.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// linStats are the numbers of one linearizability run.
type linStats struct {
	Appends, Acked, Conflicts, Failed, Unknown, Reads, FailedReads, Faults int
	UnknownApplied                                                         int
}

func (s linStats) String() string {
	return fmt.Sprintf("operations=%d appends=%d (ok %d, conflict %d, failed %d, unknown %d of which applied %d) "+
		"reads=%d (failed, left out: %d) faults=%d",
		s.Appends+s.Reads, s.Appends, s.Acked, s.Conflicts, s.Failed, s.Unknown, s.UnknownApplied, s.Reads, s.FailedReads, s.Faults)
}

// linClient appends to and reads the streams until stop is closed.
type linClient struct {
	id      int
	es      *eventstore.Store
	tenant  uuid.UUID
	streams []uuid.UUID
	rng     *rand.Rand
	rec     *recorder
	// seen is the last version this client saw of each stream, for its expected versions.
	seen []int64

	mu    sync.Mutex
	stats linStats
}

func (c *linClient) run(ctx context.Context, stop <-chan struct{}) {
	for ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		s := c.rng.IntN(len(c.streams))
		var ok bool
		if c.rng.Float64() < 0.45 {
			ok = c.read(ctx, s)
		} else {
			ok = c.append(ctx, s)
		}
		if !ok {
			// The cluster is down or recovering: do not spin.
			_ = sleep(ctx, time.Duration(5+c.rng.IntN(25))*time.Millisecond)
		}
	}
}

// read reads stream s and records it; a failed read changes nothing and is left out of the history.
func (c *linClient) read(ctx context.Context, s int) bool {
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	call := c.rec.now()
	res, err := c.es.ReadStream(actx, &eventstore.ReadStreamParams{TenantID: c.tenant, StreamID: c.streams[s]})
	ret := c.rec.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.stats.FailedReads++
		return false
	}
	c.stats.Reads++
	var st streamState
	for _, e := range res.Events {
		st = st.with([]uuid.UUID{e.EventID})
		if e.StreamVersion != st.Version {
			// A gap or a repeated version: no state of the model has a negative version, so the
			// checker rejects this read.
			st.Version = -1 << 40
		}
	}
	c.seen[s] = max(st.Version, 0)
	c.rec.add(porcupine.Operation{ClientId: c.id, Input: readInput{Stream: s}, Output: readOutput(st), Call: call, Return: ret})
	return true
}

// append appends 1-3 events to stream s with a drawn condition — mostly the version this client saw
// last — and records it.
func (c *linClient) append(ctx context.Context, s int) bool {
	in := appendInput{Stream: s}
	var exp eventstore.ExpectedVersion
	switch p := c.rng.Float64(); {
	case p < 0.7:
		in.Expect, in.Version, exp = expExact, c.seen[s], eventstore.Exact(c.seen[s])
	case p < 0.8:
		in.Expect, exp = expAny, eventstore.Any()
	case p < 0.87:
		in.Expect, exp = expNoStream, eventstore.NoStream()
	case p < 0.94:
		in.Expect, exp = expExists, eventstore.StreamExists()
	default:
		v := max(0, c.seen[s]+int64(c.rng.IntN(3))-1)
		in.Expect, in.Version, exp = expExact, v, eventstore.Exact(v)
	}
	events := make([]eventstore.EventData, 1+c.rng.IntN(3))
	for i := range events {
		id := uuid.New()
		in.IDs = append(in.IDs, id)
		payload, _ := json.Marshal(map[string]any{"client": c.id, "n": i})
		events[i] = eventstore.EventData{ID: id, Type: "crashtest.appended", Payload: payload}
	}

	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	call := c.rec.now()
	res, err := c.es.Append(actx, &eventstore.AppendParams{
		TenantID: c.tenant, StreamType: linStreamType, StreamID: c.streams[s], Expected: exp, Events: events,
	})
	ret := c.rec.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Appends++
	op := porcupine.Operation{ClientId: c.id, Input: in, Call: call, Return: ret}
	var conflict *eventstore.VersionConflictError
	switch {
	case err == nil:
		c.stats.Acked++
		op.Output = appendOutput{Kind: resOK, Version: res.NewVersion}
		c.seen[s] = res.NewVersion
	case errors.As(err, &conflict):
		c.stats.Conflicts++
		op.Output = appendOutput{Kind: resConflict}
		if conflict.Actual >= 0 {
			c.seen[s] = conflict.Actual
		}
	case errors.Is(err, eventstore.ErrUnavailable):
		// eventstore's promise: nothing reached the server.
		c.stats.Failed++
		op.Output, op.Metadata = appendOutput{Kind: resFailed}, err.Error()
	default:
		// ErrCommitOutcomeUnknown, and — conservatively — any other error: the append may have
		// happened. It never returns.
		c.stats.Unknown++
		op.Output, op.Return, op.Metadata = appendOutput{Kind: resUnknown}, pending, err.Error()
	}
	c.rec.add(op)
	return err == nil || conflict != nil
}

func linRun(t *testing.T, c *cluster, size linearizabilitySize, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := newRand(seed, 0)
	db := c.newDatabase(t, ctx, fmt.Sprintf("lin_%d", seed%1_000_000))
	appPool := c.storePool(t, ctx, roleApp, db, appApplication, int32(size.Clients+2))
	es, err := eventstore.New(appPool, nil)
	require.NoError(t, err)
	admin := c.adminPool(t, ctx, db)

	tenant := uuid.New()
	streams := make([]uuid.UUID, size.Streams)
	for i := range streams {
		streams[i] = uuid.New()
	}
	rec := &recorder{start: time.Now()}
	clients := make([]*linClient, size.Clients)
	stop := make(chan struct{})
	stopClients := sync.OnceFunc(func() { close(stop) })
	cctx, cancelClients := context.WithTimeout(ctx, 5*time.Minute)
	var wg sync.WaitGroup
	defer func() { // also when the test fails half-way: no client outlives it
		stopClients()
		cancelClients()
		wg.Wait()
	}()
	for i := range clients {
		clients[i] = &linClient{id: i, es: es, tenant: tenant, streams: streams, rng: newRand(seed, uint64(i+1)),
			rec: rec, seen: make([]int64, len(streams))}
		wg.Go(func() { clients[i].run(cctx, stop) })
	}

	inj := newInjector(c, admin, rec.start)
	for i := range size.Faults {
		gap := size.GapMin + time.Duration(rng.Int64N(int64(size.GapMax-size.GapMin)+1))
		require.NoError(t, sleep(ctx, gap))
		kind := faultKind(i % 2)
		if i >= 2 {
			kind = faultKind(rng.IntN(3))
		}
		if err := inj.inject(ctx, rng, kind); err != nil {
			t.Fatalf("fault %d: %v", i+1, err)
		}
	}
	require.NoError(t, sleep(ctx, size.Tail))
	stopClients()
	wg.Wait()

	// A final read of every stream, after everything: it pins down the appends of unknown outcome.
	final := &linClient{id: size.Clients, es: es, tenant: tenant, streams: streams, rec: rec, seen: make([]int64, len(streams))}
	for s := range streams {
		for !final.read(ctx, s) {
			require.NoError(t, sleep(ctx, 20*time.Millisecond))
		}
	}

	var st linStats
	for _, cl := range append(clients, final) {
		st.Appends += cl.stats.Appends
		st.Acked += cl.stats.Acked
		st.Conflicts += cl.stats.Conflicts
		st.Failed += cl.stats.Failed
		st.Unknown += cl.stats.Unknown
		st.Reads += cl.stats.Reads
		st.FailedReads += cl.stats.FailedReads
	}
	faults := inj.records()
	st.Faults = len(faults)
	for _, f := range faults {
		t.Logf("fault: %s", f)
	}

	// The log itself: each append's events are all there or none, only acknowledged and unknown
	// appends are, and each stream's versions are 1..n.
	st.UnknownApplied = checkAppendsInLog(t, ctx, admin, tenant, streams, rec.ops)

	t0 := time.Now()
	res := checkHistory(t, rec.ops, 5*time.Minute)
	t.Logf("linearizability: %s; porcupine: %s in %s", st, res, time.Since(t0).Round(time.Millisecond))
}

// checkAppendsInLog reads the streams as the superuser and checks every append of the history against
// them: acknowledged → all its events, in order, ending at the version it was acknowledged with;
// conflict or failed → none; unknown → all or none. No event belongs to no append, and each stream's
// versions are 1..n. It returns how many appends of unknown outcome had been applied.
func checkAppendsInLog(t *testing.T, ctx context.Context, admin *pgxpool.Pool, tenant uuid.UUID, streams []uuid.UUID,
	history []porcupine.Operation) int {
	t.Helper()
	type place struct {
		stream  uuid.UUID
		version int64
	}
	where := map[uuid.UUID]place{}
	rows, err := admin.Query(ctx, `SELECT stream_id, stream_version, event_id FROM userstore.events
		WHERE tenant_id = $1 ORDER BY stream_id, stream_version`, tenant)
	require.NoError(t, err)
	last := map[uuid.UUID]int64{}
	for rows.Next() {
		var p place
		var id uuid.UUID
		require.NoError(t, rows.Scan(&p.stream, &p.version, &id))
		if p.version != last[p.stream]+1 {
			t.Errorf("stream %s: version %d follows %d", p.stream, p.version, last[p.stream])
		}
		last[p.stream] = p.version
		where[id] = p
	}
	rows.Close()
	require.NoError(t, rows.Err())

	applied := 0
	for _, op := range history {
		in, ok := op.Input.(appendInput)
		if !ok {
			continue
		}
		out := op.Output.(appendOutput)
		present := 0
		for i, id := range in.IDs {
			p, ok := where[id]
			if !ok {
				continue
			}
			present++
			delete(where, id)
			if p.stream != streams[in.Stream] {
				t.Errorf("%s: event %d is in another stream", in, i)
			}
			if out.Kind == resOK && p.version != out.Version-int64(len(in.IDs)-1-i) {
				t.Errorf("%s → %s: event %d is at version %d", in, out, i, p.version)
			}
		}
		switch {
		case out.Kind == resOK && present != len(in.IDs):
			t.Errorf("LOST: %s → %s: %d of its %d events are in the log", in, out, present, len(in.IDs))
		case (out.Kind == resConflict || out.Kind == resFailed) && present > 0:
			t.Errorf("PHANTOM: %s → %s (%v): %d of its events are in the log", in, out, op.Metadata, present)
		case out.Kind == resUnknown && present != 0 && present != len(in.IDs):
			t.Errorf("HALF: %s → %s: %d of its %d events are in the log", in, out, present, len(in.IDs))
		case out.Kind == resUnknown && present > 0:
			applied++
		}
	}
	for id, p := range where {
		t.Errorf("event %s (stream %s v%d) belongs to no append of the history", id, p.stream, p.version)
	}
	return applied
}
