package pgstore_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/faultproxy"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// proxy starts a faultproxy in front of the local cluster (direct, no PgBouncer) and closes it when
// the test ends.
func proxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	cc := pgtest.Default(t).PoolConfig(t, pgtest.App).ConnConfig
	p, err := faultproxy.New(net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// proxiedStore returns a store whose pool holds ONE connection (so that the proxy's next COMMIT is
// the store's), to the package database as userstore_app through a new faultproxy.
//
// The proxy is closed before the pool: after a fault, pgx closes the broken connection in the
// background and first sends a cancel request, over a new connection through the proxy, then waits
// (up to 15s) for it to be closed — which the proxy does not do by itself when the server closes its
// end (see the report of this change). Until then the pool's one slot stays taken, so the tests
// retry through a second store, connected directly.
func proxiedStore(t *testing.T) (*faultproxy.Proxy, *pgstore.Store) {
	t.Helper()
	p := proxy(t)
	cfg := connectConfig(t, pgtest.App)
	cfg.Host, cfg.Port, cfg.MaxConns = "127.0.0.1", p.Port(), 1
	s, err := pgstore.New(t.Context(), newPool(t, cfg), nil)
	require.NoError(t, err)
	closeFirst(t, p)
	return p, s
}

// closeFirst closes p before the cleanups registered so far (the pools that use it) run.
func closeFirst(t *testing.T, p *faultproxy.Proxy) {
	t.Helper()
	t.Cleanup(func() { require.NoError(t, p.Close()) })
}

// directStore returns a store on a new pool of its own, connected directly as userstore_app.
func directStore(t *testing.T) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(t.Context(), newPool(t, connectConfig(t, pgtest.App)), nil)
	require.NoError(t, err)
	return s
}

// newTenantCtx creates a tenant on s and returns a context with the tenant and an actor.
func newTenantCtx(t *testing.T, ctx context.Context, s userstore.Store) (context.Context, uuid.UUID) {
	t.Helper()
	id := userstore.NewID()
	ctx = userstore.WithActor(userstore.WithTenant(ctx, id), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-connect-test"})
	_, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + id.String()[24:], Name: "Tenant"})
	require.NoError(t, err)
	return ctx, id
}

// userCreations counts the user.created events of tenant in the log, read as the projector (which
// reads every tenant), and returns the stream ids they belong to.
func userCreations(t *testing.T, ctx context.Context, tenant uuid.UUID) []uuid.UUID {
	t.Helper()
	rows, err := pgtest.ProjectorPool(t).Query(ctx,
		`SELECT stream_id FROM userstore.events WHERE tenant_id = $1 AND event_type = $2 ORDER BY global_position`,
		tenant, domain.EventUserCreated)
	require.NoError(t, err)
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

func createUserParams(email string) *userstore.CreateUserParams {
	return &userstore.CreateUserParams{
		Mutation:    userstore.Mutation{IdempotencyKey: "create-" + email},
		DisplayName: "Ann",
		Email:       email,
	}
}

// TestCommitReplyLostIsOutcomeUnknown: the server commits, the client never hears of it. The call
// says the outcome is unknown; a retry with the same idempotency key returns the original result,
// and the log holds one creation.
func TestCommitReplyLostIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, s := proxiedStore(t)
	tctx, tenant := newTenantCtx(t, ctx, s)
	email := "lost-reply-" + uuid.NewString() + "@example.com"

	commits := p.Commits()
	p.SetMode(faultproxy.DropCommitReply)
	_, err := s.CreateUser(tctx, createUserParams(email))
	require.ErrorIs(t, err, userstore.ErrCommitOutcomeUnknown)
	require.Equal(t, commits+1, p.Commits(), "the proxy saw the store's COMMIT")
	requireLibraryError(t, err, userstore.ErrCommitOutcomeUnknown)
	requireRedacted(t, err, email)

	// The server did commit: the retry finds the committed result.
	direct := directStore(t)
	u, err := direct.CreateUser(tctx, createUserParams(email))
	require.NoError(t, err)
	require.Equal(t, email, u.Email)
	require.Equal(t, int64(1), u.Version)
	require.Equal(t, []uuid.UUID{u.ID}, userCreations(t, ctx, tenant), "one creation in the log")

	again, err := direct.CreateUser(tctx, createUserParams(email))
	require.NoError(t, err)
	require.Equal(t, u.ID, again.ID)
	require.Equal(t, u.Version, again.Version)
	require.Equal(t, u.CreatedAt, again.CreatedAt)
	require.Equal(t, []uuid.UUID{u.ID}, userCreations(t, ctx, tenant))
}

// TestConnectionLostBeforeCommitIsOutcomeUnknown: the COMMIT never reaches the server, so nothing is
// committed — but the client cannot tell. The call says the outcome is unknown; the retry with the
// same idempotency key performs the mutation, once.
func TestConnectionLostBeforeCommitIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, s := proxiedStore(t)
	tctx, tenant := newTenantCtx(t, ctx, s)
	email := "lost-commit-" + uuid.NewString() + "@example.com"

	commits := p.Commits()
	p.SetMode(faultproxy.CloseBeforeCommit)
	_, err := s.CreateUser(tctx, createUserParams(email))
	require.ErrorIs(t, err, userstore.ErrCommitOutcomeUnknown)
	require.Equal(t, commits+1, p.Commits(), "the proxy saw the store's COMMIT")
	requireLibraryError(t, err, userstore.ErrCommitOutcomeUnknown)
	requireRedacted(t, err, email)

	direct := directStore(t)
	_, err = direct.GetUserByEmail(tctx, email)
	require.ErrorIs(t, err, userstore.ErrNotFound, "nothing was committed")
	require.Empty(t, userCreations(t, ctx, tenant))

	u, err := direct.CreateUser(tctx, createUserParams(email))
	require.NoError(t, err)
	require.Equal(t, int64(1), u.Version)
	require.Equal(t, []uuid.UUID{u.ID}, userCreations(t, ctx, tenant), "the retry performed the mutation once")

	again, err := direct.CreateUser(tctx, createUserParams(email))
	require.NoError(t, err)
	require.Equal(t, u.ID, again.ID)
	require.Equal(t, u.Version, again.Version)
	require.Equal(t, []uuid.UUID{u.ID}, userCreations(t, ctx, tenant))
}
