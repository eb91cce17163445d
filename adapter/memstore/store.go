package memstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
)

// Config configures a Store. A nil *Config is valid.
type Config struct {
	// Now returns the current time, for entity timestamps and the log's recorded times (kept in UTC at
	// microsecond precision). A test may pass a fake clock; the store calls it only under its lock.
	// Default: time.Now.
	Now func() time.Time
	// NewID returns new entity and event ids. A test may pass a deterministic source; the store calls it
	// only under its lock. Default: userstore.NewID (UUIDv7).
	NewID func() uuid.UUID
	// Logger receives a debug record per committed mutation (operation, tenant id, event count; never a
	// value). Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns a copy of the config with every zero field set to its default.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.NewID == nil {
		out.NewID = userstore.NewID
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

// Store is the whole userstore protocol in memory. It is safe for concurrent use: mutations are
// serialized by one lock and are atomic (a failed mutation changes nothing); queries run concurrently
// with each other.
type Store struct {
	// Mutations implements every mutation through the shared engine; Store is its Executor.
	engine.Mutations
	now    func() time.Time
	logger *slog.Logger

	mu sync.RWMutex
	// log is the event log; an entry's position is its index + 1.
	log []entry
	// streams indexes the log by stream.
	streams map[streamKey]*stream
	// claims holds the uniqueness claims (domain.Claims) and their owners.
	claims map[domain.Claim]domain.StreamRef
	// idempotency holds the used idempotency keys.
	idempotency map[idemKey]*engine.IdempotencyRecord
	// tenants holds each tenant's read model, audit trail and outbox.
	tenants map[uuid.UUID]*tenantData
}

var _ userstore.Store = (*Store)(nil)

// New returns an empty store.
func New(cfg *Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	s := &Store{
		now:         cfg.Now,
		logger:      cfg.Logger,
		streams:     map[streamKey]*stream{},
		claims:      map[domain.Claim]domain.StreamRef{},
		idempotency: map[idemKey]*engine.IdempotencyRecord{},
		tenants:     map[uuid.UUID]*tenantData{},
	}
	s.Mutations = engine.NewMutations(engine.New(&engine.Config{Now: cfg.Now, NewID: cfg.NewID}), s)
	return s, nil
}

// Execute implements engine.Executor: it prepares and runs the operation in a unit of work under the
// store's lock, commits when the operation succeeds and rolls every change back when it fails (or
// panics).
func (s *Store) Execute(ctx context.Context, prepare func() (engine.Operation, error), run func(context.Context, engine.UnitOfWork) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Preparing under the lock too means Config.Now and Config.NewID never run concurrently.
	op, err := prepare()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	u := &uow{s: s, start: len(s.log)}
	committed := false
	defer func() {
		if !committed {
			u.rollback()
		}
	}()
	err = run(ctx, u)
	if err == nil {
		err = u.commit()
	}
	if err != nil {
		return err
	}
	committed = true
	s.logger.DebugContext(ctx, "userstore: mutation committed",
		slog.String("operation", op.Name()),
		slog.String("tenant_id", op.TenantID().String()),
		slog.Int("events", len(s.log)-u.start))
	return nil
}

// Ready implements userstore.HealthStore: an in-memory store is always ready; its one check is
// "memory".
func (s *Store) Ready(ctx context.Context) (*userstore.Readiness, error) {
	return &userstore.Readiness{Ready: true, Checks: []userstore.Check{{Name: "memory", OK: true}}}, nil
}

// SchemaVersion implements userstore.HealthStore: an in-memory store has no schema (0, 0, nothing
// pending).
func (s *Store) SchemaVersion(ctx context.Context) (*userstore.SchemaVersion, error) {
	return &userstore.SchemaVersion{}, nil
}
