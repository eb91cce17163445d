package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
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
	pool   *pgxpool.Pool
	cfg    *Config
	engine *engine.Engine
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
		engine: engine.New(&engine.Config{Now: cfg.Now, NewID: cfg.NewID}),
		events: events,
		log:    cfg.Logger,
	}
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

// mutate prepares an engine operation (no I/O: validation errors return here) and runs it.
func mutate[P, R any](ctx context.Context, s *Store, prepare func(context.Context, P) (*engine.Op[R], error), p P) (R, error) {
	op, err := prepare(ctx, p)
	if err != nil {
		var zero R
		return zero, err
	}
	return run(ctx, s, op)
}

// mutateNoResult runs an operation whose result the protocol does not return.
func mutateNoResult[P any](ctx context.Context, s *Store, prepare func(context.Context, P) (*engine.Op[struct{}], error), p P) error {
	_, err := mutate(ctx, s, prepare, p)
	return err
}

// run runs a prepared operation, each attempt in a transaction of its own, and re-runs it — the same
// Op, so the same new ids and times — while the attempt failed for a reason a re-run may cure (see
// retryError), at most Config.MaxRetries times with a jittered, growing wait. Domain errors (a stale
// ExpectedVersion, a duplicate, a refused precondition) are returned as they are: deciding again on
// the same state would refuse again.
func run[R any](ctx context.Context, s *Store, op *engine.Op[R]) (R, error) {
	var zero R
	for attempt := 1; ; attempt++ {
		res, err := attemptOp(ctx, s, op)
		if err == nil {
			s.log.DebugContext(ctx, "pgstore: mutation committed",
				slog.String("operation", op.Name()),
				slog.String("tenant_id", op.TenantID().String()),
				slog.Int("attempt", attempt))
			return res, nil
		}
		var retry *retryError
		if !errors.As(err, &retry) {
			return zero, err
		}
		if attempt > s.cfg.MaxRetries {
			return zero, fmt.Errorf("pgstore: %s: still conflicting after %d attempts (%s): %w",
				op.Name(), attempt, retry.cause, userstore.ErrConflict)
		}
		s.log.DebugContext(ctx, "pgstore: re-running a mutation",
			slog.String("operation", op.Name()),
			slog.String("tenant_id", op.TenantID().String()),
			slog.Int("attempt", attempt),
			slog.String("cause", retry.cause))
		if err := sleep(ctx, s.backoff(attempt)); err != nil {
			return zero, fmt.Errorf("pgstore: %s: %w", op.Name(), err)
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

// attemptOp runs one attempt of op in a new REPEATABLE READ transaction scoped to the op's tenant, and
// commits it when the op succeeds. A COMMIT that fails because the connection broke (the server never
// answered) is ErrCommitOutcomeUnknown and is never re-run here: the caller retries with the same
// idempotency key, which then returns the original result if it did commit.
func attemptOp[R any](ctx context.Context, s *Store, op *engine.Op[R]) (_ R, retErr error) {
	var zero R
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return zero, translate("begin "+op.Name(), err, phaseWork)
	}
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	u := &uow{s: s, tx: tx, tenantID: op.TenantID(), operation: op.Name(), requestHash: op.RequestHash()}
	res, err := op.Run(ctx, u)
	if err != nil {
		// The unit of work's methods translated their driver errors already; the rest are the
		// engine's and the domain's.
		return zero, err
	}
	if u.reserved && !u.saved {
		return zero, fmt.Errorf("pgstore: %s: the idempotency key was reserved but its result never saved", op.Name())
	}
	committed = true // whatever COMMIT returns, the transaction has ended (or its outcome is unknown)
	if err := tx.Commit(ctx); err != nil {
		return zero, translate("commit "+op.Name(), err, phaseCommit)
	}
	return res, nil
}

// CreateTenant implements userstore.TenantStore.
func (s *Store) CreateTenant(ctx context.Context, p *userstore.CreateTenantParams) (*userstore.Tenant, error) {
	return mutate(ctx, s, s.engine.CreateTenant, p)
}

// RenameTenant implements userstore.TenantStore.
func (s *Store) RenameTenant(ctx context.Context, p *userstore.RenameTenantParams) (*userstore.Tenant, error) {
	return mutate(ctx, s, s.engine.RenameTenant, p)
}

// SuspendTenant implements userstore.TenantStore.
func (s *Store) SuspendTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return mutate(ctx, s, s.engine.SuspendTenant, p)
}

// ReactivateTenant implements userstore.TenantStore.
func (s *Store) ReactivateTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return mutate(ctx, s, s.engine.ReactivateTenant, p)
}

// CloseTenant implements userstore.TenantStore.
func (s *Store) CloseTenant(ctx context.Context, p *userstore.TenantStatusParams) (*userstore.Tenant, error) {
	return mutate(ctx, s, s.engine.CloseTenant, p)
}

// CreateUser implements userstore.UserStore.
func (s *Store) CreateUser(ctx context.Context, p *userstore.CreateUserParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.CreateUser, p)
}

// UpdateUserProfile implements userstore.UserStore.
func (s *Store) UpdateUserProfile(ctx context.Context, p *userstore.UpdateUserProfileParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.UpdateUserProfile, p)
}

// ChangeUserEmail implements userstore.UserStore.
func (s *Store) ChangeUserEmail(ctx context.Context, p *userstore.ChangeUserEmailParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.ChangeUserEmail, p)
}

// DisableUser implements userstore.UserStore.
func (s *Store) DisableUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.DisableUser, p)
}

// EnableUser implements userstore.UserStore.
func (s *Store) EnableUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.EnableUser, p)
}

// DeleteUser implements userstore.UserStore.
func (s *Store) DeleteUser(ctx context.Context, p *userstore.UserParams) (*userstore.User, error) {
	return mutate(ctx, s, s.engine.DeleteUser, p)
}

// OpenAccount implements userstore.AccountStore.
func (s *Store) OpenAccount(ctx context.Context, p *userstore.OpenAccountParams) (*userstore.Account, error) {
	return mutate(ctx, s, s.engine.OpenAccount, p)
}

// RenameAccountLogin implements userstore.AccountStore.
func (s *Store) RenameAccountLogin(ctx context.Context, p *userstore.RenameAccountLoginParams) (*userstore.Account, error) {
	return mutate(ctx, s, s.engine.RenameAccountLogin, p)
}

// LockAccount implements userstore.AccountStore.
func (s *Store) LockAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return mutate(ctx, s, s.engine.LockAccount, p)
}

// UnlockAccount implements userstore.AccountStore.
func (s *Store) UnlockAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return mutate(ctx, s, s.engine.UnlockAccount, p)
}

// CloseAccount implements userstore.AccountStore.
func (s *Store) CloseAccount(ctx context.Context, p *userstore.AccountParams) (*userstore.Account, error) {
	return mutate(ctx, s, s.engine.CloseAccount, p)
}

// LinkIdentity implements userstore.IdentityStore.
func (s *Store) LinkIdentity(ctx context.Context, p *userstore.LinkIdentityParams) (*userstore.ExternalIdentity, error) {
	return mutate(ctx, s, s.engine.LinkIdentity, p)
}

// UnlinkIdentity implements userstore.IdentityStore.
func (s *Store) UnlinkIdentity(ctx context.Context, p *userstore.UnlinkIdentityParams) error {
	return mutateNoResult(ctx, s, s.engine.UnlinkIdentity, p)
}

// RegisterApplication implements userstore.ApplicationStore.
func (s *Store) RegisterApplication(ctx context.Context, p *userstore.RegisterApplicationParams) (*userstore.Application, error) {
	return mutate(ctx, s, s.engine.RegisterApplication, p)
}

// UpdateApplication implements userstore.ApplicationStore.
func (s *Store) UpdateApplication(ctx context.Context, p *userstore.UpdateApplicationParams) (*userstore.Application, error) {
	return mutate(ctx, s, s.engine.UpdateApplication, p)
}

// DisableApplication implements userstore.ApplicationStore.
func (s *Store) DisableApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return mutate(ctx, s, s.engine.DisableApplication, p)
}

// EnableApplication implements userstore.ApplicationStore.
func (s *Store) EnableApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return mutate(ctx, s, s.engine.EnableApplication, p)
}

// DeleteApplication implements userstore.ApplicationStore.
func (s *Store) DeleteApplication(ctx context.Context, p *userstore.ApplicationParams) (*userstore.Application, error) {
	return mutate(ctx, s, s.engine.DeleteApplication, p)
}

// Bind implements userstore.BindingStore.
func (s *Store) Bind(ctx context.Context, p *userstore.BindParams) (*userstore.Binding, error) {
	return mutate(ctx, s, s.engine.Bind, p)
}

// ChangeBindingRoles implements userstore.BindingStore.
func (s *Store) ChangeBindingRoles(ctx context.Context, p *userstore.ChangeBindingRolesParams) (*userstore.Binding, error) {
	return mutate(ctx, s, s.engine.ChangeBindingRoles, p)
}

// Unbind implements userstore.BindingStore.
func (s *Store) Unbind(ctx context.Context, p *userstore.UnbindParams) error {
	return mutateNoResult(ctx, s, s.engine.Unbind, p)
}

// DefineCatalog implements userstore.CatalogStore.
func (s *Store) DefineCatalog(ctx context.Context, p *userstore.DefineCatalogParams) (*userstore.Catalog, error) {
	return mutate(ctx, s, s.engine.DefineCatalog, p)
}

// AddCatalogAttribute implements userstore.CatalogStore.
func (s *Store) AddCatalogAttribute(ctx context.Context, p *userstore.AddCatalogAttributeParams) (*userstore.Catalog, error) {
	return mutate(ctx, s, s.engine.AddCatalogAttribute, p)
}

// DeprecateCatalogAttribute implements userstore.CatalogStore.
func (s *Store) DeprecateCatalogAttribute(ctx context.Context, p *userstore.DeprecateCatalogAttributeParams) (*userstore.Catalog, error) {
	return mutate(ctx, s, s.engine.DeprecateCatalogAttribute, p)
}

// SetProfileValues implements userstore.ProfileStore.
func (s *Store) SetProfileValues(ctx context.Context, p *userstore.SetProfileValuesParams) (*userstore.Profile, error) {
	return mutate(ctx, s, s.engine.SetProfileValues, p)
}

// ClearProfileValues implements userstore.ProfileStore.
func (s *Store) ClearProfileValues(ctx context.Context, p *userstore.ClearProfileValuesParams) (*userstore.Profile, error) {
	return mutate(ctx, s, s.engine.ClearProfileValues, p)
}

// AddMember implements userstore.MembershipStore.
func (s *Store) AddMember(ctx context.Context, p *userstore.AddMemberParams) (*userstore.Membership, error) {
	return mutate(ctx, s, s.engine.AddMember, p)
}

// ChangeMemberRole implements userstore.MembershipStore.
func (s *Store) ChangeMemberRole(ctx context.Context, p *userstore.ChangeMemberRoleParams) (*userstore.Membership, error) {
	return mutate(ctx, s, s.engine.ChangeMemberRole, p)
}

// RemoveMember implements userstore.MembershipStore.
func (s *Store) RemoveMember(ctx context.Context, p *userstore.RemoveMemberParams) error {
	return mutateNoResult(ctx, s, s.engine.RemoveMember, p)
}
