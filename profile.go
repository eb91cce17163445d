package userstore

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Value is one typed profile value. Type says which field holds it: Str for string and enum, Int, Bool,
// and Date as YYYY-MM-DD. Build one with StringValue, IntValue, BoolValue, DateValue or EnumValue.
type Value struct {
	Type AttributeType `json:"type"`
	Str  string        `json:"str,omitempty"`
	Int  int64         `json:"int,omitempty"`
	Bool bool          `json:"bool,omitempty"`
	Date string        `json:"date,omitempty"`
}

// StringValue returns a string value.
func StringValue(s string) Value { return Value{Type: AttrString, Str: s} }

// EnumValue returns an enum value.
func EnumValue(s string) Value { return Value{Type: AttrEnum, Str: s} }

// IntValue returns an int value.
func IntValue(i int64) Value { return Value{Type: AttrInt, Int: i} }

// BoolValue returns a bool value.
func BoolValue(b bool) Value { return Value{Type: AttrBool, Bool: b} }

// DateValue returns a date value for the calendar day of t (in t's location).
func DateValue(t time.Time) Value { return Value{Type: AttrDate, Date: t.Format(time.DateOnly)} }

// String renders the value for humans.
func (v Value) String() string {
	switch v.Type {
	case AttrInt:
		return fmt.Sprint(v.Int)
	case AttrBool:
		return fmt.Sprint(v.Bool)
	case AttrDate:
		return v.Date
	default:
		return v.Str
	}
}

// Profile is a user's values for the attributes of one catalog.
type Profile struct {
	TenantID  uuid.UUID
	UserID    uuid.UUID
	CatalogID uuid.UUID
	// Values maps attribute keys to values.
	Values    map[string]Value
	Version   int64
	UpdatedAt time.Time
}

// SetProfileValuesParams sets several values at once, all or nothing. Each value must match its
// attribute's type and constraints; deprecated attributes refuse new values; after the change every
// required, non-deprecated attribute of the catalog must have a value.
type SetProfileValuesParams struct {
	Mutation
	UserID          uuid.UUID
	CatalogID       uuid.UUID
	Values          map[string]Value
	ExpectedVersion int64
}

// ClearProfileValuesParams removes values. A required attribute cannot be cleared.
type ClearProfileValuesParams struct {
	Mutation
	UserID          uuid.UUID
	CatalogID       uuid.UUID
	Keys            []string
	ExpectedVersion int64
}
