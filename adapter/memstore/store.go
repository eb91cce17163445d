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
	engine *engine.Engine
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
	return &Store{
		engine:      engine.New(&engine.Config{Now: cfg.Now, NewID: cfg.NewID}),
		now:         cfg.Now,
		logger:      cfg.Logger,
		streams:     map[streamKey]*stream{},
		claims:      map[domain.Claim]domain.StreamRef{},
		idempotency: map[idemKey]*engine.IdempotencyRecord{},
		tenants:     map[uuid.UUID]*tenantData{},
	}, nil
}

// mutate prepares an engine operation and runs it in a unit of work under the store's lock: it
// commits when the operation succeeds and rolls every change back when it fails (or panics).
func mutate[P, R any](ctx context.Context, s *Store, prepare func(context.Context, P) (*engine.Op[R], error), p P) (R, error) {
	var zero R
	s.mu.Lock()
	defer s.mu.Unlock()
	// Preparing under the lock too means Config.Now and Config.NewID never run concurrently.
	op, err := prepare(ctx, p)
	if err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	u := &uow{s: s, start: len(s.log)}
	committed := false
	defer func() {
		if !committed {
			u.rollback()
		}
	}()
	res, err := op.Run(ctx, u)
	if err == nil {
		err = u.commit()
	}
	if err != nil {
		return zero, err
	}
	committed = true
	s.logger.DebugContext(ctx, "userstore: mutation committed",
		slog.String("operation", op.Name()),
		slog.String("tenant_id", op.TenantID().String()),
		slog.Int("events", len(s.log)-u.start))
	return res, nil
}

// mutateNoResult runs an operation whose result is not returned.
func mutateNoResult[P any](ctx context.Context, s *Store, prepare func(context.Context, P) (*engine.Op[struct{}], error), p P) error {
	_, err := mutate(ctx, s, prepare, p)
	return err
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
