package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
)

// queueReadModel queues the read-model change of a write: the stream's row becomes its state's View(),
// or is deleted when the state is no longer Found (an unlinked identity, a removed binding); for the
// roster, the memberships of the users its events name are set or deleted.
func queueReadModel(b *pgx.Batch, w *engine.Write) error {
	t := w.Stream.TenantID
	switch s := w.State.(type) {
	case domain.TenantState:
		v := s.View()
		b.Queue(sqlUpsertTenant, v.ID, v.Slug, v.Name, string(v.Status), v.Version, v.CreatedAt, v.UpdatedAt)
	case domain.UserState:
		v := s.View()
		b.Queue(sqlUpsertUser, t, v.ID, v.DisplayName, v.Email, string(v.Status), v.Version, v.CreatedAt, v.UpdatedAt)
	case domain.AccountState:
		v := s.View()
		b.Queue(sqlUpsertAccount, t, v.ID, v.UserID, v.LoginName, string(v.Kind), string(v.Status), v.CredentialRef,
			v.Version, v.CreatedAt, v.UpdatedAt)
	case domain.IdentityState:
		if !s.Found() {
			b.Queue(sqlDeleteIdentity, t, w.Stream.ID)
			return nil
		}
		v := s.View()
		b.Queue(sqlUpsertIdentity, t, v.ID, v.UserID, v.Issuer, v.Subject, v.Version, v.CreatedAt)
	case domain.ApplicationState:
		v := s.View()
		b.Queue(sqlUpsertApplication, t, v.ID, v.Name, v.ClientKey, string(v.Kind), string(v.Status), v.Version,
			v.CreatedAt, v.UpdatedAt)
	case domain.BindingState:
		if !s.Found() {
			b.Queue(sqlDeleteBinding, t, w.Stream.ID)
			return nil
		}
		v := s.View()
		b.Queue(sqlUpsertBinding, t, v.ID, v.ApplicationID, v.UserID, nonNilStrings(v.Roles), v.Version, v.CreatedAt, v.UpdatedAt)
	case domain.CatalogState:
		v := s.View()
		attrs, err := encodeAttributes(v.Attributes)
		if err != nil {
			return err
		}
		b.Queue(sqlUpsertCatalog, t, v.ID, v.Name, attrs, v.Version, v.CreatedAt, v.UpdatedAt)
	case domain.ProfileState:
		v := s.View()
		values, err := json.Marshal(v.Values)
		if err != nil {
			return fmt.Errorf("pgstore: encode profile values: %w", err)
		}
		b.Queue(sqlUpsertProfile, t, v.UserID, v.CatalogID, string(values), v.Version, v.UpdatedAt)
	case domain.RosterState:
		for _, ev := range w.Events {
			userID, ok := domain.RosterUser(ev.Event)
			if !ok {
				continue
			}
			if m, ok := s.Membership(userID); ok {
				b.Queue(sqlUpsertMembership, t, userID, string(m.Role), m.Version, m.CreatedAt, m.UpdatedAt)
			} else {
				b.Queue(sqlDeleteMembership, t, userID)
			}
		}
	default:
		return fmt.Errorf("pgstore: no read model for %T", w.State)
	}
	return nil
}

func nonNilStrings(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// attributeJSON is the stored form of a catalog attribute (catalogs.attributes).
type attributeJSON struct {
	Key        string                  `json:"key"`
	Type       userstore.AttributeType `json:"type"`
	EnumValues []string                `json:"enum_values,omitempty"`
	Required   bool                    `json:"required"`
	PII        bool                    `json:"pii"`
	MaxLength  int                     `json:"max_length"`
	Deprecated bool                    `json:"deprecated"`
}

func encodeAttributes(attrs []userstore.Attribute) (string, error) {
	out := make([]attributeJSON, len(attrs))
	for i, a := range attrs {
		out[i] = attributeJSON{Key: a.Key, Type: a.Type, EnumValues: a.EnumValues, Required: a.Required, PII: a.PII,
			MaxLength: a.MaxLength, Deprecated: a.Deprecated}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("pgstore: encode catalog attributes: %w", err)
	}
	return string(b), nil
}

func decodeAttributes(s string) ([]userstore.Attribute, error) {
	var in []attributeJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("pgstore: decode catalog attributes: %w", err)
	}
	out := make([]userstore.Attribute, len(in))
	for i, a := range in {
		out[i] = userstore.Attribute{Key: a.Key, Type: a.Type, EnumValues: a.EnumValues, Required: a.Required, PII: a.PII,
			MaxLength: a.MaxLength, Deprecated: a.Deprecated}
	}
	return out, nil
}

// scanner is a row: pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

func utc(t time.Time) time.Time { return t.UTC() }

func scanTenant(r scanner) (*userstore.Tenant, error) {
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

func scanUser(r scanner) (*userstore.User, error) {
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

func scanAccount(r scanner) (*userstore.Account, error) {
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

func scanIdentity(r scanner) (*userstore.ExternalIdentity, error) {
	var i userstore.ExternalIdentity
	if err := r.Scan(&i.ID, &i.TenantID, &i.UserID, &i.Issuer, &i.Subject, &i.Version, &i.CreatedAt); err != nil {
		return nil, err
	}
	i.CreatedAt = utc(i.CreatedAt)
	return &i, nil
}

func scanApplication(r scanner) (*userstore.Application, error) {
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

func scanBinding(r scanner) (*userstore.Binding, error) {
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

func scanCatalog(r scanner) (*userstore.Catalog, error) {
	var (
		c     userstore.Catalog
		attrs string
	)
	if err := r.Scan(&c.ID, &c.TenantID, &c.Name, &attrs, &c.Version, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	var err error
	if c.Attributes, err = decodeAttributes(attrs); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
	return &c, nil
}

// scanProfileInto fills a profile's values, version and time from its row.
func scanProfileInto(r scanner, p *userstore.Profile) error {
	var values string
	if err := r.Scan(&values, &p.Version, &p.UpdatedAt); err != nil {
		return err
	}
	p.Values = map[string]userstore.Value{}
	if err := json.Unmarshal([]byte(values), &p.Values); err != nil {
		return fmt.Errorf("pgstore: decode profile values: %w", err)
	}
	p.UpdatedAt = utc(p.UpdatedAt)
	return nil
}

func scanMembership(r scanner) (*userstore.Membership, error) {
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
