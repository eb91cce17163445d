package jetstream_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// failing wraps the relay: while fail says so, the Flush of a batch of one partition publishes (the
// relay's Flush returns after the last acknowledgement) and then fails, as a crash between the publish
// and the checkpoint's commit would.
type failing struct {
	*jetstream.Projection
	partition int16
	fail      atomic.Bool
	failures  atomic.Int64 // batches that published and then failed
}

func (f *failing) StartBatch(ctx context.Context, tx pgx.Tx, info *projections.BatchInfo) (projections.BatchApplier, error) {
	inner, err := f.Projection.StartBatch(ctx, tx, info)
	if err != nil {
		return nil, err
	}
	return &failingBatch{BatchApplier: inner, f: f, partition: info.Partition}, nil
}

type failingBatch struct {
	projections.BatchApplier
	f         *failing
	partition int16
	applied   int
}

func (b *failingBatch) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	if err := b.BatchApplier.Apply(ctx, tx, ev); err != nil {
		return err
	}
	b.applied++
	return nil
}

func (b *failingBatch) Flush(ctx context.Context, tx pgx.Tx) error {
	if err := b.BatchApplier.Flush(ctx, tx); err != nil {
		return err
	}
	if b.applied > 0 && b.partition == b.f.partition && b.f.fail.Load() {
		b.f.failures.Add(1)
		return errCrash
	}
	return nil
}

// TestFailedBatchIsRepublishedAndDeduplicated: a batch that fails after its messages were published
// and acknowledged keeps its checkpoint and is tried again by the runner, publishing the same messages
// again each time — and the stream holds each of them once (dedupe by Nats-Msg-Id). Meanwhile the other
// partitions are relayed; once the failure stops, the batch commits, and every checkpoint has advanced
// over every event exactly once.
func TestFailedBatchIsRepublishedAndDeduplicated(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	tenants := history(t, ctx, db, 8)
	events := logEvents(t, ctx, db)
	url := natsURL(t)
	cfg := streamConfig(t, url)
	relay := connect(t, ctx, cfg)

	var sick int16
	inSick := 0
	for _, e := range events {
		if e.tenant == tenants[0] {
			sick = e.partition
		}
	}
	for _, e := range events {
		if e.partition == sick {
			inSick++
		}
	}
	const batchSize = 5
	require.Greater(t, inSick, batchSize, "the failing partition has more than one batch")

	f := &failing{Projection: relay, partition: sick}
	f.fail.Store(true)
	r := runner(t, db, &projections.Config{BatchSize: batchSize, PollIntervalMin: 5 * time.Millisecond,
		PollIntervalMax: 50 * time.Millisecond}, f)
	stop := run(t, ctx, r)

	// The other partitions commit; the failing batch is retried (with the runner's backoff).
	waitFor(t, ctx, "the other partitions and three failed attempts", func() bool {
		all, _ := processed(t, ctx, db, jetstream.Name, sick)
		return all == int64(len(events)-inSick) && f.failures.Load() >= 3
	})
	_, inPartition := processed(t, ctx, db, jetstream.Name, sick)
	require.Zero(t, inPartition, "the failing partition's checkpoint did not move")
	// Its first batch was published (and acknowledged) three times or more; the stream holds it once.
	msgs := streamMessages(t, ctx, url, cfg.Stream)
	require.Equal(t, len(events)-inSick+batchSize, len(msgs))
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(nats.MsgIdHdr)
		require.False(t, seen[id], "message %s stored twice", id)
		seen[id] = true
	}

	f.fail.Store(false)
	waitFor(t, ctx, "the failing partition to catch up", func() bool {
		all, _ := processed(t, ctx, db, jetstream.Name, sick)
		return all == int64(len(events))
	})
	stop()
	all, inPartition := processed(t, ctx, db, jetstream.Name, sick)
	require.Equal(t, int64(len(events)), all, "every checkpoint advanced over every event exactly once")
	require.Equal(t, int64(inSick), inPartition)
	requireEveryEventOnce(t, events, streamMessages(t, ctx, url, cfg.Stream), cfg.Subject)
}

// TestNATSDown: with the server stopped, every batch of the relay fails at once with a clear error
// (naming neither the URL's credentials nor anything else secret), no checkpoint of the relay moves, and
// the watermill-sql relay run beside it by the same runner catches up regardless. Once the server is
// back, the connection reconnects by itself and the relay catches up: every event once, in order.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 6)
	events := logEvents(t, ctx, db)
	srv := startNATS(t)
	cfg := streamConfig(t, srv.url())
	cfg.NatsOptions = []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}
	relayLogs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(relayLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	relay := connect(t, ctx, cfg)

	srv.stop()

	// A catch-up fails at its first batch, moving nothing.
	err := runner(t, db, nil, relay).CatchUp(ctx)
	t.Log(err)
	require.ErrorContains(t, err, "outbox.jetstream")
	require.ErrorContains(t, err, jetstream.ErrUnavailable.Error())
	require.NotContains(t, err.Error(), privatePassword)
	all, _ := processed(t, ctx, db, jetstream.Name, 0)
	require.Zero(t, all)

	// A runner of both relays: the watermill-sql one catches up, the JetStream one keeps failing.
	sqlRelay, err := outbox.New(nil)
	require.NoError(t, err)
	runnerLogs := &syncBuffer{}
	r := runner(t, db, &projections.Config{PollIntervalMin: 5 * time.Millisecond, PollIntervalMax: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(runnerLogs, nil))}, relay, sqlRelay)
	stop := run(t, ctx, r)
	waitFor(t, ctx, "the watermill-sql relay", func() bool {
		all, _ := processed(t, ctx, db, outbox.Name, 0)
		return all == int64(len(events))
	})
	all, _ = processed(t, ctx, db, jetstream.Name, 0)
	require.Zero(t, all, "no checkpoint of the JetStream relay moved")
	require.Contains(t, runnerLogs.String(), "projection=outbox.jetstream")
	require.Contains(t, runnerLogs.String(), jetstream.ErrUnavailable.Error())

	srv.start()
	waitFor(t, ctx, "the JetStream relay after the restart", func() bool {
		all, _ := processed(t, ctx, db, jetstream.Name, 0)
		return all == int64(len(events))
	})
	stop()
	requireEveryEventOnce(t, events, streamMessages(t, ctx, srv.url(), cfg.Stream), cfg.Subject)

	require.Contains(t, relayLogs.String(), "disconnected from NATS")
	require.Contains(t, relayLogs.String(), "reconnected to NATS")
	for _, logs := range []string{relayLogs.String(), runnerLogs.String()} {
		require.NotContains(t, logs, privatePassword)
	}
}

// TestCancelBetweenPublishAndCommit: a context cancelled after the publish, before the checkpoint's
// commit, rolls the batch back; the next run publishes the same messages again, and the stream holds
// each once.
func TestCancelBetweenPublishAndCommit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 3)
	url := natsURL(t)
	cfg := streamConfig(t, url)
	relay := connect(t, ctx, cfg)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &cancelling{Projection: relay, cancel: cancel}
	err := runner(t, db, &projections.Config{BatchSize: 4}, c).CatchUp(runCtx)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, c.done.Load())
	published := len(streamMessages(t, ctx, url, cfg.Stream))
	require.Positive(t, published)
	all, _ := processed(t, ctx, db, jetstream.Name, 0)
	require.Less(t, all, int64(published), "a published batch did not commit")

	require.NoError(t, runner(t, db, &projections.Config{BatchSize: 4}, relay).CatchUp(ctx))
	requireEveryEventOnce(t, logEvents(t, ctx, db), streamMessages(t, ctx, url, cfg.Stream), cfg.Subject)
}

// cancelling wraps the relay: the first Flush that publishes cancels the runner's context right after
// its last acknowledgement, so the runtime's checkpoint statement fails on the cancelled context.
type cancelling struct {
	*jetstream.Projection
	cancel context.CancelFunc
	done   atomic.Bool
}

func (c *cancelling) StartBatch(ctx context.Context, tx pgx.Tx, info *projections.BatchInfo) (projections.BatchApplier, error) {
	inner, err := c.Projection.StartBatch(ctx, tx, info)
	if err != nil {
		return nil, err
	}
	return &cancellingBatch{BatchApplier: inner, c: c}, nil
}

type cancellingBatch struct {
	projections.BatchApplier
	c       *cancelling
	applied int
}

func (b *cancellingBatch) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	if err := b.BatchApplier.Apply(ctx, tx, ev); err != nil {
		return err
	}
	b.applied++
	return nil
}

func (b *cancellingBatch) Flush(ctx context.Context, tx pgx.Tx) error {
	if err := b.BatchApplier.Flush(ctx, tx); err != nil {
		return err
	}
	if b.applied > 0 && b.c.done.CompareAndSwap(false, true) {
		b.c.cancel()
	}
	return nil
}
