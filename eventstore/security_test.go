package eventstore_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

func sqlState(t *testing.T, err error) string {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	return pgErr.Code
}

// TestAppendOnly: UPDATE, DELETE and TRUNCATE on the log fail — for the app role by privilege, and
// for every role (the owner, even a superuser) through the trigger. It runs in a database of its
// own: TRUNCATE takes an ACCESS EXCLUSIVE lock before the trigger rejects it, which would queue every
// other test's reads and writes behind the lock.
func TestAppendOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, nil)
	app := newStore(t, db.Pool(t, pgtest.App), nil)
	ctx := testCtx(t)
	tenant, stream := uuid.New(), uuid.New()
	_, err := app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1)))
	require.NoError(t, err)

	const (
		insufficientPrivilege = "42501"
		restrictViolation     = "23001" // raised by the events_append_only trigger
	)
	statements := map[string]string{
		"update":   `UPDATE userstore.events SET payload = '{}' WHERE tenant_id = $1`,
		"delete":   `DELETE FROM userstore.events WHERE tenant_id = $1`,
		"truncate": `TRUNCATE userstore.events`,
	}
	for _, role := range []pgtest.Role{pgtest.App, pgtest.Owner, pgtest.Admin} {
		pool := db.Pool(t, role)
		for name, sql := range statements {
			t.Run(role.String()+"/"+name, func(t *testing.T) {
				tx, err := pool.Begin(ctx)
				require.NoError(t, err)
				defer func() { _ = tx.Rollback(ctx) }()
				_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1, true)`, tenant.String())
				require.NoError(t, err)
				var args []any
				if name != "truncate" {
					args = append(args, tenant)
				}
				_, err = tx.Exec(ctx, sql, args...)
				require.Error(t, err)
				want := restrictViolation
				if role == pgtest.App {
					want = insufficientPrivilege
				}
				require.Equal(t, want, sqlState(t, err))
			})
		}
	}

	got, err := app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
	require.NoError(t, err)
	require.Len(t, got.Events, 1)
	require.JSONEq(t, `{"n": 1}`, string(got.Events[0].Payload))
}

// TestTenantIsolation: the app role sees and writes one tenant per transaction; the projector role
// reads every tenant.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := testCtx(t)
	tenantA, tenantB, stream := uuid.New(), uuid.New(), uuid.New()
	resA, err := s.app.Append(ctx, appendParams(tenantA, stream, eventstore.NoStream(), ev("a", 1)))
	require.NoError(t, err)
	resB, err := s.app.Append(ctx, appendParams(tenantB, uuid.New(), eventstore.NoStream(), ev("b", 1)))
	require.NoError(t, err)

	// Reading tenant A's stream as tenant B finds nothing.
	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenantB, StreamID: stream})
	require.NoError(t, err)
	require.Empty(t, got.Events)

	// Without a tenant in the transaction, the app role sees no row at all.
	var n int
	require.NoError(t, s.appPool.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, s.appPool.QueryRow(ctx,
		`SELECT count(*) FROM userstore.events WHERE event_id = $1`, resA.EventIDs[0]).Scan(&n))
	require.Zero(t, n)

	// The tenant setting is transaction-local: it does not leak into the next use of a connection.
	conn, err := s.appPool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1, true)`, tenantA.String())
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&n))
	require.Equal(t, 1, n)
	// Writing a row of another tenant is rejected by the policy.
	_, err = tx.Exec(ctx, `INSERT INTO userstore.events (tenant_id, stream_type, stream_id, stream_version, partition,
		event_id, event_type, event_version, payload) VALUES ($1, 'x', $2, 1, 0, $3, 'x', 1, '{}')`,
		tenantB, uuid.New(), uuid.New())
	require.Equal(t, "42501", sqlState(t, err))
	require.NoError(t, tx.Rollback(ctx))

	// Nor can it forge a transaction id (a place in the log's order) or a timestamp.
	for _, col := range []string{"transaction_id", "recorded_at"} {
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT set_config('userstore.tenant_id', $1, true)`, tenantA.String())
		require.NoError(t, err)
		value := map[string]string{"transaction_id": "'3'::xid8", "recorded_at": "now() - interval '1 year'"}[col]
		_, err = tx.Exec(ctx, `INSERT INTO userstore.events (tenant_id, stream_type, stream_id, stream_version, partition,
			event_id, event_type, event_version, payload, `+col+`) VALUES ($1, 'x', $2, 1, 0, $3, 'x', 1, '{}', `+value+`)`,
			tenantA, uuid.New(), uuid.New())
		require.Equal(t, "42501", sqlState(t, err), col)
		require.NoError(t, tx.Rollback(ctx))
	}
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&n))
	require.Zero(t, n)

	// ReadAll of one tenant by the app role (waiting for the event to pass the horizon).
	all := waitReadAll(t, ctx, s.app, &eventstore.ReadAllParams{TenantID: tenantA}, 1)
	require.Equal(t, []uuid.UUID{resA.EventIDs[0]}, eventIDs(all))
	more, err := s.app.ReadAll(ctx, &eventstore.ReadAllParams{TenantID: tenantA, After: all[0].Cursor()})
	require.NoError(t, err)
	require.Empty(t, more.Events)

	// The projector reads every tenant, and may not write.
	for tenant, id := range map[uuid.UUID]uuid.UUID{tenantA: resA.EventIDs[0], tenantB: resB.EventIDs[0]} {
		require.NoError(t, s.projPool.QueryRow(ctx,
			`SELECT count(*) FROM userstore.events WHERE tenant_id = $1 AND event_id = $2`, tenant, id).Scan(&n))
		require.Equal(t, 1, n)
	}
	_, err = s.projector.Append(ctx, appendParams(tenantA, uuid.New(), eventstore.NoStream(), ev("p", 1)))
	require.ErrorIs(t, err, eventstore.ErrPermission)

	// The owner owns the table, but FORCE ROW LEVEL SECURITY applies the policies to it as well.
	require.NoError(t, pgtest.OwnerPool(t).QueryRow(ctx,
		`SELECT count(*) FROM userstore.events WHERE tenant_id = $1`, tenantA).Scan(&n))
	require.Zero(t, n)
}

// TestQueryExecModes: the store works with pgx's default mode (prepared statements) as well as
// with QueryExecModeExec, which the shared test pools use (PgBouncer transaction mode).
func TestQueryExecModes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
			cfg.ConnConfig.DefaultQueryExecMode = mode
			cfg.MaxConns = 2
			st := newStore(t, pgtest.NewPool(t, cfg), nil)
			tenant, stream := uuid.New(), uuid.New()

			res, err := st.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("a", 1), ev("a", 2)))
			require.NoError(t, err)
			_, err = st.Append(ctx, appendParams(tenant, stream, eventstore.Exact(1), ev("a", 3)))
			require.ErrorIs(t, err, eventstore.ErrVersionConflict)
			got, err := st.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream, Limit: 5})
			require.NoError(t, err)
			require.Len(t, got.Events, 2)
			require.Equal(t, res.EventIDs, eventIDs(got.Events))
			p := eventstore.PartitionOf(tenant)
			all := waitReadAll(t, ctx, st, &eventstore.ReadAllParams{TenantID: tenant, Partition: &p}, 2)
			require.Equal(t, res.EventIDs, eventIDs(all))
			_, err = st.Horizon(ctx)
			require.NoError(t, err)
		})
	}
}

// TestErrorsAreRedacted: connection failures are ErrUnavailable and carry no connection settings,
// password or driver error.
func TestErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const secret = "s3cret-password-value"

	for name, adjust := range map[string]func(cfg *pgxpool.Config){
		"wrong password": func(cfg *pgxpool.Config) { cfg.ConnConfig.Password = secret },
		"nothing listens": func(cfg *pgxpool.Config) {
			cfg.ConnConfig.Password = secret
			cfg.ConnConfig.Port = 1
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
			adjust(cfg)
			st := newStore(t, pgtest.NewPool(t, cfg), nil)
			tenant, stream := uuid.New(), uuid.New()
			calls := map[string]error{}
			_, calls["append"] = st.Append(ctx, appendParams(tenant, stream, eventstore.Any(), ev("a", 1)))
			_, calls["read stream"] = st.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
			_, calls["read all"] = st.ReadAll(ctx, nil)
			_, calls["horizon"] = st.Horizon(ctx)
			for call, err := range calls {
				require.ErrorIs(t, err, eventstore.ErrUnavailable, call)
				for _, leak := range []string{secret, cfg.ConnConfig.User, cfg.ConnConfig.Database, "postgres://"} {
					require.NotContains(t, err.Error(), leak, call)
				}
				var connectErr *pgconn.ConnectError
				require.False(t, errors.As(err, &connectErr), "%s: the pgx connect error is not reachable", call)
				var pgErr *pgconn.PgError
				require.False(t, errors.As(err, &pgErr), "%s: no driver error is reachable", call)
			}
		})
	}
}
