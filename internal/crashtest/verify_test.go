package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// The consistency queries read the tables as the superuser (past row-level security), all in one
// REPEATABLE READ snapshot, so that they see every committed transaction whole while the writers go on.
const (
	// sqlGaps: streams whose versions are not exactly 1..n.
	sqlGaps = `
SELECT stream_id, count(*), min(stream_version), max(stream_version)
  FROM userstore.events
 WHERE tenant_id = ANY($1)
 GROUP BY tenant_id, stream_id
HAVING min(stream_version) <> 1 OR max(stream_version) <> count(*)`

	// sqlKeyTwice: idempotency keys whose events come from more than one transaction (or attempt).
	sqlKeyTwice = `
SELECT metadata->>'idempotency_key', count(DISTINCT transaction_id), count(DISTINCT metadata->>'request_id')
  FROM userstore.events
 WHERE tenant_id = ANY($1) AND metadata ? 'idempotency_key'
 GROUP BY tenant_id, metadata->>'idempotency_key'
HAVING count(DISTINCT transaction_id) > 1 OR count(DISTINCT metadata->>'request_id') > 1`

	// sqlRowVersions: the streams of a type whose read row is missing or not at the stream's version
	// (and read rows without a stream). %s is the read table and its id column.
	sqlRowVersions = `
WITH s AS (
    SELECT tenant_id, stream_id, max(stream_version) AS v
      FROM userstore.events
     WHERE tenant_id = ANY($1) AND stream_type = $2
     GROUP BY tenant_id, stream_id),
r AS (SELECT tenant_id, %[2]s AS id, version FROM userstore.%[1]s WHERE tenant_id = ANY($1))
SELECT coalesce(s.stream_id, r.id), s.v, r.version
  FROM s FULL JOIN r ON r.tenant_id = s.tenant_id AND r.id = s.stream_id
 WHERE s.v IS DISTINCT FROM r.version`

	sqlUsers    = `SELECT tenant_id, id, email, status FROM userstore.users WHERE tenant_id = ANY($1)`
	sqlAccounts = `SELECT tenant_id, id, login_name, status FROM userstore.accounts WHERE tenant_id = ANY($1)`
	sqlClaims   = `SELECT tenant_id, kind, value, owner_type, owner_id FROM userstore.claims WHERE tenant_id = ANY($1)`

	// sqlKeys: the idempotency records and the keys found in the log.
	sqlIdempotency = `SELECT tenant_id, key, result IS NOT NULL FROM userstore.idempotency_keys WHERE tenant_id = ANY($1)`
	sqlLogKeys     = `
SELECT DISTINCT tenant_id, metadata->>'idempotency_key'
  FROM userstore.events
 WHERE tenant_id = ANY($1) AND metadata ? 'idempotency_key'`

	sqlEvents = `
SELECT tenant_id, stream_type, stream_id, stream_version, event_id, transaction_id::text,
       coalesce(metadata->>'idempotency_key', ''), coalesce(metadata->>'request_id', '')
  FROM userstore.events`
	sqlEventCount = `SELECT count(*) FROM userstore.events`
)

// consistency checks a snapshot of the tenants' tables: contiguous stream versions; each key's events
// from one transaction; each user, account and tenant stream with its read row at the stream's version
// (and no row without a stream); each live entity holding exactly its claim; an idempotency record for
// each key in the log and none without events. A transaction applied in part breaks one of these.
func consistency(t *testing.T, ctx context.Context, admin *pgxpool.Pool, tenants []uuid.UUID) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	tx, err := admin.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	scan := func(sql string, args []any, each func(pgx.Rows) error) {
		rows, err := tx.Query(ctx, sql, args...)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			require.NoError(t, each(rows))
		}
		require.NoError(t, rows.Err())
	}

	scan(sqlGaps, []any{tenants}, func(r pgx.Rows) error {
		var id uuid.UUID
		var n, lo, hi int64
		err := r.Scan(&id, &n, &lo, &hi)
		bad("GAP: stream %s: %d events with versions %d..%d (not contiguous from 1)", id, n, lo, hi)
		return err
	})
	scan(sqlKeyTwice, []any{tenants}, func(r pgx.Rows) error {
		var key string
		var txs, reqs int64
		err := r.Scan(&key, &txs, &reqs)
		bad("DUPLICATE: op %s applied twice: events from %d transactions, %d attempts", key, txs, reqs)
		return err
	})
	for _, rt := range []struct{ stream, table, id string }{
		{string(domain.StreamTenant), "tenants", "tenant_id"},
		{string(domain.StreamUser), "users", "id"},
		{string(domain.StreamAccount), "accounts", "id"},
	} {
		scan(fmt.Sprintf(sqlRowVersions, rt.table, rt.id), []any{tenants, rt.stream}, func(r pgx.Rows) error {
			var id uuid.UUID
			var sv, rv *int64
			err := r.Scan(&id, &sv, &rv)
			bad("HALF: %s %s: stream at version %s, read row at version %s", rt.stream, id, ptr(sv), ptr(rv))
			return err
		})
	}

	// Claims: every live user holds the key of its email, every open account that of its login name,
	// and no claim is held by anything else.
	type claimKey struct {
		tenant      uuid.UUID
		kind, value string
	}
	type owner struct {
		typ string
		id  uuid.UUID
	}
	want := map[claimKey]owner{}
	scan(sqlUsers, []any{tenants}, func(r pgx.Rows) error {
		var tenant, id uuid.UUID
		var email, status string
		err := r.Scan(&tenant, &id, &email, &status)
		if status != "deleted" && email != "" {
			want[claimKey{tenant, "email", domain.EmailKey(email)}] = owner{string(domain.StreamUser), id}
		}
		return err
	})
	scan(sqlAccounts, []any{tenants}, func(r pgx.Rows) error {
		var tenant, id uuid.UUID
		var login, status string
		err := r.Scan(&tenant, &id, &login, &status)
		if status != "closed" {
			want[claimKey{tenant, "login_name", domain.LoginKey(login)}] = owner{string(domain.StreamAccount), id}
		}
		return err
	})
	scan(sqlClaims, []any{tenants}, func(r pgx.Rows) error {
		var k claimKey
		var o owner
		err := r.Scan(&k.tenant, &k.kind, &k.value, &o.typ, &o.id)
		w, ok := want[k]
		switch {
		case !ok:
			bad("HALF: a %s claim held by %s %s belongs to no live entity's current value", k.kind, o.typ, o.id)
		case w != o:
			bad("HALF: a %s claim is held by %s %s, not by %s %s", k.kind, o.typ, o.id, w.typ, w.id)
		}
		delete(want, k)
		return err
	})
	for k, o := range want {
		bad("HALF: %s %s holds no %s claim for its current value", o.typ, o.id, k.kind)
	}

	// Idempotency records: one per key in the log, none without events, each with its result.
	type tenantKey struct {
		tenant uuid.UUID
		key    string
	}
	logKeys := map[tenantKey]bool{}
	scan(sqlLogKeys, []any{tenants}, func(r pgx.Rows) error {
		var k tenantKey
		err := r.Scan(&k.tenant, &k.key)
		logKeys[k] = true
		return err
	})
	scan(sqlIdempotency, []any{tenants}, func(r pgx.Rows) error {
		var k tenantKey
		var hasResult bool
		err := r.Scan(&k.tenant, &k.key, &hasResult)
		switch {
		case !logKeys[k]:
			bad("HALF: idempotency key %s is recorded but no event carries it", k.key)
		case !hasResult:
			bad("HALF: idempotency key %s is recorded without a result", k.key)
		}
		delete(logKeys, k)
		return err
	})
	for k := range logKeys {
		bad("HALF: op %s has events but no idempotency record", k.key)
	}
	return problems
}

func ptr(v *int64) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(*v)
}

// logEvent is one event of the log, as the checks need it.
type logEvent struct {
	tenant, stream, id uuid.UUID
	streamType         string
	version            int64
	txid, key, request string
}

func readLog(t *testing.T, ctx context.Context, admin *pgxpool.Pool) []logEvent {
	t.Helper()
	rows, err := admin.Query(ctx, sqlEvents)
	require.NoError(t, err)
	defer rows.Close()
	var out []logEvent
	for rows.Next() {
		var e logEvent
		require.NoError(t, rows.Scan(&e.tenant, &e.streamType, &e.stream, &e.version, &e.id, &e.txid, &e.key, &e.request))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// checkOps checks the final log against the writers' log: each op's events come from one
// transaction of one of its attempts — never one that returned an error promising that nothing was
// committed (a phantom) — and each acknowledged op's result is in the log (or it was lost).
func checkOps(t *testing.T, ctx context.Context, admin *pgxpool.Pool, ops []*op, st *stats) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	events := readLog(t, ctx, admin)
	st.Events = len(events)
	byKey := map[string][]logEvent{}
	for _, e := range events {
		if e.key != "" {
			byKey[e.key] = append(byKey[e.key], e)
		}
	}
	for _, o := range ops {
		evs := byKey[o.Key]
		delete(byKey, o.Key)
		if !o.Acked {
			st.Unresolved++
			bad("op %s (%s) was never resolved: attempts %v", o.Key, o.Kind, o.Attempts)
		}
		if len(evs) == 0 {
			if o.Acked {
				st.Losses++
				bad("LOST: op %s (%s) was acknowledged (%s v%d) but none of its events is in the log",
					o.Key, o.Kind, o.Result.ID, o.Result.Version)
			}
			continue
		}
		txs, reqs := map[string]bool{}, map[string]bool{}
		for _, e := range evs {
			txs[e.txid], reqs[e.request] = true, true
		}
		if len(txs) > 1 || len(reqs) > 1 {
			st.Duplicates++
			bad("DUPLICATE: op %s (%s): events from %d transactions and %d attempts", o.Key, o.Kind, len(txs), len(reqs))
			continue
		}
		committed := evs[0].request
		var by *attempt
		for i := range o.Attempts {
			if o.Attempts[i].RequestID == committed {
				by = &o.Attempts[i]
			}
		}
		switch {
		case by == nil:
			bad("op %s: its events carry request id %q, which none of its attempts used", o.Key, committed)
		case by.Outcome == outFailed || by.Outcome == outUnexpected:
			st.Phantoms++
			bad("PHANTOM: op %s (%s): attempt %s returned %q, an error that promises no commit, yet its events are in the log",
				o.Key, o.Kind, by.RequestID, by.Err)
		case by.Outcome == outUnknown:
			st.UnknownCommitted++
		}
		if o.Acked {
			found := false
			for _, e := range evs {
				if e.stream == o.Result.ID && e.version == o.Result.Version {
					found = true
				}
				if e.stream == o.Result.ID && e.version > o.Result.Version {
					bad("op %s: acknowledged at version %d, but it appended version %d", o.Key, o.Result.Version, e.version)
				}
			}
			if !found {
				st.Losses++
				bad("LOST: op %s (%s) was acknowledged as %s v%d; its events hold no such version", o.Key, o.Kind, o.Result.ID, o.Result.Version)
			}
		}
	}
	for key := range byKey {
		bad("events with idempotency key %s belong to no op of the writers", key)
	}
	return problems
}

// resubmit sends acknowledged ops again with their idempotency keys (a sample of at most limit, 0:
// all), four at a time: each must return its original result, and the log must not grow.
func resubmit(t *testing.T, ctx context.Context, admin *pgxpool.Pool, store *pgstore.Store, ops []*op, limit int,
	rng *rand.Rand, st *stats) []string {
	t.Helper()
	var acked []*op
	for _, o := range ops {
		if o.Acked {
			acked = append(acked, o)
		}
	}
	rng.Shuffle(len(acked), func(i, j int) { acked[i], acked[j] = acked[j], acked[i] })
	if limit > 0 && len(acked) > limit {
		acked = acked[:limit]
	}
	var before, after int64
	require.NoError(t, admin.QueryRow(ctx, sqlEventCount).Scan(&before))

	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
		next     = make(chan *op)
	)
	for range 4 {
		wg.Go(func() {
			for o := range next {
				res, err := o.call(ctx, store, o.Key+"-resubmitted")
				mu.Lock()
				switch {
				case err != nil:
					problems = append(problems, fmt.Sprintf("resubmitting op %s (%s): %v", o.Key, o.Kind, err))
				case res != o.Result:
					st.Duplicates++
					problems = append(problems, fmt.Sprintf("DUPLICATE: resubmitting op %s (%s) returned %+v, not its result %+v",
						o.Key, o.Kind, res, o.Result))
				}
				mu.Unlock()
			}
		})
	}
	for _, o := range acked {
		next <- o
	}
	close(next)
	wg.Wait()
	st.Resubmitted = len(acked)
	require.NoError(t, admin.QueryRow(ctx, sqlEventCount).Scan(&after))
	if after != before {
		st.Duplicates++
		problems = append(problems, fmt.Sprintf("DUPLICATE: resubmitting %d acknowledged ops appended %d events", len(acked), after-before))
	}
	return problems
}

// checkProjections waits until the running projector has caught up — by itself: Run was never
// restarted, and CatchUp is not called — and checks that the audit trail and the outbox hold exactly
// one record per event of the log, the audit chains verify and each stream's messages are in order.
func checkProjections(t *testing.T, ctx context.Context, admin, projector *pgxpool.Pool, runner *projections.Runner, st *stats) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, err := runner.Status(ctx)
		if err == nil {
			caughtUp, parked := true, int64(0)
			for _, p := range status.Projections {
				caughtUp = caughtUp && p.EventsBehind == 0
				parked += p.Parked
			}
			if parked > 0 {
				bad("the projector parked %d events", parked)
				return problems
			}
			if caughtUp {
				break
			}
		}
		if time.Now().After(deadline) {
			bad("the projector did not catch up within 2 minutes after the faults (last status error: %v)", err)
			return problems
		}
		require.NoError(t, sleep(ctx, 20*time.Millisecond))
	}

	events := readLog(t, ctx, admin)
	byID := map[uuid.UUID]logEvent{}
	perTenant := map[uuid.UUID]int{}
	for _, e := range events {
		byID[e.id] = e
		perTenant[e.tenant]++
	}

	// Audit: one record per event, and every tenant's chain verifies.
	for tenant, n := range perTenant {
		var recs []userstore.AuditRecord
		after := int64(0)
		for {
			page, err := audit.Read(ctx, projector, &audit.ReadParams{TenantID: tenant, AfterSequence: after})
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			recs = append(recs, page...)
			after = page[len(page)-1].Sequence
		}
		st.AuditRecords += len(recs)
		if len(recs) != n {
			bad("tenant %s: %d audit records for %d events", tenant, len(recs), n)
		}
		seen := map[uuid.UUID]bool{}
		for _, r := range recs {
			if e, ok := byID[r.EventID]; !ok || e.tenant != tenant {
				bad("tenant %s: audit record %d is of no event of the tenant", tenant, r.Sequence)
			}
			if seen[r.EventID] {
				bad("tenant %s: event %s has two audit records", tenant, r.EventID)
			}
			seen[r.EventID] = true
		}
		if i, err := domain.VerifyAuditChain(recs); err != nil {
			bad("tenant %s: the audit chain breaks at record %d: %v", tenant, i, err)
		}
	}

	// Outbox: one message per event, each stream's in version order.
	rows, err := admin.Query(ctx, `SELECT uuid FROM `+outbox.TableName(outbox.DefaultTopic)+` ORDER BY transaction_id, "offset"`)
	require.NoError(t, err)
	seen := map[uuid.UUID]bool{}
	next := map[uuid.UUID]int64{}
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		st.OutboxMessages++
		e, ok := byID[id]
		switch {
		case !ok:
			bad("outbox message %s is of no event", id)
			continue
		case seen[id]:
			bad("DUPLICATE: outbox message %s twice", id)
			continue
		}
		seen[id] = true
		if want := next[e.stream] + 1; e.version != want {
			bad("outbox: stream %s: message of version %d where %d was due", e.stream, e.version, want)
		}
		next[e.stream] = e.version
	}
	rows.Close()
	require.NoError(t, rows.Err())
	if len(seen) != len(events) {
		bad("outbox: %d messages for %d events", len(seen), len(events))
	}
	return problems
}
