package domain

import (
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Profile event types.
const (
	EventProfileValuesSet     = "profile.values_set"
	EventProfileValuesCleared = "profile.values_cleared"
	EventProfileCleared       = "profile.cleared"
)

// ProfileValuesSet sets values (only those that changed). PIIKeys lists the keys among them whose
// attribute is PII, as the catalog said when they were set, so that the outbox can leave their values
// out without consulting the catalog.
type ProfileValuesSet struct {
	UserID    uuid.UUID                  `json:"user_id"`
	CatalogID uuid.UUID                  `json:"catalog_id"`
	Values    map[string]userstore.Value `json:"values"`
	PIIKeys   []string                   `json:"pii_keys,omitempty"`
	At        time.Time                  `json:"at"`
}

// ProfileValuesCleared removes values (only keys that had one).
type ProfileValuesCleared struct {
	UserID    uuid.UUID `json:"user_id"`
	CatalogID uuid.UUID `json:"catalog_id"`
	Keys      []string  `json:"keys"`
	At        time.Time `json:"at"`
}

// ProfileCleared removes every value: the profile part of a user's deletion.
type ProfileCleared struct {
	UserID    uuid.UUID `json:"user_id"`
	CatalogID uuid.UUID `json:"catalog_id"`
	Keys      []string  `json:"keys"`
	At        time.Time `json:"at"`
}

func (ProfileValuesSet) EventType() string       { return EventProfileValuesSet }
func (e ProfileValuesSet) OccurredAt() time.Time { return e.At }

func (ProfileValuesCleared) EventType() string       { return EventProfileValuesCleared }
func (e ProfileValuesCleared) OccurredAt() time.Time { return e.At }

func (ProfileCleared) EventType() string       { return EventProfileCleared }
func (e ProfileCleared) OccurredAt() time.Time { return e.At }

// ProfileCommand is a command of the profile aggregate.
type ProfileCommand interface{ profileCommand() }

// SetProfileValues sets values, all or nothing. UserStatus is the user's status (a deleted user is
// refused) and Attributes the catalog's attributes; the engine loads both and guards them.
type SetProfileValues struct {
	UserID     uuid.UUID
	CatalogID  uuid.UUID
	UserStatus userstore.UserStatus
	Attributes []userstore.Attribute
	Values     map[string]userstore.Value
	At         time.Time
}

// ClearProfileValues removes the values of Keys; a key without a value is skipped.
type ClearProfileValues struct {
	UserID     uuid.UUID
	CatalogID  uuid.UUID
	UserStatus userstore.UserStatus
	Attributes []userstore.Attribute
	Keys       []string
	At         time.Time
}

// ClearProfile removes every value; it is part of a user's deletion and checks nothing.
type ClearProfile struct {
	UserID    uuid.UUID
	CatalogID uuid.UUID
	At        time.Time
}

func (SetProfileValues) profileCommand()   {}
func (ClearProfileValues) profileCommand() {}
func (ClearProfile) profileCommand()       {}

// ProfileState is the profile aggregate: one user's values in one catalog. Version 0 is the empty
// profile every (user, catalog) has before its first value.
type ProfileState struct {
	TenantID  uuid.UUID
	UserID    uuid.UUID
	CatalogID uuid.UUID
	// Values maps attribute keys to values. Evolve never modifies a map it was given.
	Values    map[string]userstore.Value
	Version   int64
	UpdatedAt time.Time
}

// StreamType implements Aggregate.
func (ProfileState) StreamType() StreamType { return StreamProfile }

// Found implements Aggregate: a profile with a history. Every (user, catalog) has a profile; one that
// is not found is the empty profile at version 0.
func (s ProfileState) Found() bool { return s.Version > 0 }

func findAttr(attrs []userstore.Attribute, key string) (userstore.Attribute, bool) {
	i := slices.IndexFunc(attrs, func(a userstore.Attribute) bool { return a.Key == key })
	if i < 0 {
		return userstore.Attribute{}, false
	}
	return attrs[i], true
}

// Decide decides a profile command. Values are checked in key order, so the error names the first bad
// key: an unknown key or a value that does not fit its attribute is a validation error on
// "values.<key>", a deprecated attribute ReasonAttrDeprecated; then every required, non-deprecated
// attribute must have a value ("values.<key>" is required). Clearing a required, non-deprecated
// attribute is a validation error on "keys[i]". Setting the current values or clearing absent ones
// emits nothing.
func (s ProfileState) Decide(cmd ProfileCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case SetProfileValues:
		if err := requireUserNotDeleted(c.UserStatus); err != nil {
			return nil, err
		}
		next := maps.Clone(s.Values)
		if next == nil {
			next = map[string]userstore.Value{}
		}
		changed := map[string]userstore.Value{}
		var pii []string
		for _, k := range slices.Sorted(maps.Keys(c.Values)) {
			if err := ValidateAttributeKey("values", k); err != nil {
				return nil, err
			}
			field := "values." + k
			a, ok := findAttr(c.Attributes, k)
			if !ok {
				return nil, invalid(field, "is not an attribute of the catalog")
			}
			if a.Deprecated {
				return nil, precondition(userstore.ReasonAttrDeprecated, "the attribute is deprecated")
			}
			v, err := ValidateValue(field, a, c.Values[k])
			if err != nil {
				return nil, err
			}
			if cur, ok := next[k]; ok && cur == v {
				continue
			}
			next[k], changed[k] = v, v
			if a.PII {
				pii = append(pii, k)
			}
		}
		for _, a := range c.Attributes {
			if _, ok := next[a.Key]; a.Required && !a.Deprecated && !ok {
				return nil, invalid("values."+a.Key, "is required")
			}
		}
		if len(changed) == 0 {
			return nil, nil
		}
		return []Event{ProfileValuesSet{UserID: c.UserID, CatalogID: c.CatalogID, Values: changed, PIIKeys: pii, At: c.At}}, nil
	case ClearProfileValues:
		if err := requireUserNotDeleted(c.UserStatus); err != nil {
			return nil, err
		}
		var keys []string
		for i, k := range c.Keys {
			a, ok := findAttr(c.Attributes, k)
			if !ok {
				return nil, invalid(indexField("keys", i), "is not an attribute of the catalog")
			}
			if a.Required && !a.Deprecated {
				return nil, invalid(indexField("keys", i), "is required and cannot be cleared")
			}
			if _, ok := s.Values[k]; ok {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, nil
		}
		return []Event{ProfileValuesCleared{UserID: c.UserID, CatalogID: c.CatalogID, Keys: sortedSet(keys), At: c.At}}, nil
	case ClearProfile:
		if len(s.Values) == 0 {
			return nil, nil
		}
		return []Event{ProfileCleared{UserID: c.UserID, CatalogID: c.CatalogID, Keys: slices.Sorted(maps.Keys(s.Values)), At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one profile event.
func (s ProfileState) Evolve(ev Event) ProfileState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case ProfileValuesSet:
		s.UserID, s.CatalogID = e.UserID, e.CatalogID
		values := maps.Clone(s.Values)
		if values == nil {
			values = make(map[string]userstore.Value, len(e.Values))
		}
		maps.Copy(values, e.Values)
		s.Values = values
	case ProfileValuesCleared:
		s.UserID, s.CatalogID = e.UserID, e.CatalogID
		values := maps.Clone(s.Values)
		for _, k := range e.Keys {
			delete(values, k)
		}
		s.Values = values
	case ProfileCleared:
		s.UserID, s.CatalogID = e.UserID, e.CatalogID
		s.Values = nil
	}
	return s
}

// View returns the profile entity; Values is never nil and shares nothing with the state.
func (s ProfileState) View() *userstore.Profile {
	values := maps.Clone(s.Values)
	if values == nil {
		values = map[string]userstore.Value{}
	}
	return &userstore.Profile{
		TenantID: s.TenantID, UserID: s.UserID, CatalogID: s.CatalogID, Values: values,
		Version: s.Version, UpdatedAt: s.UpdatedAt,
	}
}
