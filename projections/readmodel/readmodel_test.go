package readmodel_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections/readmodel"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestTablesMatchTheCatalog: Tables lists every read table of the migrations with its primary key, in
// order, and every column with its type — except columns with a default that no event writes (the
// guards' guard_seq) — so that a migration that adds a column the read model must write fails here.
func TestTablesMatchTheCatalog(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	admin := pgtest.AdminPool(t)
	for _, tb := range readmodel.Tables() {
		rows, err := admin.Query(ctx, `
			SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), d.adbin IS NOT NULL
			  FROM pg_attribute AS a LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
			"userstore."+tb.Name)
		require.NoError(t, err)
		var cols []readmodel.Column
		for rows.Next() {
			var (
				c          readmodel.Column
				hasDefault bool
			)
			require.NoError(t, rows.Scan(&c.Name, &c.Type, &hasDefault))
			if c.Type == "timestamp with time zone" {
				c.Type = "timestamptz"
			}
			if hasDefault && c.Name == "guard_seq" {
				continue
			}
			cols = append(cols, c)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, tb.Columns, cols, tb.Name)

		var key []string
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT array_agg(a.attname::text ORDER BY k.ord)
			  FROM pg_index AS i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			  JOIN pg_attribute AS a ON a.attnum = k.attnum
			 WHERE i.indrelid = $1::text::regclass AND i.indisprimary AND a.attrelid = i.indrelid`,
			"userstore."+tb.Name).Scan(&key))
		require.Equal(t, tb.Key, key, tb.Name)

		rows, err = admin.Query(ctx, `
			SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			               JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)
			  FROM pg_index AS i
			 WHERE i.indrelid = $1::text::regclass AND i.indisunique AND NOT i.indisprimary
			 ORDER BY i.indexrelid::regclass::text`, "userstore."+tb.Name)
		require.NoError(t, err)
		unique, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
		require.NoError(t, err)
		if len(unique) == 0 {
			unique = nil
		}
		require.Equal(t, tb.Unique, unique, tb.Name)
		require.Equal(t, tb.Key, tb.ColumnNames()[:len(tb.Key)], tb.Name)
	}
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
		WHERE n.nspname = 'userstore' AND c.relkind = 'r'
		  AND c.relname NOT IN ('events', 'claims', 'tenant_slugs', 'idempotency_keys', 'goose_db_version',
		                        'projection_checkpoints', 'projection_dead_letters', 'audit_records')
		  AND c.relname NOT LIKE 'watermill%'`).Scan(&n))
	require.Equal(t, len(readmodel.Tables()), n, "a table of schema userstore that is neither a read table nor known here")
}

// copySchema creates a schema with empty copies of the read tables.
func copySchema(t *testing.T, ctx context.Context, admin *pgxpool.Pool) string {
	t.Helper()
	schema := "rm_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	_, err := admin.Exec(ctx, `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`) })
	for _, tb := range readmodel.Tables() {
		_, err := admin.Exec(ctx, `CREATE TABLE `+readmodel.Ident(schema, tb.Name)+` (LIKE `+readmodel.Ident("userstore", tb.Name)+` INCLUDING ALL)`)
		require.NoError(t, err)
	}
	return schema
}

// rowsOf returns a tenant's rows of every read table of a schema, as text of the read model's columns.
func rowsOf(t *testing.T, ctx context.Context, admin *pgxpool.Pool, schema string, tenant uuid.UUID) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	require.NoError(t, pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'`); err != nil {
			return err
		}
		for _, tb := range readmodel.Tables() {
			rows, err := tx.Query(ctx, `SELECT ROW(t.`+strings.Join(tb.ColumnNames(), ", t.")+`)::text FROM `+readmodel.Ident(schema, tb.Name)+
				` AS t WHERE t.tenant_id = $1 ORDER BY t.`+strings.Join(tb.Key, ", t."), tenant)
			if err != nil {
				return err
			}
			if out[tb.Name], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		return nil
	}))
	return out
}

// foldAll folds every stream of a tenant from the log.
func foldAll(t *testing.T, ctx context.Context, admin *pgxpool.Pool, tenant uuid.UUID) map[domain.StreamRef]domain.Aggregate {
	t.Helper()
	rows, err := admin.Query(ctx, `SELECT stream_id, stream_type, event_type, event_version, payload::text
		FROM userstore.events WHERE tenant_id = $1 ORDER BY stream_id, stream_version`, tenant)
	require.NoError(t, err)
	events := map[domain.StreamRef][]domain.Event{}
	for rows.Next() {
		var (
			id                   uuid.UUID
			stream, typ, payload string
			version              int
		)
		require.NoError(t, rows.Scan(&id, &stream, &typ, &version, &payload))
		ev, err := domain.Decode(domain.Encoded{Type: typ, SchemaVersion: version, Payload: []byte(payload)})
		require.NoError(t, err)
		ref := domain.StreamRef{TenantID: tenant, Type: domain.StreamType(stream), ID: id}
		events[ref] = append(events[ref], ev)
	}
	require.NoError(t, rows.Err())
	out := map[domain.StreamRef]domain.Aggregate{}
	for ref, evs := range events {
		s, err := domain.Fold(ref, evs)
		require.NoError(t, err)
		out[ref] = s
	}
	return out
}

// TestWriterReproducesTheStore: folding a tenant's streams from the log and writing them with a Writer
// on another schema — by COPY-able rows (Rows) and by QueueReplace — gives exactly the rows the store
// wrote inline; the scan functions read them back as the store returns them.
func TestWriterReproducesTheStore(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	admin := pgtest.AdminPool(t)
	s, err := pgstore.New(ctx, pgtest.AppPool(t), nil)
	require.NoError(t, err)
	tenant := workload.History(t, ctx, s, 1)[0]
	schema := copySchema(t, ctx, admin)
	w := readmodel.NewWriter(schema)
	require.Equal(t, schema, w.Schema())
	require.Equal(t, readmodel.SchemaDefault, readmodel.NewWriter("").Schema())

	b := &pgx.Batch{}
	for ref, state := range foldAll(t, ctx, admin, tenant) {
		require.NoError(t, w.QueueReplace(b, ref, state))
	}
	require.NoError(t, admin.SendBatch(ctx, b).Close())
	want := rowsOf(t, ctx, admin, "userstore", tenant)
	require.NotEmpty(t, want[readmodel.TableUsers])
	require.Equal(t, want, rowsOf(t, ctx, admin, schema, tenant))

	// The same again (a re-fold replaces the rows): nothing changes.
	b = &pgx.Batch{}
	for ref, state := range foldAll(t, ctx, admin, tenant) {
		require.NoError(t, w.QueueReplace(b, ref, state))
	}
	require.NoError(t, admin.SendBatch(ctx, b).Close())
	require.Equal(t, want, rowsOf(t, ctx, admin, schema, tenant))

	// The scan functions read the rows as the store returns them.
	rows, err := admin.Query(ctx, `SELECT `+readmodel.UserColumns+` FROM `+readmodel.Ident(schema, "users")+` AS u WHERE u.tenant_id = $1`, tenant)
	require.NoError(t, err)
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*userstore.User, error) { return readmodel.ScanUser(r) })
	require.NoError(t, err)
	require.Len(t, users, 3)
	tctx := userstore.WithTenant(ctx, tenant)
	for _, u := range users {
		got, err := s.GetUser(tctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, got, u)
	}
}

// TestRosterWrites: QueueWrite sets or deletes only the memberships of the users its events name (the
// inline write of one append); QueueReplace makes the tenant's memberships exactly the roster's.
func TestRosterWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	admin := pgtest.AdminPool(t)
	schema := copySchema(t, ctx, admin)
	w := readmodel.NewWriter(schema)
	tenant, a, b, c := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	ref := domain.RosterRef(tenant)
	at := time.Now().UTC().Truncate(time.Microsecond)
	added := func(u uuid.UUID, role userstore.MemberRole) domain.Event {
		return domain.RosterMemberAdded{UserID: u, Role: role, At: at}
	}
	members := func() []uuid.UUID {
		rows, err := admin.Query(ctx, `SELECT user_id FROM `+readmodel.Ident(schema, "memberships")+` WHERE tenant_id = $1 ORDER BY user_id::text`, tenant)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		return ids
	}
	write := func(evs []domain.Event, all []domain.Event, replace bool) {
		t.Helper()
		state, err := domain.Fold(ref, all)
		require.NoError(t, err)
		batch := &pgx.Batch{}
		if replace {
			require.NoError(t, w.QueueReplace(batch, ref, state))
		} else {
			require.NoError(t, w.QueueWrite(batch, ref, state, evs))
		}
		require.NoError(t, admin.SendBatch(ctx, batch).Close())
	}
	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		return slices.SortedFunc(slices.Values(ids), func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
	}
	history := []domain.Event{added(a, userstore.RoleOwner), added(b, userstore.RoleMember)}
	write(history, history, false)
	require.Equal(t, sorted(a, b), members())

	// A stray row of user c: an inline write that does not name c leaves it; a replace removes it.
	_, err := admin.Exec(ctx, `INSERT INTO `+readmodel.Ident(schema, "memberships")+` VALUES ($1, $2, 'member', 1, now(), now())`, tenant, c)
	require.NoError(t, err)
	removed := domain.RosterMemberRemoved{UserID: b, Role: userstore.RoleMember, At: at}
	history = append(history, removed)
	write([]domain.Event{removed}, history, false)
	require.Equal(t, sorted(a, c), members())
	write(nil, history, true)
	require.Equal(t, []uuid.UUID{a}, members())
}

// TestReplaceClearsStaleUniqueRows: a rebuild may re-fold a binding of an (application, user) pair while
// its tables still hold the row of an earlier binding of the pair whose removal it has not re-folded
// yet. QueueReplace deletes that stale row first instead of failing on bindings_application_user_key;
// the earlier binding's own re-fold then changes nothing. QueueWrite (inline, in commit order) does not.
func TestReplaceClearsStaleUniqueRows(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	admin := pgtest.AdminPool(t)
	schema := copySchema(t, ctx, admin)
	w := readmodel.NewWriter(schema)
	tenant, app, user := uuid.New(), uuid.New(), uuid.New()
	at := time.Now().UTC().Truncate(time.Microsecond)
	first := domain.Ref(tenant, domain.StreamBinding, uuid.New())
	second := domain.Ref(tenant, domain.StreamBinding, uuid.New())
	created := func(ref domain.StreamRef) domain.Event {
		return domain.BindingCreated{BindingID: ref.ID, TenantID: tenant, ApplicationID: app, UserID: user, Roles: []string{"r"}, At: at}
	}
	write := func(replace bool, ref domain.StreamRef, evs ...domain.Event) error {
		state, err := domain.Fold(ref, evs)
		require.NoError(t, err)
		b := &pgx.Batch{}
		if replace {
			require.NoError(t, w.QueueReplace(b, ref, state))
		} else {
			require.NoError(t, w.QueueWrite(b, ref, state, evs))
		}
		return admin.SendBatch(ctx, b).Close()
	}
	ids := func() []uuid.UUID {
		rows, err := admin.Query(ctx, `SELECT id FROM `+readmodel.Ident(schema, "bindings")+` WHERE tenant_id = $1`, tenant)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		return out
	}
	require.NoError(t, write(false, first, created(first)))
	require.Error(t, write(false, second, created(second)), "inline, a second binding of the pair is refused")
	require.NoError(t, write(true, second, created(second)))
	require.Equal(t, []uuid.UUID{second.ID}, ids())
	require.NoError(t, write(true, first, created(first), domain.BindingRemoved{ApplicationID: app, UserID: user, At: at}))
	require.Equal(t, []uuid.UUID{second.ID}, ids())
}
