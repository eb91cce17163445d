package pgstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
)

// TestPrivileges: the app role has exactly the table privileges the store needs — no DELETE where rows
// never disappear, no UPDATE of claims, only the result of an idempotency record, nothing on
// tenant_slugs, the log stays SELECT/INSERT — owns nothing, and reaches the slugs only through the
// SECURITY DEFINER functions, whose search_path is fixed and which PUBLIC cannot execute.
func TestPrivileges(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	admin := pgtest.AdminPool(t)
	want := map[string]string{
		"tenants": "SELECT INSERT UPDATE", "users": "SELECT INSERT UPDATE", "accounts": "SELECT INSERT UPDATE",
		"applications": "SELECT INSERT UPDATE", "catalogs": "SELECT INSERT UPDATE", "profiles": "SELECT INSERT UPDATE",
		"external_identities": "SELECT INSERT UPDATE DELETE", "bindings": "SELECT INSERT UPDATE DELETE",
		"memberships": "SELECT INSERT UPDATE DELETE", "claims": "SELECT INSERT DELETE",
		"idempotency_keys": "SELECT INSERT UPDATE(result)", "tenant_slugs": "", "events": "SELECT INSERT",
	}
	for _, table := range tenantTables(t, ctx) {
		if _, ok := want[table]; !ok {
			continue // not the store's (the projector's tables, for one)
		}
		var got string
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT concat_ws(' ',
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'SELECT') THEN 'SELECT' END,
			         CASE WHEN has_any_column_privilege('userstore_app', $1::regclass, 'INSERT') THEN 'INSERT' END,
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'UPDATE') THEN 'UPDATE'
			              WHEN $2::text = 'idempotency_keys'
			               AND has_column_privilege('userstore_app', $1::regclass, 'result', 'UPDATE') THEN 'UPDATE(result)' END,
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'DELETE') THEN 'DELETE' END,
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'TRUNCATE') THEN 'TRUNCATE' END,
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'REFERENCES') THEN 'REFERENCES' END,
			         CASE WHEN has_table_privilege('userstore_app', $1::regclass, 'TRIGGER') THEN 'TRIGGER' END)`,
			pgx.Identifier{"userstore", table}.Sanitize(), table).Scan(&got))
		require.Equal(t, want[table], got, "privileges of userstore_app on %s", table)
		delete(want, table)
	}

	require.Empty(t, want, "tables of the store that were not found")

	rows, err := admin.Query(ctx, `
		SELECT p.proname, p.prosecdef, coalesce(array_to_string(p.proconfig, ','), ''),
		       has_function_privilege('userstore_app', p.oid, 'EXECUTE'),
		       has_function_privilege('userstore_projector', p.oid, 'EXECUTE')
		  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
		 WHERE n.nspname = 'userstore' AND p.proname LIKE '%tenant_slug%' ORDER BY 1`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var (
			name, config        string
			definer, app, other bool
		)
		require.NoError(t, rows.Scan(&name, &definer, &config, &app, &other))
		n++
		require.True(t, definer, name)
		require.Equal(t, "search_path=pg_catalog, pg_temp", config, name)
		require.True(t, app, "the app role executes %s", name)
		require.False(t, other, "PUBLIC does not execute %s", name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 3, n, "claim, release and resolve")

	// The claim function only claims for the transaction's own tenant.
	tenant, other := uuid.New(), uuid.New()
	err = inAppTx(t, ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT userstore.claim_tenant_slug($1::text, $2::uuid)`, "t-"+uuid.NewString()[:8], other.String())
		return err
	})
	require.Equal(t, "42501", sqlState(err))
	err = inAppTx(t, ctx, uuid.Nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT userstore.claim_tenant_slug($1::text, $2::uuid)`, "t-"+uuid.NewString()[:8], other.String())
		return err
	})
	require.Equal(t, "42501", sqlState(err), "nor without a tenant")
}
