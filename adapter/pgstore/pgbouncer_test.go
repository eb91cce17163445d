package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/adapter/storetest"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// bouncerStore returns a store on db as userstore_app through the local PgBouncer in transaction
// pooling mode, its pool built by pgstore.NewPool with PgBouncer set (QueryExecModeExec). With single,
// it goes through the bouncer whose pool holds one server connection: every transaction of the store's
// clients then runs on the same server session.
func bouncerStore(t *testing.T, db *pgtest.Database, single bool, maxConns int32) *pgstore.Store {
	t.Helper()
	bc := db.BouncerPoolConfig(t, pgtest.App).ConnConfig
	if single {
		bc = db.SingleBouncerPoolConfig(t, pgtest.App).ConnConfig
	}
	pool := newPool(t, &pgstore.ConnectConfig{
		Host:         bc.Host,
		Port:         bc.Port,
		Database:     bc.Database,
		User:         bc.User,
		PasswordFile: writeSecret(t, bc.Password),
		MaxConns:     maxConns,
		PgBouncer:    true,
	})
	require.Equal(t, pgx.QueryExecModeExec, pool.Config().ConnConfig.DefaultQueryExecMode)
	s, err := pgstore.New(t.Context(), pool, nil)
	require.NoError(t, err)
	return s
}

// TestConformanceThroughPgBouncer runs the whole conformance suite against one store whose
// connections go through PgBouncer in transaction pooling mode: consecutive transactions of a client
// connection land on arbitrary server connections, so the store must keep no session state. The audit
// projection runs beside it (directly, as the projector role) in the suite's Sync, in a database of its
// own for the reason TestConformance gives.
func TestConformanceThroughPgBouncer(t *testing.T) {
	db := pgtest.NewDatabase(t, nil)
	s := withProjector(t, db, bouncerStore(t, db, false, 16))
	storetest.Run(t, func(t *testing.T) userstore.Store { return s })
}

// TestTenantDoesNotLeakThroughOneServerConnection: through the bouncer with a single server
// connection, transactions of two tenants alternate on the same server session; each sees its own
// tenant only.
func TestTenantDoesNotLeakThroughOneServerConnection(t *testing.T) {
	t.Parallel()
	s := bouncerStore(t, pgtest.Default(t), true, 4)
	ctxA, _ := newTenantCtx(t, t.Context(), s)
	ctxB, _ := newTenantCtx(t, t.Context(), s)
	a, err := s.CreateUser(ctxA, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann-" + userstore.NewID().String() + "@example.com"})
	require.NoError(t, err)
	for range 3 {
		_, err = s.GetUser(ctxB, a.ID)
		require.ErrorIs(t, err, userstore.ErrNotFound, "tenant B must not see tenant A's user")
		got, err := s.GetUser(ctxA, a.ID)
		require.NoError(t, err)
		require.Equal(t, a.ID, got.ID)
		page, err := s.ListUsers(ctxB, &userstore.ListUsersParams{})
		require.NoError(t, err)
		require.Empty(t, page.Items)
	}
}
