package readmodel

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// Row is one read row: its table and its values, one per column of the table's Columns, in order and of
// the Go types pgx encodes as those columns (uuid.UUID, string, int64, time.Time, []string, and a JSON
// document as string for jsonb).
type Row struct {
	Table  string
	Values []any
}

// Rows returns the read rows of a stream whose state is state (the fold of its events, domain.Fold):
// one row for the stream of an entity that exists — a tombstone (a deleted user, a closed account)
// included — none for an unlinked identity or a removed binding, and one row per member for a roster.
// ref is the stream; its tenant fills the rows' tenant_id.
func Rows(ref domain.StreamRef, state domain.Aggregate) ([]Row, error) {
	t := ref.TenantID
	switch s := state.(type) {
	case domain.TenantState:
		v := s.View()
		return one(TableTenants, v.ID, v.Slug, v.Name, string(v.Status), v.Version, v.CreatedAt, v.UpdatedAt), nil
	case domain.UserState:
		v := s.View()
		return one(TableUsers, t, v.ID, v.DisplayName, v.Email, string(v.Status), v.Version, v.CreatedAt, v.UpdatedAt), nil
	case domain.AccountState:
		v := s.View()
		return one(TableAccounts, t, v.ID, v.UserID, v.LoginName, string(v.Kind), string(v.Status), v.CredentialRef,
			v.Version, v.CreatedAt, v.UpdatedAt), nil
	case domain.IdentityState:
		if !s.Found() {
			return nil, nil
		}
		v := s.View()
		return one(TableIdentities, t, v.ID, v.UserID, v.Issuer, v.Subject, v.Version, v.CreatedAt), nil
	case domain.ApplicationState:
		v := s.View()
		return one(TableApps, t, v.ID, v.Name, v.ClientKey, string(v.Kind), string(v.Status), v.Version,
			v.CreatedAt, v.UpdatedAt), nil
	case domain.BindingState:
		if !s.Found() {
			return nil, nil
		}
		v := s.View()
		return one(TableBindings, t, v.ID, v.ApplicationID, v.UserID, nonNilStrings(v.Roles), v.Version,
			v.CreatedAt, v.UpdatedAt), nil
	case domain.CatalogState:
		v := s.View()
		attrs, err := EncodeAttributes(v.Attributes)
		if err != nil {
			return nil, err
		}
		return one(TableCatalogs, t, v.ID, v.Name, attrs, v.Version, v.CreatedAt, v.UpdatedAt), nil
	case domain.ProfileState:
		v := s.View()
		values, err := json.Marshal(v.Values)
		if err != nil {
			return nil, fmt.Errorf("readmodel: encode profile values: %w", err)
		}
		return one(TableProfiles, t, v.UserID, v.CatalogID, string(values), v.Version, v.UpdatedAt), nil
	case domain.RosterState:
		ms := s.Memberships()
		out := make([]Row, len(ms))
		for i, m := range ms {
			out[i] = membershipRow(t, &m)
		}
		return out, nil
	}
	return nil, fmt.Errorf("readmodel: no read model for %T", state)
}

func one(table string, values ...any) []Row { return []Row{{Table: table, Values: values}} }

func membershipRow(tenantID uuid.UUID, m *userstore.Membership) Row {
	return Row{Table: TableMemberships, Values: []any{tenantID, m.UserID, string(m.Role), m.Version, m.CreatedAt, m.UpdatedAt}}
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

// EncodeAttributes returns the stored form of a catalog's attributes (the JSON array of
// catalogs.attributes).
func EncodeAttributes(attrs []userstore.Attribute) (string, error) {
	out := make([]attributeJSON, len(attrs))
	for i, a := range attrs {
		out[i] = attributeJSON{Key: a.Key, Type: a.Type, EnumValues: a.EnumValues, Required: a.Required, PII: a.PII,
			MaxLength: a.MaxLength, Deprecated: a.Deprecated}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("readmodel: encode catalog attributes: %w", err)
	}
	return string(b), nil
}

// DecodeAttributes is the inverse of [EncodeAttributes].
func DecodeAttributes(s string) ([]userstore.Attribute, error) {
	var in []attributeJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("readmodel: decode catalog attributes: %w", err)
	}
	out := make([]userstore.Attribute, len(in))
	for i, a := range in {
		out[i] = userstore.Attribute{Key: a.Key, Type: a.Type, EnumValues: a.EnumValues, Required: a.Required, PII: a.PII,
			MaxLength: a.MaxLength, Deprecated: a.Deprecated}
	}
	return out, nil
}
