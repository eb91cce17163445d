package readmodel

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/netkingdom/userstore"
)

// Select lists of the read tables: the columns each Scan function reads, in its order. Each is
// qualified by the alias its constant names (FROM userstore.users AS u, …).
const (
	// TenantColumns is the select list of ScanTenant, for "userstore.tenants AS t".
	TenantColumns = `t.tenant_id, t.slug, t.name, t.status, t.version, t.created_at, t.updated_at`
	// UserColumns is the select list of ScanUser, for "userstore.users AS u".
	UserColumns = `u.id, u.tenant_id, u.display_name, u.email, u.status, u.version, u.created_at, u.updated_at`
	// AccountColumns is the select list of ScanAccount, for "userstore.accounts AS a".
	AccountColumns = `a.id, a.tenant_id, a.user_id, a.login_name, a.kind, a.status, a.credential_ref, a.version,
       a.created_at, a.updated_at`
	// IdentityColumns is the select list of ScanIdentity, for "userstore.external_identities AS i".
	IdentityColumns = `i.id, i.tenant_id, i.user_id, i.issuer, i.subject, i.version, i.created_at`
	// ApplicationColumns is the select list of ScanApplication, for "userstore.applications AS a".
	ApplicationColumns = `a.id, a.tenant_id, a.name, a.client_key, a.kind, a.status, a.version, a.created_at, a.updated_at`
	// BindingColumns is the select list of ScanBinding, for "userstore.bindings AS b".
	BindingColumns = `b.id, b.tenant_id, b.application_id, b.user_id, b.roles, b.version, b.created_at, b.updated_at`
	// CatalogColumns is the select list of ScanCatalog, for "userstore.catalogs AS c".
	CatalogColumns = `c.id, c.tenant_id, c.name, c.attributes::text, c.version, c.created_at, c.updated_at`
	// ProfileColumns is the select list of ScanProfileInto, for "userstore.profiles AS p".
	ProfileColumns = `p.profile_values::text, p.version, p.updated_at`
	// MembershipColumns is the select list of ScanMembership, for "userstore.memberships AS m".
	MembershipColumns = `m.user_id, m.tenant_id, m.role, m.version, m.created_at, m.updated_at`
)

// Scanner is a row: pgx.Row or pgx.Rows.
type Scanner interface{ Scan(dest ...any) error }

func utc(t time.Time) time.Time { return t.UTC() }

// ScanTenant scans a row of [TenantColumns]. Times are in UTC, as the store returns them.
func ScanTenant(r Scanner) (*userstore.Tenant, error) {
	var (
		t      userstore.Tenant
		status string
	)
	if err := r.Scan(&t.ID, &t.Slug, &t.Name, &status, &t.Version, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.Status = userstore.TenantStatus(status)
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return &t, nil
}

// ScanUser scans a row of [UserColumns].
func ScanUser(r Scanner) (*userstore.User, error) {
	var (
		u      userstore.User
		status string
	)
	if err := r.Scan(&u.ID, &u.TenantID, &u.DisplayName, &u.Email, &status, &u.Version, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	u.Status = userstore.UserStatus(status)
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return &u, nil
}

// ScanAccount scans a row of [AccountColumns].
func ScanAccount(r Scanner) (*userstore.Account, error) {
	var (
		a            userstore.Account
		kind, status string
	)
	if err := r.Scan(&a.ID, &a.TenantID, &a.UserID, &a.LoginName, &kind, &status, &a.CredentialRef, &a.Version,
		&a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.Kind, a.Status = userstore.AccountKind(kind), userstore.AccountStatus(status)
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	return &a, nil
}

// ScanIdentity scans a row of [IdentityColumns].
func ScanIdentity(r Scanner) (*userstore.ExternalIdentity, error) {
	var i userstore.ExternalIdentity
	if err := r.Scan(&i.ID, &i.TenantID, &i.UserID, &i.Issuer, &i.Subject, &i.Version, &i.CreatedAt); err != nil {
		return nil, err
	}
	i.CreatedAt = utc(i.CreatedAt)
	return &i, nil
}

// ScanApplication scans a row of [ApplicationColumns].
func ScanApplication(r Scanner) (*userstore.Application, error) {
	var (
		a            userstore.Application
		kind, status string
	)
	if err := r.Scan(&a.ID, &a.TenantID, &a.Name, &a.ClientKey, &kind, &status, &a.Version, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.Kind, a.Status = userstore.ApplicationKind(kind), userstore.ApplicationStatus(status)
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	return &a, nil
}

// ScanBinding scans a row of [BindingColumns]; Roles is never nil.
func ScanBinding(r Scanner) (*userstore.Binding, error) {
	var b userstore.Binding
	if err := r.Scan(&b.ID, &b.TenantID, &b.ApplicationID, &b.UserID, &b.Roles, &b.Version, &b.CreatedAt, &b.UpdatedAt); err != nil {
		return nil, err
	}
	if b.Roles == nil {
		b.Roles = []string{}
	}
	b.CreatedAt, b.UpdatedAt = utc(b.CreatedAt), utc(b.UpdatedAt)
	return &b, nil
}

// ScanCatalog scans a row of [CatalogColumns].
func ScanCatalog(r Scanner) (*userstore.Catalog, error) {
	var (
		c     userstore.Catalog
		attrs string
	)
	if err := r.Scan(&c.ID, &c.TenantID, &c.Name, &attrs, &c.Version, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	var err error
	if c.Attributes, err = DecodeAttributes(attrs); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
	return &c, nil
}

// ScanProfileInto fills a profile's values, version and time from a row of [ProfileColumns]; the
// caller sets its tenant, user and catalog. Values is never nil.
func ScanProfileInto(r Scanner, p *userstore.Profile) error {
	var values string
	if err := r.Scan(&values, &p.Version, &p.UpdatedAt); err != nil {
		return err
	}
	p.Values = map[string]userstore.Value{}
	if err := json.Unmarshal([]byte(values), &p.Values); err != nil {
		return fmt.Errorf("readmodel: decode profile values: %w", err)
	}
	p.UpdatedAt = utc(p.UpdatedAt)
	return nil
}

// ScanMembership scans a row of [MembershipColumns].
func ScanMembership(r Scanner) (*userstore.Membership, error) {
	var (
		m    userstore.Membership
		role string
	)
	if err := r.Scan(&m.UserID, &m.TenantID, &role, &m.Version, &m.CreatedAt, &m.UpdatedAt); err != nil {
		return nil, err
	}
	m.Role = userstore.MemberRole(role)
	m.CreatedAt, m.UpdatedAt = utc(m.CreatedAt), utc(m.UpdatedAt)
	return &m, nil
}
