package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// runner returns a Runner of p on db, as the projector role.
func runner(t *testing.T, db *pgtest.Database, p projections.Projection, cfg *projections.Config) *projections.Runner {
	t.Helper()
	pool := db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, st, []projections.Projection{p}, cfg)
	require.NoError(t, err)
	return r
}

// history writes a varied history for a few tenants through the durable store (as the app role) and
// returns the tenants.
func history(t *testing.T, ctx context.Context, db *pgtest.Database, tenants int) []uuid.UUID {
	t.Helper()
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	out := workload.History(t, ctx, s, tenants)
	require.NoError(t, s.Sync(ctx))
	return out
}

// logEvent is an event of the log as the test expects its message.
type logEvent struct {
	tenant, stream uuid.UUID
	streamType     string
	version        int64
	position       int64
	eventType      string
}

// logEvents reads the whole log (as the admin role).
func logEvents(t *testing.T, ctx context.Context, db *pgtest.Database) map[uuid.UUID]logEvent {
	t.Helper()
	rows, err := db.Pool(t, pgtest.Admin).Query(ctx, `
		SELECT event_id, tenant_id, stream_type, stream_id, stream_version, global_position, event_type
		  FROM userstore.events`)
	require.NoError(t, err)
	out := map[uuid.UUID]logEvent{}
	for rows.Next() {
		var (
			id uuid.UUID
			e  logEvent
		)
		require.NoError(t, rows.Scan(&id, &e.tenant, &e.streamType, &e.stream, &e.version, &e.position, &e.eventType))
		out[id] = e
	}
	require.NoError(t, rows.Err())
	return out
}

// row is a row of the topic table.
type row struct {
	uuid     string
	payload  []byte
	metadata map[string]string
}

// topicRows reads the topic table in delivery order (transaction_id, offset — a subscriber's order), as
// the projector role.
func topicRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []row {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT uuid, payload::text, metadata::text FROM `+outbox.TableName(outbox.DefaultTopic)+
		` ORDER BY transaction_id, "offset"`)
	require.NoError(t, err)
	var out []row
	for rows.Next() {
		var (
			r        row
			payload  string
			metadata string
		)
		require.NoError(t, rows.Scan(&r.uuid, &payload, &metadata))
		r.payload = []byte(payload)
		require.NoError(t, json.Unmarshal([]byte(metadata), &r.metadata))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// requireExactlyOnce checks the topic table against the log: one message per event (UUID = event id),
// with the event's envelope in its metadata, and each stream's messages in version order 1, 2, 3, ….
func requireExactlyOnce(t *testing.T, ctx context.Context, db *pgtest.Database) {
	t.Helper()
	events := logEvents(t, ctx, db)
	got := topicRows(t, ctx, db.Pool(t, pgtest.Projector))
	require.Len(t, got, len(events))
	seen := map[string]bool{}
	next := map[uuid.UUID]int64{} // per stream: the version expected next
	for _, r := range got {
		require.False(t, seen[r.uuid], "message %s delivered twice", r.uuid)
		seen[r.uuid] = true
		e, ok := events[uuid.MustParse(r.uuid)]
		require.True(t, ok, "message %s is no event of the log", r.uuid)
		require.Equal(t, map[string]string{
			outbox.MetaTenantID:         e.tenant.String(),
			outbox.MetaAggregateType:    e.streamType,
			outbox.MetaAggregateID:      e.stream.String(),
			outbox.MetaAggregateVersion: strconv.FormatInt(e.version, 10),
			outbox.MetaType:             domain.OutboxType(e.eventType),
			outbox.MetaPosition:         strconv.FormatInt(e.position, 10),
			outbox.MetaOccurredAt:       r.metadata[outbox.MetaOccurredAt],
		}, r.metadata)
		_, err := time.Parse(time.RFC3339Nano, r.metadata[outbox.MetaOccurredAt])
		require.NoError(t, err)
		require.True(t, json.Valid(r.payload))
		require.NotContains(t, string(r.payload), "@example.com", "no PII in the public payload")
		if next[e.stream] == 0 {
			next[e.stream] = 1
		}
		require.Equal(t, next[e.stream], e.version, "stream %s out of order", e.stream)
		next[e.stream]++
	}
}

// TestEveryEventExactlyOnceInStreamOrder: after CatchUp, the topic table holds one message per event of
// the log, in each stream's version order; a second CatchUp publishes nothing more.
func TestEveryEventExactlyOnceInStreamOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 3)

	relay, err := outbox.New(nil)
	require.NoError(t, err)
	require.Equal(t, outbox.DefaultTopic, relay.Topic())
	r := runner(t, db, relay, &projections.Config{BatchSize: 4})
	require.NoError(t, r.CatchUp(ctx))
	requireExactlyOnce(t, ctx, db)

	require.NoError(t, r.CatchUp(ctx))
	requireExactlyOnce(t, ctx, db)

	// Events appended later follow, still exactly once.
	history(t, ctx, db, 1)
	require.NoError(t, r.CatchUp(ctx))
	requireExactlyOnce(t, ctx, db)
}

// TestPayloadIsThePublicEvent: a message's payload is domain.Outbox's public body.
func TestPayloadIsThePublicEvent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	tenants := history(t, ctx, db, 1)

	relay, err := outbox.New(nil)
	require.NoError(t, err)
	require.NoError(t, runner(t, db, relay, nil).CatchUp(ctx))

	var created map[string]any
	for _, r := range topicRows(t, ctx, db.Pool(t, pgtest.Projector)) {
		if r.metadata[outbox.MetaType] == domain.OutboxType(domain.EventTenantCreated) {
			require.NoError(t, json.Unmarshal(r.payload, &created))
		}
	}
	require.Equal(t, tenants[0].String(), created["tenant_id"])
	require.Equal(t, "t-"+tenants[0].String()[24:], created["slug"])
}

// failing wraps the relay: while fail says so, its Flush publishes (the inner Flush) and then fails, as a
// crash between the publish and the checkpoint would.
type failing struct {
	*outbox.Projection
	fail      func() bool
	published atomic.Int64 // messages the failed flushes had published in their transactions
}

func (f *failing) StartBatch(ctx context.Context, tx pgx.Tx, info *projections.BatchInfo) (projections.BatchApplier, error) {
	inner, err := f.Projection.StartBatch(ctx, tx, info)
	if err != nil {
		return nil, err
	}
	return &failingBatch{BatchApplier: inner, f: f}, nil
}

type failingBatch struct {
	projections.BatchApplier
	f *failing
}

var errCrash = errors.New("crash after publish")

func (b *failingBatch) Flush(ctx context.Context, tx pgx.Tx) error {
	if err := b.BatchApplier.Flush(ctx, tx); err != nil {
		return err
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+outbox.TableName(outbox.DefaultTopic)+
		` WHERE transaction_id = pg_current_xact_id_if_assigned()`).Scan(&n); err != nil {
		return err
	}
	if n > 0 && b.f.fail() {
		b.f.published.Add(n)
		return errCrash
	}
	return nil
}

// TestCrashBetweenPublishAndCheckpoint: a batch that fails after it published its messages, before the
// checkpoint moved, rolls back entirely — its messages with it — and is redone after the restart: every
// message is in the table exactly once.
func TestCrashBetweenPublishAndCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 3)
	proj := db.Pool(t, pgtest.Projector)

	relay, err := outbox.New(nil)
	require.NoError(t, err)

	// Every batch crashes after publishing: nothing is handed off, no checkpoint moves.
	always := &failing{Projection: relay, fail: func() bool { return true }}
	err = runner(t, db, always, &projections.Config{BatchSize: 4}).CatchUp(ctx)
	require.ErrorContains(t, err, errCrash.Error())
	require.Positive(t, always.published.Load(), "a batch published before it failed")
	require.Empty(t, topicRows(t, ctx, proj))
	var checkpoints int
	require.NoError(t, proj.QueryRow(ctx, `SELECT count(*) FROM userstore.projection_checkpoints WHERE projection = $1`,
		outbox.Name).Scan(&checkpoints))
	require.Zero(t, checkpoints)

	// The second batch that publishes crashes; the others commit.
	var flushes atomic.Int64
	once := &failing{Projection: relay, fail: func() bool { return flushes.Add(1) == 2 }}
	err = runner(t, db, once, &projections.Config{BatchSize: 4}).CatchUp(ctx)
	require.ErrorContains(t, err, errCrash.Error())
	require.Positive(t, once.published.Load())

	// The restart redoes the failed batch (and the rest): exactly once.
	require.NoError(t, runner(t, db, relay, &projections.Config{BatchSize: 4}).CatchUp(ctx))
	requireExactlyOnce(t, ctx, db)
}

// TestUndecodableEventIsParked: an event the domain cannot decode publishes nothing and is parked with
// its tenant's later events; the other tenant's messages are all published.
func TestUndecodableEventIsParked(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	tenants := history(t, ctx, db, 2)
	app, err := eventstore.New(db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	sick := tenants[0]
	res, err := app.Append(ctx, &eventstore.AppendParams{TenantID: sick, StreamType: "tenant", StreamID: sick,
		Expected: eventstore.Any(), Events: []eventstore.EventData{{Type: "tenant.exploded", Payload: []byte(`{"secret": "x"}`)}}})
	require.NoError(t, err)
	bogus := res.EventIDs[0]
	// A later event of the sick tenant waits behind the bogus one.
	enc, err := domain.Encode(domain.TenantRenamed{Name: "T2", At: time.Now().UTC().Truncate(time.Microsecond)})
	require.NoError(t, err)
	res, err = app.Append(ctx, &eventstore.AppendParams{TenantID: sick, StreamType: string(domain.StreamTenant), StreamID: sick,
		Expected: eventstore.Any(), Events: []eventstore.EventData{{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion),
			Payload: enc.Payload, Metadata: logcodec.StoreMetadata(domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorUser, ID: "u-1"}})}}})
	require.NoError(t, err)
	renamed := res.EventIDs[0]

	relay, err := outbox.New(nil)
	require.NoError(t, err)
	r := runner(t, db, relay, &projections.Config{RetryBackoffMin: time.Hour, RetryBackoffMax: time.Hour})
	require.NoError(t, r.CatchUp(ctx))

	proj := db.Pool(t, pgtest.Projector)
	got := topicRows(t, ctx, proj)
	events := logEvents(t, ctx, db)
	require.Len(t, got, len(events)-2)
	for _, m := range got {
		require.NotContains(t, []string{bogus.String(), renamed.String()}, m.uuid)
	}
	dl, err := r.DeadLetters(ctx, &projections.DeadLettersParams{Projection: outbox.Name, TenantID: sick})
	require.NoError(t, err)
	require.Len(t, dl.DeadLetters, 2)
	require.Equal(t, bogus, dl.DeadLetters[0].EventID)
	require.Equal(t, renamed, dl.DeadLetters[1].EventID)
	require.NotContains(t, dl.DeadLetters[0].Error, "secret")

	// Skipping the bogus event publishes the one behind it (in the operator's transaction), last.
	_, err = r.Skip(ctx, &projections.SkipParams{Projection: outbox.Name, TenantID: sick, EventID: bogus, By: "ops"})
	require.NoError(t, err)
	got = topicRows(t, ctx, proj)
	require.Len(t, got, len(events)-1)
	require.Equal(t, renamed.String(), got[len(got)-1].uuid)
}

// TestConfig: a topic must make a valid table name.
func TestConfig(t *testing.T) {
	t.Parallel()
	p, err := outbox.New(&outbox.Config{Topic: "other.topic"})
	require.NoError(t, err)
	require.Equal(t, "other.topic", p.Topic())
	require.Equal(t, `"userstore"."watermill_other.topic"`, outbox.TableName("other.topic"))
	for _, bad := range []string{"a b", `x";drop`, string(make([]byte, 54))} {
		_, err := outbox.New(&outbox.Config{Topic: bad})
		require.ErrorIs(t, err, projections.ErrValidation, bad)
	}
}

// cancelling wraps the relay: the first Flush that publishes cancels the runner's context right after
// publishing, so the runtime's checkpoint statement fails on the cancelled context.
type cancelling struct {
	*outbox.Projection
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
	c *cancelling
}

func (b *cancellingBatch) Flush(ctx context.Context, tx pgx.Tx) error {
	if err := b.BatchApplier.Flush(ctx, tx); err != nil {
		return err
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+outbox.TableName(outbox.DefaultTopic)+
		` WHERE transaction_id = pg_current_xact_id_if_assigned()`).Scan(&n); err != nil {
		return err
	}
	if n > 0 && b.c.done.CompareAndSwap(false, true) {
		b.c.cancel()
	}
	return nil
}

// TestCancelBetweenPublishAndCheckpoint: a context cancelled after the publish, before the checkpoint
// moved, rolls the batch back; the next run publishes every message exactly once.
func TestCancelBetweenPublishAndCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 3)

	relay, err := outbox.New(nil)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &cancelling{Projection: relay, cancel: cancel}
	err = runner(t, db, c, &projections.Config{BatchSize: 4}).CatchUp(runCtx)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, c.done.Load())

	require.NoError(t, runner(t, db, relay, &projections.Config{BatchSize: 4}).CatchUp(ctx))
	requireExactlyOnce(t, ctx, db)
}
