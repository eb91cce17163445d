package projections_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
)

// poison fails the Apply of the events in its set, until they are removed ("fixed"), or only their
// first few attempts (failN).
type poison struct {
	mu    sync.Mutex
	ids   map[uuid.UUID]bool
	fails map[uuid.UUID]int
}

func (p *poison) failN(id uuid.UUID, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fails == nil {
		p.fails = map[uuid.UUID]int{}
	}
	p.fails[id] = n
}

var errPoison = errors.New("test: poison event")

func (p *poison) add(id uuid.UUID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[id] = true
}

func (p *poison) fix(id uuid.UUID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ids, id)
}

func (p *poison) hook(_ context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids[ev.EventID] {
		return errPoison
	}
	if p.fails[ev.EventID] > 0 {
		p.fails[ev.EventID]--
		return errPoison
	}
	return nil
}

// loggedEvent is an event's id and place in the log.
type loggedEvent struct {
	EventID uuid.UUID
	Cursor  eventstore.Cursor
}

// tenantEvents returns a tenant's committed events in the log's order, read as the superuser straight
// from the table (not bounded by the horizon, which other tests' transactions hold back).
func tenantEvents(t *testing.T, ctx context.Context, e *env, tenant uuid.UUID) []loggedEvent {
	t.Helper()
	rows, err := e.admin.Query(ctx, `
		SELECT event_id, transaction_id::text, global_position FROM userstore.events
		 WHERE tenant_id = $1 ORDER BY transaction_id, global_position`, tenant)
	require.NoError(t, err)
	var out []loggedEvent
	for rows.Next() {
		var (
			ev  loggedEvent
			xid string
		)
		require.NoError(t, rows.Scan(&ev.EventID, &xid, &ev.Cursor.Position))
		ev.Cursor.TransactionID, err = strconv.ParseUint(xid, 10, 64)
		require.NoError(t, err)
		out = append(out, ev)
	}
	require.NoError(t, rows.Err())
	return out
}

func deadLetters(t *testing.T, ctx context.Context, r *projections.Runner, tenant uuid.UUID, status projections.DeadLetterStatus) []projections.DeadLetter {
	t.Helper()
	res, err := r.DeadLetters(ctx, &projections.DeadLettersParams{TenantID: tenant, Status: status})
	require.NoError(t, err)
	return res.DeadLetters
}

// TestPoisonEvent: an event that fails for one tenant reaches the dead-letter table with its error, and
// every later event of that tenant parks behind it; the other tenants' events keep flowing. Retry while
// it still fails records another attempt; retry after the fix applies the tenant's parked events in
// order. Skip records who skipped which event and applies the rest. The chains stay gapless and valid.
func TestPoisonEvent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 6)
	sick, skipped, healthy := tenants[0], tenants[1], tenants[2:]
	for _, tenant := range tenants {
		require.NoError(t, g.updates(ctx, tenant, g.tenants[indexOf(g.tenantIDs(), tenant)].users[0], 5))
	}
	// 8 events per tenant: tenant.created, user.created, roster.member_added, 5 updates.
	p := &poison{ids: map[uuid.UUID]bool{}}
	sickEvents, skippedEvents := tenantEvents(t, ctx, e, sick), tenantEvents(t, ctx, e, skipped)
	require.Len(t, sickEvents, 8)
	badSick, badSkipped := sickEvents[3].EventID, skippedEvents[5].EventID
	p.add(badSick)
	p.add(badSkipped)

	// No automatic retry in this test: the operator decides.
	r := e.runner(t, "poison", withHook(p.hook), &projections.Config{BatchSize: 10, RetryBackoffMin: time.Hour,
		RetryBackoffMax: time.Hour, Logger: testLogger(t)})
	require.NoError(t, r.CatchUp(ctx))

	for _, tenant := range healthy {
		require.Len(t, requireTrail(t, ctx, e, tenant, nil), 8)
	}
	sickTrail := records(t, ctx, e.db.Pool(t, pgtest.Projector), sick)
	require.Len(t, sickTrail, 3)
	_, err := domain.VerifyAuditChain(sickTrail)
	require.NoError(t, err)
	require.Len(t, records(t, ctx, e.db.Pool(t, pgtest.Projector), skipped), 5)

	dl := deadLetters(t, ctx, r, sick, "")
	require.Len(t, dl, 5)
	for i, d := range dl {
		require.Equal(t, sickEvents[3+i].EventID, d.EventID, "parked in the log's order")
		require.Equal(t, sickEvents[3+i].Cursor, d.Cursor)
		require.Equal(t, projections.StatusParked, d.Status)
		require.Equal(t, "audit", d.Projection)
		require.Equal(t, eventstore.PartitionOf(sick), d.Partition)
		require.True(t, d.ResolvedAt.IsZero())
		if i == 0 {
			require.Contains(t, d.Error, errPoison.Error())
			require.Equal(t, 1, d.Attempts)
			require.False(t, d.NextAttemptAt.IsZero())
		} else {
			require.Empty(t, d.Error, "parked behind the first")
			require.Zero(t, d.Attempts)
			require.True(t, d.NextAttemptAt.IsZero())
		}
	}

	// The other tenants keep flowing; the sick tenant's new events park behind its first.
	g.touchAll(t, ctx)
	require.NoError(t, r.CatchUp(ctx))
	for _, tenant := range healthy {
		require.Len(t, requireTrail(t, ctx, e, tenant, nil), 9)
	}
	require.Len(t, deadLetters(t, ctx, r, sick, projections.StatusParked), 6)

	// Retry while the event still fails: another attempt, nothing applied.
	res, err := r.Retry(ctx, &projections.RetryParams{Projection: "audit", TenantID: sick, By: "alice"})
	require.NoError(t, err)
	require.Equal(t, &projections.RetryResult{Retried: 0, Parked: 6, FailedEventID: badSick, Error: res.Error}, res)
	require.Contains(t, res.Error, errPoison.Error())
	require.Equal(t, 2, deadLetters(t, ctx, r, sick, projections.StatusParked)[0].Attempts)

	// Fixed: Retry applies the six parked events in order.
	p.fix(badSick)
	res, err = r.Retry(ctx, &projections.RetryParams{Projection: "audit", TenantID: sick, By: "alice"})
	require.NoError(t, err)
	require.Equal(t, &projections.RetryResult{Retried: 6, Parked: 0}, res)
	require.Len(t, requireTrail(t, ctx, e, sick, nil), 9)
	retried := deadLetters(t, ctx, r, sick, projections.StatusRetried)
	require.Len(t, retried, 6)
	for _, d := range retried {
		require.Equal(t, "alice", d.ResolvedBy)
		require.False(t, d.ResolvedAt.IsZero())
		require.True(t, d.NextAttemptAt.IsZero())
	}
	// And the tenant flows again.
	g.touchAll(t, ctx)
	require.NoError(t, r.CatchUp(ctx))
	require.Len(t, requireTrail(t, ctx, e, sick, nil), 10)

	// Skip: the event is recorded as skipped, by whom, and the rest are applied without it.
	_, err = r.Skip(ctx, &projections.SkipParams{Projection: "audit", TenantID: skipped, EventID: sickEvents[0].EventID, By: "bob"})
	require.ErrorIs(t, err, projections.ErrNotParked)
	res, err = r.Skip(ctx, &projections.SkipParams{Projection: "audit", TenantID: skipped, EventID: badSkipped, By: "bob"})
	require.NoError(t, err)
	require.Equal(t, &projections.RetryResult{Retried: 4, Parked: 0}, res) // the 6th..8th event and the touch
	skips := deadLetters(t, ctx, r, skipped, projections.StatusSkipped)
	require.Len(t, skips, 1)
	require.Equal(t, badSkipped, skips[0].EventID)
	require.Equal(t, "bob", skips[0].ResolvedBy)
	require.False(t, skips[0].ResolvedAt.IsZero())
	require.Len(t, requireTrail(t, ctx, e, skipped, map[uuid.UUID]bool{badSkipped: true}), 9)

	// Operator input is validated.
	_, err = r.Retry(ctx, &projections.RetryParams{Projection: "nope", TenantID: sick, By: "alice"})
	require.ErrorIs(t, err, projections.ErrUnknownProjection)
	_, err = r.Retry(ctx, &projections.RetryParams{Projection: "audit", TenantID: sick})
	require.ErrorIs(t, err, projections.ErrValidation)
	_, err = r.DeadLetters(ctx, &projections.DeadLettersParams{Status: "lost"})
	require.ErrorIs(t, err, projections.ErrValidation)
}

// TestAutomaticRetry: a running projector retries a tenant's parked events with backoff, in order; an
// event that fails twice and then succeeds is applied with the events behind it (resolved by
// "projector"); an event that keeps failing runs out of attempts and waits for an operator.
func TestAutomaticRetry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenants := g.addTenants(t, ctx, 3)
	healing, stuck := tenants[0], tenants[1]
	p := &poison{ids: map[uuid.UUID]bool{}}
	p.failN(tenantEvents(t, ctx, e, healing)[1].EventID, 2)
	stuckBad := tenantEvents(t, ctx, e, stuck)[1].EventID
	p.add(stuckBad)

	r := e.runner(t, "auto-retry", withHook(p.hook), &projections.Config{RetryBackoffMin: 10 * time.Millisecond,
		RetryBackoffMax: 40 * time.Millisecond, RetryAttempts: 4, PollIntervalMax: 20 * time.Millisecond, Logger: testLogger(t)})
	stop := start(t, ctx, r)

	waitFor(t, "the healing tenant's events to be retried", func() bool {
		return len(deadLetters(t, ctx, r, healing, projections.StatusRetried)) == 2 &&
			len(deadLetters(t, ctx, r, healing, projections.StatusParked)) == 0
	})
	retried := deadLetters(t, ctx, r, healing, projections.StatusRetried)
	require.Len(t, retried, 2)
	require.Equal(t, 2, retried[0].Attempts, "failed twice (then the third attempt succeeded)")
	for _, d := range retried {
		require.Equal(t, "projector", d.ResolvedBy)
	}
	require.Len(t, requireTrail(t, ctx, e, healing, nil), 3)
	require.Len(t, requireTrail(t, ctx, e, tenants[2], nil), 3)

	waitFor(t, "the stuck tenant's event to run out of automatic attempts", func() bool {
		dl := deadLetters(t, ctx, r, stuck, projections.StatusParked)
		return len(dl) == 2 && dl[0].Attempts == 4 && dl[0].NextAttemptAt.IsZero()
	})
	stop()
	// The fix alone does not help it (no attempt left): an operator retries.
	p.fix(stuckBad)
	require.NoError(t, r.CatchUp(ctx))
	require.Len(t, deadLetters(t, ctx, r, stuck, projections.StatusParked), 2)
	res, err := r.Retry(ctx, &projections.RetryParams{Projection: "audit", TenantID: stuck, By: "carol"})
	require.NoError(t, err)
	require.Equal(t, &projections.RetryResult{Retried: 2}, res)
	require.Len(t, requireTrail(t, ctx, e, stuck, nil), 3)
}

// TestDeadLetterErrorRedacted: a database error stored with a dead letter is its SQLSTATE, never the
// server's message (which quotes the offending value).
func TestDeadLetterErrorRedacted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	g := newGen(e.app, seed(t))
	tenant := g.addTenants(t, ctx, 1)[0]
	bad := tenantEvents(t, ctx, e, tenant)[0].EventID
	const secret = "s3cr3t-value"
	hook := func(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
		if ev.EventID != bad {
			return nil
		}
		var n int
		// 22P02: invalid input syntax for type integer: "s3cr3t-value"
		return tx.QueryRow(ctx, `SELECT $1::text::int`, secret).Scan(&n)
	}
	r := e.runner(t, "redacted", withHook(hook), &projections.Config{RetryBackoffMin: time.Hour, RetryBackoffMax: time.Hour})
	require.NoError(t, r.CatchUp(ctx))
	dl := deadLetters(t, ctx, r, tenant, projections.StatusParked)
	require.Len(t, dl, 3)
	require.Contains(t, dl[0].Error, "SQLSTATE 22P02")
	require.NotContains(t, dl[0].Error, secret)
	require.NotContains(t, dl[0].Error, "invalid input")
}

func indexOf(ids []uuid.UUID, id uuid.UUID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}
