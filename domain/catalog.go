package domain

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Catalog event types.
const (
	EventCatalogDefined             = "catalog.defined"
	EventCatalogAttributeAdded      = "catalog.attribute_added"
	EventCatalogAttributeDeprecated = "catalog.attribute_deprecated"
)

// AttributeSpec is an attribute as the catalog events record it: the stored schema of
// userstore.Attribute, independent of that type's Go field names.
type AttributeSpec struct {
	Key        string                  `json:"key"`
	Type       userstore.AttributeType `json:"type"`
	EnumValues []string                `json:"enum_values,omitempty"`
	Required   bool                    `json:"required,omitempty"`
	PII        bool                    `json:"pii,omitempty"`
	MaxLength  int                     `json:"max_length,omitempty"`
}

// SpecOf returns the event form of an attribute (Deprecated is not part of it: attributes are defined
// undeprecated and deprecated by their own event).
func SpecOf(a userstore.Attribute) AttributeSpec {
	return AttributeSpec{
		Key: a.Key, Type: a.Type, EnumValues: slices.Clone(a.EnumValues), Required: a.Required,
		PII: a.PII, MaxLength: a.MaxLength,
	}
}

// Attribute returns the entity form of the spec, undeprecated.
func (a AttributeSpec) Attribute() userstore.Attribute {
	return userstore.Attribute{
		Key: a.Key, Type: a.Type, EnumValues: slices.Clone(a.EnumValues), Required: a.Required,
		PII: a.PII, MaxLength: a.MaxLength,
	}
}

// CatalogDefined starts a catalog's stream; it claims the name.
type CatalogDefined struct {
	CatalogID  uuid.UUID       `json:"catalog_id"`
	TenantID   uuid.UUID       `json:"tenant_id"`
	Name       string          `json:"name"`
	Attributes []AttributeSpec `json:"attributes"`
	At         time.Time       `json:"at"`
}

// CatalogAttributeAdded appends an attribute.
type CatalogAttributeAdded struct {
	Attribute AttributeSpec `json:"attribute"`
	At        time.Time     `json:"at"`
}

// CatalogAttributeDeprecated deprecates an attribute: it refuses new values from then on.
type CatalogAttributeDeprecated struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

func (CatalogDefined) EventType() string       { return EventCatalogDefined }
func (e CatalogDefined) OccurredAt() time.Time { return e.At }

func (CatalogAttributeAdded) EventType() string       { return EventCatalogAttributeAdded }
func (e CatalogAttributeAdded) OccurredAt() time.Time { return e.At }

func (CatalogAttributeDeprecated) EventType() string       { return EventCatalogAttributeDeprecated }
func (e CatalogAttributeDeprecated) OccurredAt() time.Time { return e.At }

// CatalogCommand is a command of the catalog aggregate.
type CatalogCommand interface{ catalogCommand() }

// DefineCatalog defines a catalog. Name and Attributes are normalized (NormalizeCatalogName,
// NormalizeAttribute); a key repeated within Attributes is invalid input.
type DefineCatalog struct {
	ID         uuid.UUID
	TenantID   uuid.UUID
	Name       string
	Attributes []userstore.Attribute
	At         time.Time
}

// AddCatalogAttribute adds a normalized attribute; an existing key, deprecated or not, is a duplicate
// of kind KindCatalogAttribute.
type AddCatalogAttribute struct {
	Attribute userstore.Attribute
	At        time.Time
}

// DeprecateCatalogAttribute deprecates an attribute: an unknown key is not found, an already deprecated
// one ReasonInvalidState.
type DeprecateCatalogAttribute struct {
	Key string
	At  time.Time
}

func (DefineCatalog) catalogCommand()             {}
func (AddCatalogAttribute) catalogCommand()       {}
func (DeprecateCatalogAttribute) catalogCommand() {}

// CatalogState is the catalog aggregate.
type CatalogState struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Name     string
	// Attributes in the order they were defined and added. Evolve never modifies a slice it was given.
	Attributes []userstore.Attribute
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// StreamType implements Aggregate.
func (CatalogState) StreamType() StreamType { return StreamCatalog }

// Found implements Aggregate.
func (s CatalogState) Found() bool { return s.Version > 0 }

// Attribute returns the attribute with the key.
func (s CatalogState) Attribute(key string) (userstore.Attribute, bool) {
	i := s.index(key)
	if i < 0 {
		return userstore.Attribute{}, false
	}
	return s.Attributes[i], true
}

func (s CatalogState) index(key string) int {
	return slices.IndexFunc(s.Attributes, func(a userstore.Attribute) bool { return a.Key == key })
}

// Decide decides a catalog command.
func (s CatalogState) Decide(cmd CatalogCommand) ([]Event, error) {
	if c, ok := cmd.(DefineCatalog); ok {
		if s.Found() {
			return nil, duplicate(userstore.KindEntityID)
		}
		specs := make([]AttributeSpec, len(c.Attributes))
		for i, a := range c.Attributes {
			if slices.ContainsFunc(c.Attributes[:i], func(b userstore.Attribute) bool { return b.Key == a.Key }) {
				return nil, invalid(indexField("attributes", i)+".key", "repeats the key of another attribute")
			}
			specs[i] = SpecOf(a)
		}
		return []Event{CatalogDefined{CatalogID: c.ID, TenantID: c.TenantID, Name: c.Name, Attributes: specs, At: c.At}}, nil
	}
	if !s.Found() {
		return nil, NotFound("catalog")
	}
	switch c := cmd.(type) {
	case AddCatalogAttribute:
		if s.index(c.Attribute.Key) >= 0 {
			return nil, duplicate(userstore.KindCatalogAttribute)
		}
		if len(s.Attributes) >= userstore.MaxAttributes {
			return nil, invalid("attribute", "the catalog has the maximum number of attributes")
		}
		return []Event{CatalogAttributeAdded{Attribute: SpecOf(c.Attribute), At: c.At}}, nil
	case DeprecateCatalogAttribute:
		a, ok := s.Attribute(c.Key)
		if !ok {
			return nil, NotFound("catalog attribute")
		}
		if a.Deprecated {
			return nil, invalidState("the attribute is already deprecated")
		}
		return []Event{CatalogAttributeDeprecated{Key: c.Key, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one catalog event.
func (s CatalogState) Evolve(ev Event) CatalogState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case CatalogDefined:
		s.ID, s.TenantID, s.Name, s.CreatedAt = e.CatalogID, e.TenantID, e.Name, e.At
		s.Attributes = make([]userstore.Attribute, len(e.Attributes))
		for i, a := range e.Attributes {
			s.Attributes[i] = a.Attribute()
		}
	case CatalogAttributeAdded:
		s.Attributes = append(slices.Clip(s.Attributes), e.Attribute.Attribute())
	case CatalogAttributeDeprecated:
		if i := s.index(e.Key); i >= 0 {
			s.Attributes = slices.Clone(s.Attributes)
			s.Attributes[i].Deprecated = true
		}
	}
	return s
}

// View returns the catalog entity; Attributes is never nil and shares nothing with the state.
func (s CatalogState) View() *userstore.Catalog {
	attrs := make([]userstore.Attribute, len(s.Attributes))
	for i, a := range s.Attributes {
		a.EnumValues = slices.Clone(a.EnumValues)
		attrs[i] = a
	}
	return &userstore.Catalog{
		ID: s.ID, TenantID: s.TenantID, Name: s.Name, Attributes: attrs, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
