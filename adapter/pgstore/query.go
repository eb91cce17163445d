package pgstore

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
)

// Queries read the read tables. Each runs its statements in one round trip as a short REPEATABLE READ
// READ ONLY transaction scoped to the caller's tenant (BEGIN, set_config(…, true), the statements,
// COMMIT, pipelined), so they read one snapshot, and every statement also filters by tenant_id itself.
// A call without a tenant is ErrTenantRequired before any SQL; input is validated before any SQL.

// readTx runs the statements queue adds, after scope's, in one pipelined read-only transaction.
func (s *Store) readTx(ctx context.Context, op string, scope func(*pgx.Batch), queue func(*pgx.Batch)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate(op, err, phaseWork)
	}
	defer release(ctx, conn)
	b := &pgx.Batch{}
	b.Queue(sqlBeginRead)
	scope(b)
	queue(b)
	b.Queue(sqlCommit)
	return translate(op, conn.SendBatch(ctx, b).Close(), phaseWork)
}

// read runs a query's statements in a read-only transaction scoped to tenantID.
func (s *Store) read(ctx context.Context, op string, tenantID uuid.UUID, queue func(*pgx.Batch)) error {
	return s.readTx(ctx, op, func(b *pgx.Batch) { b.Queue(sqlSetTenant, tenantID.String()) }, queue)
}

// release returns a connection to the pool, first ending a transaction a failed batch left open (a
// pool discards a connection returned inside a transaction).
func release(ctx context.Context, conn *pgxpool.Conn) {
	if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		_, _ = conn.Exec(rctx, sqlRollback)
		cancel()
	}
	conn.Release()
}

// one queues a statement that returns at most one row; *out is set when it does.
func one[T any](b *pgx.Batch, out **T, scan func(scanner) (*T, error), sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			*out = v
		}
		return rows.Err()
	})
}

// many queues a statement whose rows are appended to *out.
func many[T any](b *pgx.Batch, out *[]T, scan func(scanner) (*T, error), sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			*out = append(*out, *v)
		}
		return rows.Err()
	})
}

// exists queues a statement that returns one boolean.
func exists(b *pgx.Batch, out *bool, sql string, args ...any) {
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error { return row.Scan(out) })
}

// found returns v, or ErrNotFound for the entity when v is nil.
func found[T any](v *T, entity string) (*T, error) {
	if v == nil {
		return nil, domain.NotFound(entity)
	}
	return v, nil
}

// --- tenants ---

// GetTenant implements userstore.TenantStore.
func (s *Store) GetTenant(ctx context.Context) (*userstore.Tenant, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var t *userstore.Tenant
	if err := s.read(ctx, "get tenant", tenantID, func(b *pgx.Batch) { one(b, &t, scanTenant, sqlGetTenant, tenantID) }); err != nil {
		return nil, err
	}
	return found(t, "tenant")
}

// GetTenantBySlug implements userstore.TenantStore; it needs no tenant in ctx. The slug is resolved by
// a SECURITY DEFINER function (the app role cannot read the platform's slugs). Without a tenant in ctx,
// the tenant row is read in a transaction scoped to the tenant the slug resolves to; with one, the
// query stays scoped to it and any other tenant's slug is ErrNotFound.
func (s *Store) GetTenantBySlug(ctx context.Context, slug string) (*userstore.Tenant, error) {
	slug, err := domain.NormalizeSlug(slug)
	if err != nil {
		return nil, err
	}
	var t *userstore.Tenant
	if ctxTenant, scoped := userstore.TenantFromContext(ctx); scoped {
		err = s.read(ctx, "get tenant by slug", ctxTenant, func(b *pgx.Batch) {
			one(b, &t, scanTenant, sqlGetTenantBySlugInTenant, ctxTenant, slug)
		})
	} else {
		err = s.readTx(ctx, "get tenant by slug",
			func(b *pgx.Batch) { b.Queue(sqlSetTenantBySlug, slug) },
			func(b *pgx.Batch) { one(b, &t, scanTenant, sqlGetTenantScoped) })
	}
	if err != nil {
		return nil, err
	}
	return found(t, "tenant")
}

// ListTenants implements userstore.TenantStore: it is ErrUnsupported. Listing tenants is a platform
// operation, and the store runs as the app role, which by design cannot enumerate tenants (it sees one
// tenant per transaction, and the platform's slugs only one at a time through a function). A platform
// tool lists them as the projector role, which reads every tenant.
func (s *Store) ListTenants(ctx context.Context, p *userstore.ListTenantsParams) (*userstore.Page[userstore.Tenant], error) {
	return nil, fmt.Errorf("pgstore: ListTenants is a platform operation the app role does not perform: %w", userstore.ErrUnsupported)
}

// --- users ---

// GetUser implements userstore.UserStore; a deleted user is returned as its tombstone.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (*userstore.User, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var u *userstore.User
	if err := s.read(ctx, "get user", tenantID, func(b *pgx.Batch) { one(b, &u, scanUser, sqlGetUser, tenantID, id) }); err != nil {
		return nil, err
	}
	return found(u, "user")
}

// GetUserByEmail implements userstore.UserStore: the user that holds the email's claim (normalized,
// case folded).
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*userstore.User, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	email, err = domain.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	var u *userstore.User
	err = s.read(ctx, "get user by email", tenantID, func(b *pgx.Batch) {
		one(b, &u, scanUser, sqlGetUserByClaim, tenantID, userstore.KindEmail, domain.EmailKey(email))
	})
	if err != nil {
		return nil, err
	}
	return found(u, "user")
}

// ListUsers implements userstore.UserStore: without a status filter, active and disabled users.
func (s *Store) ListUsers(ctx context.Context, p *userstore.ListUsersParams) (*userstore.Page[userstore.User], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListUsersParams{}
	}
	if p.Status != "" && !domain.ValidUserStatus(p.Status) {
		return nil, userstore.Invalid("status", "must be active, disabled or deleted")
	}
	pg, err := newPage(p.ListOpts, "users", keyset.Fingerprint(string(p.Status)))
	if err != nil {
		return nil, err
	}
	var items []userstore.User
	err = s.read(ctx, "list users", tenantID, func(b *pgx.Batch) {
		if p.Status == "" {
			many(b, &items, scanUser, sqlListUsers, tenantID, pg.after, pg.fetch())
		} else {
			many(b, &items, scanUser, sqlListUsersByStatus, tenantID, pg.after, pg.fetch(), string(p.Status))
		}
	})
	if err != nil {
		return nil, err
	}
	return finish(pg, items, func(u userstore.User) uuid.UUID { return u.ID }), nil
}

// --- accounts ---

// GetAccount implements userstore.AccountStore; a closed account is still returned.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (*userstore.Account, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var a *userstore.Account
	if err := s.read(ctx, "get account", tenantID, func(b *pgx.Batch) { one(b, &a, scanAccount, sqlGetAccount, tenantID, id) }); err != nil {
		return nil, err
	}
	return found(a, "account")
}

// GetAccountByLogin implements userstore.AccountStore: the open account that holds the login name's
// claim (normalized, case folded).
func (s *Store) GetAccountByLogin(ctx context.Context, loginName string) (*userstore.Account, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	loginName, err = domain.NormalizeLoginName(loginName)
	if err != nil {
		return nil, err
	}
	var a *userstore.Account
	err = s.read(ctx, "get account by login", tenantID, func(b *pgx.Batch) {
		one(b, &a, scanAccount, sqlGetAccountByClaim, tenantID, userstore.KindLoginName, domain.LoginKey(loginName))
	})
	if err != nil {
		return nil, err
	}
	return found(a, "account")
}

// ListAccountsByUser implements userstore.AccountStore: all the user's accounts, closed ones included.
func (s *Store) ListAccountsByUser(ctx context.Context, p *userstore.ListAccountsParams) (*userstore.Page[userstore.Account], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListAccountsParams{}
	}
	if p.UserID == uuid.Nil {
		return nil, userstore.Invalid("user_id", "is required")
	}
	pg, err := newPage(p.ListOpts, "accounts", keyset.Fingerprint(p.UserID.String()))
	if err != nil {
		return nil, err
	}
	var (
		userFound bool
		items     []userstore.Account
	)
	err = s.read(ctx, "list accounts", tenantID, func(b *pgx.Batch) {
		exists(b, &userFound, sqlUserExists, tenantID, p.UserID)
		many(b, &items, scanAccount, sqlListAccounts, tenantID, pg.after, pg.fetch(), p.UserID)
	})
	if err != nil {
		return nil, err
	}
	if !userFound {
		return nil, domain.NotFound("user")
	}
	return finish(pg, items, func(a userstore.Account) uuid.UUID { return a.ID }), nil
}

// --- identities ---

// FindUserByIdentity implements userstore.IdentityStore: the user of the identity that holds the (issuer,
// subject) claim.
func (s *Store) FindUserByIdentity(ctx context.Context, issuer, subject string) (*userstore.User, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if issuer, err = domain.NormalizeIssuer(issuer); err != nil {
		return nil, err
	}
	if subject, err = domain.NormalizeSubject(subject); err != nil {
		return nil, err
	}
	var u *userstore.User
	err = s.read(ctx, "find user by identity", tenantID, func(b *pgx.Batch) {
		one(b, &u, scanUser, sqlGetUserByIdentity, tenantID, userstore.KindExternalIdentity, domain.IdentityKey(issuer, subject))
	})
	if err != nil {
		return nil, err
	}
	return found(u, "user")
}

// ListIdentitiesByUser implements userstore.IdentityStore.
func (s *Store) ListIdentitiesByUser(ctx context.Context, p *userstore.ListIdentitiesParams) (*userstore.Page[userstore.ExternalIdentity], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListIdentitiesParams{}
	}
	if p.UserID == uuid.Nil {
		return nil, userstore.Invalid("user_id", "is required")
	}
	pg, err := newPage(p.ListOpts, "identities", keyset.Fingerprint(p.UserID.String()))
	if err != nil {
		return nil, err
	}
	var (
		userFound bool
		items     []userstore.ExternalIdentity
	)
	err = s.read(ctx, "list identities", tenantID, func(b *pgx.Batch) {
		exists(b, &userFound, sqlUserExists, tenantID, p.UserID)
		many(b, &items, scanIdentity, sqlListIdentities, tenantID, pg.after, pg.fetch(), p.UserID)
	})
	if err != nil {
		return nil, err
	}
	if !userFound {
		return nil, domain.NotFound("user")
	}
	return finish(pg, items, func(i userstore.ExternalIdentity) uuid.UUID { return i.ID }), nil
}

// --- applications ---

// GetApplication implements userstore.ApplicationStore; a deleted application is returned as its
// tombstone.
func (s *Store) GetApplication(ctx context.Context, id uuid.UUID) (*userstore.Application, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var a *userstore.Application
	if err := s.read(ctx, "get application", tenantID, func(b *pgx.Batch) { one(b, &a, scanApplication, sqlGetApplication, tenantID, id) }); err != nil {
		return nil, err
	}
	return found(a, "application")
}

// GetApplicationByClientKey implements userstore.ApplicationStore: the application that holds the
// client key's claim (compared exactly).
func (s *Store) GetApplicationByClientKey(ctx context.Context, clientKey string) (*userstore.Application, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	clientKey, err = domain.NormalizeClientKey(clientKey)
	if err != nil {
		return nil, err
	}
	var a *userstore.Application
	err = s.read(ctx, "get application by client key", tenantID, func(b *pgx.Batch) {
		one(b, &a, scanApplication, sqlGetApplicationByClaim, tenantID, userstore.KindClientKey, clientKey)
	})
	if err != nil {
		return nil, err
	}
	return found(a, "application")
}

// ListApplications implements userstore.ApplicationStore: without a status filter, active and disabled
// applications.
func (s *Store) ListApplications(ctx context.Context, p *userstore.ListApplicationsParams) (*userstore.Page[userstore.Application], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListApplicationsParams{}
	}
	if p.Status != "" && !domain.ValidApplicationStatus(p.Status) {
		return nil, userstore.Invalid("status", "must be active, disabled or deleted")
	}
	pg, err := newPage(p.ListOpts, "applications", keyset.Fingerprint(string(p.Status)))
	if err != nil {
		return nil, err
	}
	var items []userstore.Application
	err = s.read(ctx, "list applications", tenantID, func(b *pgx.Batch) {
		if p.Status == "" {
			many(b, &items, scanApplication, sqlListApplications, tenantID, pg.after, pg.fetch())
		} else {
			many(b, &items, scanApplication, sqlListApplicationsByStatus, tenantID, pg.after, pg.fetch(), string(p.Status))
		}
	})
	if err != nil {
		return nil, err
	}
	return finish(pg, items, func(a userstore.Application) uuid.UUID { return a.ID }), nil
}

// --- bindings ---

// GetBinding implements userstore.BindingStore.
func (s *Store) GetBinding(ctx context.Context, id uuid.UUID) (*userstore.Binding, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var b *userstore.Binding
	if err := s.read(ctx, "get binding", tenantID, func(q *pgx.Batch) { one(q, &b, scanBinding, sqlGetBinding, tenantID, id) }); err != nil {
		return nil, err
	}
	return found(b, "binding")
}

// ListBindingsByUser implements userstore.BindingStore: UserID is required, ApplicationID must be zero.
func (s *Store) ListBindingsByUser(ctx context.Context, p *userstore.ListBindingsParams) (*userstore.Page[userstore.Binding], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListBindingsParams{}
	}
	if p.ApplicationID != uuid.Nil {
		return nil, userstore.Invalid("application_id", "must be empty when listing by user")
	}
	if p.UserID == uuid.Nil {
		return nil, userstore.Invalid("user_id", "is required")
	}
	pg, err := newPage(p.ListOpts, "bindings-by-user", keyset.Fingerprint(p.UserID.String()))
	if err != nil {
		return nil, err
	}
	var (
		userFound bool
		items     []userstore.Binding
	)
	err = s.read(ctx, "list bindings by user", tenantID, func(b *pgx.Batch) {
		exists(b, &userFound, sqlUserExists, tenantID, p.UserID)
		many(b, &items, scanBinding, sqlListBindingsByUser, tenantID, pg.after, pg.fetch(), p.UserID)
	})
	if err != nil {
		return nil, err
	}
	if !userFound {
		return nil, domain.NotFound("user")
	}
	return finish(pg, items, func(b userstore.Binding) uuid.UUID { return b.ID }), nil
}

// ListBindingsByApplication implements userstore.BindingStore: ApplicationID is required, UserID must
// be zero.
func (s *Store) ListBindingsByApplication(ctx context.Context, p *userstore.ListBindingsParams) (*userstore.Page[userstore.Binding], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListBindingsParams{}
	}
	if p.UserID != uuid.Nil {
		return nil, userstore.Invalid("user_id", "must be empty when listing by application")
	}
	if p.ApplicationID == uuid.Nil {
		return nil, userstore.Invalid("application_id", "is required")
	}
	pg, err := newPage(p.ListOpts, "bindings-by-application", keyset.Fingerprint(p.ApplicationID.String()))
	if err != nil {
		return nil, err
	}
	var (
		appFound bool
		items    []userstore.Binding
	)
	err = s.read(ctx, "list bindings by application", tenantID, func(b *pgx.Batch) {
		exists(b, &appFound, sqlApplicationExists, tenantID, p.ApplicationID)
		many(b, &items, scanBinding, sqlListBindingsByApplication, tenantID, pg.after, pg.fetch(), p.ApplicationID)
	})
	if err != nil {
		return nil, err
	}
	if !appFound {
		return nil, domain.NotFound("application")
	}
	return finish(pg, items, func(b userstore.Binding) uuid.UUID { return b.ID }), nil
}

// --- catalogs and profiles ---

// GetCatalog implements userstore.CatalogStore.
func (s *Store) GetCatalog(ctx context.Context, id uuid.UUID) (*userstore.Catalog, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var c *userstore.Catalog
	if err := s.read(ctx, "get catalog", tenantID, func(b *pgx.Batch) { one(b, &c, scanCatalog, sqlGetCatalog, tenantID, id) }); err != nil {
		return nil, err
	}
	return found(c, "catalog")
}

// ListCatalogs implements userstore.CatalogStore.
func (s *Store) ListCatalogs(ctx context.Context, p *userstore.ListCatalogsParams) (*userstore.Page[userstore.Catalog], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListCatalogsParams{}
	}
	pg, err := newPage(p.ListOpts, "catalogs", keyset.Fingerprint())
	if err != nil {
		return nil, err
	}
	var items []userstore.Catalog
	err = s.read(ctx, "list catalogs", tenantID, func(b *pgx.Batch) {
		many(b, &items, scanCatalog, sqlListCatalogs, tenantID, pg.after, pg.fetch())
	})
	if err != nil {
		return nil, err
	}
	return finish(pg, items, func(c userstore.Catalog) uuid.UUID { return c.ID }), nil
}

// GetProfile implements userstore.ProfileStore: a user without values has an empty profile at version
// 0; ErrNotFound only when the user or the catalog does not exist.
func (s *Store) GetProfile(ctx context.Context, userID, catalogID uuid.UUID) (*userstore.Profile, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var userFound, catalogFound bool
	p := &userstore.Profile{TenantID: tenantID, UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{}}
	err = s.read(ctx, "get profile", tenantID, func(b *pgx.Batch) {
		exists(b, &userFound, sqlUserExists, tenantID, userID)
		exists(b, &catalogFound, sqlCatalogExists, tenantID, catalogID)
		b.Queue(sqlGetProfile, tenantID, userID, catalogID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				if err := scanProfileInto(rows, p); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	})
	switch {
	case err != nil:
		return nil, err
	case !userFound:
		return nil, domain.NotFound("user")
	case !catalogFound:
		return nil, domain.NotFound("catalog")
	}
	return p, nil
}

// --- memberships ---

// GetMembership implements userstore.MembershipStore.
func (s *Store) GetMembership(ctx context.Context, userID uuid.UUID) (*userstore.Membership, error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	var m *userstore.Membership
	if err := s.read(ctx, "get membership", tenantID, func(b *pgx.Batch) { one(b, &m, scanMembership, sqlGetMembership, tenantID, userID) }); err != nil {
		return nil, err
	}
	return found(m, "membership")
}

// ListMembers implements userstore.MembershipStore, in user id order.
func (s *Store) ListMembers(ctx context.Context, p *userstore.ListMembersParams) (*userstore.Page[userstore.Membership], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListMembersParams{}
	}
	if p.Role != "" && !domain.ValidMemberRole(p.Role) {
		return nil, userstore.Invalid("role", "must be owner, admin or member")
	}
	pg, err := newPage(p.ListOpts, "members", keyset.Fingerprint(string(p.Role)))
	if err != nil {
		return nil, err
	}
	var items []userstore.Membership
	err = s.read(ctx, "list members", tenantID, func(b *pgx.Batch) {
		if p.Role == "" {
			many(b, &items, scanMembership, sqlListMembers, tenantID, pg.after, pg.fetch())
		} else {
			many(b, &items, scanMembership, sqlListMembersByRole, tenantID, pg.after, pg.fetch(), string(p.Role))
		}
	})
	if err != nil {
		return nil, err
	}
	return finish(pg, items, func(m userstore.Membership) uuid.UUID { return m.UserID }), nil
}
