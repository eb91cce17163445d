package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

func TestAppendAndReadStream(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()

	given := uuid.Must(uuid.NewV7())
	first := ev("thing.created", 1)
	first.ID = given
	first.Metadata = eventstore.Metadata{ActorType: "user", ActorID: "u-1", RequestID: "r-1", SourceIP: "127.0.0.1"}
	res, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), first, ev("thing.renamed", 2)))
	require.NoError(t, err)
	require.Equal(t, int64(2), res.NewVersion)
	require.Len(t, res.Positions, 2)
	require.Less(t, res.Positions[0], res.Positions[1])
	require.Equal(t, given, res.EventIDs[0])
	require.Equal(t, byte(7), res.EventIDs[1][6]>>4, "generated ids are UUIDv7")
	require.NotZero(t, res.TransactionID)
	require.Equal(t, eventstore.PartitionOf(tenant), res.Partition)

	res2, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(2), ev("thing.renamed", 3)))
	require.NoError(t, err)
	require.Equal(t, int64(3), res2.NewVersion)

	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Len(t, got.Events, 3)
	for i, e := range got.Events {
		require.Equal(t, int64(i+1), e.StreamVersion)
		require.Equal(t, tenant, e.TenantID)
		require.Equal(t, stream, e.StreamID)
		require.Equal(t, "test.stream", e.StreamType)
		require.Equal(t, eventstore.PartitionOf(tenant), e.Partition)
		require.Equal(t, int16(1), e.EventVersion)
		require.False(t, e.RecordedAt.IsZero())
		var p struct{ N int }
		require.NoError(t, json.Unmarshal(e.Payload, &p))
		require.Equal(t, i+1, p.N)
	}
	require.Equal(t, given, got.Events[0].EventID)
	require.Equal(t, "thing.created", got.Events[0].EventType)
	require.Equal(t, first.Metadata, got.Events[0].Metadata)
	require.Equal(t, res.TransactionID, got.Events[0].TransactionID)
	require.Equal(t, res.Positions[1], got.Events[1].GlobalPosition)

	page, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream, FromVersion: 2, Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Equal(t, int64(2), page.Events[0].StreamVersion)
}

func TestAppendExpectedVersion(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant := uuid.New()

	conflict := func(t *testing.T, err error, actual int64) {
		t.Helper()
		require.ErrorIs(t, err, eventstore.ErrVersionConflict)
		var vc *eventstore.VersionConflictError
		require.ErrorAs(t, err, &vc)
		require.Equal(t, actual, vc.Actual)
	}

	t.Run("NoStream", func(t *testing.T) {
		stream := uuid.New()
		_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1)))
		require.NoError(t, err)
		_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 2)))
		conflict(t, err, 1)
	})
	t.Run("StreamExists", func(t *testing.T) {
		stream := uuid.New()
		_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.StreamExists(), ev("a", 1)))
		conflict(t, err, 0)
		_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Any(), ev("a", 1)))
		require.NoError(t, err)
		res, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.StreamExists(), ev("a", 2)))
		require.NoError(t, err)
		require.Equal(t, int64(2), res.NewVersion)
	})
	t.Run("Exact", func(t *testing.T) {
		stream := uuid.New()
		res, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(0), ev("a", 1), ev("a", 2)))
		require.NoError(t, err)
		require.Equal(t, int64(2), res.NewVersion)
		_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(1), ev("a", 3)))
		conflict(t, err, 2)
		_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(3), ev("a", 3)))
		conflict(t, err, 2)
		require.EqualError(t, err, "eventstore: version conflict on stream "+stream.String()+": expected version 3, actual 2")
		res, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(2), ev("a", 3)))
		require.NoError(t, err)
		require.Equal(t, int64(3), res.NewVersion)
	})
	t.Run("SameStreamIDOtherTenant", func(t *testing.T) {
		// A stream is identified by (tenant, stream id): another tenant's stream is another stream.
		stream := uuid.New()
		_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1)))
		require.NoError(t, err)
		_, err = s.app.Append(ctx, appendParams(uuid.New(), stream, eventstore.NoStream(), ev("a", 1)))
		require.NoError(t, err)
	})
}

// TestAppendRace is the optimistic-concurrency race: 16 goroutines append to one stream at the same
// expected version; exactly one wins, the others get a conflict naming the actual version.
func TestAppendRace(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()
	_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("seed", 0)))
	require.NoError(t, err)

	const writers = 16
	start := make(chan struct{})
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(1), ev("race", i), ev("race", i)))
		}()
	}
	close(start)
	wg.Wait()

	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, eventstore.ErrVersionConflict)
		var vc *eventstore.VersionConflictError
		require.ErrorAs(t, err, &vc)
		require.Equal(t, stream, vc.StreamID)
		require.Equal(t, eventstore.Exact(1), vc.Expected)
		require.Equal(t, int64(3), vc.Actual, "the conflict names the version the winner left")
	}
	require.Equal(t, 1, won)

	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Len(t, got.Events, 3)
	for i, e := range got.Events {
		require.Equal(t, int64(i+1), e.StreamVersion)
	}
	require.Equal(t, got.Events[1].TransactionID, got.Events[2].TransactionID, "the winner's events are one transaction")
}

// TestAppendAnyConcurrent: Any never reports a conflict to the caller while its retries last; with
// four single-event writers a writer can lose at most three races.
func TestAppendAnyConcurrent(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()

	const writers = 4
	start := make(chan struct{})
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Any(), ev("any", i)))
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Len(t, got.Events, writers)
	for i, e := range got.Events {
		require.Equal(t, int64(i+1), e.StreamVersion)
	}
}

func TestAppendTx(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, user, roster := uuid.New(), uuid.New(), uuid.New()

	tx := beginRR(t, ctx, s.appPool)
	r1, err := s.app.AppendTx(ctx, tx, appendParams(tenant, user, eventstore.NoStream(), ev("user.created", 1)))
	require.NoError(t, err)
	r2, err := s.app.AppendTx(ctx, tx, &eventstore.AppendParams{
		TenantID: tenant, StreamType: "roster", StreamID: roster, Expected: eventstore.NoStream(),
		Events: []eventstore.EventData{ev("member.added", 1), ev("member.added", 2)},
	})
	require.NoError(t, err)
	require.Equal(t, r1.TransactionID, r2.TransactionID)

	// Inside the transaction the events are visible to it; outside they are not yet.
	inTx, err := s.app.ReadStreamTx(ctx, tx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: roster})
	require.NoError(t, err)
	require.Len(t, inTx.Events, 2)
	outside, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: roster})
	require.NoError(t, err)
	require.Empty(t, outside.Events)

	require.NoError(t, tx.Commit(ctx))
	s.app.Notify()
	outside, err = s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: roster})
	require.NoError(t, err)
	require.Len(t, outside.Events, 2)
	require.Equal(t, "roster", outside.Events[0].StreamType)
}

func TestAppendTxNeedsRepeatableRead(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()

	tx, err := s.appPool.Begin(ctx) // READ COMMITTED
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = s.app.AppendTx(ctx, tx, appendParams(tenant, stream, eventstore.Any(), ev("a", 1)))
	require.ErrorIs(t, err, eventstore.ErrIsolation)
	require.NoError(t, tx.Commit(ctx), "nothing failed in the transaction")

	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Empty(t, got.Events)

	ser, err := s.appPool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	require.NoError(t, err)
	defer func() { _ = ser.Rollback(ctx) }()
	_, err = s.app.AppendTx(ctx, ser, appendParams(tenant, stream, eventstore.Any(), ev("a", 1)))
	require.NoError(t, err)
	require.NoError(t, ser.Commit(ctx))
}

// TestAppendTxLostRace: a transaction that inserts the same version as a concurrent one waits for
// it, and gets a version conflict (actual unknown) when the other commits.
func TestAppendTxLostRace(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()

	first := beginRR(t, ctx, s.appPool)
	_, err := s.app.AppendTx(ctx, first, appendParams(tenant, stream, eventstore.NoStream(), ev("first", 1)))
	require.NoError(t, err)

	second := beginRR(t, ctx, s.appPool)
	var secondPID uint32
	require.NoError(t, second.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&secondPID))
	done := make(chan error, 1)
	go func() {
		_, err := s.app.AppendTx(ctx, second, appendParams(tenant, stream, eventstore.NoStream(), ev("second", 1)))
		done <- err
	}()
	waitForLockWait(t, ctx, s.adminPool, secondPID)
	require.NoError(t, first.Commit(ctx))

	err = <-done
	require.ErrorIs(t, err, eventstore.ErrVersionConflict)
	var vc *eventstore.VersionConflictError
	require.ErrorAs(t, err, &vc)
	require.Equal(t, eventstore.ActualVersionUnknown, vc.Actual)
	require.NotContains(t, err.Error(), "SQLSTATE", "no driver text")
}

// waitForLockWait waits until backend pid waits for a lock.
func waitForLockWait(t *testing.T, ctx context.Context, admin *pgxpool.Pool, pid uint32) {
	t.Helper()
	poll := newPoller(t, fmt.Sprintf("waiting for backend %d to wait for a lock", pid))
	for {
		var waiting bool
		require.NoError(t, admin.QueryRow(ctx,
			`SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting))
		if waiting {
			return
		}
		poll.next()
	}
}

func TestRollbackLeavesNoEvent(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()

	tx := beginRR(t, ctx, s.appPool)
	res, err := s.app.AppendTx(ctx, tx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1), ev("a", 2)))
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	var n int
	require.NoError(t, s.adminPool.QueryRow(ctx,
		`SELECT count(*) FROM userstore.events WHERE tenant_id = $1 OR event_id = ANY($2::text[]::uuid[])`,
		tenant, []string{res.EventIDs[0].String(), res.EventIDs[1].String()}).Scan(&n))
	require.Zero(t, n)

	// The versions are free again.
	res, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1)))
	require.NoError(t, err)
	require.Equal(t, int64(1), res.NewVersion)
}

func TestDuplicateEventID(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenant := uuid.New()
	id := uuid.Must(uuid.NewV7())

	e := ev("a", 1)
	e.ID = id
	_, err := s.app.Append(ctx, appendParams(tenant, uuid.New(), eventstore.NoStream(), e))
	require.NoError(t, err)

	other := uuid.New()
	_, err = s.app.Append(ctx, appendParams(tenant, other, eventstore.NoStream(), ev("b", 1), e))
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	require.NotContains(t, err.Error(), id.String())
	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: other})
	require.NoError(t, err)
	require.Empty(t, got.Events, "the whole append was rolled back")

	// Another tenant cannot reuse the id either: event ids are globally unique.
	_, err = s.app.Append(ctx, appendParams(uuid.New(), uuid.New(), eventstore.NoStream(), e))
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	small := newStore(t, s.appPool, &eventstore.Config{MaxPayloadBytes: 64, MaxEventsPerAppend: 3})
	tenant, stream := uuid.New(), uuid.New()
	dup := uuid.Must(uuid.NewV7())

	valid := func() *eventstore.AppendParams {
		return appendParams(tenant, stream, eventstore.Any(), ev("a", 1))
	}
	withPayload := func(p string) *eventstore.AppendParams {
		ap := valid()
		ap.Events[0].Payload = json.RawMessage(p)
		return ap
	}
	cases := []struct {
		name   string
		params *eventstore.AppendParams
		field  string
	}{
		{"nil params", nil, "AppendParams"},
		{"no tenant", func() *eventstore.AppendParams { p := valid(); p.TenantID = uuid.Nil; return p }(), "TenantID"},
		{"empty stream id", func() *eventstore.AppendParams { p := valid(); p.StreamID = uuid.Nil; return p }(), "StreamID"},
		{"empty stream type", func() *eventstore.AppendParams { p := valid(); p.StreamType = ""; return p }(), "StreamType"},
		{"oversized stream type", func() *eventstore.AppendParams { p := valid(); p.StreamType = strings.Repeat("s", 65); return p }(), "StreamType"},
		{"stream type charset", func() *eventstore.AppendParams { p := valid(); p.StreamType = "User"; return p }(), "StreamType"},
		{"unset expected version", func() *eventstore.AppendParams { p := valid(); p.Expected = eventstore.ExpectedVersion{}; return p }(), "Expected"},
		{"negative exact version", func() *eventstore.AppendParams { p := valid(); p.Expected = eventstore.Exact(-1); return p }(), "Expected"},
		{"no events", func() *eventstore.AppendParams { p := valid(); p.Events = nil; return p }(), "Events"},
		{"too many events", appendParams(tenant, stream, eventstore.Any(), ev("a", 1), ev("a", 2), ev("a", 3), ev("a", 4)), "Events"},
		{"empty event type", func() *eventstore.AppendParams { p := valid(); p.Events[0].Type = ""; return p }(), "Events[0].Type"},
		{"oversized event type", func() *eventstore.AppendParams { p := valid(); p.Events[0].Type = strings.Repeat("t", 129); return p }(), "Events[0].Type"},
		{"negative schema version", func() *eventstore.AppendParams { p := valid(); p.Events[0].SchemaVersion = -1; return p }(), "Events[0].SchemaVersion"},
		{"empty payload", withPayload(""), "Events[0].Payload"},
		{"payload not JSON", withPayload(`{"a":`), "Events[0].Payload"},
		{"payload not JSON either", withPayload(`hello`), "Events[0].Payload"},
		{"oversized payload", withPayload(`{"a":"` + strings.Repeat("x", 64) + `"}`), "Events[0].Payload"},
		{"payload with escaped NUL", withPayload(`{"a":"x\u0000y"}`), "Events[0].Payload"},
		{"payload with NUL in a key", withPayload(`{"\u0000":1}`), "Events[0].Payload"},
		{"payload with raw NUL", withPayload("{\"a\":\"x\x00\"}"), "Events[0].Payload"},
		{"payload not UTF-8", withPayload("{\"a\":\"\xff\"}"), "Events[0].Payload"},
		{"metadata with NUL", func() *eventstore.AppendParams { p := valid(); p.Events[0].Metadata.ActorID = "a\x00"; return p }(), "Events[0].Metadata.ActorID"},
		{"duplicate id in one append", func() *eventstore.AppendParams {
			p := appendParams(tenant, stream, eventstore.Any(), ev("a", 1), ev("a", 2))
			p.Events[0].ID, p.Events[1].ID = dup, dup
			return p
		}(), "Events[1].ID"},
		{"second event bad", appendParams(tenant, stream, eventstore.Any(), ev("a", 1), eventstore.EventData{Type: "b", Payload: json.RawMessage("nope")}), "Events[1].Payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := small.Append(ctx, tc.params)
			require.ErrorIs(t, err, eventstore.ErrValidation)
			var ve *eventstore.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)

			tx := beginRR(t, ctx, s.appPool)
			_, err = small.AppendTx(ctx, tx, tc.params)
			require.ErrorIs(t, err, eventstore.ErrValidation)
			require.NoError(t, tx.Commit(ctx))
		})
	}

	var n int
	require.NoError(t, s.adminPool.QueryRow(ctx, `SELECT count(*) FROM userstore.events WHERE tenant_id = $1`, tenant).Scan(&n))
	require.Zero(t, n, "nothing was written")

	// The default limit is 1 MiB.
	big := `{"a":"` + strings.Repeat("x", eventstore.MaxPayloadBytesDefault) + `"}`
	_, err := s.app.Append(ctx, appendParams(tenant, stream, eventstore.Any(), eventstore.EventData{Type: "big", Payload: json.RawMessage(big)}))
	require.ErrorIs(t, err, eventstore.ErrValidation)

	// What looks like a NUL escape but is an escaped backslash followed by "u0000" is fine.
	res, err := small.Append(ctx, withPayload(`{"a":"\\u0000"}`))
	require.NoError(t, err)
	got, err := small.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Len(t, got.Events, 1)
	require.JSONEq(t, `{"a":"\\u0000"}`, string(got.Events[0].Payload))
	require.Equal(t, res.EventIDs[0], got.Events[0].EventID)

	// The read side validates too.
	_, err = s.app.ReadStream(ctx, &eventstore.ReadStreamParams{StreamID: stream})
	require.ErrorIs(t, err, eventstore.ErrValidation)
	_, err = s.app.ReadAll(ctx, &eventstore.ReadAllParams{Limit: eventstore.ReadLimitMax + 1})
	require.ErrorIs(t, err, eventstore.ErrValidation)
	p := int16(eventstore.Partitions)
	_, err = s.app.ReadAll(ctx, &eventstore.ReadAllParams{Partition: &p})
	require.ErrorIs(t, err, eventstore.ErrValidation)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	pool := pgtest.AppPool(t)
	_, err := eventstore.New(nil, nil)
	require.Error(t, err)
	for _, tc := range []struct {
		cfg   *eventstore.Config
		field string
	}{
		{&eventstore.Config{MaxPayloadBytes: -1}, "Config.MaxPayloadBytes"},
		{&eventstore.Config{MaxEventsPerAppend: -1}, "Config.MaxEventsPerAppend"},
		{&eventstore.Config{PollIntervalMin: -1}, "Config.PollIntervalMin"},
		{&eventstore.Config{PollIntervalMax: -1}, "Config.PollIntervalMax"},
		{&eventstore.Config{PollIntervalMin: time.Minute, PollIntervalMax: time.Second}, "Config.PollIntervalMin"},
	} {
		_, err := eventstore.New(pool, tc.cfg)
		require.ErrorContains(t, err, tc.field)
	}
	d := (*eventstore.Config)(nil).WithDefaults()
	require.Equal(t, eventstore.MaxPayloadBytesDefault, d.MaxPayloadBytes)
	require.Equal(t, eventstore.MaxEventsPerAppendDefault, d.MaxEventsPerAppend)
	require.Equal(t, eventstore.PollIntervalMinDefault, d.PollIntervalMin)
	require.Equal(t, eventstore.PollIntervalMaxDefault, d.PollIntervalMax)
	require.NotNil(t, d.Logger)
}

func TestPartitionOf(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("0193a2f0-7c1e-7b3a-9d4e-5f6a7b8c9d0e")
	require.Equal(t, eventstore.PartitionOf(id), eventstore.PartitionOf(id))
	seen := map[int16]bool{}
	for range 2000 {
		p := eventstore.PartitionOf(uuid.New())
		require.GreaterOrEqual(t, p, int16(0))
		require.Less(t, p, int16(eventstore.Partitions))
		seen[p] = true
	}
	require.Len(t, seen, eventstore.Partitions, "2000 random tenants cover every partition")
	// Pinned values: the partition is stored, so the function must never change.
	require.Equal(t, int16(fnvPartition(id)), eventstore.PartitionOf(id))
}

// fnvPartition is an independent FNV-1a reference implementation.
func fnvPartition(id uuid.UUID) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(id[:])
	return h.Sum32() % eventstore.Partitions
}
