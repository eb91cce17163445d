package userstore

import (
	"context"

	"github.com/google/uuid"
)

// Store is the protocol of the user engine's store: every area of the workplan, as one interface made of
// the per-area interfaces below. Every method takes the tenant from ctx (WithTenant) or, for mutations,
// from the params' Mutation; see the package documentation for errors and idempotency.
type Store interface {
	TenantStore
	UserStore
	AccountStore
	IdentityStore
	ApplicationStore
	BindingStore
	CatalogStore
	ProfileStore
	MembershipStore
	AuditStore
	OutboxStore
	HealthStore
}

// TenantStore manages tenant accounts. A closed tenant accepts no mutation; a suspended one accepts only
// RenameTenant, ReactivateTenant and CloseTenant.
type TenantStore interface {
	CreateTenant(ctx context.Context, params *CreateTenantParams) (*Tenant, error)
	RenameTenant(ctx context.Context, params *RenameTenantParams) (*Tenant, error)
	SuspendTenant(ctx context.Context, params *TenantStatusParams) (*Tenant, error)
	ReactivateTenant(ctx context.Context, params *TenantStatusParams) (*Tenant, error)
	CloseTenant(ctx context.Context, params *TenantStatusParams) (*Tenant, error)
	// GetTenant returns the context's tenant.
	GetTenant(ctx context.Context) (*Tenant, error)
	// GetTenantBySlug resolves a slug to its tenant; it needs no tenant in ctx (it is how a caller finds
	// one). With a tenant in ctx, any other tenant is ErrNotFound.
	GetTenantBySlug(ctx context.Context, slug string) (*Tenant, error)
	// ListTenants is a platform operation; see ListTenantsParams.
	ListTenants(ctx context.Context, params *ListTenantsParams) (*Page[Tenant], error)
}

// UserStore manages users.
type UserStore interface {
	CreateUser(ctx context.Context, params *CreateUserParams) (*User, error)
	UpdateUserProfile(ctx context.Context, params *UpdateUserProfileParams) (*User, error)
	ChangeUserEmail(ctx context.Context, params *ChangeUserEmailParams) (*User, error)
	DisableUser(ctx context.Context, params *UserParams) (*User, error)
	EnableUser(ctx context.Context, params *UserParams) (*User, error)
	// DeleteUser deletes a user and, in the same transaction, releases its email, closes its accounts,
	// unlinks its identities, removes its bindings, clears its profiles and removes its membership. It
	// fails with ReasonLastOwner if the user is the tenant's last owner.
	DeleteUser(ctx context.Context, params *UserParams) (*User, error)
	GetUser(ctx context.Context, id uuid.UUID) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	ListUsers(ctx context.Context, params *ListUsersParams) (*Page[User], error)
}

// AccountStore manages sign-in accounts.
type AccountStore interface {
	OpenAccount(ctx context.Context, params *OpenAccountParams) (*Account, error)
	RenameAccountLogin(ctx context.Context, params *RenameAccountLoginParams) (*Account, error)
	LockAccount(ctx context.Context, params *AccountParams) (*Account, error)
	UnlockAccount(ctx context.Context, params *AccountParams) (*Account, error)
	CloseAccount(ctx context.Context, params *AccountParams) (*Account, error)
	GetAccount(ctx context.Context, id uuid.UUID) (*Account, error)
	// GetAccountByLogin finds the open (active or locked) account with the login name.
	GetAccountByLogin(ctx context.Context, loginName string) (*Account, error)
	ListAccountsByUser(ctx context.Context, params *ListAccountsParams) (*Page[Account], error)
}

// IdentityStore manages links to external identity providers.
type IdentityStore interface {
	LinkIdentity(ctx context.Context, params *LinkIdentityParams) (*ExternalIdentity, error)
	UnlinkIdentity(ctx context.Context, params *UnlinkIdentityParams) error
	// FindUserByIdentity returns the user linked to (issuer, subject).
	FindUserByIdentity(ctx context.Context, issuer, subject string) (*User, error)
	ListIdentitiesByUser(ctx context.Context, params *ListIdentitiesParams) (*Page[ExternalIdentity], error)
}

// ApplicationStore manages applications.
type ApplicationStore interface {
	RegisterApplication(ctx context.Context, params *RegisterApplicationParams) (*Application, error)
	UpdateApplication(ctx context.Context, params *UpdateApplicationParams) (*Application, error)
	DisableApplication(ctx context.Context, params *ApplicationParams) (*Application, error)
	EnableApplication(ctx context.Context, params *ApplicationParams) (*Application, error)
	// DeleteApplication deletes an application, releases its client key and removes its bindings.
	DeleteApplication(ctx context.Context, params *ApplicationParams) (*Application, error)
	GetApplication(ctx context.Context, id uuid.UUID) (*Application, error)
	GetApplicationByClientKey(ctx context.Context, clientKey string) (*Application, error)
	ListApplications(ctx context.Context, params *ListApplicationsParams) (*Page[Application], error)
}

// BindingStore manages user ↔ application grants.
type BindingStore interface {
	Bind(ctx context.Context, params *BindParams) (*Binding, error)
	ChangeBindingRoles(ctx context.Context, params *ChangeBindingRolesParams) (*Binding, error)
	Unbind(ctx context.Context, params *UnbindParams) error
	GetBinding(ctx context.Context, id uuid.UUID) (*Binding, error)
	ListBindingsByUser(ctx context.Context, params *ListBindingsParams) (*Page[Binding], error)
	ListBindingsByApplication(ctx context.Context, params *ListBindingsParams) (*Page[Binding], error)
}

// CatalogStore manages the tenant's profile schemas.
type CatalogStore interface {
	DefineCatalog(ctx context.Context, params *DefineCatalogParams) (*Catalog, error)
	AddCatalogAttribute(ctx context.Context, params *AddCatalogAttributeParams) (*Catalog, error)
	DeprecateCatalogAttribute(ctx context.Context, params *DeprecateCatalogAttributeParams) (*Catalog, error)
	GetCatalog(ctx context.Context, id uuid.UUID) (*Catalog, error)
	ListCatalogs(ctx context.Context, params *ListCatalogsParams) (*Page[Catalog], error)
}

// ProfileStore manages users' profile values.
type ProfileStore interface {
	SetProfileValues(ctx context.Context, params *SetProfileValuesParams) (*Profile, error)
	ClearProfileValues(ctx context.Context, params *ClearProfileValuesParams) (*Profile, error)
	// GetProfile returns a user's values in a catalog; a user with no values has an empty profile at
	// version 0 (ErrNotFound only when the user or the catalog does not exist).
	GetProfile(ctx context.Context, userID, catalogID uuid.UUID) (*Profile, error)
}

// MembershipStore manages the tenant's membership roster.
type MembershipStore interface {
	AddMember(ctx context.Context, params *AddMemberParams) (*Membership, error)
	ChangeMemberRole(ctx context.Context, params *ChangeMemberRoleParams) (*Membership, error)
	RemoveMember(ctx context.Context, params *RemoveMemberParams) error
	GetMembership(ctx context.Context, userID uuid.UUID) (*Membership, error)
	ListMembers(ctx context.Context, params *ListMembersParams) (*Page[Membership], error)
}

// AuditStore queries the tenant's audit trail.
//
// Audit records derive from the committed events. A durable store may build them asynchronously (the
// projector): a mutation's records then appear shortly after it returns, in commit order and never out
// of sequence. The in-memory store shows them at once.
type AuditStore interface {
	ListAuditRecords(ctx context.Context, params *ListAuditParams) (*Page[AuditRecord], error)
}

// OutboxStore reads the tenant's public integration events.
//
// Outbox events derive from the committed events. An event becomes readable once every transaction that
// could commit an event before it has ended — so that a consumer that keeps its cursor never skips one —
// which in a durable store is shortly after its mutation returns.
type OutboxStore interface {
	// ReadOutbox returns the events after params.Cursor in commit order. Unlike other lists, NextCursor
	// is always the position to resume from — the last item's, or params.Cursor when the page is empty —
	// so that a consumer keeps it and polls again.
	ReadOutbox(ctx context.Context, params *ReadOutboxParams) (*Page[OutboxEvent], error)
}

// HealthStore reports readiness and schema version.
type HealthStore interface {
	Ready(ctx context.Context) (*Readiness, error)
	SchemaVersion(ctx context.Context) (*SchemaVersion, error)
}
