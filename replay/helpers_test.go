package replay_test

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/replay"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is a private database with a history written through the durable store and projected by the
// audit projection.
type env struct {
	db      *pgtest.Database
	store   *pgstore.Store
	tenants []uuid.UUID
	snaps   []snapshot
}

// setup creates a private database, writes workload.History in `simple` tenants and the rich history
// (every entity type, with snapshots) in `rich` tenants through the store as the app role, and catches
// the audit projection up as the projector role.
func setup(t *testing.T, simple, rich int) *env {
	t.Helper()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	e := &env{db: db, store: s}
	e.tenants = workload.History(t, ctx, s, simple)
	for range rich {
		tenant, snaps := richHistory(t, ctx, s, db.Pool(t, pgtest.Admin))
		e.tenants = append(e.tenants, tenant)
		e.snaps = append(e.snaps, snaps...)
	}
	catchUp(t, ctx, db)
	return e
}

// catchUp runs the audit projection until it has processed every event committed so far.
func catchUp(t *testing.T, ctx context.Context, db *pgtest.Database) {
	t.Helper()
	pool := db.Pool(t, pgtest.Projector)
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, es, []projections.Projection{audit.New(nil)}, &projections.Config{BatchSize: 7})
	require.NoError(t, err)
	require.NoError(t, r.CatchUp(ctx))
}

func (e *env) replayer(t *testing.T, cfg *replay.Config) *replay.Replayer {
	t.Helper()
	r, err := replay.New(e.db.Pool(t, pgtest.Projector), cfg)
	require.NoError(t, err)
	return r
}

// trail reads a tenant's audit_records as the projector role.
func (e *env) trail(t *testing.T, ctx context.Context, tenant uuid.UUID) []userstore.AuditRecord {
	t.Helper()
	recs, err := audit.Read(ctx, e.db.Pool(t, pgtest.Projector), &audit.ReadParams{TenantID: tenant})
	require.NoError(t, err)
	return recs
}

// snapshot is what the store returned for an entity right after a mutation, with the log position of
// the entity's stream at that moment.
type snapshot struct {
	what     string
	entity   replay.EntityRef
	found    bool
	view     any
	position int64
	recorded time.Time
}

// recorder takes snapshots of a tenant's entities as the rich history goes.
type recorder struct {
	t      *testing.T
	ctx    context.Context
	admin  *pgxpool.Pool
	tenant uuid.UUID
	snaps  []snapshot
}

// take records the store's view of an entity at its stream's current version: version is the version
// the store reported (0: the entity's stream's current version, for an entity that no longer exists).
func (r *recorder) take(what string, entity replay.EntityRef, found bool, view any, version int64) {
	r.t.Helper()
	stream := entity.Stream()
	var (
		pos      int64
		recorded time.Time
	)
	err := r.admin.QueryRow(r.ctx, `
		SELECT ev.global_position, ev.recorded_at FROM userstore.events AS ev
		 WHERE ev.tenant_id = $1 AND ev.stream_id = $2
		   AND ev.stream_version = CASE WHEN $3::int8 > 0 THEN $3::int8 ELSE
		       (SELECT max(x.stream_version) FROM userstore.events AS x WHERE x.tenant_id = $1 AND x.stream_id = $2) END`,
		stream.TenantID, stream.ID, version).Scan(&pos, &recorded)
	require.NoError(r.t, err, what)
	r.snaps = append(r.snaps, snapshot{what: what, entity: entity, found: found, view: view, position: pos, recorded: recorded})
}

// must returns v, or panics (failing the test) with err: for the long chains of store calls in
// richHistory, whose results are all needed.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

// richHistory writes a history that touches every entity type and most transitions in a new tenant,
// through s, and returns the tenant and a snapshot of what the store returned after every mutation.
func richHistory(t *testing.T, ctx context.Context, s *pgstore.Store, admin *pgxpool.Pool) (uuid.UUID, []snapshot) {
	t.Helper()
	tenant := userstore.NewID()
	tag := tenant.String()[24:]
	ctx = userstore.WithRequestID(userstore.WithActor(userstore.WithTenant(ctx, tenant),
		userstore.Actor{Type: userstore.ActorUser, ID: "admin-" + tag}), "rich-"+tag)
	rec := &recorder{t: t, ctx: ctx, admin: admin, tenant: tenant}
	ref := func(typ replay.EntityType, id uuid.UUID) replay.EntityRef {
		return replay.EntityRef{TenantID: tenant, Type: typ, ID: id}
	}

	tn := must(s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "r-" + tag, Name: "Rich"}))
	rec.take("tenant created", ref(replay.EntityTenant, tenant), true, must(s.GetTenant(ctx)), tn.Version)
	tn = must(s.RenameTenant(ctx, &userstore.RenameTenantParams{Name: "Rich & Co"}))
	rec.take("tenant renamed", ref(replay.EntityTenant, tenant), true, must(s.GetTenant(ctx)), tn.Version)

	var users []*userstore.User
	for i := range 3 {
		u := must(s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("u%d-%s@example.com", i, tag)}))
		rec.take("user created", ref(replay.EntityUser, u.ID), true, must(s.GetUser(ctx, u.ID)), u.Version)
		users = append(users, u)
	}
	u0 := users[0].ID
	for _, step := range []func() (*userstore.User, error){
		func() (*userstore.User, error) {
			return s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: u0, DisplayName: "Ann"})
		},
		func() (*userstore.User, error) {
			return s.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{ID: u0, Email: "ann-" + tag + "@example.com"})
		},
		func() (*userstore.User, error) { return s.DisableUser(ctx, &userstore.UserParams{ID: u0}) },
		func() (*userstore.User, error) { return s.EnableUser(ctx, &userstore.UserParams{ID: u0}) },
	} {
		u := must(step())
		rec.take("user changed", ref(replay.EntityUser, u0), true, must(s.GetUser(ctx, u0)), u.Version)
	}

	acct := must(s.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: u0, LoginName: "ann-" + tag, Kind: userstore.AccountPassword, CredentialRef: "vault:1"}))
	rec.take("account opened", ref(replay.EntityAccount, acct.ID), true, must(s.GetAccount(ctx, acct.ID)), acct.Version)
	acct = must(s.RenameAccountLogin(ctx, &userstore.RenameAccountLoginParams{ID: acct.ID, LoginName: "annie-" + tag}))
	rec.take("account renamed", ref(replay.EntityAccount, acct.ID), true, must(s.GetAccount(ctx, acct.ID)), acct.Version)
	acct = must(s.LockAccount(ctx, &userstore.AccountParams{ID: acct.ID}))
	rec.take("account locked", ref(replay.EntityAccount, acct.ID), true, must(s.GetAccount(ctx, acct.ID)), acct.Version)

	idn := must(s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: u0, Issuer: "https://idp.example", Subject: "sub-" + tag}))
	rec.take("identity linked", ref(replay.EntityIdentity, idn.ID), true, idn, idn.Version)
	require.NoError(t, s.UnlinkIdentity(ctx, &userstore.UnlinkIdentityParams{ID: idn.ID}))
	rec.take("identity unlinked", ref(replay.EntityIdentity, idn.ID), false, nil, 0)
	idn2 := must(s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: users[1].ID, Issuer: "https://idp.example", Subject: "sub2-" + tag}))
	rec.take("identity linked", ref(replay.EntityIdentity, idn2.ID), true, idn2, idn2.Version)
	idn3 := must(s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: u0, Issuer: "https://other.example", Subject: "sub3-" + tag}))
	rec.take("identity linked", ref(replay.EntityIdentity, idn3.ID), true, idn3, idn3.Version)

	app := must(s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "Portal", ClientKey: "ck-" + tag, Kind: userstore.AppWeb}))
	rec.take("application registered", ref(replay.EntityApplication, app.ID), true, must(s.GetApplication(ctx, app.ID)), app.Version)
	app = must(s.UpdateApplication(ctx, &userstore.UpdateApplicationParams{ID: app.ID, Name: "Portal 2", Kind: userstore.AppNative}))
	rec.take("application updated", ref(replay.EntityApplication, app.ID), true, must(s.GetApplication(ctx, app.ID)), app.Version)
	app2 := must(s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "Batch", ClientKey: "ck2-" + tag, Kind: userstore.AppService}))

	b := must(s.Bind(ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: u0, Roles: []string{"viewer"}}))
	rec.take("binding created", ref(replay.EntityBinding, b.ID), true, must(s.GetBinding(ctx, b.ID)), b.Version)
	b = must(s.ChangeBindingRoles(ctx, &userstore.ChangeBindingRolesParams{ID: b.ID, Roles: []string{"editor", "viewer"}}))
	rec.take("binding roles changed", ref(replay.EntityBinding, b.ID), true, must(s.GetBinding(ctx, b.ID)), b.Version)
	b2 := must(s.Bind(ctx, &userstore.BindParams{ApplicationID: app2.ID, UserID: users[1].ID, Roles: []string{"runner"}}))
	require.NoError(t, s.Unbind(ctx, &userstore.UnbindParams{ID: b2.ID}))
	rec.take("binding removed", ref(replay.EntityBinding, b2.ID), false, nil, 0)
	b3 := must(s.Bind(ctx, &userstore.BindParams{ApplicationID: app2.ID, UserID: users[2].ID, Roles: []string{"runner"}}))
	rec.take("binding created", ref(replay.EntityBinding, b3.ID), true, must(s.GetBinding(ctx, b3.ID)), b3.Version)

	cat := must(s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "Basics", Attributes: []userstore.Attribute{
		{Key: "city", Type: userstore.AttrString, PII: true},
		{Key: "level", Type: userstore.AttrEnum, EnumValues: []string{"gold", "silver"}},
	}}))
	rec.take("catalog defined", ref(replay.EntityCatalog, cat.ID), true, must(s.GetCatalog(ctx, cat.ID)), cat.Version)
	cat = must(s.AddCatalogAttribute(ctx, &userstore.AddCatalogAttributeParams{CatalogID: cat.ID, Attribute: userstore.Attribute{Key: "age", Type: userstore.AttrInt}}))
	rec.take("catalog attribute added", ref(replay.EntityCatalog, cat.ID), true, must(s.GetCatalog(ctx, cat.ID)), cat.Version)
	cat = must(s.DeprecateCatalogAttribute(ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: cat.ID, Key: "age"}))
	rec.take("catalog attribute deprecated", ref(replay.EntityCatalog, cat.ID), true, must(s.GetCatalog(ctx, cat.ID)), cat.Version)

	profile := replay.EntityRef{TenantID: tenant, Type: replay.EntityProfile, ID: u0, CatalogID: cat.ID}
	p := must(s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: u0, CatalogID: cat.ID,
		Values: map[string]userstore.Value{"city": userstore.StringValue("Berlin"), "level": userstore.EnumValue("gold")}}))
	rec.take("profile set", profile, true, must(s.GetProfile(ctx, u0, cat.ID)), p.Version)
	p = must(s.ClearProfileValues(ctx, &userstore.ClearProfileValuesParams{UserID: u0, CatalogID: cat.ID, Keys: []string{"city"}}))
	rec.take("profile cleared", profile, true, must(s.GetProfile(ctx, u0, cat.ID)), p.Version)
	p2 := must(s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: users[1].ID, CatalogID: cat.ID,
		Values: map[string]userstore.Value{"city": userstore.StringValue("Oslo")}}))
	profile2 := replay.EntityRef{TenantID: tenant, Type: replay.EntityProfile, ID: users[1].ID, CatalogID: cat.ID}
	rec.take("profile set", profile2, true, must(s.GetProfile(ctx, users[1].ID, cat.ID)), p2.Version)

	membership := func(u uuid.UUID) replay.EntityRef { return ref(replay.EntityMembership, u) }
	m := must(s.AddMember(ctx, &userstore.AddMemberParams{UserID: u0, Role: userstore.RoleOwner}))
	rec.take("member added", membership(u0), true, must(s.GetMembership(ctx, u0)), m.Version)
	m = must(s.AddMember(ctx, &userstore.AddMemberParams{UserID: users[1].ID, Role: userstore.RoleMember}))
	rec.take("member added", membership(users[1].ID), true, must(s.GetMembership(ctx, users[1].ID)), m.Version)
	m = must(s.ChangeMemberRole(ctx, &userstore.ChangeMemberRoleParams{UserID: users[1].ID, Role: userstore.RoleAdmin}))
	rec.take("member role changed", membership(users[1].ID), true, must(s.GetMembership(ctx, users[1].ID)), m.Version)
	m = must(s.AddMember(ctx, &userstore.AddMemberParams{UserID: users[2].ID, Role: userstore.RoleMember}))
	rec.take("member added", membership(users[2].ID), true, must(s.GetMembership(ctx, users[2].ID)), m.Version)
	require.NoError(t, s.RemoveMember(ctx, &userstore.RemoveMemberParams{UserID: users[2].ID}))
	rec.take("member removed", membership(users[2].ID), false, nil, 0)

	// A cascade: deleting users[1] closes nothing (no account), unlinks its identity, removes its
	// membership and clears its profile in one mutation.
	du := must(s.DeleteUser(ctx, &userstore.UserParams{ID: users[1].ID}))
	rec.take("user deleted", ref(replay.EntityUser, users[1].ID), true, must(s.GetUser(ctx, users[1].ID)), du.Version)
	rec.take("identity unlinked by cascade", ref(replay.EntityIdentity, idn2.ID), false, nil, 0)
	rec.take("membership removed by cascade", membership(users[1].ID), false, nil, 0)
	rec.take("profile cleared by cascade", profile2, true, must(s.GetProfile(ctx, users[1].ID, cat.ID)), 0)
	// Deleting app2 removes its binding b3.
	da := must(s.DeleteApplication(ctx, &userstore.ApplicationParams{ID: app2.ID}))
	rec.take("application deleted", ref(replay.EntityApplication, app2.ID), true, must(s.GetApplication(ctx, app2.ID)), da.Version)
	rec.take("binding removed by cascade", ref(replay.EntityBinding, b3.ID), false, nil, 0)
	return tenant, rec.snaps
}

// asAdmin runs fn in a transaction of the superuser (it bypasses row-level security and privileges);
// replica makes it skip triggers, foreign keys included, as a tamperer with superuser rights could.
func asAdmin(t *testing.T, ctx context.Context, db *pgtest.Database, replica bool, fn func(tx pgx.Tx)) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(ctx, db.Pool(t, pgtest.Admin), func(tx pgx.Tx) error {
		if replica {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
		}
		fn(tx)
		return nil
	}))
}

func exec(t *testing.T, ctx context.Context, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	tag, err := tx.Exec(ctx, sql, args...)
	require.NoError(t, err)
	require.Positive(t, tag.RowsAffected(), sql)
}

var errStop = errors.New("stop")

// pgstoreSync waits until every transaction that had begun has ended: the events committed so far are
// below the log's read horizon.
func pgstoreSync(t *testing.T, ctx context.Context, db *pgtest.Database) error {
	t.Helper()
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	if err != nil {
		return err
	}
	return s.Sync(ctx)
}
