package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// xactID takes (assigns) the transaction id of tx now, before it writes anything.
func xactID(t *testing.T, ctx context.Context, tx pgx.Tx) uint64 {
	t.Helper()
	var xid string
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid))
	var n uint64
	_, err := fmt.Sscan(xid, &n)
	require.NoError(t, err)
	return n
}

// TestNoSkipDeterministic: a reader never skips an event whose transaction commits after a younger
// one; it delivers both, in (transaction id, position) order.
func TestNoSkipDeterministic(t *testing.T) {
	t.Parallel()

	// A takes the lower position and waits; B takes a higher one and commits first.
	t.Run("LowerPositionCommitsLast", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := testCtx(t)
		tenant := uuid.New()

		a := beginRR(t, ctx, s.appPool)
		ra, err := s.app.AppendTx(ctx, a, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("a", 1)))
		require.NoError(t, err)
		b := beginRR(t, ctx, s.appPool)
		rb, err := s.app.AppendTx(ctx, b, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("b", 1)))
		require.NoError(t, err)
		require.Less(t, ra.Positions[0], rb.Positions[0])
		require.Less(t, ra.TransactionID, rb.TransactionID)
		require.NoError(t, b.Commit(ctx))

		// B committed, but A (older) still runs: B is above the horizon and must not be delivered yet.
		got, cursor := readAllTenant(t, ctx, s.projector, tenant, eventstore.Cursor{}, 1)
		require.Empty(t, got)

		require.NoError(t, a.Commit(ctx))
		got = waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{After: cursor, TenantID: tenant, Limit: 1}, 2)
		require.Equal(t, []uuid.UUID{ra.EventIDs[0], rb.EventIDs[0]}, eventIDs(got))
	})

	// The trap: A holds the OLDER transaction id but takes the HIGHER position. A reader cursored by
	// transaction id without the horizon would deliver B, move past A's transaction id, and skip A.
	t.Run("OlderTransactionHigherPosition", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := testCtx(t)
		tenant := uuid.New()

		a := beginRR(t, ctx, s.appPool)
		xa := xactID(t, ctx, a)
		b := beginRR(t, ctx, s.appPool)
		rb, err := s.app.AppendTx(ctx, b, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("b", 1)))
		require.NoError(t, err)
		require.NoError(t, b.Commit(ctx))
		ra, err := s.app.AppendTx(ctx, a, appendParams(tenant, uuid.New(), eventstore.NoStream(), ev("a", 1)))
		require.NoError(t, err)
		require.Equal(t, xa, ra.TransactionID)
		require.Less(t, ra.TransactionID, rb.TransactionID)
		require.Greater(t, ra.Positions[0], rb.Positions[0])

		got, cursor := readAllTenant(t, ctx, s.projector, tenant, eventstore.Cursor{}, 1)
		require.Empty(t, got, "B must wait for the older A")

		require.NoError(t, a.Commit(ctx))
		got = waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{After: cursor, TenantID: tenant, Limit: 1}, 2)
		require.Equal(t, []uuid.UUID{ra.EventIDs[0], rb.EventIDs[0]}, eventIDs(got))
	})
}

// TestNoSkipRandomized: writers with random delays before commit and some rollbacks, readers with
// small batches; the delivered set is exactly the committed set, without duplicates, and each
// stream's versions arrive in order.
func TestNoSkipRandomized(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant := uuid.New()
	streams := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}

	const (
		writers = 8
		rounds  = 200 // per writer
	)
	var (
		mu        sync.Mutex
		committed = map[uuid.UUID]bool{}
	)
	writersDone := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for r := range rounds {
				if ctx.Err() != nil || !writeRound(t, ctx, s, rng, tenant, streams, w*rounds+r, &mu, committed) {
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(writersDone) }()

	// committedCount is known once the writers are done.
	committedCount := func() (int, bool) {
		select {
		case <-writersDone:
			mu.Lock()
			defer mu.Unlock()
			return len(committed), true
		default:
			return 0, false
		}
	}

	type reader struct {
		name      string
		delivered []eventstore.RecordedEvent
	}
	readers := []*reader{{name: "follow-1"}, {name: "follow-3"}, {name: "readall-2"}}
	var rwg sync.WaitGroup
	for i, rd := range readers[:2] {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			fctx, cancel := context.WithCancel(ctx)
			defer cancel()
			err := s.projector.Follow(fctx, &eventstore.FollowParams{TenantID: tenant, BatchSize: 1 + 2*i,
				CaughtUpFunc: func(eventstore.Cursor) {
					if n, done := committedCount(); done && len(rd.delivered) >= n {
						cancel()
					}
				}},
				func(_ context.Context, events []eventstore.RecordedEvent) error {
					rd.delivered = append(rd.delivered, events...)
					return nil
				})
			if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
				t.Errorf("%s: follow ended with %v", rd.name, err)
			}
		}()
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		rd := readers[2]
		var cursor eventstore.Cursor
		for ctx.Err() == nil {
			res, err := s.projector.ReadAll(ctx, &eventstore.ReadAllParams{After: cursor, TenantID: tenant, Limit: 2})
			if !assertNoError(t, err) {
				return
			}
			rd.delivered = append(rd.delivered, res.Events...)
			cursor = res.Next
			if n, done := committedCount(); done && len(rd.delivered) >= n {
				return
			}
		}
	}()
	wg.Wait()
	rwg.Wait()
	if ctx.Err() != nil { // diagnostics: what each reader is missing
		for _, rd := range readers {
			got := map[uuid.UUID]bool{}
			for _, e := range rd.delivered {
				got[e.EventID] = true
			}
			t.Logf("%s delivered %d of %d committed events", rd.name, len(rd.delivered), len(committed))
			dups := map[uuid.UUID]int{}
			for i, e := range rd.delivered {
				dups[e.EventID]++
				if !committed[e.EventID] {
					t.Logf("%s: delivered uncommitted %s (tx %d pos %d) at index %d", rd.name, e.EventID, e.TransactionID, e.GlobalPosition, i)
				}
				if i > 0 && !rd.delivered[i-1].Cursor().Less(e.Cursor()) {
					t.Logf("%s: order break at %d: %v then %v", rd.name, i, rd.delivered[i-1].Cursor(), e.Cursor())
				}
			}
			for id, n := range dups {
				if n > 1 {
					t.Logf("%s: duplicate %s x%d", rd.name, id, n)
				}
			}
			if n := len(rd.delivered); n > 0 {
				t.Logf("%s: last cursor %v", rd.name, rd.delivered[n-1].Cursor())
			}
			for id := range committed {
				if !got[id] {
					var xid string
					var pos int64
					_ = s.adminPool.QueryRow(context.WithoutCancel(ctx),
						`SELECT transaction_id::text, global_position FROM userstore.events WHERE event_id = $1`, id).Scan(&xid, &pos)
					t.Logf("%s: missing event %s (transaction %s, position %d)", rd.name, id, xid, pos)
				}
			}
		}
	}
	require.NoError(t, ctx.Err(), "the readers did not finish in time")

	require.GreaterOrEqual(t, len(committed), writers*rounds/4, "enough transactions committed to mean something")
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			seen := map[uuid.UUID]bool{}
			lastVersion := map[uuid.UUID]int64{}
			for i, e := range rd.delivered {
				require.False(t, seen[e.EventID], "duplicate delivery of %s", e.EventID)
				seen[e.EventID] = true
				require.True(t, committed[e.EventID], "delivered an event that was not committed")
				require.Equal(t, lastVersion[e.StreamID]+1, e.StreamVersion, "stream versions in order, contiguous")
				lastVersion[e.StreamID] = e.StreamVersion
				if i > 0 {
					require.True(t, rd.delivered[i-1].Cursor().Less(e.Cursor()), "log order")
				}
			}
			require.Len(t, seen, len(committed), "delivered set equals committed set")
		})
	}
}

// writeRound is one transaction of a TestNoSkipRandomized writer: append 1-3 events to a random
// stream, wait a random time holding the transaction id, then commit (or, one time in ten, roll
// back). It records what committed, and reports false after an unexpected error.
func writeRound(t *testing.T, ctx context.Context, s *stores, rng *rand.Rand, tenant uuid.UUID, streams []uuid.UUID,
	n int, mu *sync.Mutex, committed map[uuid.UUID]bool,
) bool {
	tx, err := s.appPool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if !assertNoError(t, err) {
		return false
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	events := make([]eventstore.EventData, 1+rng.IntN(3))
	for i := range events {
		events[i] = ev("w", n)
	}
	stream := streams[rng.IntN(len(streams))]
	res, err := s.app.AppendTx(ctx, tx, appendParams(tenant, stream, eventstore.Any(), events...))
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return true // lost a race for the stream's next version: the transaction is aborted
	}
	if !assertNoError(t, err) {
		return false
	}
	// The random delay runs inside the transaction, on the server: it holds the transaction id.
	if _, err := tx.Exec(ctx, `SELECT pg_sleep($1::float8)`, rng.Float64()*0.003); !assertNoError(t, err) {
		return false
	}
	if rng.IntN(10) == 0 {
		return assertNoError(t, tx.Rollback(ctx))
	}
	if !assertNoError(t, tx.Commit(ctx)) {
		return false
	}
	s.projector.Notify() // in-process wake-up of the followers
	mu.Lock()
	defer mu.Unlock()
	for _, id := range res.EventIDs {
		committed[id] = true
	}
	return true
}

// assertNoError reports err on t (from any goroutine) and tells whether there was none.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// TestCausalOrder: an event a writer read before appending is ordered before the writer's event,
// even when the writer's transaction began first.
func TestCausalOrder(t *testing.T) {
	t.Parallel()

	t.Run("ReaderAppendsAfterWhatItRead", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := testCtx(t)
		tenant, stream := uuid.New(), uuid.New()

		w := beginRR(t, ctx, s.appPool) // begins first
		r1, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("v1", 1)))
		require.NoError(t, err)

		read, err := s.app.ReadStreamTx(ctx, w, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
		require.NoError(t, err)
		require.Len(t, read.Events, 1, "w sees v1")
		r2, err := s.app.AppendTx(ctx, w, appendParams(tenant, stream, eventstore.Exact(1), ev("v2", 2)))
		require.NoError(t, err)
		require.NoError(t, w.Commit(ctx))
		require.Less(t, r1.TransactionID, r2.TransactionID)

		want := []uuid.UUID{r1.EventIDs[0], r2.EventIDs[0]}
		got := waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{TenantID: tenant, Limit: 1}, 2)
		require.Equal(t, want, eventIDs(got))
		p := eventstore.PartitionOf(tenant)
		got = waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{Partition: &p, TenantID: tenant}, 2)
		require.Equal(t, want, eventIDs(got))
		got = waitReadAll(t, ctx, s.app, &eventstore.ReadAllParams{TenantID: tenant}, 2)
		require.Equal(t, want, eventIDs(got))
	})

	// A writer that took its transaction id (and snapshot) before v1 committed cannot append after
	// v1: REPEATABLE READ hides v1 from it, so its append conflicts instead of sorting before v1.
	t.Run("OlderWriterCannotAppendAfterNewerEvent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := testCtx(t)

		for _, expected := range []eventstore.ExpectedVersion{eventstore.Exact(1), eventstore.Any(), eventstore.NoStream()} {
			tenant, stream := uuid.New(), uuid.New()
			w := beginRR(t, ctx, s.appPool)
			xactID(t, ctx, w) // w's transaction id and snapshot are taken now
			_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("v1", 1)))
			require.NoError(t, err)
			read, err := s.app.ReadStreamTx(ctx, w, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
			require.NoError(t, err)
			require.Empty(t, read.Events, "v1 committed after w's snapshot")
			_, err = s.app.AppendTx(ctx, w, appendParams(tenant, stream, expected, ev("v2", 2)))
			require.ErrorIs(t, err, eventstore.ErrVersionConflict, "expected %s", expected)
			require.NoError(t, w.Rollback(ctx))
		}
	})
}

func TestReadAllPartition(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	// Two tenants in different partitions; tenant has two streams, both in its partition.
	var tenant, other uuid.UUID
	for tenant = uuid.New(); ; other = uuid.New() {
		if other != uuid.Nil && eventstore.PartitionOf(other) != eventstore.PartitionOf(tenant) {
			break
		}
	}
	a, b := uuid.New(), uuid.New()
	ra, err := s.app.Append(ctx, appendParams(tenant, a, eventstore.NoStream(), ev("a", 1), ev("a", 2)))
	require.NoError(t, err)
	_, err = s.app.Append(ctx, appendParams(other, b, eventstore.NoStream(), ev("b", 1)))
	require.NoError(t, err)
	rb, err := s.app.Append(ctx, appendParams(tenant, b, eventstore.NoStream(), ev("b", 2)))
	require.NoError(t, err)
	rc, err := s.app.Append(ctx, appendParams(tenant, a, eventstore.Exact(2), ev("a", 3)))
	require.NoError(t, err)

	// Wait until all appends are below the horizon, then read the tenant's partition only.
	waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{TenantID: tenant}, 4)
	waitReadAll(t, ctx, s.projector, &eventstore.ReadAllParams{TenantID: other}, 1)
	pa := eventstore.PartitionOf(tenant)
	res, err := s.projector.ReadAll(ctx, &eventstore.ReadAllParams{Partition: &pa, TenantID: tenant})
	require.NoError(t, err)
	want := append(slices.Clone(ra.EventIDs), rb.EventIDs...)
	require.Equal(t, append(want, rc.EventIDs...), eventIDs(res.Events), "all of the tenant's streams, in commit order")
	for _, e := range res.Events {
		require.Equal(t, pa, e.Partition)
	}

	// The whole partition (all tenants), paged: our events are in it, in order.
	var mine []uuid.UUID
	cursor := eventstore.Cursor{}
	for {
		page, err := s.projector.ReadAll(ctx, &eventstore.ReadAllParams{After: cursor, Partition: &pa, Limit: 50})
		require.NoError(t, err)
		for _, e := range page.Events {
			require.Equal(t, pa, e.Partition)
			if e.TenantID == tenant {
				mine = append(mine, e.EventID)
			}
		}
		cursor = page.Next
		if len(page.Events) < 50 {
			break
		}
	}
	require.Equal(t, eventIDs(res.Events), mine)
}

// TestReadAllOrdersTransactionIDsAsNumbers: the log is ordered by the numeric transaction id, also
// across a change in the number of digits (a text sort would put 100 before 99). The rows are
// written by the superuser with forged transaction ids, in a database of their own; the ids are
// small enough to be below the horizon even on a fresh cluster.
func TestReadAllOrdersTransactionIDsAsNumbers(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, nil)
	ctx := testCtx(t)
	tenant := uuid.New()
	xids := []uint64{100, 99, 11, 10, 9} // inserted in this order: positions run the other way
	for _, xid := range xids {
		_, err := db.Pool(t, pgtest.Admin).Exec(ctx, `INSERT INTO userstore.events (transaction_id, tenant_id, stream_type,
			stream_id, stream_version, partition, event_id, event_type, event_version, payload)
			VALUES ($1::text::xid8, $2, 'x', $3, 1, 0, $4, 'x', 1, '{}')`,
			fmt.Sprint(xid), tenant, uuid.New(), uuid.New())
		require.NoError(t, err)
	}
	st := newStore(t, db.Pool(t, pgtest.Projector), nil)
	for _, limit := range []int{1, 2, 3, 10} {
		var got []uint64
		cursor := eventstore.Cursor{}
		for {
			res, err := st.ReadAll(ctx, &eventstore.ReadAllParams{After: cursor, Limit: limit})
			require.NoError(t, err)
			for _, e := range res.Events {
				got = append(got, e.TransactionID)
			}
			cursor = res.Next
			if len(res.Events) < limit {
				break
			}
		}
		require.Equal(t, []uint64{9, 10, 11, 99, 100}, got, "limit %d", limit)
	}
}
