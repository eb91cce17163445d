package rebuild_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/readmodel"
	"github.com/netkingdom/userstore/projections/rebuild"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is a private database (the rebuild does DDL and takes table locks) with a store on it.
type env struct {
	db    *pgtest.Database
	store *pgstore.Store
	admin *pgxpool.Pool
}

func setup(t *testing.T) *env {
	t.Helper()
	db := pgtest.NewDatabase(t, nil)
	s, err := pgstore.New(t.Context(), db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	return &env{db: db, store: s, admin: db.Pool(t, pgtest.Admin)}
}

// params returns the rebuild's parameters for a target on the env's database.
func (e *env) params(t *testing.T, target string) *rebuild.Params {
	t.Helper()
	return &rebuild.Params{Owner: e.db.Pool(t, pgtest.Owner), Projector: e.db.Pool(t, pgtest.Projector), Target: target}
}

// cachedStore returns a store on a pool of its own in pgx's default exec mode, which prepares and
// caches statements per connection (the mode a provider's pool has unless it runs through PgBouncer).
func (e *env) cachedStore(t *testing.T) *pgstore.Store {
	t.Helper()
	cfg := e.db.PoolConfig(t, pgtest.App)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	cfg.MaxConns = 4
	s, err := pgstore.New(t.Context(), pgtest.NewPool(t, cfg), nil)
	require.NoError(t, err)
	return s
}

// auditRunner returns a Runner of the live audit projection on the env's database.
func (e *env) auditRunner(t *testing.T, cfg *projections.Config) *projections.Runner {
	t.Helper()
	pool := e.db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, st, []projections.Projection{audit.New(nil)}, cfg)
	require.NoError(t, err)
	return r
}

// tctx returns a context for a tenant's mutations.
func tctx(ctx context.Context, tenant uuid.UUID) context.Context {
	return userstore.WithActor(userstore.WithTenant(ctx, tenant), userstore.Actor{Type: userstore.ActorService, ID: "rebuild-test"})
}

// fullHistory writes, in a new tenant, a history that leaves rows in every read table and removes some
// (an unlinked identity, a removed binding, a removed member), and returns the tenant.
func fullHistory(t testing.TB, ctx context.Context, s userstore.Store) uuid.UUID {
	t.Helper()
	tenant := userstore.NewID()
	tag := tenant.String()[24:]
	c := tctx(ctx, tenant)
	_, err := s.CreateTenant(c, &userstore.CreateTenantParams{Slug: "f-" + tag, Name: "Full"})
	require.NoError(t, err)
	var users []*userstore.User
	for i := range 3 {
		u, err := s.CreateUser(c, &userstore.CreateUserParams{DisplayName: fmt.Sprintf("U%d", i), Email: fmt.Sprintf("f%d-%s@example.com", i, tag)})
		require.NoError(t, err)
		users = append(users, u)
	}
	_, err = s.AddMember(c, &userstore.AddMemberParams{UserID: users[0].ID, Role: userstore.RoleOwner})
	require.NoError(t, err)
	_, err = s.AddMember(c, &userstore.AddMemberParams{UserID: users[1].ID, Role: userstore.RoleAdmin})
	require.NoError(t, err)
	_, err = s.ChangeMemberRole(c, &userstore.ChangeMemberRoleParams{UserID: users[1].ID, Role: userstore.RoleMember})
	require.NoError(t, err)
	_, err = s.AddMember(c, &userstore.AddMemberParams{UserID: users[2].ID, Role: userstore.RoleMember})
	require.NoError(t, err)
	require.NoError(t, s.RemoveMember(c, &userstore.RemoveMemberParams{UserID: users[2].ID}))
	_, err = s.OpenAccount(c, &userstore.OpenAccountParams{UserID: users[0].ID, LoginName: "l-" + tag, Kind: userstore.AccountPassword, CredentialRef: "r"})
	require.NoError(t, err)
	id1, err := s.LinkIdentity(c, &userstore.LinkIdentityParams{UserID: users[0].ID, Issuer: "https://idp.example", Subject: "a-" + tag})
	require.NoError(t, err)
	_, err = s.LinkIdentity(c, &userstore.LinkIdentityParams{UserID: users[1].ID, Issuer: "https://idp.example", Subject: "b-" + tag})
	require.NoError(t, err)
	require.NoError(t, s.UnlinkIdentity(c, &userstore.UnlinkIdentityParams{ID: id1.ID}))
	_, err = s.LinkIdentity(c, &userstore.LinkIdentityParams{UserID: users[0].ID, Issuer: "https://idp.example", Subject: "c-" + tag})
	require.NoError(t, err)
	app, err := s.RegisterApplication(c, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "ck-" + tag, Kind: userstore.AppWeb})
	require.NoError(t, err)
	b1, err := s.Bind(c, &userstore.BindParams{ApplicationID: app.ID, UserID: users[0].ID, Roles: []string{"b", "a"}})
	require.NoError(t, err)
	_, err = s.ChangeBindingRoles(c, &userstore.ChangeBindingRolesParams{ID: b1.ID, Roles: []string{"c"}})
	require.NoError(t, err)
	b2, err := s.Bind(c, &userstore.BindParams{ApplicationID: app.ID, UserID: users[1].ID, Roles: []string{"x"}})
	require.NoError(t, err)
	require.NoError(t, s.Unbind(c, &userstore.UnbindParams{ID: b2.ID}))
	cat, err := s.DefineCatalog(c, &userstore.DefineCatalogParams{Name: "hr", Attributes: []userstore.Attribute{
		{Key: "dept", Type: userstore.AttrString, MaxLength: 32},
		{Key: "level", Type: userstore.AttrInt},
	}})
	require.NoError(t, err)
	_, err = s.SetProfileValues(c, &userstore.SetProfileValuesParams{UserID: users[0].ID, CatalogID: cat.ID,
		Values: map[string]userstore.Value{"dept": userstore.StringValue("ops"), "level": {Type: userstore.AttrInt, Int: 3}}})
	require.NoError(t, err)
	_, err = s.DisableUser(c, &userstore.UserParams{ID: users[2].ID})
	require.NoError(t, err)
	_, err = s.DeleteUser(c, &userstore.UserParams{ID: users[1].ID})
	require.NoError(t, err)
	return tenant
}

// tableRows returns the rows of a table as text (the listed columns, or the whole row when cols is
// nil), in key order, read as the superuser (no row-level security).
func tableRows(t *testing.T, ctx context.Context, admin *pgxpool.Pool, schema, table string, key, cols []string) []string {
	t.Helper()
	sel := "t::text"
	if cols != nil {
		sel = "ROW(t." + strings.Join(cols, ", t.") + ")::text"
	}
	var out []string
	require.NoError(t, pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('TimeZone', 'UTC', true)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+sel+` FROM `+pgx.Identifier{schema, table}.Sanitize()+` AS t ORDER BY t.`+strings.Join(key, ", t."))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	return out
}

// readModelRows returns every read table's rows (the read model's columns) of a schema.
func readModelRows(t *testing.T, ctx context.Context, admin *pgxpool.Pool, schema string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range readmodel.Tables() {
		out[tb.Name] = tableRows(t, ctx, admin, schema, tb.Name, tb.Key, tb.ColumnNames())
	}
	return out
}

// liveRows returns every live read table's rows, whole (guard_seq included).
func liveRows(t *testing.T, ctx context.Context, admin *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range readmodel.Tables() {
		out[tb.Name] = tableRows(t, ctx, admin, "userstore", tb.Name, tb.Key, nil)
	}
	return out
}

// describe returns the catalog's description of live tables: the table's oid, owner and row-level
// security flags; its columns; indexes with their definitions; constraints; policies; table and column
// grants; triggers.
func describe(t *testing.T, ctx context.Context, admin *pgxpool.Pool, tables ...string) []string {
	t.Helper()
	const q = `
SELECT 'table ' || c.oid::text || ' owner ' || c.relowner::regrole::text || ' rls ' || c.relrowsecurity::text ||
       ' force ' || c.relforcerowsecurity::text || ' acl ' || coalesce(c.relacl::text, '-')
  FROM pg_class AS c WHERE c.oid = $1::text::regclass
UNION ALL
SELECT * FROM (
SELECT 'column ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull ' ||
       a.attnotnull::text || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || ' generated ' ||
       a.attgenerated::text || ' identity ' || a.attidentity::text || ' acl ' || coalesce(a.attacl::text, '-')
  FROM pg_attribute AS a LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS cols
UNION ALL
SELECT * FROM (
SELECT 'index ' || i.indexrelid::regclass::text || ' ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index AS i WHERE i.indrelid = $1::text::regclass ORDER BY 1) AS idx
UNION ALL
SELECT * FROM (
SELECT 'constraint ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
  FROM pg_constraint AS co WHERE co.conrelid = $1::text::regclass ORDER BY 1) AS cons
UNION ALL
SELECT * FROM (
SELECT 'policy ' || p.polname || ' permissive ' || p.polpermissive::text || ' cmd ' || p.polcmd::text || ' roles ' ||
       array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END FROM unnest(p.polroles) AS r ORDER BY 1), ',') ||
       ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-') || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-')
  FROM pg_policy AS p WHERE p.polrelid = $1::text::regclass ORDER BY 1) AS pol
UNION ALL
SELECT * FROM (
SELECT 'trigger ' || tg.tgname || ' ' || pg_get_triggerdef(tg.oid)
  FROM pg_trigger AS tg WHERE tg.tgrelid = $1::text::regclass AND NOT tg.tgisinternal ORDER BY 1) AS trg`
	var out []string
	for _, table := range tables {
		rows, err := admin.Query(ctx, q, "userstore."+table)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, l := range lines {
			out = append(out, table+": "+l)
		}
	}
	return out
}

// readModelTableNames returns the read tables' names.
func readModelTableNames() []string {
	var out []string
	for _, tb := range readmodel.Tables() {
		out = append(out, tb.Name)
	}
	return out
}

// shadowExists reports whether a target's shadow schema exists.
func shadowExists(t *testing.T, ctx context.Context, admin *pgxpool.Pool, target string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, rebuild.ShadowSchema(target)).Scan(&ok))
	return ok
}

// progressLog collects progress reports.
type progressLog struct {
	mu  sync.Mutex
	all []rebuild.Progress
}

func (p *progressLog) add(pr rebuild.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, pr)
}

func (p *progressLog) phases() []rebuild.Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []rebuild.Phase
	for _, pr := range p.all {
		if len(out) == 0 || out[len(out)-1] != pr.Phase {
			out = append(out, pr.Phase)
		}
	}
	return out
}

// exerciseStore runs mutations and reads through s in a new tenant and checks that they work.
func exerciseStore(t *testing.T, ctx context.Context, s userstore.Store) {
	t.Helper()
	tenant := fullHistory(t, ctx, s)
	c := tctx(ctx, tenant)
	u, err := s.CreateUser(c, &userstore.CreateUserParams{DisplayName: "After", Email: "after-" + tenant.String()[24:] + "@example.com"})
	require.NoError(t, err)
	got, err := s.GetUser(c, u.ID)
	require.NoError(t, err)
	require.Equal(t, u, got)
	page, err := s.ListMembers(c, nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	_, err = s.GetTenant(c)
	require.NoError(t, err)
}
