package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// follower runs Store.Follow in a goroutine and exposes what it delivers.
type follower struct {
	events   chan eventstore.RecordedEvent
	caughtUp chan eventstore.Cursor
	cancel   context.CancelFunc
	done     chan error
}

func startFollow(t *testing.T, ctx context.Context, st *eventstore.Store, params *eventstore.FollowParams) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{
		events:   make(chan eventstore.RecordedEvent, 1000),
		caughtUp: make(chan eventstore.Cursor, 1000),
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	p := *params
	p.CaughtUpFunc = func(c eventstore.Cursor) {
		select {
		case f.caughtUp <- c:
		default:
		}
	}
	go func() {
		f.done <- st.Follow(ctx, &p, func(_ context.Context, events []eventstore.RecordedEvent) error {
			for _, e := range events {
				f.events <- e
			}
			return nil
		})
	}()
	t.Cleanup(f.stop)
	return f
}

// stop cancels Follow and waits for it to return.
func (f *follower) stop() {
	f.cancel()
	if f.done != nil {
		<-f.done
		f.done = nil
	}
}

// next waits for the next delivered event.
func (f *follower) next(t *testing.T) eventstore.RecordedEvent {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case e := <-f.events:
		return e
	case <-timer.C:
		t.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

// waitCaughtUp waits for the follower to report it has caught up n more times.
func (f *follower) waitCaughtUp(t *testing.T, n int) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for range n {
		select {
		case <-f.caughtUp:
		case <-timer.C:
			t.Fatal("timed out waiting for the follower to catch up")
		}
	}
}

func (f *follower) drainCaughtUp() {
	for {
		select {
		case <-f.caughtUp:
		default:
			return
		}
	}
}

func TestFollow(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, a, b := uuid.New(), uuid.New(), uuid.New()

	var want []uuid.UUID
	r, err := s.app.Append(ctx, appendParams(tenant, a, eventstore.NoStream(), ev("a", 1), ev("a", 2), ev("a", 3)))
	require.NoError(t, err)
	want = append(want, r.EventIDs...)
	r, err = s.app.Append(ctx, appendParams(tenant, b, eventstore.NoStream(), ev("b", 1), ev("b", 2)))
	require.NoError(t, err)
	want = append(want, r.EventIDs...)

	// Follow from the start, in batches of two, through the app role (one tenant).
	f := startFollow(t, ctx, s.app, &eventstore.FollowParams{TenantID: tenant, BatchSize: 2})
	var got []uuid.UUID
	for range want {
		got = append(got, f.next(t).EventID)
	}
	require.Equal(t, want, got)

	// Later appends are delivered too.
	r, err = s.app.Append(ctx, appendParams(tenant, a, eventstore.Exact(3), ev("a", 4)))
	require.NoError(t, err)
	e := f.next(t)
	require.Equal(t, r.EventIDs[0], e.EventID)
	require.Equal(t, int64(4), e.StreamVersion)

	// Follow returns ctx's error when ctx ends, and leaves no goroutine behind (goleak in TestMain).
	f.cancel()
	require.ErrorIs(t, <-f.done, context.Canceled)
	f.done = nil
}

// TestFollowWokenInProcess: with polling intervals of an hour, only the in-process wake-up of a
// local append (Append, or Notify after AppendTx) can make the follower poll again.
func TestFollowWokenInProcess(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := newStore(t, pgtest.AppPool(t), &eventstore.Config{PollIntervalMin: time.Hour, PollIntervalMax: time.Hour})
	tenant, stream := uuid.New(), uuid.New()

	f := startFollow(t, ctx, st, &eventstore.FollowParams{TenantID: tenant})
	f.waitCaughtUp(t, 1) // the first poll found nothing: the follower now waits for an hour

	// awaitDelivery waits for the follower to deliver want. The first poll after a wake-up may
	// still miss the event, held back by an older transaction elsewhere in the cluster: the follower
	// then reports caught-up, and is woken again.
	awaitDelivery := func(want uuid.UUID) {
		t.Helper()
		timer := time.NewTimer(waitTimeout)
		defer timer.Stop()
		for {
			select {
			case e := <-f.events:
				require.Equal(t, want, e.EventID)
				f.waitCaughtUp(t, 1) // the poll that delivered it; the follower sleeps again
				return
			case <-f.caughtUp:
				st.Notify()
			case <-timer.C:
				t.Fatal("the follower was not woken")
			}
		}
	}

	// Append wakes the follower by itself.
	res, err := st.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1)))
	require.NoError(t, err)
	awaitDelivery(res.EventIDs[0])

	// AppendTx cannot know when its transaction commits: Notify after the commit wakes the follower.
	tx := beginRR(t, ctx, pgtest.AppPool(t))
	res, err = st.AppendTx(ctx, tx, appendParams(tenant, stream, eventstore.Exact(1), ev("a", 2)))
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	st.Notify()
	awaitDelivery(res.EventIDs[0])
}

func TestFollowHandlerError(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant := uuid.New()
	_, err := s.app.Append(ctx, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("a", 1)))
	require.NoError(t, err)

	boom := errors.New("boom")
	err = s.app.Follow(ctx, &eventstore.FollowParams{TenantID: tenant}, func(context.Context, []eventstore.RecordedEvent) error {
		return boom
	})
	require.ErrorIs(t, err, boom)

	err = s.app.Follow(ctx, &eventstore.FollowParams{TenantID: tenant, BatchSize: -1}, func(context.Context, []eventstore.RecordedEvent) error { return nil })
	require.ErrorIs(t, err, eventstore.ErrValidation)
}

// TestHorizon: an open transaction that holds a transaction id holds every reader back; Horizon
// names it; when it ends, delivery resumes with nothing skipped. Not parallel: it inspects the
// cluster-wide horizon.
func TestHorizon(t *testing.T) {
	s := setup(t)
	ctx := testCtx(t)
	tenant := uuid.New()

	f := startFollow(t, ctx, s.projector, &eventstore.FollowParams{TenantID: tenant})
	f.waitCaughtUp(t, 1)

	// The holder: a transaction on a connection of its own that appends an event and stays open.
	cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
	cfg.ConnConfig.RuntimeParams["application_name"] = "horizon-holder"
	holderPool := pgtest.NewPool(t, cfg)
	holder := beginRR(t, ctx, holderPool)
	var holderPID int
	require.NoError(t, holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID))
	held, err := s.app.AppendTx(ctx, holder, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("held", 1)))
	require.NoError(t, err)

	// A newer event commits.
	newer, err := s.app.Append(ctx, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("newer", 1)))
	require.NoError(t, err)
	require.Greater(t, newer.TransactionID, held.TransactionID)

	// Two polls that started after the newer event committed deliver nothing.
	f.drainCaughtUp()
	s.projector.Notify()
	f.waitCaughtUp(t, 2)
	require.Empty(t, f.events, "nothing newer than the holder is delivered")

	// Horizon names the holder (once older transactions of other tests, if any, have ended).
	poll := newPoller(t, "waiting for Horizon to name the holder")
	for {
		h, err := s.projector.Horizon(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, h.Xmin, held.TransactionID)
		if h.Xmin == held.TransactionID && h.Holder != nil && h.Holder.PID == holderPID {
			require.Equal(t, "horizon-holder", h.Holder.ApplicationName)
			require.Equal(t, "idle in transaction", h.Holder.State)
			require.False(t, h.Holder.XactStart.IsZero())
			require.GreaterOrEqual(t, h.Holder.XactAge, time.Duration(0))
			require.GreaterOrEqual(t, h.Holder.XidAge, int32(1))
			break
		}
		poll.next()
	}

	// The holder commits: delivery resumes, the held event first, nothing skipped.
	require.NoError(t, holder.Commit(ctx))
	s.projector.Notify()
	require.Equal(t, held.EventIDs[0], f.next(t).EventID)
	require.Equal(t, newer.EventIDs[0], f.next(t).EventID)

	h, err := s.projector.Horizon(ctx)
	require.NoError(t, err)
	require.Greater(t, h.Xmin, newer.TransactionID)
}
