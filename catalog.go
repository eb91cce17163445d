package userstore

import (
	"time"

	"github.com/google/uuid"
)

// AttributeType is the type of a catalog attribute's values.
type AttributeType string

// Attribute types.
const (
	AttrString AttributeType = "string"
	AttrInt    AttributeType = "int"
	AttrBool   AttributeType = "bool"
	AttrDate   AttributeType = "date"
	AttrEnum   AttributeType = "enum"
)

// Attribute is one field of a tenant's profile schema. Once defined it is never silently redefined: it
// can only be deprecated, after which it refuses new values.
type Attribute struct {
	// Key is [a-z][a-z0-9_]{0,63}, unique within its catalog.
	Key  string
	Type AttributeType
	// EnumValues are the allowed values of an enum attribute (1..64 distinct, each 1..64 characters);
	// empty for other types.
	EnumValues []string
	// Required attributes must have a value once a user's profile in this catalog is set.
	Required bool
	// PII marks personal data: it is never copied into public integration events.
	PII bool
	// MaxLength caps string values, in characters, 0..MaxValueLength; 0 means MaxValueLength.
	MaxLength  int
	Deprecated bool
}

// Catalog is a tenant's named profile schema.
type Catalog struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// Name is unique per tenant after normalization (trim, NFC, case fold).
	Name       string
	Attributes []Attribute
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Attribute returns the attribute with the given key.
func (c *Catalog) Attribute(key string) (Attribute, bool) {
	for _, a := range c.Attributes {
		if a.Key == key {
			return a, true
		}
	}
	return Attribute{}, false
}

// DefineCatalogParams defines a new catalog.
type DefineCatalogParams struct {
	Mutation
	// ID is the new catalog's id. Default: a new UUIDv7.
	ID         uuid.UUID
	Name       string
	Attributes []Attribute
}

// AddCatalogAttributeParams adds an attribute to a catalog. A key that exists (deprecated or not) is a
// duplicate of kind KindCatalogAttribute.
type AddCatalogAttributeParams struct {
	Mutation
	CatalogID       uuid.UUID
	Attribute       Attribute
	ExpectedVersion int64
}

// DeprecateCatalogAttributeParams deprecates one attribute.
type DeprecateCatalogAttributeParams struct {
	Mutation
	CatalogID       uuid.UUID
	Key             string
	ExpectedVersion int64
}

// ListCatalogsParams lists the tenant's catalogs in id order.
type ListCatalogsParams struct {
	ListOpts
}
