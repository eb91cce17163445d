package faultsuite_test

// The tenant isolation sweep. It reads the relations of schema userstore from the catalog, so that a
// table added by a later migration is swept without editing this file — or fails the sweep until the
// workload gives it rows of both tenants (a table with tenant_id) or it is classified (a table without).
//
// Workload: two tenants, A and B, get a row in every table a store and a projector write — through
// pgstore as userstore_app (a user, an account, an identity, an application, a binding, a catalog, a
// profile, a membership, with idempotency keys) and through the projections runtime as
// userstore_projector (the audit trail, and dead letters of a projection that refuses every event of A
// and B). Then, as userstore_app:
//
//   - with tenant A set: no row of B is visible, A sees exactly its own rows; a B row (a copy of a real
//     one) cannot be inserted; B's rows can be neither updated nor deleted (0 rows, or refused); A's
//     rows cannot be moved to B;
//   - with no tenant, an empty tenant and an unknown tenant: nothing is visible, nothing can be
//     inserted; a malformed tenant setting fails or shows nothing;
//   - and the same from B's side, the checks of A, of no tenant and of B interleaved.
//
// A table without tenant_id must be listed in tenantless with its reason, and userstore_app may hold
// exactly the privileges listed there on it. The app role may use no relation outside schema userstore. No runtime role may TRUNCATE (TRUNCATE ignores row-level
// security). A view the app role may read must be security_invoker. A SECURITY DEFINER function the
// app role may execute bypasses row-level security, so each must be classified in definerChecks with a
// check that it does not serve another tenant.
//
// TestTenantIsolationSweep runs it directly; TestTenantIsolationSweepThroughPgBouncer writes the
// workload through PgBouncer in transaction mode with ONE server connection, the tenants' mutations
// interleaved, and runs every check through that one server session.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// appRole is the role the sweep checks.
const appRole = "userstore_app"

// tenantless are the relations of schema userstore without a tenant_id column, each with the reason it
// needs none and the privileges userstore_app holds on it (any other privilege fails the sweep).
var tenantless = map[string]struct {
	reason string
	app    []string
}{
	"goose_db_version": {
		reason: "the migrations' version table: schema versions only; the app role reads it to refuse another schema",
		app:    []string{"SELECT"},
	},
	"projection_checkpoints": {
		reason: "the projector's log cursor per (projection, version, partition): positions only, the projector's alone",
	},
	"watermill_userstore.events": {
		reason: "the outbox relay's watermill-sql topic table: the tenant is in each message's metadata; the projector's and its consumers', never the app role's",
	},
}

// privileges are the table privileges the sweep inspects.
var privileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

// relation is one relation of schema userstore, as the catalog describes it.
type relation struct {
	name        string
	kind        string // pg_class.relkind
	partition   bool   // a partition of a partitioned table
	hasTenant   bool
	invoker     bool     // a view with security_invoker
	appPrivs    []string // table privileges userstore_app holds (on the table or any column)
	appSelects  bool
	appTruncate bool
	insertCols  []string // columns userstore_app may insert (not generated, not identity ALWAYS)
	updateCol   string   // a column userstore_app may update, or ""
	ident       string   // the quoted, schema-qualified name
	countA      int      // rows of tenant A, counted as the superuser
	countB      int      // rows of tenant B
}

// relations reads the relations of schema userstore and what the app role may do with them, as the
// superuser.
func relations(t *testing.T, ctx context.Context, admin *pgxpool.Pool) []*relation {
	t.Helper()
	rows, err := admin.Query(ctx, `
		SELECT c.relname, c.relkind::text, c.relispartition,
		       EXISTS (SELECT 1 FROM pg_attribute AS a
		                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped),
		       coalesce('security_invoker=true' = ANY (c.reloptions) OR 'security_invoker=on' = ANY (c.reloptions), false)
		  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'userstore' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		 ORDER BY c.relname`)
	require.NoError(t, err)
	var out []*relation
	for rows.Next() {
		r := &relation{}
		require.NoError(t, rows.Scan(&r.name, &r.kind, &r.partition, &r.hasTenant, &r.invoker))
		r.ident = pgx.Identifier{"userstore", r.name}.Sanitize()
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, out)
	for _, r := range out {
		for _, p := range privileges {
			var has bool
			q := `SELECT has_table_privilege($1, $2::regclass, $3)`
			if p == "SELECT" || p == "INSERT" || p == "UPDATE" || p == "REFERENCES" {
				q = `SELECT has_any_column_privilege($1, $2::regclass, $3)`
			}
			require.NoError(t, admin.QueryRow(ctx, q, appRole, r.ident, p).Scan(&has))
			if has {
				r.appPrivs = append(r.appPrivs, p)
			}
		}
		r.appSelects = slices.Contains(r.appPrivs, "SELECT")
		r.appTruncate = slices.Contains(r.appPrivs, "TRUNCATE")
		if r.kind != "r" && r.kind != "p" {
			continue
		}
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
			  FROM pg_attribute AS a
			 WHERE a.attrelid = $2::regclass AND a.attnum > 0 AND NOT a.attisdropped
			   AND a.attgenerated = '' AND a.attidentity <> 'a'
			   AND has_column_privilege($1, a.attrelid, a.attnum, 'INSERT')`, appRole, r.ident).Scan(&r.insertCols))
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT coalesce(min(a.attname::text), '')
			  FROM pg_attribute AS a
			 WHERE a.attrelid = $2::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
			   AND has_column_privilege($1, a.attrelid, a.attnum, 'UPDATE')`, appRole, r.ident).Scan(&r.updateCol))
	}
	return out
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// refusal codes: insufficient_privilege (a missing grant, or a row-level security WITH CHECK), and
// restrict_violation (the log's append-only trigger).
const (
	codeInsufficientPrivilege = "42501"
	codeRestrictViolation     = "23001"
)

// asApp runs fn in a transaction of pool (userstore_app) with setting as userstore.tenant_id
// (transaction-local; nil: not set at all) and rolls it back.
func asApp(ctx context.Context, pool *pgxpool.Pool, setting *string, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if setting != nil {
		if _, err := tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1::text, true)`, *setting); err != nil {
			return err
		}
	}
	return fn(tx)
}

func ptr(s string) *string { return &s }

// sweepWorld is the state of one sweep: its database, pools and tenants.
type sweepWorld struct {
	db    *pgtest.Database
	admin *pgxpool.Pool
	app   *pgxpool.Pool // userstore_app: directly, or through the one-server-connection PgBouncer
	a, b  uuid.UUID
	slugA string
	slugB string
}

// poison is a projection that refuses every event of its tenants, so that they get dead letters.
type poison struct{ tenants []uuid.UUID }

func (poison) Name() string { return "faultsuite.poison" }
func (poison) Version() int { return 1 }
func (p poison) Apply(_ context.Context, _ pgx.Tx, ev *eventstore.RecordedEvent) error {
	if slices.Contains(p.tenants, ev.TenantID) {
		return errors.New("faultsuite: this projection refuses the event (isolation sweep)")
	}
	return nil
}

// populate writes the workload through s, the steps of A and B interleaved, and projects it: the audit
// trail and the poison projection's dead letters.
func populate(t *testing.T, ctx context.Context, w *sweepWorld, s userstore.Store) {
	t.Helper()
	tenants := []uuid.UUID{w.a, w.b}
	ctxs := make([]context.Context, 2)
	for i, id := range tenants {
		ctxs[i] = actorCtx(ctx, id)
	}
	w.slugA, w.slugB = "a-"+w.a.String()[24:], "b-"+w.b.String()[24:]
	slugs := []string{w.slugA, w.slugB}
	users := make([]*userstore.User, 2)
	apps := make([]*userstore.Application, 2)
	catalogs := make([]*userstore.Catalog, 2)
	key := func(step string, i int) userstore.Mutation {
		return userstore.Mutation{IdempotencyKey: fmt.Sprintf("sweep-%s-%d", step, i)}
	}
	steps := []func(i int) error{
		func(i int) error {
			_, err := s.CreateTenant(ctxs[i], &userstore.CreateTenantParams{Mutation: key("tenant", i), Slug: slugs[i], Name: "Tenant"})
			return err
		},
		func(i int) (err error) {
			users[i], err = s.CreateUser(ctxs[i], &userstore.CreateUserParams{Mutation: key("user", i), DisplayName: "Ann",
				Email: fmt.Sprintf("ann-%d-%s@example.com", i, uuid.NewString())})
			return err
		},
		func(i int) error {
			_, err := s.OpenAccount(ctxs[i], &userstore.OpenAccountParams{Mutation: key("account", i), UserID: users[i].ID,
				LoginName: "ann-" + uuid.NewString(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
			return err
		},
		func(i int) error {
			_, err := s.LinkIdentity(ctxs[i], &userstore.LinkIdentityParams{Mutation: key("identity", i), UserID: users[i].ID,
				Issuer: "https://idp.example.com", Subject: "s-" + uuid.NewString()})
			return err
		},
		func(i int) (err error) {
			apps[i], err = s.RegisterApplication(ctxs[i], &userstore.RegisterApplicationParams{Mutation: key("app", i), Name: "App",
				ClientKey: "k-" + uuid.NewString(), Kind: userstore.AppWeb})
			return err
		},
		func(i int) error {
			_, err := s.Bind(ctxs[i], &userstore.BindParams{Mutation: key("bind", i), ApplicationID: apps[i].ID, UserID: users[i].ID,
				Roles: []string{"viewer"}})
			return err
		},
		func(i int) (err error) {
			catalogs[i], err = s.DefineCatalog(ctxs[i], &userstore.DefineCatalogParams{Mutation: key("catalog", i), Name: "C",
				Attributes: []userstore.Attribute{{Key: "nick", Type: userstore.AttrString}}})
			return err
		},
		func(i int) error {
			_, err := s.SetProfileValues(ctxs[i], &userstore.SetProfileValuesParams{Mutation: key("profile", i), UserID: users[i].ID,
				CatalogID: catalogs[i].ID, Values: map[string]userstore.Value{"nick": userstore.StringValue("a")}})
			return err
		},
		func(i int) error {
			_, err := s.AddMember(ctxs[i], &userstore.AddMemberParams{Mutation: key("member", i), UserID: users[i].ID, Role: userstore.RoleOwner})
			return err
		},
	}
	for n, step := range steps {
		for i := range tenants {
			require.NoError(t, step(i), "workload step %d of tenant %d", n, i)
		}
	}

	proj := w.db.Pool(t, pgtest.Projector)
	events, err := eventstore.New(proj, nil)
	require.NoError(t, err)
	r, err := projections.New(proj, events, []projections.Projection{audit.New(nil), poison{tenants: tenants}},
		&projections.Config{PollIntervalMax: 50 * time.Millisecond})
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, r.CatchUp(cctx))
}

// sweep runs every check of the sweep against w.
func sweep(t *testing.T, ctx context.Context, w *sweepWorld) {
	t.Helper()
	rels := relations(t, ctx, w.admin)
	var tenantTables, swept []string
	for _, r := range rels {
		if r.kind == "r" || r.kind == "p" {
			if r.hasTenant {
				tenantTables = append(tenantTables, r.name)
			}
		}
	}
	require.GreaterOrEqual(t, len(tenantTables), 10, "the catalog query finds the tenant tables")

	for _, r := range rels {
		t.Run(r.name, func(t *testing.T) {
			require.False(t, r.appTruncate, "%s: TRUNCATE ignores row-level security: the app role must not hold it", r.name)
			switch {
			case r.kind == "v" || r.kind == "m" || r.kind == "f":
				if r.appSelects {
					require.True(t, r.kind == "v" && r.invoker,
						"%s (relkind %s) is readable by the app role: a view must be security_invoker (a materialized view or foreign table not readable at all)", r.name, r.kind)
				}
				return
			case !r.hasTenant:
				c, ok := tenantless[r.name]
				require.True(t, ok, "%s has no tenant_id column and is not classified: give it tenant_id with row-level security, or add it to tenantless with the reason it needs none", r.name)
				require.ElementsMatch(t, c.app, r.appPrivs, "%s: the app role's privileges", r.name)
				return
			}
			sweepTable(t, ctx, w, r)
			swept = append(swept, r.name)
		})
	}
	for name := range tenantless {
		require.True(t, slices.ContainsFunc(rels, func(r *relation) bool { return r.name == name }),
			"tenantless lists %s, which no longer exists: remove it", name)
	}
	t.Run("no other schema", func(t *testing.T) {
		// A relation outside schema userstore that the app role may use escapes the sweep (a rebuild's
		// shadow schema, say, has no row-level security): there must be none.
		rows, err := w.admin.Query(ctx, `
			SELECT n.nspname || '.' || c.relname
			  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
			 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
			   AND n.nspname NOT IN ('userstore', 'pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
			   AND has_schema_privilege($1, n.oid, 'USAGE')
			   AND (has_any_column_privilege($1, c.oid, 'SELECT') OR has_any_column_privilege($1, c.oid, 'INSERT')
			        OR has_any_column_privilege($1, c.oid, 'UPDATE') OR has_table_privilege($1, c.oid, 'DELETE')
			        OR has_table_privilege($1, c.oid, 'TRUNCATE'))`, appRole)
		require.NoError(t, err)
		outside, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Empty(t, outside, "the app role may use relations outside schema userstore, which the sweep does not cover")
	})
	sweepDefiners(t, ctx, w)
	t.Logf("isolation sweep: %d relations in schema userstore, %d tenant tables swept (%s), %d classified without tenant_id",
		len(rels), len(swept), strings.Join(swept, ", "), len(tenantless))
}

// sweepTable runs the checks of one table with tenant_id.
func sweepTable(t *testing.T, ctx context.Context, w *sweepWorld, r *relation) {
	t.Helper()
	require.NoError(t, w.admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id = $2) FROM `+r.ident,
		w.a, w.b).Scan(&r.countA, &r.countB))
	if !r.partition {
		require.True(t, r.countA > 0 && r.countB > 0,
			"%s has a tenant_id column but the sweep's workload gave tenant A %d and tenant B %d rows in it: extend populate so that both tenants have rows there",
			r.name, r.countA, r.countB)
	}
	// rowOf returns a real row of tenant as JSON (or one holding just its tenant_id), for the inserts.
	rowOf := func(tenant uuid.UUID) string {
		var row string
		err := w.admin.QueryRow(ctx, `SELECT row_to_json(x)::text FROM `+r.ident+` AS x WHERE tenant_id = $1 LIMIT 1`, tenant).Scan(&row)
		if errors.Is(err, pgx.ErrNoRows) {
			row, err = fmt.Sprintf(`{"tenant_id": %q}`, tenant), nil
		}
		require.NoError(t, err)
		return row
	}
	cols := "tenant_id"
	if len(r.insertCols) > 0 {
		quoted := make([]string, len(r.insertCols))
		for i, c := range r.insertCols {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		cols = strings.Join(quoted, ", ")
	}
	insert := `INSERT INTO ` + r.ident + ` (` + cols + `) SELECT ` + cols + ` FROM json_populate_record(NULL::` + r.ident + `, $1::json)`
	setCol := "tenant_id"
	if r.updateCol != "" {
		setCol = pgx.Identifier{r.updateCol}.Sanitize()
	}

	// sees checks what one tenant setting shows: the rows of self only, want of them (or, without the
	// SELECT privilege, a refusal).
	sees := func(setting *string, self uuid.UUID, want int) {
		t.Helper()
		var all, others int
		err := asApp(ctx, w.app, setting, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE tenant_id IS DISTINCT FROM $1::uuid) FROM `+r.ident, self).Scan(&all, &others)
		})
		if !r.appSelects {
			require.Equal(t, codeInsufficientPrivilege, sqlState(err), "%s: the app role cannot read it: %v", r.name, err)
			return
		}
		require.NoError(t, err, "%s", r.name)
		require.Zero(t, others, "%s: rows of another tenant are visible with setting %v", r.name, describe(setting))
		require.Equal(t, want, all, "%s: with setting %v the app role sees %d rows, want %d", r.name, describe(setting), all, want)
	}
	// cannotWrite checks that rows of victim can be neither inserted nor changed nor removed with
	// setting.
	cannotWrite := func(setting *string, victim uuid.UUID, victimRow string) {
		t.Helper()
		err := asApp(ctx, w.app, setting, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, insert, victimRow); return err })
		require.Equal(t, codeInsufficientPrivilege, sqlState(err), "%s: inserting a row of another tenant with setting %v must be refused: %v", r.name, describe(setting), err)
		for what, stmt := range map[string]string{
			"update": `UPDATE ` + r.ident + ` SET ` + setCol + ` = ` + setCol + ` WHERE tenant_id = $1`,
			"delete": `DELETE FROM ` + r.ident + ` WHERE tenant_id = $1`,
		} {
			var affected int64
			err := asApp(ctx, w.app, setting, func(tx pgx.Tx) error {
				ct, err := tx.Exec(ctx, stmt, victim)
				affected = ct.RowsAffected()
				return err
			})
			if err != nil {
				require.Contains(t, []string{codeInsufficientPrivilege, codeRestrictViolation}, sqlState(err),
					"%s: %s of another tenant's rows with setting %v: %v", r.name, what, describe(setting), err)
			}
			require.Zero(t, affected, "%s: %s reached %d rows of another tenant with setting %v", r.name, what, affected, describe(setting))
		}
	}
	// cannotMove checks that own rows cannot be moved to another tenant.
	cannotMove := func(self, other uuid.UUID, own int) {
		t.Helper()
		var affected int64
		err := asApp(ctx, w.app, ptr(self.String()), func(tx pgx.Tx) error {
			ct, err := tx.Exec(ctx, `UPDATE `+r.ident+` SET tenant_id = $2 WHERE tenant_id = $1`, self, other)
			affected = ct.RowsAffected()
			return err
		})
		require.Zero(t, affected, "%s: rows were moved to another tenant", r.name)
		if own > 0 || err != nil {
			require.Contains(t, []string{codeInsufficientPrivilege, codeRestrictViolation}, sqlState(err),
				"%s: moving own rows to another tenant must be refused: %v", r.name, err)
		}
	}

	rowA, rowB := rowOf(w.a), rowOf(w.b)
	unknown := userstore.NewID()
	// Interleaved: A, no tenant, B, no tenant, … — through the one-server-connection PgBouncer these run
	// on the same server session one after another.
	sees(ptr(w.a.String()), w.a, r.countA)
	sees(nil, uuid.Nil, 0)
	sees(ptr(w.b.String()), w.b, r.countB)
	sees(ptr(""), uuid.Nil, 0)
	sees(ptr(unknown.String()), unknown, 0)
	cannotWrite(ptr(w.a.String()), w.b, rowB)
	cannotWrite(nil, w.b, rowB)
	cannotWrite(ptr(w.b.String()), w.a, rowA)
	cannotWrite(ptr(""), w.a, rowA)
	cannotMove(w.a, w.b, r.countA)
	cannotMove(w.b, w.a, r.countB)

	// A malformed setting fails or shows nothing; it never widens what is visible.
	var n int
	err := asApp(ctx, w.app, ptr("not-a-uuid"), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM `+r.ident).Scan(&n)
	})
	if err == nil {
		require.Zero(t, n, "%s: a malformed tenant setting shows rows", r.name)
	}
}

// describe renders a tenant setting for messages.
func describe(setting *string) string {
	if setting == nil {
		return "(not set)"
	}
	return fmt.Sprintf("%q", *setting)
}

// definerChecks are the SECURITY DEFINER functions of schema userstore the app role may execute, by
// signature, each with the check that it serves the transaction's tenant only (or why it serves any).
var definerChecks = map[string]func(t *testing.T, ctx context.Context, w *sweepWorld){
	"userstore.claim_tenant_slug(text,uuid)": func(t *testing.T, ctx context.Context, w *sweepWorld) {
		for _, setting := range []*string{ptr(w.a.String()), nil, ptr("")} {
			err := asApp(ctx, w.app, setting, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `SELECT userstore.claim_tenant_slug($1, $2)`, "sweep-"+uuid.NewString()[:8], w.b)
				return err
			})
			require.Equal(t, codeInsufficientPrivilege, sqlState(err), "claiming a slug for tenant B with setting %v: %v", describe(setting), err)
		}
	},
	"userstore.release_tenant_slug(text,uuid)": func(t *testing.T, ctx context.Context, w *sweepWorld) {
		for _, setting := range []*string{ptr(w.a.String()), nil, ptr("")} {
			err := asApp(ctx, w.app, setting, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `SELECT userstore.release_tenant_slug($1, $2)`, w.slugB, w.b)
				return err
			})
			require.Equal(t, codeInsufficientPrivilege, sqlState(err), "releasing tenant B's slug with setting %v: %v", describe(setting), err)
		}
		// Naming its own tenant, A cannot release B's slug either: nothing happens to it. (Committed, so
		// that a release would show.)
		tx, err := w.app.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1::text, true)`, w.a.String())
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT userstore.release_tenant_slug($1, $2)`, w.slugB, w.a)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		var holder uuid.UUID
		require.NoError(t, w.admin.QueryRow(ctx, `SELECT tenant_id FROM userstore.tenant_slugs WHERE slug = $1`, w.slugB).Scan(&holder))
		require.Equal(t, w.b, holder, "tenant B still holds its slug")
	},
	"userstore.resolve_tenant_slug(text)": func(t *testing.T, ctx context.Context, w *sweepWorld) {
		// By design it serves any caller, with or without a tenant: resolving a slug is how a caller
		// finds its tenant (GetTenantBySlug). It returns the tenant id of one slug, nothing else.
		var got *uuid.UUID
		err := asApp(ctx, w.app, ptr(w.a.String()), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT userstore.resolve_tenant_slug($1)`, w.slugB).Scan(&got)
		})
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Equal(t, w.b, *got)
	},
}

// sweepDefiners checks every SECURITY DEFINER function of schema userstore the app role may execute.
func sweepDefiners(t *testing.T, ctx context.Context, w *sweepWorld) {
	t.Helper()
	rows, err := w.admin.Query(ctx, `
		SELECT p.oid::regprocedure::text
		  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
		 WHERE n.nspname = 'userstore' AND p.prosecdef AND has_function_privilege($1, p.oid, 'EXECUTE')
		 ORDER BY 1`, appRole)
	require.NoError(t, err)
	fns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, fn := range fns {
		t.Run(fn, func(t *testing.T) {
			check, ok := definerChecks[fn]
			require.True(t, ok, "%s is SECURITY DEFINER (it bypasses row-level security) and the app role may execute it: classify it in definerChecks with a check that it serves the transaction's tenant only", fn)
			check(t, ctx, w)
		})
	}
	for fn := range definerChecks {
		require.Contains(t, fns, fn, "definerChecks lists %s, which the app role cannot execute (or which is gone): remove it", fn)
	}
}

// newSweepWorld creates a private database (the sweep needs a workload of its own and, through the
// one-server-connection PgBouncer, a server session of its own) and two tenant ids.
func newSweepWorld(t *testing.T) *sweepWorld {
	t.Helper()
	db := pgtest.NewDatabase(t, nil)
	return &sweepWorld{db: db, admin: db.Pool(t, pgtest.Admin), a: userstore.NewID(), b: userstore.NewID()}
}

// TestTenantIsolationSweep: the sweep, with the workload written and every check run directly.
func TestTenantIsolationSweep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w := newSweepWorld(t)
	w.app = w.db.Pool(t, pgtest.App)
	s, err := pgstore.New(ctx, w.app, nil)
	require.NoError(t, err)
	populate(t, ctx, w, s)
	sweep(t, ctx, w)
}

// TestTenantIsolationSweepThroughPgBouncer: the sweep through PgBouncer in transaction pooling mode
// whose pool holds ONE server connection: the workload's mutations of A and B alternate on that server
// session (pgstore with ConnectConfig.PgBouncer), and so do the sweep's transactions of A, of no tenant
// and of B. Nothing a transaction sets may survive it there.
func TestTenantIsolationSweepThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w := newSweepWorld(t)
	bc := w.db.SingleBouncerPoolConfig(t, pgtest.App)
	w.app = pgtest.NewPool(t, bc)
	pool := newPool(t, &pgstore.ConnectConfig{
		Host:         bc.ConnConfig.Host,
		Port:         bc.ConnConfig.Port,
		Database:     bc.ConnConfig.Database,
		User:         bc.ConnConfig.User,
		PasswordFile: writeSecret(t, bc.ConnConfig.Password),
		MaxConns:     4,
		PgBouncer:    true,
	})
	s, err := pgstore.New(ctx, pool, nil)
	require.NoError(t, err)
	var pids []int32
	for range 3 {
		var pid int32
		require.NoError(t, w.app.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
		pids = append(pids, pid)
	}
	require.Equal(t, pids[0], pids[1], "one server connection behind the bouncer")
	require.Equal(t, pids[0], pids[2], "one server connection behind the bouncer")
	populate(t, ctx, w, s)
	sweep(t, ctx, w)
}
