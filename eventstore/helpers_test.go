package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// waitTimeout bounds every wait of these tests; a wait that runs out fails the test.
const waitTimeout = 30 * time.Second

// stores holds a Store per role on the package database.
type stores struct {
	app, projector *eventstore.Store
	appPool        *pgxpool.Pool
	projPool       *pgxpool.Pool
	adminPool      *pgxpool.Pool
}

func setup(t *testing.T) *stores {
	t.Helper()
	s := &stores{
		appPool:   pgtest.AppPool(t),
		projPool:  pgtest.ProjectorPool(t),
		adminPool: pgtest.AdminPool(t),
	}
	s.app = newStore(t, s.appPool, nil)
	s.projector = newStore(t, s.projPool, nil)
	return s
}

func newStore(t *testing.T, pool *pgxpool.Pool, cfg *eventstore.Config) *eventstore.Store {
	t.Helper()
	st, err := eventstore.New(pool, cfg)
	require.NoError(t, err)
	return st
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ev builds an event whose payload records n.
func ev(typ string, n int) eventstore.EventData {
	return eventstore.EventData{Type: typ, Payload: json.RawMessage(fmt.Sprintf(`{"n": %d}`, n))}
}

func appendParams(tenant, stream uuid.UUID, expected eventstore.ExpectedVersion, events ...eventstore.EventData) *eventstore.AppendParams {
	return &eventstore.AppendParams{
		TenantID:   tenant,
		StreamType: "test.stream",
		StreamID:   stream,
		Expected:   expected,
		Events:     events,
	}
}

// beginRR opens a REPEATABLE READ transaction on a dedicated connection of pool; it is rolled back
// at the end of the test unless committed.
func beginRR(t *testing.T, ctx context.Context, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	return tx
}

// readAllTenant reads every event of tenant that is below the horizon now, after cursor, in pages
// of pageSize.
func readAllTenant(t *testing.T, ctx context.Context, st *eventstore.Store, tenant uuid.UUID, after eventstore.Cursor, pageSize int) ([]eventstore.RecordedEvent, eventstore.Cursor) {
	t.Helper()
	var out []eventstore.RecordedEvent
	for {
		res, err := st.ReadAll(ctx, &eventstore.ReadAllParams{After: after, TenantID: tenant, Limit: pageSize})
		require.NoError(t, err)
		out = append(out, res.Events...)
		after = res.Next
		if len(res.Events) < pageSize {
			return out, after
		}
	}
}

func eventIDs(events []eventstore.RecordedEvent) []uuid.UUID {
	ids := make([]uuid.UUID, len(events))
	for i := range events {
		ids[i] = events[i].EventID
	}
	return ids
}

// waitReadAll reads the log with params (from its cursor on) until it has delivered want events,
// polling: an event becomes readable once every older transaction in the cluster has ended.
func waitReadAll(t *testing.T, ctx context.Context, st *eventstore.Store, params *eventstore.ReadAllParams, want int) []eventstore.RecordedEvent {
	t.Helper()
	p := *params
	var out []eventstore.RecordedEvent
	poll := newPoller(t, fmt.Sprintf("reading %d events", want))
	for len(out) < want {
		res, err := st.ReadAll(ctx, &p)
		require.NoError(t, err)
		out = append(out, res.Events...)
		p.After = res.Next
		if len(res.Events) == 0 {
			poll.next()
		}
	}
	require.Len(t, out, want)
	return out
}

// poller paces a bounded polling loop: next fails the test after waitTimeout, and otherwise waits a
// little (backing off from 1ms to 20ms) so the loop does not starve what it waits for. It is not a
// synchronization device: the loop's condition is.
type poller struct {
	t        *testing.T
	what     string
	deadline time.Time
	delay    time.Duration
}

func newPoller(t *testing.T, what string) *poller {
	return &poller{t: t, what: what, deadline: time.Now().Add(waitTimeout), delay: time.Millisecond}
}

func (p *poller) next() {
	p.t.Helper()
	require.True(p.t, time.Now().Before(p.deadline), "timed out %s", p.what)
	timer := time.NewTimer(p.delay)
	defer timer.Stop()
	<-timer.C
	p.delay = min(2*p.delay, 20*time.Millisecond)
}
