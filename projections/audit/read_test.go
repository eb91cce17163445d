package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// Shape of the synthetic trails of readFixture: per tenant, records 1..perTenant, one second apart
// from readEpoch, cycling through actors, actions and targets.
const (
	readTenants   = 20
	perTenant     = 2000
	readActors    = 50
	readActions   = 40
	readTargets   = 400
	readTypes     = 8
	readPageLimit = 101 // what pgstore asks for: a page of 100 and one more
)

var readEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// readFixture creates a database of its own holding readTenants synthetic trails of perTenant records
// each (written as the superuser: the hashes are placeholders, the chain is not the point here), and
// analyzes the table so that the planner knows its shape. It returns the database and the tenants.
func readFixture(t *testing.T, ctx context.Context) (*pgtest.Database, []uuid.UUID) {
	t.Helper()
	db := pgtest.NewDatabase(t, nil)
	tenants := make([]uuid.UUID, readTenants)
	ids := make([]string, readTenants)
	for i := range tenants {
		tenants[i] = uuid.New()
		ids[i] = tenants[i].String()
	}
	admin := db.Pool(t, pgtest.Admin)
	_, err := admin.Exec(ctx, `
		INSERT INTO userstore.audit_records (tenant_id, sequence, event_id, position, transaction_id, occurred_at,
		       actor_type, actor_id, action, target_type, target_id, request_id, outcome, prev_hash, hash)
		SELECT t.id, s, gen_random_uuid(), s, '1'::xid8, $2::timestamptz + s * interval '1 second',
		       'service', 'actor-' || (s % $3::int), 'thing.action' || (s % $4::int),
		       'type' || (s % $6::int), md5(t.id::text || (s % $5::int))::uuid, '', 'success', repeat('0', 64), repeat('0', 64)
		  FROM unnest($1::uuid[]) AS t(id), generate_series(1, $7::int) AS s`,
		ids, readEpoch, readActors, readActions, readTargets, readTypes, perTenant)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `ANALYZE userstore.audit_records`)
	require.NoError(t, err)
	return db, tenants
}

// inTenant runs fn in a read-only transaction of the app role scoped to tenant, as pgstore's queries
// run.
func inTenant(t *testing.T, ctx context.Context, db *pgtest.Database, tenant uuid.UUID, fn func(tx pgx.Tx)) {
	t.Helper()
	tx, err := db.Pool(t, pgtest.App).BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1::text, true)`, tenant.String())
	require.NoError(t, err)
	fn(tx)
}

var errCaptured = errors.New("captured")

// capture is a Querier that records the statement Read would run, and runs nothing.
type capture struct {
	sql  string
	args []any
}

func (c *capture) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.sql, c.args = sql, args
	return nil, errCaptured
}

// planNode is the part of EXPLAIN (FORMAT JSON)'s plan tree the test looks at.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

// scans returns the scans of a plan tree: "Index Scan on <index>", "Seq Scan", ….
func (n *planNode) scans() []string {
	var out []string
	if n.IndexName != "" {
		out = append(out, n.NodeType+" on "+n.IndexName)
	} else if n.NodeType == "Seq Scan" {
		out = append(out, n.NodeType)
	}
	for i := range n.Plans {
		out = append(out, n.Plans[i].scans()...)
	}
	return out
}

// explain returns the scans of the plan of the statement Read runs for params, planned in tx (for the
// arguments given, as PostgreSQL plans the unnamed statements pgx sends).
func explain(t *testing.T, ctx context.Context, tx pgx.Tx, params *audit.ReadParams) []string {
	t.Helper()
	c := &capture{}
	_, err := audit.Read(ctx, c, params)
	require.ErrorIs(t, err, errCaptured)
	var raw []byte
	require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+c.sql, c.args...).Scan(&raw))
	var plan []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &plan))
	require.Len(t, plan, 1)
	return plan[0].Plan.scans()
}

// TestReadUsesTheIndexes: as the app role, under row-level security, in a table of 40,000 records of
// 20 tenants, EXPLAIN shows that each filter of a page query (pgstore's ListAuditRecords) is answered by
// its index of audit_records, the primary key without a filter — never by a sequential scan — on the
// first page and on a later one (the keyset condition on sequence keeps the plan). The scans each
// query gets are logged.
func TestReadUsesTheIndexes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db, tenants := readFixture(t, ctx)
	tenant := tenants[7]
	actor := userstore.Actor{Type: userstore.ActorService, ID: "actor-7"}
	var target uuid.UUID
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx,
		`SELECT md5($1::uuid::text || '7')::uuid`, tenant).Scan(&target))

	const (
		byActr = "audit_records_actor_idx"
		byAct  = "audit_records_action_idx"
		byTgt  = "audit_records_target_idx"
		byTime = "audit_records_time_idx"
	)
	cases := []struct {
		name   string
		params audit.ReadParams
		// want is the index the plan must use; "" only forbids a sequential scan.
		want string
	}{
		{"NoFilter", audit.ReadParams{}, "audit_records_pkey"},
		{"Actor", audit.ReadParams{Actor: &actor}, byActr},
		{"Action", audit.ReadParams{Action: "thing.action7"}, byAct},
		{"Target", audit.ReadParams{TargetType: "type7", TargetID: target}, byTgt},
		{"TimeRangeNarrow", audit.ReadParams{Since: readEpoch.Add(100 * time.Second), Until: readEpoch.Add(130 * time.Second)}, byTime},
		{"SinceLate", audit.ReadParams{Since: readEpoch.Add((perTenant - 50) * time.Second)}, byTime},
		{"ActorAndAction", audit.ReadParams{Actor: &actor, Action: "thing.action7"}, ""},
		{"TargetTypeOnly", audit.ReadParams{TargetType: "type3"}, ""},
		{"TimeRangeWide", audit.ReadParams{Since: readEpoch, Until: readEpoch.Add(perTenant * time.Second)}, ""},
	}
	inTenant(t, ctx, db, tenant, func(tx pgx.Tx) {
		for _, c := range cases {
			for _, after := range []int64{0, perTenant / 2} {
				p := c.params
				p.TenantID, p.AfterSequence, p.Limit = tenant, after, readPageLimit
				scans := explain(t, ctx, tx, &p)
				t.Logf("%-16s after %4d: %v", c.name, after, scans)
				require.NotEmpty(t, scans, c.name)
				for _, s := range scans {
					require.NotEqual(t, "Seq Scan", s, "%s after %d: %v", c.name, after, scans)
				}
				if c.want != "" {
					used := false
					for _, s := range scans {
						used = used || strings.HasSuffix(s, " on "+c.want) // an index scan, a bitmap index scan, …
					}
					require.True(t, used, "%s after %d: %v, want %s", c.name, after, scans, c.want)
				}
			}
		}
	})
}

// TestReadFilters: Read's filters, alone and combined, return exactly the records of the tenant's
// trail that match (AND; Since <= occurred_at < Until, to the nanosecond of the bounds given), in
// sequence order, page after page; invalid parameters are validation errors.
func TestReadFilters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db, tenants := readFixture(t, ctx)
	tenant := tenants[3]
	proj := db.Pool(t, pgtest.Projector)
	all, err := audit.Read(ctx, proj, &audit.ReadParams{TenantID: tenant})
	require.NoError(t, err)
	require.Len(t, all, perTenant)

	actor := all[10].Actor
	rec := all[500]
	matching := func(p *audit.ReadParams) []int64 {
		var out []int64
		for _, r := range all {
			switch {
			case p.Actor != nil && r.Actor != *p.Actor,
				p.TargetType != "" && r.TargetType != p.TargetType,
				p.TargetID != uuid.Nil && r.TargetID != p.TargetID,
				p.Action != "" && r.Action != p.Action,
				!p.Since.IsZero() && r.OccurredAt.Before(p.Since),
				!p.Until.IsZero() && !r.OccurredAt.Before(p.Until):
				continue
			}
			out = append(out, r.Sequence)
		}
		return out
	}
	for name, p := range map[string]audit.ReadParams{
		"Actor":            {Actor: &actor},
		"OtherActorType":   {Actor: &userstore.Actor{Type: userstore.ActorUser, ID: actor.ID}},
		"Action":           {Action: rec.Action},
		"TargetType":       {TargetType: rec.TargetType},
		"Target":           {TargetType: rec.TargetType, TargetID: rec.TargetID},
		"Since":            {Since: rec.OccurredAt},
		"SinceJustAfter":   {Since: rec.OccurredAt.Add(time.Nanosecond)},
		"Until":            {Until: rec.OccurredAt},
		"UntilJustAfter":   {Until: rec.OccurredAt.Add(time.Nanosecond)},
		"Range":            {Since: rec.OccurredAt, Until: rec.OccurredAt.Add(time.Minute)},
		"ActorAndAction":   {Actor: &actor, Action: all[10].Action},
		"AllFilters":       {Actor: &rec.Actor, Action: rec.Action, TargetType: rec.TargetType, TargetID: rec.TargetID, Since: rec.OccurredAt, Until: rec.OccurredAt.Add(time.Second)},
		"NothingMatches":   {Action: "no.such.action"},
		"EmptyRange":       {Since: rec.OccurredAt, Until: rec.OccurredAt},
		"OtherTenantActor": {Actor: &userstore.Actor{Type: userstore.ActorService, ID: "nobody"}},
	} {
		want := matching(&p)
		var got []int64
		for p.TenantID, p.Limit = tenant, 7; ; {
			page, err := audit.Read(ctx, proj, &p)
			require.NoError(t, err, name)
			for _, r := range page {
				require.Equal(t, tenant, r.TenantID, name)
				got = append(got, r.Sequence)
			}
			if len(page) < p.Limit {
				break
			}
			p.AfterSequence = page[len(page)-1].Sequence
		}
		require.Equal(t, want, got, name)

		// QueueRead queues the same query on a batch.
		p.AfterSequence, p.Limit = 0, 0
		var queued []userstore.AuditRecord
		b := &pgx.Batch{}
		require.NoError(t, audit.QueueRead(b, &p, &queued), name)
		require.NoError(t, proj.SendBatch(ctx, b).Close(), name)
		queuedSeqs := []int64{}
		for _, r := range queued {
			queuedSeqs = append(queuedSeqs, r.Sequence)
		}
		require.Equal(t, append([]int64{}, want...), queuedSeqs, name)
	}
	require.Equal(t, []int64{rec.Sequence}, matching(&audit.ReadParams{Since: rec.OccurredAt, Until: rec.OccurredAt.Add(time.Nanosecond)}),
		"the fixture's records are a second apart")

	for name, p := range map[string]*audit.ReadParams{
		"NoParams":         nil,
		"NoTenant":         {},
		"LimitTooLarge":    {TenantID: tenant, Limit: audit.ReadLimitMax + 1},
		"NegativeLimit":    {TenantID: tenant, Limit: -1},
		"NegativeAfter":    {TenantID: tenant, AfterSequence: -1},
		"TargetIDAlone":    {TenantID: tenant, TargetID: rec.TargetID},
		"UntilBeforeSince": {TenantID: tenant, Since: rec.OccurredAt, Until: rec.OccurredAt.Add(-time.Second)},
	} {
		_, err := audit.Read(ctx, proj, p)
		require.ErrorIs(t, err, projections.ErrValidation, name)
		var b pgx.Batch
		var out []userstore.AuditRecord
		require.ErrorIs(t, audit.QueueRead(&b, p, &out), projections.ErrValidation, name)
		require.Zero(t, b.Len(), "%s: nothing queued", name)
	}
}
