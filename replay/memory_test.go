package replay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/replay"
)

// Shape of the synthetic log of TestAuditReplayMemoryIsBounded: memTenants tenants, each with its
// tenant.created event and memUsers users of memEventsPerUser events — 1,000,008 events in all.
const (
	memTenants       = 8
	memUsers         = 25_000
	memEventsPerUser = 5
	memChunkUsers    = 2_500 // users per inserting transaction (100,000 events)
	// memHeapBound bounds the peak of live heap objects during the replay. The replay holds one batch of
	// events (BatchSizeDefault × ~1 KiB) and its garbage; keeping the trail instead would cost at least
	// 1M × ~400 B of records (~400 MB), the events themselves well over 1 GB. A leak of a few hundred
	// bytes per event fails the test.
	memHeapBound = 64 << 20
)

// TestAuditReplayMemoryIsBounded replays the audit trail of a log of over a million events (several
// tenants, users with five events each, interleaved across tenants and written by ten transactions) and
// checks that the live heap stays bounded while it does. The events are valid domain events (built from
// the codec's encoding; the replay decodes, chains and hashes every one), inserted as the superuser —
// the log's row-level security admits no other role that could — into a private database.
func TestAuditReplayMemoryIsBounded(t *testing.T) {
	// Not parallel: the heap is the process's, and parallel tests start only after this one ends.
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute) // a loaded machine, the race detector
	defer cancel()
	db := pgtest.NewDatabase(t, nil)
	start := time.Now()
	tenants, total := insertSyntheticLog(t, ctx, db)
	t.Logf("inserted %d events in %s", total, time.Since(start).Round(time.Millisecond))

	r, err := replay.New(db.Pool(t, pgtest.Projector), nil)
	require.NoError(t, err)
	runtime.GC()
	peak := sampleHeap(t)

	start, cpu := time.Now(), cpuTime(t)
	var records int64
	var lastHash string
	for _, tenant := range tenants {
		res, err := r.Audit(ctx, &replay.AuditParams{TenantID: tenant}, func(rec *userstore.AuditRecord) error {
			records++
			lastHash = rec.Hash
			return nil
		})
		require.NoError(t, err)
		require.EqualValues(t, 1+memUsers*memEventsPerUser, res.Events)
	}
	elapsed, cpuUsed := time.Since(start), cpuTime(t)-cpu
	heap := peak()
	require.EqualValues(t, total, records)
	require.Len(t, lastHash, 64)
	t.Logf("replayed %d events in %s: %.0f events/s, client CPU %.1f µs/event; peak live heap %.1f MiB (bound %d MiB)",
		records, elapsed.Round(time.Millisecond), float64(records)/elapsed.Seconds(),
		float64(cpuUsed.Microseconds())/float64(records), float64(heap)/(1<<20), memHeapBound>>20)
	require.Less(t, heap, uint64(memHeapBound), "peak live heap while replaying")
}

// cpuTime returns the CPU time (user and system) the process has used so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sampleHeap samples the live heap (runtime/metrics: bytes of heap objects, without stopping the world)
// every few milliseconds until the returned function is called, which returns the peak.
func sampleHeap(t *testing.T) func() uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	read := func() {
		metrics.Read(s)
		peak = max(peak, s[0].Value.Uint64())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				read()
				return
			case <-tick.C:
				read()
			}
		}
	}()
	var once sync.Once
	stop := func() uint64 {
		once.Do(func() { close(done); wg.Wait() })
		return peak
	}
	t.Cleanup(func() { stop() })
	return stop
}

// insertSyntheticLog writes the synthetic log and returns its tenants and event count. The events are
// built in the database (one INSERT … SELECT per memChunkUsers users, a transaction each) from payload
// templates that the domain codec encodes: each row is a template with its ids, names and time
// overwritten (jsonb ||), so its fields are the codec's; and the replay decodes every one with the
// domain's registry, which rejects unknown fields. Building the rows server-side keeps the test's own
// CPU (and the race detector's cost) out of the insertion.
func insertSyntheticLog(t *testing.T, ctx context.Context, db *pgtest.Database) ([]uuid.UUID, int64) {
	t.Helper()
	tenants := make([]uuid.UUID, memTenants)
	partitions := make([]int16, memTenants)
	meta := make([]string, memTenants)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	admin := db.Pool(t, pgtest.Admin)
	encode := func(ev domain.Event) domain.Encoded {
		enc, err := domain.Encode(ev)
		require.NoError(t, err)
		return enc
	}
	var created [][]any
	for i := range tenants {
		tenants[i] = uuid.New()
		partitions[i] = eventstore.PartitionOf(tenants[i])
		m, err := json.Marshal(logcodec.StoreMetadata(domain.Metadata{
			Actor:     userstore.Actor{Type: userstore.ActorService, ID: fmt.Sprintf("loader-%d", i)},
			RequestID: fmt.Sprintf("bulk-%d", i), Command: "CreateUser"}))
		require.NoError(t, err)
		meta[i] = string(m)
		enc := encode(domain.TenantCreated{TenantID: tenants[i], Slug: "m-" + tenants[i].String()[:8], Name: "M", At: base})
		created = append(created, []any{tenants[i], string(domain.StreamTenant), tenants[i], int64(1), partitions[i],
			uuid.New(), enc.Type, int16(enc.SchemaVersion), json.RawMessage(enc.Payload), json.RawMessage(m)})
	}
	columns := []string{"tenant_id", "stream_type", "stream_id", "stream_version", "partition", "event_id",
		"event_type", "event_version", "payload", "metadata"}
	n, err := admin.CopyFrom(ctx, pgx.Identifier{"userstore", "events"}, columns, pgx.CopyFromRows(created))
	require.NoError(t, err)
	total := n

	tenantTexts := make([]string, len(tenants))
	for i, id := range tenants {
		tenantTexts[i] = id.String()
	}
	// A user's five events, as the codec encodes them (the values are overwritten per row).
	sample := uuid.New()
	var (
		versions  []int64
		types     []string
		schemas   []int16
		templates []string
	)
	for i, ev := range []domain.Event{
		domain.UserCreated{UserID: sample, TenantID: sample, DisplayName: "x", Email: "x@example.com", At: base},
		domain.UserProfileUpdated{DisplayName: "x", At: base},
		domain.UserProfileUpdated{DisplayName: "x", At: base},
		domain.UserDisabled{At: base},
		domain.UserEnabled{At: base},
	} {
		enc := encode(ev)
		versions, types, schemas = append(versions, int64(i+1)), append(types, enc.Type), append(schemas, int16(enc.SchemaVersion))
		templates = append(templates, string(enc.Payload))
	}
	for from := 0; from < memUsers; from += memChunkUsers {
		tag, err := admin.Exec(ctx, sqlSyntheticUsers, from, min(from+memChunkUsers, memUsers), tenantTexts, partitions, meta,
			versions, types, schemas, templates)
		require.NoError(t, err)
		total += tag.RowsAffected()
	}
	// The replay reads below the horizon: wait until the inserting transactions are all below it.
	require.NoError(t, pgstoreSync(t, ctx, db))
	return tenants, total
}

// sqlSyntheticUsers inserts the events of users $1 ≤ u < $2 of every tenant ($3, their partitions $4
// and metadata $5): user u's events in a row, the tenants interleaved, in this order of global
// position. A user's id is derived from (tenant, u); the templates ($6..$9: version, type, schema
// version, payload) get the user's values.
const sqlSyntheticUsers = `
INSERT INTO userstore.events (tenant_id, stream_type, stream_id, stream_version, partition, event_id,
                              event_type, event_version, payload, metadata)
SELECT t.tenant_id, 'user', s.user_id, v.version, t.partition, gen_random_uuid(), v.event_type, v.event_version,
       v.template || CASE v.version
           WHEN 1 THEN jsonb_build_object('user_id', s.user_id, 'tenant_id', t.tenant_id, 'display_name', 'User ' || g.u,
                                          'email', 'u' || g.u || '@t' || t.ord || '.example', 'at', s.at)
           WHEN 2 THEN jsonb_build_object('display_name', 'User ' || g.u || ' (a)', 'at', s.at)
           WHEN 3 THEN jsonb_build_object('display_name', 'User ' || g.u || ' (b)', 'at', s.at)
           ELSE jsonb_build_object('at', s.at)
       END,
       t.metadata
  FROM generate_series($1::int4, $2::int4 - 1) AS g(u)
 CROSS JOIN unnest($3::text[]::uuid[], $4::int2[], $5::text[]::jsonb[]) WITH ORDINALITY AS t(tenant_id, partition, metadata, ord)
 CROSS JOIN LATERAL (
       SELECT md5(t.tenant_id::text || '/' || g.u)::uuid AS user_id,
              to_char((timestamptz '2025-01-01 00:00:00+00' + g.u * interval '1 millisecond') AT TIME ZONE 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
       ) AS s
 CROSS JOIN unnest($6::int8[], $7::text[], $8::int2[], $9::text[]::jsonb[]) AS v(version, event_type, event_version, template)
 ORDER BY g.u, t.ord, v.version`
