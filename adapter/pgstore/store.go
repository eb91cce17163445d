package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/migrations"
)

// rollbackTimeout bounds the ROLLBACK that ends a failed transaction.
const rollbackTimeout = 5 * time.Second

// Store is the durable userstore.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	// Mutations implements every mutation through the shared engine; Store is its Executor.
	engine.Mutations
	pool   *pgxpool.Pool
	cfg    *Config
	events *eventstore.Store
	log    *slog.Logger
}

var _ userstore.Store = (*Store)(nil)

// New returns a store on pool, a ready pool whose connections log in as the app role
// (userstore_app, or a login role that is a member of it); the caller owns credentials, TLS and the
// pool's life. A nil cfg is valid.
//
// New checks the schema: a database whose applied migrations are not exactly the ones compiled into
// this build — older (pending migrations) or newer (versions this build does not know) — is refused
// with a *userstore.SchemaMismatchError (errors.Is ErrSchemaMismatch). A database that cannot be
// reached is ErrUnavailable. Run the migrations (package migrations) as the owner role first.
func New(ctx context.Context, pool *pgxpool.Pool, cfg *Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: pool must not be nil")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	events, err := eventstore.New(pool, &eventstore.Config{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{
		pool:   pool,
		cfg:    cfg,
		events: events,
		log:    cfg.Logger,
	}
	s.Mutations = engine.NewMutations(engine.New(&engine.Config{Now: cfg.Now, NewID: cfg.NewID}), s)
	st, err := s.schemaStatus(ctx)
	if err != nil {
		return nil, err
	}
	if !st.UpToDate() {
		return nil, &userstore.SchemaMismatchError{Current: st.Current, Expected: st.Expected}
	}
	return s, nil
}

// schemaStatus reads the migration status of the store's database. It takes a connection first:
// migrations.Status describes a failed connection in text (to keep the connection settings out of it),
// and the store must tell ErrUnavailable apart.
func (s *Store) schemaStatus(ctx context.Context) (*migrations.StatusResult, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, translate("connect", err, phaseWork)
	}
	conn.Release()
	st, err := migrations.Status(ctx, s.pool)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || contextError(err) != nil {
			return nil, translate("read the schema version", err, phaseWork)
		}
		// migrations' own errors keep connection settings out; none wraps a driver error here.
		return nil, fmt.Errorf("pgstore: read the schema version: %w (%s)", userstore.ErrUnavailable, err.Error())
	}
	return st, nil
}

// Execute implements engine.Executor. It prepares the operation (no I/O: validation errors return
// here) and runs it, each attempt in a transaction of its own, re-running it — the same prepared
// operation, so the same new ids and times — while the attempt failed for a reason a re-run may cure
// (see retryError), at most Config.MaxRetries times with a jittered, growing wait. Domain errors (a
// stale ExpectedVersion, a duplicate, a refused precondition) are returned as they are: deciding again
// on the same state would refuse again.
func (s *Store) Execute(ctx context.Context, prepare func() (engine.Operation, error), run func(context.Context, engine.UnitOfWork) error) error {
	op, err := prepare()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, op, run)
		if err == nil {
			s.log.DebugContext(ctx, "pgstore: mutation committed",
				slog.String("operation", op.Name()),
				slog.String("tenant_id", op.TenantID().String()),
				slog.Int("attempt", attempt))
			return nil
		}
		var retry *retryError
		if !errors.As(err, &retry) {
			return err
		}
		if attempt > s.cfg.MaxRetries {
			return fmt.Errorf("pgstore: %s: still conflicting after %d attempts (%s): %w",
				op.Name(), attempt, retry.cause, userstore.ErrConflict)
		}
		s.log.DebugContext(ctx, "pgstore: re-running a mutation",
			slog.String("operation", op.Name()),
			slog.String("tenant_id", op.TenantID().String()),
			slog.Int("attempt", attempt),
			slog.String("cause", retry.cause))
		if err := sleep(ctx, s.backoff(attempt)); err != nil {
			return fmt.Errorf("pgstore: %s: %w", op.Name(), err)
		}
	}
}

// backoff returns the wait before re-run number attempt: uniform in [d/2, d) where d doubles from
// RetryBaseDelay per attempt, capped at RetryMaxDelay.
func (s *Store) backoff(attempt int) time.Duration {
	d := s.cfg.RetryBaseDelay
	for i := 1; i < attempt && d < s.cfg.RetryMaxDelay; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMaxDelay)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attempt runs one attempt of op in a new REPEATABLE READ transaction scoped to the op's tenant, on one
// connection, and commits it when run succeeds (see uow for the round trips). A COMMIT that fails
// because the connection broke (the server never answered) is ErrCommitOutcomeUnknown and is never
// re-run here: the caller retries with the same idempotency key, which then returns the original result
// if it did commit. A failed attempt's transaction is rolled back before the connection goes back to
// the pool.
func (s *Store) attempt(ctx context.Context, op engine.Operation, run func(context.Context, engine.UnitOfWork) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate("begin "+op.Name(), err, phaseWork)
	}
	defer release(ctx, conn)
	u := newUOW(s, conn, op)
	if err := run(ctx, u); err != nil {
		// The unit of work's methods translated their driver errors already; the rest are the
		// engine's and the domain's.
		return err
	}
	return u.commit(ctx)
}
