package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// populate gives a tenant a row in every table the store writes.
func populate(t *testing.T, ctx context.Context, s userstore.Store) {
	t.Helper()
	u, err := s.CreateUser(ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{IdempotencyKey: "k-" + uuid.NewString()},
		DisplayName: "Ann", Email: "ann-" + uuid.NewString() + "@example.com"})
	require.NoError(t, err)
	_, err = s.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: "ann-" + uuid.NewString(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
	require.NoError(t, err)
	_, err = s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: "https://idp.example.com", Subject: "s-" + uuid.NewString()})
	require.NoError(t, err)
	app, err := s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "k-" + uuid.NewString(), Kind: userstore.AppWeb})
	require.NoError(t, err)
	_, err = s.Bind(ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: u.ID, Roles: []string{"viewer"}})
	require.NoError(t, err)
	c, err := s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "C " + uuid.NewString(), Attributes: []userstore.Attribute{{Key: "nick", Type: userstore.AttrString}}})
	require.NoError(t, err)
	_, err = s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{"nick": userstore.StringValue("a")}})
	require.NoError(t, err)
	_, err = s.AddMember(ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleOwner})
	require.NoError(t, err)
}

// tenantTables lists the tables of schema userstore that have a tenant_id column, from the catalog, so
// that a table added later is covered without touching the test.
func tenantTables(t *testing.T, ctx context.Context) []string {
	t.Helper()
	rows, err := pgtest.AdminPool(t).Query(ctx, `
		SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'userstore' AND c.relkind IN ('r', 'p')
		   AND EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		 ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Greater(t, len(tables), 10)
	return tables
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// inAppTx runs fn in a transaction of the app role scoped to tenant (uuid.Nil: no tenant set) and
// rolls it back.
func inAppTx(t *testing.T, ctx context.Context, tenant uuid.UUID, fn func(tx pgx.Tx) error) error {
	t.Helper()
	tx, err := pgtest.AppPool(t).Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if tenant != uuid.Nil {
		_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1::text, true)`, tenant.String())
		require.NoError(t, err)
	}
	return fn(tx)
}

// TestTenantIsolationInRawSQL: as userstore_app with tenant A set, every tenant table of schema
// userstore shows only A's rows, a B row can neither be inserted nor updated, and an A row cannot be
// moved to B; with no tenant set every table reads empty and nothing can be inserted. A table the app
// role may not read at all (tenant_slugs) refuses it with insufficient_privilege.
func TestTenantIsolationInRawSQL(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	s := shared(t)
	ctxA, a := tenantCtx(t, s)
	ctxB, b := tenantCtx(t, s)
	populate(t, ctxA, s)
	populate(t, ctxB, s)
	admin := pgtest.AdminPool(t)

	for _, table := range tenantTables(t, ctx) {
		t.Run(table, func(t *testing.T) {
			ident := pgx.Identifier{"userstore", table}.Sanitize()
			var countA, countB int
			require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1::uuid), count(*) FILTER (WHERE tenant_id = $2::uuid) FROM `+ident,
				a.ID.String(), b.ID.String()).Scan(&countA, &countB))
			if storeTables[table] {
				require.Positive(t, countA, "tenant A has rows in %s", table)
				require.Positive(t, countB, "tenant B has rows in %s", table)
			}
			var readable bool
			require.NoError(t, admin.QueryRow(ctx, `SELECT has_table_privilege('userstore_app', $1::regclass, 'SELECT')`, ident).Scan(&readable))

			// A row of a tenant, made of nothing but its tenant_id: row-level security checks WITH CHECK
			// before NOT NULL, CHECK and unique constraints, so that is what refuses it. The insert
			// names only the columns the app role may insert (not the log's transaction_id, for one).
			// (A table the app role may insert no column of gets just tenant_id: permission refuses it.)
			var cols string
			require.NoError(t, admin.QueryRow(ctx, `
				SELECT coalesce(string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), 'tenant_id')
				  FROM pg_attribute AS a
				 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
				   AND has_column_privilege('userstore_app', a.attrelid, a.attnum, 'INSERT')`, ident).Scan(&cols))
			insert := `INSERT INTO ` + ident + ` (` + cols + `) SELECT ` + cols + ` FROM jsonb_populate_record(NULL::` + ident + `, jsonb_build_object('tenant_id', $1::text))`

			// With tenant A: only A's rows are visible.
			var all, others int
			err := inAppTx(t, ctx, a.ID, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE tenant_id IS DISTINCT FROM $1::uuid) FROM `+ident, a.ID.String()).
					Scan(&all, &others)
			})
			if readable {
				require.NoError(t, err)
				require.Equal(t, countA, all, "tenant A sees exactly its rows of %s", table)
				require.Zero(t, others, "tenant A sees no other tenant's row of %s", table)
			} else {
				require.Equal(t, "42501", sqlState(err), "the app role cannot read %s at all", table)
			}
			// A B row can be neither inserted nor updated.
			err = inAppTx(t, ctx, a.ID, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, insert, b.ID.String()); return err })
			require.Equal(t, "42501", sqlState(err), "inserting a B row with tenant A set is refused: %v", err)
			err = inAppTx(t, ctx, a.ID, func(tx pgx.Tx) error {
				ct, err := tx.Exec(ctx, `UPDATE `+ident+` SET tenant_id = tenant_id WHERE tenant_id = $1::uuid`, b.ID.String())
				if err == nil && ct.RowsAffected() != 0 {
					return errors.New("a B row was updated")
				}
				return err
			})
			if err != nil {
				require.Equal(t, "42501", sqlState(err), "updating B rows with tenant A set: %v", err)
			}
			// An A row cannot be moved to B.
			err = inAppTx(t, ctx, a.ID, func(tx pgx.Tx) error {
				ct, err := tx.Exec(ctx, `UPDATE `+ident+` SET tenant_id = $2::uuid WHERE tenant_id = $1::uuid`, a.ID.String(), b.ID.String())
				if err == nil && ct.RowsAffected() != 0 {
					return errors.New("an A row was moved to B")
				}
				return err
			})
			if countA > 0 || err != nil {
				require.Equal(t, "42501", sqlState(err), "moving an A row to B is refused: %v", err)
			}

			// With no tenant: nothing is visible, nothing can be inserted.
			err = inAppTx(t, ctx, uuid.Nil, func(tx pgx.Tx) error {
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n); err != nil {
					return err
				}
				if n != 0 {
					return errors.New("rows are visible without a tenant")
				}
				return nil
			})
			if readable {
				require.NoError(t, err, "%s reads empty without a tenant", table)
			} else {
				require.Equal(t, "42501", sqlState(err))
			}
			err = inAppTx(t, ctx, uuid.Nil, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, insert, a.ID.String()); return err })
			require.Equal(t, "42501", sqlState(err), "inserting without a tenant is refused: %v", err)
		})
	}
}

// storeTables are the tables the store writes: populate gives every tenant rows in each.
var storeTables = map[string]bool{
	"events": true, "tenants": true, "users": true, "accounts": true, "external_identities": true,
	"applications": true, "bindings": true, "catalogs": true, "profiles": true, "memberships": true,
	"claims": true, "tenant_slugs": true, "idempotency_keys": true,
}

// TestNoSessionStateLeaks: the store scopes its transactions with set_config(…, true), never a session
// SET. On a pool of one connection, after mutations and queries, a fresh statement on that very
// connection sees no tenant and the server's synchronous_commit.
func TestNoSessionStateLeaks(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
	cfg.MaxConns, cfg.MinConns = 1, 0
	pool := pgtest.NewPool(t, cfg)
	var pidBefore int32
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pidBefore))

	s := newStore(t, pool, nil)
	tctx, tn := tenantCtx(t, s)
	u, err := s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann-" + uuid.NewString() + "@example.com"})
	require.NoError(t, err)
	_, err = s.GetUser(tctx, u.ID)
	require.NoError(t, err)
	_, err = s.GetTenantBySlug(t.Context(), tn.Slug)
	require.NoError(t, err)
	_, err = s.ListAuditRecords(tctx, &userstore.ListAuditParams{})
	require.NoError(t, err)
	_, err = s.UpdateUserProfile(tctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Ann", ExpectedVersion: 7})
	require.ErrorIs(t, err, userstore.ErrConflict, "a failed mutation leaves nothing behind either")

	var (
		pid     int32
		tenant  *string
		syncSet string
	)
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('userstore.tenant_id', true), current_setting('synchronous_commit')`).
		Scan(&pid, &tenant, &syncSet))
	require.Equal(t, pidBefore, pid, "the same pooled connection")
	if tenant != nil {
		require.Empty(t, *tenant, "no tenant outlives a transaction on a pooled connection")
	}
	var serverSync string
	require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&serverSync))
	require.Equal(t, serverSync, syncSet, "synchronous_commit is back to the server's")
	var visible int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM userstore.users`).Scan(&visible))
	require.Zero(t, visible, "no row is visible outside the store's transactions")
}
