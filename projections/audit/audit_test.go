package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	"github.com/netkingdom/userstore/projections/audit"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// runner returns a Runner of the audit projection on db, as the projector role.
func runner(t *testing.T, db *pgtest.Database, cfg *projections.Config) *projections.Runner {
	t.Helper()
	pool := db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, st, []projections.Projection{audit.New(nil)}, cfg)
	require.NoError(t, err)
	return r
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// appendEvents appends domain events to one stream as the app role.
func appendEvents(t *testing.T, ctx context.Context, st *eventstore.Store, tenant uuid.UUID, stream domain.StreamType, id uuid.UUID, evs ...domain.Event) {
	t.Helper()
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		enc, err := domain.Encode(ev)
		require.NoError(t, err)
		data[i] = eventstore.EventData{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion), Payload: enc.Payload,
			Metadata: logcodec.StoreMetadata(domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorUser, ID: "u-1"}, RequestID: "r-1"})}
	}
	_, err := st.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: string(stream), StreamID: id,
		Expected: eventstore.Any(), Events: data})
	require.NoError(t, err)
}

// TestRecordsEqualTheStoresTrail: the audit table holds, record for record, the trail derived from the
// log on its own (trailFromLog: domain.Audit and domain.ChainAudit over the tenant's events in the log's
// order), and the store's ListAuditRecords (which reads the table) returns it, for a varied history
// with cascades, membership changes (whose target is the user) and request ids.
func TestRecordsEqualTheStoresTrail(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)

	tenants := workload.History(t, ctx, s, 3)

	r := runner(t, db, &projections.Config{BatchSize: 4})
	require.NoError(t, r.CatchUp(ctx))
	require.NoError(t, s.Sync(ctx))

	proj := db.Pool(t, pgtest.Projector)
	fromLog := trailFromLog(t, ctx, proj)
	for _, tenant := range tenants {
		var fromStore []userstore.AuditRecord
		page := &userstore.Page[userstore.AuditRecord]{}
		for {
			page, err = s.ListAuditRecords(userstore.WithTenant(ctx, tenant),
				&userstore.ListAuditParams{ListOpts: userstore.ListOpts{Cursor: page.NextCursor, Limit: userstore.MaxLimit}})
			require.NoError(t, err)
			fromStore = append(fromStore, page.Items...)
			if page.NextCursor == "" {
				break
			}
		}
		require.Equal(t, fromLog[tenant], fromStore)
		require.Len(t, fromStore, 11)
		got, err := audit.Read(ctx, proj, &audit.ReadParams{TenantID: tenant})
		require.NoError(t, err)
		require.Equal(t, fromStore, got)
		i, err := domain.VerifyAuditChain(got)
		require.NoError(t, err, "record %d", i)

		// Paging through Read gives the same.
		var paged []userstore.AuditRecord
		for after := int64(0); ; {
			recs, err := audit.Read(ctx, proj, &audit.ReadParams{TenantID: tenant, AfterSequence: after, Limit: 5})
			require.NoError(t, err)
			paged = append(paged, recs...)
			if len(recs) < 5 {
				break
			}
			after = recs[len(recs)-1].Sequence
		}
		require.Equal(t, got, paged)
	}
}

// TestUndecodableEventIsParked: an event the domain cannot decode is a poison event for the audit
// projection: parked with the codec's error, the tenant's later events behind it, the other tenant's
// trail complete. Skipping it applies the rest; the chain is valid without it.
func TestUndecodableEventIsParked(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	app, err := eventstore.New(db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)

	sick, healthy := uuid.New(), uuid.New()
	for _, tenant := range []uuid.UUID{sick, healthy} {
		appendEvents(t, ctx, app, tenant, domain.StreamTenant, tenant,
			domain.TenantCreated{TenantID: tenant, Slug: "t-" + tenant.String()[:8], Name: "T", At: now()})
	}
	res, err := app.Append(ctx, &eventstore.AppendParams{TenantID: sick, StreamType: "tenant", StreamID: sick,
		Expected: eventstore.Any(), Events: []eventstore.EventData{{Type: "tenant.exploded", Payload: []byte(`{"secret": "x"}`)}}})
	require.NoError(t, err)
	bogus := res.EventIDs[0]
	for _, tenant := range []uuid.UUID{sick, healthy} {
		appendEvents(t, ctx, app, tenant, domain.StreamTenant, tenant, domain.TenantRenamed{Name: "T2", At: now()})
	}

	r := runner(t, db, &projections.Config{RetryBackoffMin: time.Hour, RetryBackoffMax: time.Hour})
	require.NoError(t, r.CatchUp(ctx))
	proj := db.Pool(t, pgtest.Projector)

	healthyTrail, err := audit.Read(ctx, proj, &audit.ReadParams{TenantID: healthy})
	require.NoError(t, err)
	require.Len(t, healthyTrail, 2)
	dl, err := r.DeadLetters(ctx, &projections.DeadLettersParams{Projection: audit.Name, TenantID: sick})
	require.NoError(t, err)
	require.Len(t, dl.DeadLetters, 2)
	require.Equal(t, bogus, dl.DeadLetters[0].EventID)
	require.Contains(t, dl.DeadLetters[0].Error, domain.ErrUnknownEventType.Error())
	require.NotContains(t, dl.DeadLetters[0].Error, "secret")

	_, err = r.Skip(ctx, &projections.SkipParams{Projection: audit.Name, TenantID: sick, EventID: bogus, By: "ops"})
	require.NoError(t, err)
	sickTrail, err := audit.Read(ctx, proj, &audit.ReadParams{TenantID: sick})
	require.NoError(t, err)
	require.Len(t, sickTrail, 2)
	require.Equal(t, []string{domain.EventTenantCreated, domain.EventTenantRenamed}, []string{sickTrail[0].Action, sickTrail[1].Action})
	_, err = domain.VerifyAuditChain(sickTrail)
	require.NoError(t, err)
}

func sqlState(t *testing.T, err error) string {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	return pgErr.Code
}

// TestSecurity: row-level security is forced on audit_records and the dead letters; the app role reads
// its tenant's records only and writes none, and cannot see the runtime's tables; the projector appends
// records but cannot change or delete one; the table itself refuses a gap and a second record of an
// event.
func TestSecurity(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	appPool, projPool, admin := pgtest.AppPool(t), pgtest.ProjectorPool(t), pgtest.AdminPool(t)
	app, err := eventstore.New(appPool, nil)
	require.NoError(t, err)
	proj, err := eventstore.New(projPool, nil)
	require.NoError(t, err)

	// Two tenants with 3 and 2 records, projected by calling the projection directly (this package's
	// database runs no runner).
	a, b := uuid.New(), uuid.New()
	counts := map[uuid.UUID]int{a: 3, b: 2}
	for tenant, n := range counts {
		evs := []domain.Event{domain.TenantCreated{TenantID: tenant, Slug: "t-" + tenant.String()[:8], Name: "T", At: now()}}
		for range n - 1 {
			evs = append(evs, domain.TenantRenamed{Name: "T", At: now()})
		}
		appendEvents(t, ctx, app, tenant, domain.StreamTenant, tenant, evs...)
	}
	p := audit.New(nil)
	for tenant, n := range counts {
		var events []eventstore.RecordedEvent
		deadline := time.Now().Add(time.Minute)
		for len(events) < n { // readable once every older transaction in the cluster has ended
			require.True(t, time.Now().Before(deadline))
			res, err := proj.ReadAll(ctx, &eventstore.ReadAllParams{TenantID: tenant})
			require.NoError(t, err)
			events = res.Events
		}
		require.NoError(t, pgx.BeginFunc(ctx, projPool, func(tx pgx.Tx) error {
			for i := range events {
				if err := p.Apply(ctx, tx, &events[i]); err != nil {
					return err
				}
			}
			return nil
		}))
	}

	const insufficientPrivilege = "42501"
	asApp := func(tenant uuid.UUID, fn func(tx pgx.Tx)) {
		t.Helper()
		tx, err := appPool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		if tenant != uuid.Nil {
			_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1, true)`, tenant.String())
			require.NoError(t, err)
		}
		fn(tx)
	}
	for tenant, n := range counts {
		asApp(tenant, func(tx pgx.Tx) {
			var got, other int
			require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM userstore.audit_records`).Scan(&got))
			require.Equal(t, n, got, "the app role sees its tenant's records")
			require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM userstore.audit_records WHERE tenant_id <> $1`, tenant).Scan(&other))
			require.Zero(t, other)
			recs, err := audit.Read(ctx, tx, &audit.ReadParams{TenantID: tenant})
			require.NoError(t, err)
			require.Len(t, recs, n)
		})
	}
	asApp(uuid.Nil, func(tx pgx.Tx) {
		var got int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM userstore.audit_records`).Scan(&got))
		require.Zero(t, got, "no tenant set: no row")
	})
	for name, sql := range map[string]string{
		"insert audit":       `INSERT INTO userstore.audit_records (tenant_id, sequence, event_id, position, transaction_id, occurred_at, actor_type, actor_id, action, target_type, target_id, request_id, outcome, prev_hash, hash) SELECT tenant_id, sequence + 100, gen_random_uuid(), position, transaction_id, occurred_at, actor_type, actor_id, action, target_type, target_id, request_id, outcome, prev_hash, hash FROM userstore.audit_records LIMIT 1`,
		"update audit":       `UPDATE userstore.audit_records SET action = 'x'`,
		"delete audit":       `DELETE FROM userstore.audit_records`,
		"read dead letters":  `SELECT count(*) FROM userstore.projection_dead_letters`,
		"read checkpoints":   `SELECT count(*) FROM userstore.projection_checkpoints`,
		"write checkpoints":  `INSERT INTO userstore.projection_checkpoints (projection, projection_version, partition, transaction_id, global_position) VALUES ('x', 1, 0, '0', 0)`,
		"write dead letters": `UPDATE userstore.projection_dead_letters SET status = 'skipped'`,
	} {
		asApp(a, func(tx pgx.Tx) {
			_, err := tx.Exec(ctx, sql)
			require.Error(t, err, name)
			require.Equal(t, insufficientPrivilege, sqlState(t, err), name)
		})
	}

	// The projector appends but never changes or deletes a record.
	for name, sql := range map[string]string{
		"update audit": `UPDATE userstore.audit_records SET action = 'x'`,
		"delete audit": `DELETE FROM userstore.audit_records`,
	} {
		_, err := projPool.Exec(ctx, sql)
		require.Error(t, err, name)
		require.Equal(t, insufficientPrivilege, sqlState(t, err), name)
	}

	// The table refuses a gap, a sequence taken twice and a second record of an event.
	last, err := audit.Read(ctx, projPool, &audit.ReadParams{TenantID: a})
	require.NoError(t, err)
	rec := last[len(last)-1]
	insert := func(seq int64, eventID uuid.UUID) error {
		_, err := projPool.Exec(ctx, `
			INSERT INTO userstore.audit_records (tenant_id, sequence, event_id, position, transaction_id, occurred_at,
			       actor_type, actor_id, action, target_type, target_id, request_id, outcome, prev_hash, hash)
			VALUES ($1, $2, $3, 1, '1', now(), 'user', 'u', 'a', 't', $1, '', 'success', $4, $4)`,
			a, seq, eventID, rec.Hash)
		return err
	}
	require.Equal(t, "23503", sqlState(t, insert(rec.Sequence+2, uuid.New())), "a gap")
	require.Equal(t, "23505", sqlState(t, insert(rec.Sequence, uuid.New())), "a sequence taken twice")
	require.Equal(t, "23505", sqlState(t, insert(rec.Sequence+1, rec.EventID)), "a second record of an event")

	// Hardening: RLS enabled and forced, and exactly these policies.
	for _, table := range []string{"audit_records", "projection_dead_letters"} {
		var enabled, forced bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT relrowsecurity, relforcerowsecurity FROM pg_class
			WHERE oid = ('userstore.' || $1)::regclass`, table).Scan(&enabled, &forced))
		require.True(t, enabled, table)
		require.True(t, forced, table)
	}
	rows, err := admin.Query(ctx, `SELECT policyname || ':' || cmd || ':' || array_to_string(roles, ',')
		FROM pg_policies WHERE schemaname = 'userstore' AND tablename IN ('audit_records', 'projection_dead_letters')
		ORDER BY policyname`)
	require.NoError(t, err)
	policies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{
		"audit_records_app_select:SELECT:userstore_app",
		"audit_records_projector_insert:INSERT:userstore_projector",
		"audit_records_projector_select:SELECT:userstore_projector",
		"projection_dead_letters_projector:ALL:userstore_projector",
	}, policies)
}

// trailFromLog derives every tenant's audit trail from the log alone, as the projector role: the
// tenant's events in the log's order, each turned into its record by domain.Audit and chained by
// domain.ChainAudit — independently of the projection's batches, checkpoints and table.
func trailFromLog(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[uuid.UUID][]userstore.AuditRecord {
	t.Helper()
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	out := map[uuid.UUID][]userstore.AuditRecord{}
	var after eventstore.Cursor
	for {
		res, err := st.ReadAll(ctx, &eventstore.ReadAllParams{After: after, Limit: eventstore.ReadLimitMax})
		require.NoError(t, err)
		for i := range res.Events {
			r, err := logcodec.Recorded(&res.Events[i])
			require.NoError(t, err)
			rec := domain.Audit(r)
			prevSeq, prevHash := int64(0), domain.AuditGenesisHash
			if trail := out[rec.TenantID]; len(trail) > 0 {
				prevSeq, prevHash = trail[len(trail)-1].Sequence, trail[len(trail)-1].Hash
			}
			require.NoError(t, domain.ChainAudit(&rec, prevSeq, prevHash))
			out[rec.TenantID] = append(out[rec.TenantID], rec)
		}
		if len(res.Events) == 0 {
			return out
		}
		after = res.Next
	}
}
