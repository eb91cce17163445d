package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// waitTimeout bounds every wait of these tests; a wait that runs out fails the test.
const waitTimeout = 60 * time.Second

// env is a database of its own for one test (a runner processes the whole log, so tests that run one
// must not share a database), with the stores and pools the tests use.
type env struct {
	db    *pgtest.Database
	app   *eventstore.Store // appends, as userstore_app
	admin *pgxpool.Pool
}

func setup(t *testing.T) *env {
	t.Helper()
	db := pgtest.NewDatabase(t, nil)
	app, err := eventstore.New(db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	return &env{db: db, app: app, admin: db.Pool(t, pgtest.Admin)}
}

// projectorPool opens a projector pool of its own whose connections carry applicationName, so a test
// can find (and terminate) them in pg_stat_activity.
func (e *env) projectorPool(t *testing.T, applicationName string) *pgxpool.Pool {
	t.Helper()
	cfg := e.db.PoolConfig(t, pgtest.Projector)
	cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	cfg.MaxConns = 8
	return pgtest.NewPool(t, cfg)
}

// runner returns a Runner of ps on its own projector pool named applicationName.
func (e *env) runner(t *testing.T, applicationName string, ps []projections.Projection, cfg *projections.Config) *projections.Runner {
	t.Helper()
	return newRunner(t, e.projectorPool(t, applicationName), ps, cfg)
}

// newRunner returns a Runner of ps on pool.
func newRunner(t *testing.T, pool *pgxpool.Pool, ps []projections.Projection, cfg *projections.Config) *projections.Runner {
	t.Helper()
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, st, ps, cfg)
	require.NoError(t, err)
	return r
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// seed returns a seed for the test's randomness, logged so that a failure can be replayed.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d", s)
	return s
}

// ---------------------------------------------------------------------------------------------------
// Workload: domain events, encoded with the domain codec and appended with eventstore as the app role.
// ---------------------------------------------------------------------------------------------------

type tenantGen struct {
	id    uuid.UUID
	users []uuid.UUID
}

// gen appends a workload of domain events. It is safe for concurrent use.
type gen struct {
	st       *eventstore.Store
	mu       sync.Mutex
	rng      *rand.Rand
	tenants  []*tenantGen
	appended atomic.Int64
}

func newGen(st *eventstore.Store, seed uint64) *gen {
	return &gen{st: st, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func meta(i int) eventstore.Metadata {
	return logcodec.StoreMetadata(domain.Metadata{
		Actor:     userstore.Actor{Type: userstore.ActorService, ID: "projections-test"},
		RequestID: fmt.Sprintf("req-%d", i),
		Command:   "Test",
	})
}

func encode(i int, evs ...domain.Event) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(evs))
	for j, ev := range evs {
		enc, err := domain.Encode(ev)
		if err != nil {
			return nil, err
		}
		out[j] = eventstore.EventData{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion), Payload: enc.Payload, Metadata: meta(i)}
	}
	return out, nil
}

func (g *gen) append(ctx context.Context, tenant uuid.UUID, stream domain.StreamType, id uuid.UUID, evs ...domain.Event) error {
	data, err := encode(int(g.appended.Load()), evs...)
	if err != nil {
		return err
	}
	if _, err := g.st.Append(ctx, &eventstore.AppendParams{
		TenantID: tenant, StreamType: string(stream), StreamID: id, Expected: eventstore.Any(), Events: data,
	}); err != nil {
		return err
	}
	g.appended.Add(int64(len(evs)))
	return nil
}

// addTenants creates n tenants, each with one user.
func (g *gen) addTenants(t *testing.T, ctx context.Context, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range n {
		id := uuid.New()
		require.NoError(t, g.append(ctx, id, domain.StreamTenant, id,
			domain.TenantCreated{TenantID: id, Slug: "t-" + id.String()[:8], Name: "Tenant", At: now()}))
		tg := &tenantGen{id: id}
		g.mu.Lock()
		g.tenants = append(g.tenants, tg)
		g.mu.Unlock()
		require.NoError(t, g.addUser(ctx, tg))
		ids[i] = id
	}
	return ids
}

func (g *gen) addUser(ctx context.Context, tg *tenantGen) error {
	u := uuid.New()
	if err := g.append(ctx, tg.id, domain.StreamUser, u,
		domain.UserCreated{UserID: u, TenantID: tg.id, DisplayName: "U", Email: u.String()[:8] + "@example.com", At: now()}); err != nil {
		return err
	}
	if err := g.append(ctx, tg.id, domain.StreamRoster, domain.RosterStreamID(tg.id),
		domain.RosterMemberAdded{UserID: u, Role: userstore.RoleMember, At: now()}); err != nil {
		return err
	}
	g.mu.Lock()
	tg.users = append(tg.users, u)
	g.mu.Unlock()
	return nil
}

// step appends to a random tenant: a new user (two appends) or one to three profile updates of a user.
func (g *gen) step(ctx context.Context) error {
	g.mu.Lock()
	tg := g.tenants[g.rng.IntN(len(g.tenants))]
	newUser := g.rng.IntN(4) == 0
	u := tg.users[g.rng.IntN(len(tg.users))]
	n := 1 + g.rng.IntN(3)
	g.mu.Unlock()
	if newUser {
		return g.addUser(ctx, tg)
	}
	return g.updates(ctx, tg.id, u, n)
}

func (g *gen) updates(ctx context.Context, tenant, user uuid.UUID, n int) error {
	evs := make([]domain.Event, n)
	for i := range evs {
		evs[i] = domain.UserProfileUpdated{DisplayName: fmt.Sprintf("U%d", i), At: now()}
	}
	return g.append(ctx, tenant, domain.StreamUser, user, evs...)
}

// steps appends n steps.
func (g *gen) steps(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		require.NoError(t, g.step(ctx))
	}
}

// touchAll appends one event to every tenant.
func (g *gen) touchAll(t *testing.T, ctx context.Context) {
	t.Helper()
	g.mu.Lock()
	tenants := append([]*tenantGen(nil), g.tenants...)
	g.mu.Unlock()
	for _, tg := range tenants {
		require.NoError(t, g.updates(ctx, tg.id, tg.users[0], 1))
	}
}

func (g *gen) tenantIDs() []uuid.UUID {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]uuid.UUID, len(g.tenants))
	for i, tg := range g.tenants {
		ids[i] = tg.id
	}
	return ids
}

// writer appends steps on a goroutine until stop is called or max events are appended; stop waits
// for it and fails the test if an append failed. Appends are never cancelled half-way (stop takes
// effect between them), so once stop returns every append has committed or failed for good.
func (g *gen) writer(t *testing.T, ctx context.Context, max int64) (stop func()) {
	t.Helper()
	var stopping atomic.Bool
	done := make(chan error, 1)
	go func() {
		for !stopping.Load() && ctx.Err() == nil && g.appended.Load() < max {
			if err := g.step(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopping.Store(true)
			require.NoError(t, <-done, "writer")
		})
	}
	t.Cleanup(stop)
	return stop
}

// ---------------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------------

// replay derives a tenant's audit trail from the log with the domain's functions — what the durable
// store derives on the fly and the replay tool recomputes — skipping the events in skip.
func replay(t *testing.T, ctx context.Context, st *eventstore.Store, tenant uuid.UUID, skip map[uuid.UUID]bool) []userstore.AuditRecord {
	t.Helper()
	out := []userstore.AuditRecord{}
	seq, prev := int64(0), domain.AuditGenesisHash
	var after eventstore.Cursor
	for {
		res, err := st.ReadAll(ctx, &eventstore.ReadAllParams{After: after, TenantID: tenant, Limit: eventstore.ReadLimitMax})
		require.NoError(t, err)
		for i := range res.Events {
			if skip[res.Events[i].EventID] {
				continue
			}
			r, err := logcodec.Recorded(&res.Events[i])
			require.NoError(t, err)
			rec := domain.Audit(r)
			require.NoError(t, domain.ChainAudit(&rec, seq, prev))
			seq, prev = rec.Sequence, rec.Hash
			out = append(out, rec)
		}
		if len(res.Events) < eventstore.ReadLimitMax {
			return out
		}
		after = res.Next
	}
}

// records reads a tenant's audit records from the table.
func records(t *testing.T, ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) []userstore.AuditRecord {
	t.Helper()
	recs, err := audit.Read(ctx, pool, &audit.ReadParams{TenantID: tenant})
	require.NoError(t, err)
	return recs
}

// requireTrail checks a tenant's audit records: a valid chain, gapless from 1, equal record for record
// to the trail derived from the log (without the skipped events).
func requireTrail(t *testing.T, ctx context.Context, e *env, tenant uuid.UUID, skip map[uuid.UUID]bool) []userstore.AuditRecord {
	t.Helper()
	proj := e.db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(proj, nil)
	require.NoError(t, err)
	got := records(t, ctx, proj, tenant)
	i, err := domain.VerifyAuditChain(got)
	require.NoError(t, err, "tenant %s: chain broken at record %d", tenant, i)
	require.Equal(t, replay(t, ctx, st, tenant, skip), got, "tenant %s", tenant)
	return got
}

// requireExactlyOnce checks that every event of the log has exactly one audit record, that every
// tenant's trail is valid and equal to the log's, that no dead letter exists and that no projection lags.
func requireExactlyOnce(t *testing.T, ctx context.Context, e *env, r *projections.Runner, tenants []uuid.UUID) {
	t.Helper()
	var events, recs, missing, dups int64
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&events))
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM userstore.audit_records`).Scan(&recs))
	require.NoError(t, e.admin.QueryRow(ctx, `
		SELECT count(*) FROM userstore.events AS ev
		 WHERE NOT EXISTS (SELECT 1 FROM userstore.audit_records AS ar
		                    WHERE ar.tenant_id = ev.tenant_id AND ar.event_id = ev.event_id)`).Scan(&missing))
	require.NoError(t, e.admin.QueryRow(ctx, `
		SELECT count(*) FROM (SELECT event_id FROM userstore.audit_records GROUP BY event_id HAVING count(*) > 1) AS d`).Scan(&dups))
	if missing > 0 {
		rows, err := e.admin.Query(ctx, `
			SELECT ev.tenant_id::text || ' ' || ev.event_id::text || ' partition ' || ev.partition
			       || ' cursor ' || ev.transaction_id::text || '/' || ev.global_position
			       || ' checkpoint ' || coalesce(cp.transaction_id::text || '/' || cp.global_position, 'none')
			  FROM userstore.events AS ev
			  LEFT JOIN userstore.projection_checkpoints AS cp ON cp.projection = 'audit' AND cp.partition = ev.partition
			 WHERE NOT EXISTS (SELECT 1 FROM userstore.audit_records AS ar
			                    WHERE ar.tenant_id = ev.tenant_id AND ar.event_id = ev.event_id)`)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		dl, err := r.DeadLetters(ctx, nil)
		require.NoError(t, err)
		t.Errorf("events without an audit record: %v; dead letters: %+v", lines, dl.DeadLetters)
	}
	require.Zero(t, missing, "events without an audit record")
	require.Zero(t, dups, "events with more than one audit record")
	require.Equal(t, events, recs)
	t.Logf("%d events, %d audit records", events, recs)

	for _, tenant := range tenants {
		requireTrail(t, ctx, e, tenant, nil)
	}
	dl, err := r.DeadLetters(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, dl.DeadLetters)

	st, err := r.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Projections {
		require.Zero(t, p.EventsBehind, p.Name)
		require.Zero(t, p.Parked, p.Name)
		var processed int64
		for _, ps := range p.Partitions {
			processed += ps.Processed
		}
		require.Equal(t, events, processed, "events processed by %s", p.Name)
	}
}

// waitCaughtUp waits (polling Status, bounded) until no projection of r lags.
func waitCaughtUp(t *testing.T, ctx context.Context, r *projections.Runner) {
	t.Helper()
	waitFor(t, "the projections to catch up", func() bool {
		st, err := r.Status(ctx)
		if err != nil {
			// The pool may hand out a connection a test terminated while it was idle; ask again.
			t.Logf("status: %v", err)
			return false
		}
		for _, p := range st.Projections {
			if p.EventsBehind > 0 {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it holds, failing the test after waitTimeout. The short pause between polls
// only paces the loop; cond is what it waits for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	delay := time.Millisecond
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		timer := time.NewTimer(delay)
		<-timer.C
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// start runs r.Run on a goroutine; stop cancels it and waits (bounded) for it to return.
func start(t *testing.T, ctx context.Context, r *projections.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(waitTimeout):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ---------------------------------------------------------------------------------------------------
// Test projections
// ---------------------------------------------------------------------------------------------------

// hooked wraps a projection (keeping its name and version) and calls hook before each Apply; a hook
// error fails that Apply.
type hooked struct {
	projections.Projection
	hook func(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error
}

func (h *hooked) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	if err := h.hook(ctx, tx, ev); err != nil {
		return err
	}
	return h.Projection.Apply(ctx, tx, ev)
}

func (h *hooked) StartBatch(ctx context.Context, tx pgx.Tx, info *projections.BatchInfo) (projections.BatchApplier, error) {
	inner, err := h.Projection.(projections.Batcher).StartBatch(ctx, tx, info)
	if err != nil {
		return nil, err
	}
	return &hookedBatch{inner: inner, hook: h.hook}, nil
}

type hookedBatch struct {
	inner projections.BatchApplier
	hook  func(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error
}

func (h *hookedBatch) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	if err := h.hook(ctx, tx, ev); err != nil {
		return err
	}
	return h.inner.Apply(ctx, tx, ev)
}

func (h *hookedBatch) Flush(ctx context.Context, tx pgx.Tx) error { return h.inner.Flush(ctx, tx) }

func withHook(hook func(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error) []projections.Projection {
	return []projections.Projection{&hooked{Projection: audit.New(nil), hook: hook}}
}

// testLogger logs the runner's warnings into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
