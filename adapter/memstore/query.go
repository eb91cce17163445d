package memstore

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
)

// read runs fn under the read lock with the data of the tenant of ctx (ErrTenantRequired without one).
// A tenant that has no data reads as empty.
func read[R any](s *Store, ctx context.Context, fn func(td *tenantData) (R, error)) (R, error) {
	var zero R
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return zero, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	td, ok := s.tenants[tenantID]
	if !ok {
		td = &tenantData{id: tenantID} // nil maps read as empty
	}
	return fn(td)
}

// owner returns the stream that holds a claim.
func (s *Store) owner(c domain.Claim) (uuid.UUID, bool) {
	ref, ok := s.claims[c]
	return ref.ID, ok
}

// Copies out of the store: callers may modify what they get.

func cloneTenant(t *userstore.Tenant) userstore.Tenant                       { return *t }
func cloneUser(u *userstore.User) userstore.User                             { return *u }
func cloneAccount(a *userstore.Account) userstore.Account                    { return *a }
func cloneIdentity(i *userstore.ExternalIdentity) userstore.ExternalIdentity { return *i }
func cloneApp(a *userstore.Application) userstore.Application                { return *a }
func cloneMember(m *userstore.Membership) userstore.Membership               { return *m }

func cloneBinding(b *userstore.Binding) userstore.Binding {
	c := *b
	c.Roles = slices.Clone(b.Roles)
	return c
}

func cloneCatalog(c *userstore.Catalog) userstore.Catalog {
	out := *c
	out.Attributes = make([]userstore.Attribute, len(c.Attributes))
	for i, a := range c.Attributes {
		a.EnumValues = slices.Clone(a.EnumValues)
		out.Attributes[i] = a
	}
	return out
}

func cloneProfile(p *userstore.Profile) userstore.Profile {
	c := *p
	c.Values = maps.Clone(p.Values)
	if c.Values == nil {
		c.Values = map[string]userstore.Value{}
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// --- tenants ---

// GetTenant implements userstore.TenantStore.
func (s *Store) GetTenant(ctx context.Context) (*userstore.Tenant, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Tenant, error) {
		if td.tenant == nil {
			return nil, domain.NotFound("tenant")
		}
		return ptr(cloneTenant(td.tenant)), nil
	})
}

// GetTenantBySlug implements userstore.TenantStore; it needs no tenant in ctx.
func (s *Store) GetTenantBySlug(ctx context.Context, slug string) (*userstore.Tenant, error) {
	slug, err := domain.NormalizeSlug(slug)
	if err != nil {
		return nil, err
	}
	ctxTenant, scoped := userstore.TenantFromContext(ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.owner(domain.Claim{Scope: domain.PlatformScope, Kind: userstore.KindTenantSlug, Value: slug})
	if !ok || (scoped && id != ctxTenant) {
		return nil, domain.NotFound("tenant")
	}
	td, ok := s.tenants[id]
	if !ok || td.tenant == nil {
		return nil, domain.NotFound("tenant")
	}
	return ptr(cloneTenant(td.tenant)), nil
}

// ListTenants implements userstore.TenantStore. It is a platform operation and needs no tenant; with a
// tenant in ctx it lists only that one.
func (s *Store) ListTenants(ctx context.Context, p *userstore.ListTenantsParams) (*userstore.Page[userstore.Tenant], error) {
	if p == nil {
		p = &userstore.ListTenantsParams{}
	}
	if p.Status != "" && !domain.ValidTenantStatus(p.Status) {
		return nil, userstore.Invalid("status", "must be active, suspended or closed")
	}
	ctxTenant, scoped := userstore.TenantFromContext(ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []*userstore.Tenant
	for id, td := range s.tenants {
		t := td.tenant
		if t == nil || (scoped && id != ctxTenant) || (p.Status != "" && t.Status != p.Status) {
			continue
		}
		items = append(items, t)
	}
	filters := keyset.Fingerprint(string(p.Status), scopeFilter(scoped, ctxTenant))
	return pageByID(items, func(t *userstore.Tenant) uuid.UUID { return t.ID }, cloneTenant, p.ListOpts, "tenants", filters)
}

func scopeFilter(scoped bool, id uuid.UUID) string {
	if !scoped {
		return ""
	}
	return id.String()
}

// --- users ---

// GetUser implements userstore.UserStore; a deleted user is returned as its tombstone.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (*userstore.User, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.User, error) {
		u, ok := td.users[id]
		if !ok {
			return nil, domain.NotFound("user")
		}
		return ptr(cloneUser(u)), nil
	})
}

// GetUserByEmail implements userstore.UserStore; the email is normalized and case folded.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*userstore.User, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.User, error) {
		email, err := domain.NormalizeEmail(email)
		if err != nil {
			return nil, err
		}
		id, ok := s.owner(domain.Claim{Scope: td.id, Kind: userstore.KindEmail, Value: domain.EmailKey(email)})
		u := td.users[id]
		if !ok || u == nil {
			return nil, domain.NotFound("user")
		}
		return ptr(cloneUser(u)), nil
	})
}

// ListUsers implements userstore.UserStore: without a status filter, active and disabled users.
func (s *Store) ListUsers(ctx context.Context, p *userstore.ListUsersParams) (*userstore.Page[userstore.User], error) {
	if p == nil {
		p = &userstore.ListUsersParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.User], error) {
		if p.Status != "" && !domain.ValidUserStatus(p.Status) {
			return nil, userstore.Invalid("status", "must be active, disabled or deleted")
		}
		var items []*userstore.User
		for _, u := range td.users {
			if p.Status == "" && u.Status == userstore.UserDeleted || p.Status != "" && u.Status != p.Status {
				continue
			}
			items = append(items, u)
		}
		return pageByID(items, func(u *userstore.User) uuid.UUID { return u.ID }, cloneUser, p.ListOpts, "users", keyset.Fingerprint(string(p.Status)))
	})
}

// --- accounts ---

// GetAccount implements userstore.AccountStore; a closed account is still returned.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (*userstore.Account, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Account, error) {
		a, ok := td.accounts[id]
		if !ok {
			return nil, domain.NotFound("account")
		}
		return ptr(cloneAccount(a)), nil
	})
}

// GetAccountByLogin implements userstore.AccountStore: the open account with the (normalized, case
// folded) login name.
func (s *Store) GetAccountByLogin(ctx context.Context, loginName string) (*userstore.Account, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Account, error) {
		loginName, err := domain.NormalizeLoginName(loginName)
		if err != nil {
			return nil, err
		}
		id, ok := s.owner(domain.Claim{Scope: td.id, Kind: userstore.KindLoginName, Value: domain.LoginKey(loginName)})
		a := td.accounts[id]
		if !ok || a == nil {
			return nil, domain.NotFound("account")
		}
		return ptr(cloneAccount(a)), nil
	})
}

// ListAccountsByUser implements userstore.AccountStore: all the user's accounts, closed ones included.
func (s *Store) ListAccountsByUser(ctx context.Context, p *userstore.ListAccountsParams) (*userstore.Page[userstore.Account], error) {
	if p == nil {
		p = &userstore.ListAccountsParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Account], error) {
		if err := userExists(td, p.UserID); err != nil {
			return nil, err
		}
		var items []*userstore.Account
		for _, a := range td.accounts {
			if a.UserID == p.UserID {
				items = append(items, a)
			}
		}
		return pageByID(items, func(a *userstore.Account) uuid.UUID { return a.ID }, cloneAccount, p.ListOpts, "accounts", keyset.Fingerprint(p.UserID.String()))
	})
}

// userExists checks the user a list is about: required, and in the tenant.
func userExists(td *tenantData, id uuid.UUID) error {
	if id == uuid.Nil {
		return userstore.Invalid("user_id", "is required")
	}
	if _, ok := td.users[id]; !ok {
		return domain.NotFound("user")
	}
	return nil
}

// --- identities ---

// FindUserByIdentity implements userstore.IdentityStore.
func (s *Store) FindUserByIdentity(ctx context.Context, issuer, subject string) (*userstore.User, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.User, error) {
		issuer, err := domain.NormalizeIssuer(issuer)
		if err != nil {
			return nil, err
		}
		if subject, err = domain.NormalizeSubject(subject); err != nil {
			return nil, err
		}
		id, ok := s.owner(domain.Claim{Scope: td.id, Kind: userstore.KindExternalIdentity, Value: domain.IdentityKey(issuer, subject)})
		link := td.identities[id]
		if !ok || link == nil {
			return nil, domain.NotFound("user")
		}
		u, ok := td.users[link.UserID]
		if !ok {
			return nil, domain.NotFound("user")
		}
		return ptr(cloneUser(u)), nil
	})
}

// ListIdentitiesByUser implements userstore.IdentityStore.
func (s *Store) ListIdentitiesByUser(ctx context.Context, p *userstore.ListIdentitiesParams) (*userstore.Page[userstore.ExternalIdentity], error) {
	if p == nil {
		p = &userstore.ListIdentitiesParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.ExternalIdentity], error) {
		if err := userExists(td, p.UserID); err != nil {
			return nil, err
		}
		var items []*userstore.ExternalIdentity
		for _, i := range td.identities {
			if i.UserID == p.UserID {
				items = append(items, i)
			}
		}
		return pageByID(items, func(i *userstore.ExternalIdentity) uuid.UUID { return i.ID }, cloneIdentity, p.ListOpts, "identities", keyset.Fingerprint(p.UserID.String()))
	})
}

// --- applications ---

// GetApplication implements userstore.ApplicationStore; a deleted application is returned as its
// tombstone.
func (s *Store) GetApplication(ctx context.Context, id uuid.UUID) (*userstore.Application, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Application, error) {
		a, ok := td.apps[id]
		if !ok {
			return nil, domain.NotFound("application")
		}
		return ptr(cloneApp(a)), nil
	})
}

// GetApplicationByClientKey implements userstore.ApplicationStore.
func (s *Store) GetApplicationByClientKey(ctx context.Context, clientKey string) (*userstore.Application, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Application, error) {
		clientKey, err := domain.NormalizeClientKey(clientKey)
		if err != nil {
			return nil, err
		}
		id, ok := s.owner(domain.Claim{Scope: td.id, Kind: userstore.KindClientKey, Value: clientKey})
		a := td.apps[id]
		if !ok || a == nil {
			return nil, domain.NotFound("application")
		}
		return ptr(cloneApp(a)), nil
	})
}

// ListApplications implements userstore.ApplicationStore: without a status filter, active and disabled
// applications.
func (s *Store) ListApplications(ctx context.Context, p *userstore.ListApplicationsParams) (*userstore.Page[userstore.Application], error) {
	if p == nil {
		p = &userstore.ListApplicationsParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Application], error) {
		if p.Status != "" && !domain.ValidApplicationStatus(p.Status) {
			return nil, userstore.Invalid("status", "must be active, disabled or deleted")
		}
		var items []*userstore.Application
		for _, a := range td.apps {
			if p.Status == "" && a.Status == userstore.AppDeleted || p.Status != "" && a.Status != p.Status {
				continue
			}
			items = append(items, a)
		}
		return pageByID(items, func(a *userstore.Application) uuid.UUID { return a.ID }, cloneApp, p.ListOpts, "applications", keyset.Fingerprint(string(p.Status)))
	})
}

// --- bindings ---

// GetBinding implements userstore.BindingStore.
func (s *Store) GetBinding(ctx context.Context, id uuid.UUID) (*userstore.Binding, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Binding, error) {
		b, ok := td.bindings[id]
		if !ok {
			return nil, domain.NotFound("binding")
		}
		return ptr(cloneBinding(b)), nil
	})
}

// ListBindingsByUser implements userstore.BindingStore: UserID is required, ApplicationID must be zero.
func (s *Store) ListBindingsByUser(ctx context.Context, p *userstore.ListBindingsParams) (*userstore.Page[userstore.Binding], error) {
	if p == nil {
		p = &userstore.ListBindingsParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Binding], error) {
		if p.ApplicationID != uuid.Nil {
			return nil, userstore.Invalid("application_id", "must be empty when listing by user")
		}
		if err := userExists(td, p.UserID); err != nil {
			return nil, err
		}
		return listBindings(td, p.ListOpts, "bindings-by-user", p.UserID, func(b *userstore.Binding) bool { return b.UserID == p.UserID })
	})
}

// ListBindingsByApplication implements userstore.BindingStore: ApplicationID is required, UserID must
// be zero.
func (s *Store) ListBindingsByApplication(ctx context.Context, p *userstore.ListBindingsParams) (*userstore.Page[userstore.Binding], error) {
	if p == nil {
		p = &userstore.ListBindingsParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Binding], error) {
		if p.UserID != uuid.Nil {
			return nil, userstore.Invalid("user_id", "must be empty when listing by application")
		}
		if p.ApplicationID == uuid.Nil {
			return nil, userstore.Invalid("application_id", "is required")
		}
		if _, ok := td.apps[p.ApplicationID]; !ok {
			return nil, domain.NotFound("application")
		}
		return listBindings(td, p.ListOpts, "bindings-by-application", p.ApplicationID, func(b *userstore.Binding) bool { return b.ApplicationID == p.ApplicationID })
	})
}

func listBindings(td *tenantData, o userstore.ListOpts, list string, parent uuid.UUID, match func(*userstore.Binding) bool) (*userstore.Page[userstore.Binding], error) {
	var items []*userstore.Binding
	for _, b := range td.bindings {
		if match(b) {
			items = append(items, b)
		}
	}
	return pageByID(items, func(b *userstore.Binding) uuid.UUID { return b.ID }, cloneBinding, o, list, keyset.Fingerprint(parent.String()))
}

// --- catalogs and profiles ---

// GetCatalog implements userstore.CatalogStore.
func (s *Store) GetCatalog(ctx context.Context, id uuid.UUID) (*userstore.Catalog, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Catalog, error) {
		c, ok := td.catalogs[id]
		if !ok {
			return nil, domain.NotFound("catalog")
		}
		return ptr(cloneCatalog(c)), nil
	})
}

// ListCatalogs implements userstore.CatalogStore.
func (s *Store) ListCatalogs(ctx context.Context, p *userstore.ListCatalogsParams) (*userstore.Page[userstore.Catalog], error) {
	if p == nil {
		p = &userstore.ListCatalogsParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Catalog], error) {
		items := slices.Collect(maps.Values(td.catalogs))
		return pageByID(items, func(c *userstore.Catalog) uuid.UUID { return c.ID }, cloneCatalog, p.ListOpts, "catalogs", keyset.Fingerprint())
	})
}

// GetProfile implements userstore.ProfileStore: a user without values has an empty profile at version
// 0; ErrNotFound only when the user or the catalog does not exist.
func (s *Store) GetProfile(ctx context.Context, userID, catalogID uuid.UUID) (*userstore.Profile, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Profile, error) {
		if _, ok := td.users[userID]; !ok {
			return nil, domain.NotFound("user")
		}
		if _, ok := td.catalogs[catalogID]; !ok {
			return nil, domain.NotFound("catalog")
		}
		if p, ok := td.profiles[profileKey{userID, catalogID}]; ok {
			return ptr(cloneProfile(p)), nil
		}
		return &userstore.Profile{TenantID: td.id, UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{}}, nil
	})
}

// --- memberships ---

// GetMembership implements userstore.MembershipStore.
func (s *Store) GetMembership(ctx context.Context, userID uuid.UUID) (*userstore.Membership, error) {
	return read(s, ctx, func(td *tenantData) (*userstore.Membership, error) {
		m, ok := td.members[userID]
		if !ok {
			return nil, domain.NotFound("membership")
		}
		return ptr(cloneMember(m)), nil
	})
}

// ListMembers implements userstore.MembershipStore, in user id order.
func (s *Store) ListMembers(ctx context.Context, p *userstore.ListMembersParams) (*userstore.Page[userstore.Membership], error) {
	if p == nil {
		p = &userstore.ListMembersParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.Membership], error) {
		if p.Role != "" && !domain.ValidMemberRole(p.Role) {
			return nil, userstore.Invalid("role", "must be owner, admin or member")
		}
		var items []*userstore.Membership
		for _, m := range td.members {
			if p.Role == "" || m.Role == p.Role {
				items = append(items, m)
			}
		}
		return pageByID(items, func(m *userstore.Membership) uuid.UUID { return m.UserID }, cloneMember, p.ListOpts, "members", keyset.Fingerprint(string(p.Role)))
	})
}

// --- audit and outbox ---

// ListAuditRecords implements userstore.AuditStore: the tenant's records in sequence order, filtered.
func (s *Store) ListAuditRecords(ctx context.Context, p *userstore.ListAuditParams) (*userstore.Page[userstore.AuditRecord], error) {
	if p == nil {
		p = &userstore.ListAuditParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.AuditRecord], error) {
		if err := engine.ValidateAuditParams(p); err != nil {
			return nil, err
		}
		limit, err := engine.PageLimit(p.ListOpts)
		if err != nil {
			return nil, err
		}
		filters := engine.AuditFilters(p)
		after, err := keyset.DecodeInt(p.Cursor, "audit", filters)
		if err != nil {
			return nil, err
		}
		page := &userstore.Page[userstore.AuditRecord]{Items: []userstore.AuditRecord{}}
		// Sequences are gapless from 1: the record after sequence n is at index n.
		for i := int(min(after, int64(len(td.audit)))); i < len(td.audit); i++ {
			r := &td.audit[i]
			if !engine.AuditMatches(p, r) {
				continue
			}
			if len(page.Items) == limit {
				last := page.Items[limit-1].Sequence
				page.NextCursor = keyset.Encode("audit", filters, strconv.FormatInt(last, 10))
				break
			}
			page.Items = append(page.Items, *r)
		}
		return page, nil
	})
}

// ReadOutbox implements userstore.OutboxStore: the tenant's events after the cursor in commit order.
// NextCursor is always the position to resume from.
func (s *Store) ReadOutbox(ctx context.Context, p *userstore.ReadOutboxParams) (*userstore.Page[userstore.OutboxEvent], error) {
	if p == nil {
		p = &userstore.ReadOutboxParams{}
	}
	return read(s, ctx, func(td *tenantData) (*userstore.Page[userstore.OutboxEvent], error) {
		limit, err := engine.PageLimit(p.ListOpts)
		if err != nil {
			return nil, err
		}
		after, err := keyset.DecodeInt(p.Cursor, "outbox", "")
		if err != nil {
			return nil, err
		}
		start := sort.Search(len(td.outbox), func(i int) bool { return td.outbox[i].Position > after })
		end := min(start+limit, len(td.outbox))
		page := &userstore.Page[userstore.OutboxEvent]{Items: make([]userstore.OutboxEvent, 0, end-start), NextCursor: p.Cursor}
		for _, ev := range td.outbox[start:end] {
			ev.Payload = bytes.Clone(ev.Payload)
			page.Items = append(page.Items, ev)
		}
		if end > start {
			page.NextCursor = keyset.Encode("outbox", "", strconv.FormatInt(td.outbox[end-1].Position, 10))
		}
		return page, nil
	})
}
