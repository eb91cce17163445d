package faultsuite_test

// Network faults between pgstore and PostgreSQL, injected by internal/faultproxy on the TCP path from
// the store's pool to the package database. The bounds are short and configured: the caller's deadline
// of a call (callDeadline — pgstore has no statement timeout of its own: the caller's context bounds a
// call, and statement_timeout is the provider's server-side backstop, docs/provider-boundary.md) and
// ConnectConfig.ConnectTimeout (connectTimeout). Each scenario checks that the call returns one of the
// library's typed errors, with no pgx type reachable from it, before liveBound — ten times the
// configured bound: a liveness check, not a timing benchmark —, that the store serves again once the
// fault is lifted (without a new pool or store), that nothing is lost or duplicated (an outcome-unknown
// mutation is resolved by retrying it with its idempotency key), that no pooled connection stays
// acquired, and that the server keeps no backend of the test's pool after the pool is closed. pgtest.Main
// checks for leaked goroutines (goleak) after the package's tests.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/faultproxy"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// The configured bounds of these tests.
const (
	// callDeadline is the deadline a caller puts on each call (the request's deadline).
	callDeadline = 300 * time.Millisecond
	// connectTimeout is ConnectConfig.ConnectTimeout of the pools.
	connectTimeout = time.Second
	// injectedLatency is added to every protocol message forwarded, in each direction: above
	// callDeadline.
	injectedLatency = 500 * time.Millisecond
)

// liveBound is the longest a call under a fault may take whose configured bound is d: ten times d.
func liveBound(d time.Duration) time.Duration { return 10 * d }

// proxied is a store whose pool reaches the package database through a fault proxy.
type proxied struct {
	proxy *faultproxy.Proxy
	cfg   *pgstore.ConnectConfig
	pool  *pgxpool.Pool
	store *pgstore.Store
	// app is the application_name of the pool's connections, unique per test: the server's
	// pg_stat_activity shows which backends are the test's.
	app string
}

// newProxy starts a fault proxy in front of the package database (directly, no PgBouncer) and closes
// it when the test ends.
func newProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	cc := pgtest.Default(t).PoolConfig(t, pgtest.App).ConnConfig
	p, err := faultproxy.New(net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// proxiedConfig returns ConnectConfig for the app role through p, with the test's bounds and an
// application_name of the test's own.
func proxiedConfig(t *testing.T, p *faultproxy.Proxy, maxConns int32) *pgstore.ConnectConfig {
	t.Helper()
	cfg := connectConfig(t, pgtest.Default(t), pgtest.App)
	cfg.Host, cfg.Port = "127.0.0.1", p.Port()
	cfg.MaxConns = maxConns
	cfg.ConnectTimeout = connectTimeout
	cfg.ApplicationName = "faultsuite-" + uuid.NewString()[:8]
	return cfg
}

// newProxied opens a store through a new fault proxy (in Pass mode). At the end of the test the proxy
// closes first — pgx's background closing of a connection broken by a fault ends at once then —, then
// the pool, and the test checks that the server has no backend of the pool left.
func newProxied(t *testing.T, maxConns int32) *proxied {
	t.Helper()
	p := newProxy(t)
	cfg := proxiedConfig(t, p, maxConns)
	pool, err := pgstore.NewPool(t.Context(), cfg)
	require.NoError(t, err)
	s, err := pgstore.New(t.Context(), pool, nil)
	require.NoError(t, err)
	e := &proxied{proxy: p, cfg: cfg, pool: pool, store: s, app: cfg.ApplicationName}
	// Cleanups run last-registered first: this one runs before the proxy's own Close above.
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		pool.Close()
		requireNoBackends(t, e.app)
	})
	return e
}

// requireIdle fails unless no connection of the pool is acquired: every call under a fault returned its
// connection (or destroyed it).
func (e *proxied) requireIdle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return e.pool.Stat().AcquiredConns() == 0 }, 20*time.Second, 10*time.Millisecond,
		"a connection stays acquired: %d", e.pool.Stat().AcquiredConns())
}

// requireNoBackends waits (bounded) until the server has no backend with application_name app.
func requireNoBackends(t *testing.T, app string) {
	t.Helper()
	admin := pgtest.AdminPool(t)
	var n int
	require.Eventually(t, func() bool {
		require.NoError(t, admin.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n))
		return n == 0
	}, 20*time.Second, 20*time.Millisecond, "the server keeps %d backends of a closed pool", n)
}

// requireTyped fails unless err matches want and no pgx error type (which may carry the connection
// settings, or a server message quoting values) is reachable from it.
func requireTyped(t *testing.T, err error, want ...error) {
	t.Helper()
	require.Error(t, err)
	for _, w := range want {
		require.ErrorIs(t, err, w)
	}
	var (
		connectErr *pgconn.ConnectError
		parseErr   *pgconn.ParseConfigError
		pgErr      *pgconn.PgError
	)
	require.False(t, errors.As(err, &connectErr), "a *pgconn.ConnectError is reachable from %v", err)
	require.False(t, errors.As(err, &parseErr), "a *pgconn.ParseConfigError is reachable from %v", err)
	require.False(t, errors.As(err, &pgErr), "a *pgconn.PgError is reachable from %v", err)
}

// timed runs fn and returns how long it took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// createUser is the mutation of these tests: a user with an idempotency key derived from email.
func createUser(ctx context.Context, s userstore.Store, email string) (*userstore.User, error) {
	return s.CreateUser(ctx, &userstore.CreateUserParams{
		Mutation:    userstore.Mutation{IdempotencyKey: "faultsuite-" + email},
		DisplayName: "Ann",
		Email:       email,
	})
}

// creations returns the streams of the tenant's user.created events in the log, read as the
// projector (which reads every tenant), in log order.
func creations(t *testing.T, tenant uuid.UUID) []uuid.UUID {
	t.Helper()
	rows, err := pgtest.ProjectorPool(t).Query(context.Background(),
		`SELECT stream_id FROM userstore.events WHERE tenant_id = $1 AND event_type = $2 ORDER BY global_position`,
		tenant, domain.EventUserCreated)
	require.NoError(t, err)
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

// scenario collects the numbers of one scenario for docs/reliability.md; the test logs them.
type scenario struct {
	name                       string
	operations, faults         int
	lost, duplicated           int
	maxFaulted                 time.Duration
	bound                      string
	errorsSeen                 map[string]int
	outcomeUnknown, recoveries int
}

func newScenario(name, bound string) *scenario {
	return &scenario{name: name, bound: bound, errorsSeen: map[string]int{}}
}

// faulted records one call under a fault: its error's class and how long it took.
func (s *scenario) faulted(err error, d time.Duration) {
	s.faults++
	s.maxFaulted = max(s.maxFaulted, d)
	switch {
	case errors.Is(err, userstore.ErrCommitOutcomeUnknown):
		s.errorsSeen["ErrCommitOutcomeUnknown"]++
	case errors.Is(err, userstore.ErrUnavailable) && errors.Is(err, context.DeadlineExceeded):
		s.errorsSeen["ErrUnavailable+DeadlineExceeded"]++
	case errors.Is(err, userstore.ErrUnavailable):
		s.errorsSeen["ErrUnavailable"]++
	case errors.Is(err, context.DeadlineExceeded):
		s.errorsSeen["context.DeadlineExceeded"]++
	default:
		s.errorsSeen[fmt.Sprintf("%T", err)]++
	}
}

// verify compares the tenant's log with the users the scenario created (want, in any order): each
// exactly once.
func (s *scenario) verify(t *testing.T, tenant uuid.UUID, want []uuid.UUID) {
	t.Helper()
	seen := map[uuid.UUID]int{}
	for _, id := range creations(t, tenant) {
		seen[id]++
	}
	for _, id := range want {
		switch n := seen[id]; {
		case n == 0:
			s.lost++
		case n > 1:
			s.duplicated += n - 1
		}
		delete(seen, id)
	}
	s.duplicated += len(seen) // creations no call returned
	t.Logf("scenario %q: operations %d, faults injected %d, typed errors %v, slowest faulted call %s (bounds: %s), outcome unknown %d, resolved by retry %d, lost %d, duplicated %d",
		s.name, s.operations, s.faults, s.errorsSeen, s.maxFaulted.Round(time.Millisecond), s.bound, s.outcomeUnknown, s.recoveries, s.lost, s.duplicated)
	require.Zero(t, s.lost, "acknowledged or retried mutations lost")
	require.Zero(t, s.duplicated, "mutations applied twice")
}

// TestLatencyAboveTheDeadline: every protocol message on the wire is delayed by injectedLatency, more than the
// caller's deadline. Queries and mutations return context.DeadlineExceeded (a mutation's cut at COMMIT
// is ErrCommitOutcomeUnknown as well) within liveBound(callDeadline); once the latency is gone, the
// same store serves again and the retried mutations, with their idempotency keys, take effect exactly
// once.
func TestLatencyAboveTheDeadline(t *testing.T) {
	t.Parallel()
	e := newProxied(t, 4)
	tctx, tenant := newTenant(t, t.Context(), e.store)
	sc := newScenario("latency above the deadline", "deadline "+callDeadline.String())

	seed, err := createUser(tctx, e.store, "seed-"+uuid.NewString()+"@example.com")
	require.NoError(t, err)
	want := []uuid.UUID{seed.ID}

	e.proxy.SetLatency(injectedLatency)
	var pending []string
	for i := range 5 {
		ctx, cancel := context.WithTimeout(tctx, callDeadline)
		var qerr error
		d := timed(func() { _, qerr = e.store.GetUser(ctx, seed.ID) })
		cancel()
		requireTyped(t, qerr, context.DeadlineExceeded)
		require.Less(t, d, liveBound(callDeadline), "a query under latency returns within the bound")
		sc.faulted(qerr, d)

		email := fmt.Sprintf("latency-%d-%s@example.com", i, uuid.NewString())
		ctx, cancel = context.WithTimeout(tctx, callDeadline)
		var merr error
		d = timed(func() { _, merr = createUser(ctx, e.store, email) })
		cancel()
		requireTyped(t, merr, context.DeadlineExceeded)
		require.Less(t, d, liveBound(callDeadline), "a mutation under latency returns within the bound")
		sc.faulted(merr, d)
		if errors.Is(merr, userstore.ErrCommitOutcomeUnknown) {
			sc.outcomeUnknown++
		}
		pending = append(pending, email)
		sc.operations += 2
	}

	e.proxy.SetLatency(0)
	got, err := e.store.GetUser(tctx, seed.ID)
	require.NoError(t, err, "the same store serves again once the latency is gone")
	require.Equal(t, seed.ID, got.ID)
	for _, email := range pending {
		u, err := createUser(tctx, e.store, email)
		require.NoError(t, err)
		again, err := createUser(tctx, e.store, email)
		require.NoError(t, err)
		require.Equal(t, u.ID, again.ID, "the idempotency key returns the first result")
		want = append(want, u.ID)
		sc.recoveries++
		sc.operations += 2
	}
	e.requireIdle(t)
	sc.verify(t, tenant, want)
}

// TestBlackholeFailsWithinTheBoundAndThePoolRecovers: the network stops forwarding anything, in both
// directions, without closing a connection. Calls on pooled connections return context.DeadlineExceeded
// within liveBound(callDeadline); a new pool cannot connect and NewPool returns ErrUnavailable within
// liveBound(connectTimeout) even without a deadline of the caller's. Once the blackhole lifts, the same
// store serves again and the mutations retried with their keys take effect exactly once.
func TestBlackholeFailsWithinTheBoundAndThePoolRecovers(t *testing.T) {
	t.Parallel()
	e := newProxied(t, 4)
	tctx, tenant := newTenant(t, t.Context(), e.store)
	sc := newScenario("blackhole", "deadline "+callDeadline.String()+", connect timeout "+connectTimeout.String())
	seed, err := createUser(tctx, e.store, "seed-"+uuid.NewString()+"@example.com")
	require.NoError(t, err)
	want := []uuid.UUID{seed.ID}

	e.proxy.SetMode(faultproxy.Blackhole)
	var pending []string
	for i := range 5 {
		ctx, cancel := context.WithTimeout(tctx, callDeadline)
		var qerr error
		d := timed(func() { _, qerr = e.store.GetUser(ctx, seed.ID) })
		cancel()
		requireTyped(t, qerr, context.DeadlineExceeded)
		require.Less(t, d, liveBound(callDeadline))
		sc.faulted(qerr, d)

		email := fmt.Sprintf("blackhole-%d-%s@example.com", i, uuid.NewString())
		ctx, cancel = context.WithTimeout(tctx, callDeadline)
		var merr error
		d = timed(func() { _, merr = createUser(ctx, e.store, email) })
		cancel()
		requireTyped(t, merr, context.DeadlineExceeded)
		require.Less(t, d, liveBound(callDeadline))
		sc.faulted(merr, d)
		pending = append(pending, email)
		sc.operations += 2
	}

	// A pool that starts during the blackhole: the connect timeout bounds it, the caller's context has
	// no deadline.
	var perr error
	d := timed(func() {
		var pool *pgxpool.Pool
		pool, perr = pgstore.NewPool(context.Background(), e.cfg)
		if pool != nil {
			pool.Close()
		}
	})
	requireTyped(t, perr, userstore.ErrUnavailable)
	require.Less(t, d, liveBound(connectTimeout), "NewPool gives up after the connect timeout")
	sc.faulted(perr, d)
	sc.operations++

	e.proxy.SetMode(faultproxy.Pass)
	got, err := e.store.GetUser(tctx, seed.ID)
	require.NoError(t, err, "the pool recovers once the blackhole lifts")
	require.Equal(t, seed.ID, got.ID)
	for _, email := range pending {
		u, err := createUser(tctx, e.store, email)
		require.NoError(t, err)
		want = append(want, u.ID)
		sc.recoveries++
		sc.operations++
	}
	e.requireIdle(t)
	sc.verify(t, tenant, want)
}

// TestLostCommitRepliesResolveByIdempotencyKey: the proxy forwards COMMIT and then swallows the
// server's reply and cuts the connection (DropCommitReply: committed, the client cannot know), or cuts
// it instead of forwarding COMMIT (CloseBeforeCommit: not committed, the client cannot know either),
// alternately, for many mutations on one store. Each such call is ErrCommitOutcomeUnknown; retrying it
// through the same store with the same idempotency key returns one result, and the log holds each user
// once — whether the first attempt had committed or not.
func TestLostCommitRepliesResolveByIdempotencyKey(t *testing.T) {
	t.Parallel()
	const rounds = 20
	e := newProxied(t, 4)
	tctx, tenant := newTenant(t, t.Context(), e.store)
	sc := newScenario("COMMIT reply lost / connection lost before COMMIT", "none: the connection breaks at once")
	var want []uuid.UUID
	for i := range rounds {
		mode := faultproxy.DropCommitReply
		if i%2 == 1 {
			mode = faultproxy.CloseBeforeCommit
		}
		email := fmt.Sprintf("commit-%d-%s@example.com", i, uuid.NewString())
		commits := e.proxy.Commits()
		e.proxy.SetMode(mode)
		var err error
		d := timed(func() { _, err = createUser(tctx, e.store, email) })
		requireTyped(t, err, userstore.ErrCommitOutcomeUnknown)
		require.Greater(t, e.proxy.Commits(), commits, "the fault hit the store's COMMIT")
		sc.faulted(err, d)
		sc.outcomeUnknown++
		sc.operations++

		u, err := createUser(tctx, e.store, email)
		require.NoError(t, err, "the retry with the same key resolves the outcome")
		again, err := createUser(tctx, e.store, email)
		require.NoError(t, err)
		require.Equal(t, u.ID, again.ID)
		require.Equal(t, u.CreatedAt, again.CreatedAt)
		want = append(want, u.ID)
		sc.recoveries++
		sc.operations += 2
	}
	e.requireIdle(t)
	sc.verify(t, tenant, want)
}

// TestDatabaseDownAtStartThenBack: the database is unreachable when the program starts (the proxy
// refuses every connection). NewPool fails with ErrUnavailable within liveBound(connectTimeout) each
// time; a start-up loop that retries it gets a pool once the database is back, and the store is ready.
// Then the database goes away under the running store: Ready says not ready (connectivity, typed
// reason) and mutations fail with ErrUnavailable — and when it is back, the same store reports ready
// again and serves, without a restart.
func TestDatabaseDownAtStartThenBack(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	cfg := proxiedConfig(t, p, 4)
	sc := newScenario("database down at start, then back; down under a running store, then back", "connect timeout "+connectTimeout.String())
	p.SetMode(faultproxy.Refuse)

	// The start-up loop: retry NewPool until it succeeds; the database comes back after ~2s.
	back := time.AfterFunc(2*time.Second, func() { p.SetMode(faultproxy.Pass) })
	defer back.Stop()
	var pool *pgxpool.Pool
	attempts := 0
	deadline := time.Now().Add(30 * time.Second)
	for pool == nil {
		require.True(t, time.Now().Before(deadline), "the database never came back")
		attempts++
		var err error
		var candidate *pgxpool.Pool
		d := timed(func() { candidate, err = pgstore.NewPool(t.Context(), cfg) })
		if err != nil {
			requireTyped(t, err, userstore.ErrUnavailable)
			require.NotContains(t, err.Error(), "password", "a connection error names no password")
			require.Less(t, d, liveBound(connectTimeout))
			sc.faulted(err, d)
			time.Sleep(200 * time.Millisecond) // the start-up loop's back-off
			continue
		}
		pool = candidate
	}
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		pool.Close()
		requireNoBackends(t, cfg.ApplicationName)
	})
	require.GreaterOrEqual(t, attempts, 2, "NewPool failed while the database was down")
	sc.operations += attempts
	s, err := pgstore.New(t.Context(), pool, nil)
	require.NoError(t, err)
	r, err := s.Ready(t.Context())
	require.NoError(t, err)
	require.True(t, r.Ready, "ready once the database is back: %+v", r)
	tctx, tenant := newTenant(t, t.Context(), s)

	// Down under the running store: new connections are refused, the pooled ones cut.
	p.SetMode(faultproxy.Refuse)
	p.CloseConnections()
	r, err = s.Ready(t.Context())
	require.NoError(t, err, "Ready reports an unreachable database as a failed check, not an error")
	require.False(t, r.Ready)
	require.False(t, r.Checks[0].OK)
	require.Equal(t, pgstore.CheckConnectivity, r.Checks[0].Name)
	require.Contains(t, r.Checks[0].Reason, userstore.ErrUnavailable.Error())
	sc.operations++
	email := "down-" + uuid.NewString() + "@example.com"
	var merr error
	d := timed(func() { _, merr = createUser(tctx, s, email) })
	requireTyped(t, merr, userstore.ErrUnavailable)
	require.Less(t, d, liveBound(connectTimeout))
	sc.faulted(merr, d)
	sc.operations++

	p.SetMode(faultproxy.Pass)
	require.Eventually(t, func() bool {
		r, err := s.Ready(t.Context())
		return err == nil && r.Ready
	}, 20*time.Second, 50*time.Millisecond, "the same store is ready again once the database is back")
	u, err := createUser(tctx, s, email)
	require.NoError(t, err)
	sc.recoveries++
	sc.operations += 2
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 0 }, 20*time.Second, 10*time.Millisecond)
	sc.verify(t, tenant, []uuid.UUID{u.ID})
}

// TestDeadlineCutsMutationsAnywhere: a small latency on every protocol message, 1 to 8 ms and changing
// from call to call, makes the caller's deadline expire at different points of a mutation — before
// BEGIN, between its statements, or not at all (a cut right at COMMIT is rare here: the COMMIT cases
// are TestLostCommitRepliesResolveByIdempotencyKey's). Each call either succeeds or returns
// context.DeadlineExceeded (with ErrCommitOutcomeUnknown if COMMIT had been sent) within
// liveBound(callDeadline); retried with their idempotency keys once the latency is gone, the mutations
// take effect exactly once.
func TestDeadlineCutsMutationsAnywhere(t *testing.T) {
	t.Parallel()
	const rounds = 32
	e := newProxied(t, 4)
	tctx, tenant := newTenant(t, t.Context(), e.store)
	sc := newScenario("deadline cuts a mutation anywhere (latency 1..8ms per message)", "deadline "+callDeadline.String())
	emails := make([]string, rounds)
	succeeded := 0
	for i := range rounds {
		e.proxy.SetLatency(time.Duration(i%8+1) * time.Millisecond)
		emails[i] = fmt.Sprintf("cut-%d-%s@example.com", i, uuid.NewString())
		ctx, cancel := context.WithTimeout(tctx, callDeadline)
		var err error
		d := timed(func() { _, err = createUser(ctx, e.store, emails[i]) })
		cancel()
		sc.operations++
		if err == nil {
			succeeded++
			continue
		}
		requireTyped(t, err, context.DeadlineExceeded)
		require.Less(t, d, liveBound(callDeadline))
		sc.faulted(err, d)
		if errors.Is(err, userstore.ErrCommitOutcomeUnknown) {
			sc.outcomeUnknown++
		}
	}
	e.proxy.SetLatency(0)
	var want []uuid.UUID
	for _, email := range emails {
		u, err := createUser(tctx, e.store, email)
		require.NoError(t, err)
		want = append(want, u.ID)
		sc.recoveries++
		sc.operations++
	}
	t.Logf("%d of %d calls under latency succeeded", succeeded, rounds)
	e.requireIdle(t)
	sc.verify(t, tenant, want)
}
