package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Codec errors. Decode returns them wrapped; match them with errors.Is.
var (
	// ErrUnknownEventType: the event type is not registered.
	ErrUnknownEventType = errors.New("domain: unknown event type")
	// ErrUnknownSchemaVersion: the payload's schema version is not one the registry can read (below 1 or
	// newer than the registered version — an older binary reading a newer log).
	ErrUnknownSchemaVersion = errors.New("domain: unknown event schema version")
	// ErrBadPayload: the payload does not decode into the event type.
	ErrBadPayload = errors.New("domain: bad event payload")
)

// Encoded is an event in its stored form: type, payload schema version and JSON payload.
type Encoded struct {
	Type          string
	SchemaVersion int
	Payload       json.RawMessage
}

// Upcaster rewrites a payload of one schema version into the next version's shape. It is pure and
// must not panic.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Registry maps event types to their Go types, their stream type and their payload schema history.
// Decoding upcasts an older payload step by step to the current version before unmarshalling it, so
// deciders and projections only ever see current event types.
//
// A Registry is safe for concurrent reads once built; Register must not run concurrently with use.
type Registry struct {
	types map[string]*registration
}

type registration struct {
	stream    StreamType
	version   int
	upcasters []Upcaster // upcasters[i] turns version i+1 into version i+2
	decode    func(payload []byte) (Event, error)
}

// NewRegistry returns an empty registry. Most callers want Builtin or the package-level Encode and
// Decode, which use the built-in events.
func NewRegistry() *Registry {
	return &Registry{types: map[string]*registration{}}
}

// Register registers the event type E of a stream type at its current payload schema version, with
// one upcaster per older version: upcasters[0] turns version 1 into 2, upcasters[1] turns 2 into 3, and
// so on (len(upcasters) must be version-1).
func Register[E Event](r *Registry, stream StreamType, version int, upcasters ...Upcaster) error {
	var zero E
	typ := zero.EventType()
	switch {
	case typ == "":
		return fmt.Errorf("domain: register %T: empty event type", zero)
	case stream == "":
		return fmt.Errorf("domain: register %s: empty stream type", typ)
	case version < 1:
		return fmt.Errorf("domain: register %s: schema version %d < 1", typ, version)
	case len(upcasters) != version-1:
		return fmt.Errorf("domain: register %s: %d upcasters for schema version %d, want %d", typ, len(upcasters), version, version-1)
	case slices.ContainsFunc(upcasters, func(u Upcaster) bool { return u == nil }):
		return fmt.Errorf("domain: register %s: nil upcaster", typ)
	}
	if _, dup := r.types[typ]; dup {
		return fmt.Errorf("domain: register %s: already registered", typ)
	}
	r.types[typ] = &registration{
		stream:    stream,
		version:   version,
		upcasters: upcasters,
		decode: func(payload []byte) (Event, error) {
			var e E
			dec := json.NewDecoder(bytes.NewReader(payload))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				return nil, payloadError(err)
			}
			if _, err := dec.Token(); err != io.EOF {
				return nil, errors.New("trailing data after the payload")
			}
			if !writableTime(e.OccurredAt()) {
				return nil, errors.New(`the time "at" is out of range`)
			}
			return e, nil
		},
	}
	return nil
}

// Encode returns the stored form of ev at its registered (current) schema version.
func (r *Registry) Encode(ev Event) (Encoded, error) {
	if ev == nil {
		return Encoded{}, fmt.Errorf("%w: nil event", ErrUnknownEventType)
	}
	reg, ok := r.types[ev.EventType()]
	if !ok {
		return Encoded{}, fmt.Errorf("%w: %q", ErrUnknownEventType, ev.EventType())
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return Encoded{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return Encoded{Type: ev.EventType(), SchemaVersion: reg.version, Payload: payload}, nil
}

// Decode returns the typed event of a stored one, upcasting an older payload to the current schema
// version first. Unknown types, unknown versions and payloads that do not match the schema (including
// unknown fields) are errors; Decode never panics.
func (r *Registry) Decode(enc Encoded) (Event, error) {
	reg, ok := r.types[enc.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, enc.Type)
	}
	if enc.SchemaVersion < 1 || enc.SchemaVersion > reg.version {
		return nil, fmt.Errorf("%w: %s version %d (current %d)", ErrUnknownSchemaVersion, enc.Type, enc.SchemaVersion, reg.version)
	}
	payload := enc.Payload
	for v := enc.SchemaVersion; v < reg.version; v++ {
		up, err := reg.upcasters[v-1](payload)
		if err != nil {
			return nil, fmt.Errorf("%w: upcast %s from version %d: %w", ErrBadPayload, enc.Type, v, err)
		}
		payload = up
	}
	ev, err := reg.decode(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %d: %w", ErrBadPayload, enc.Type, enc.SchemaVersion, err)
	}
	return ev, nil
}

// StreamOf returns the stream type that events of the type belong to.
func (r *Registry) StreamOf(eventType string) (StreamType, bool) {
	reg, ok := r.types[eventType]
	if !ok {
		return "", false
	}
	return reg.stream, true
}

// Types returns the registered event types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.types))
	for t := range r.types {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Builtin returns a new registry holding every event type of the domain at its current schema version.
// Callers may register more types in it (tests do).
func Builtin() *Registry {
	r := NewRegistry()
	for _, add := range builtins {
		if err := add(r); err != nil {
			panic(err) // a programming error in this package, caught by its tests
		}
	}
	return r
}

// builtins registers every domain event at its current schema version. When a payload changes shape,
// bump its version here and append the upcaster from the previous version.
var builtins = []func(*Registry) error{
	reg[TenantCreated](StreamTenant, 1),
	reg[TenantRenamed](StreamTenant, 1),
	reg[TenantSuspended](StreamTenant, 1),
	reg[TenantReactivated](StreamTenant, 1),
	reg[TenantClosed](StreamTenant, 1),

	reg[UserCreated](StreamUser, 1),
	reg[UserProfileUpdated](StreamUser, 1),
	reg[UserEmailChanged](StreamUser, 1),
	reg[UserDisabled](StreamUser, 1),
	reg[UserEnabled](StreamUser, 1),
	reg[UserDeleted](StreamUser, 1),

	reg[AccountOpened](StreamAccount, 1),
	reg[AccountLoginChanged](StreamAccount, 1),
	reg[AccountLocked](StreamAccount, 1),
	reg[AccountUnlocked](StreamAccount, 1),
	reg[AccountClosed](StreamAccount, 1),

	reg[IdentityLinked](StreamIdentity, 1),
	reg[IdentityUnlinked](StreamIdentity, 1),

	reg[ApplicationRegistered](StreamApplication, 1),
	reg[ApplicationUpdated](StreamApplication, 1),
	reg[ApplicationDisabled](StreamApplication, 1),
	reg[ApplicationEnabled](StreamApplication, 1),
	reg[ApplicationDeleted](StreamApplication, 1),

	reg[BindingCreated](StreamBinding, 1),
	reg[BindingRolesChanged](StreamBinding, 1),
	reg[BindingRemoved](StreamBinding, 1),

	reg[CatalogDefined](StreamCatalog, 1),
	reg[CatalogAttributeAdded](StreamCatalog, 1),
	reg[CatalogAttributeDeprecated](StreamCatalog, 1),

	reg[ProfileValuesSet](StreamProfile, 1),
	reg[ProfileValuesCleared](StreamProfile, 1),
	reg[ProfileCleared](StreamProfile, 1),

	reg[RosterMemberAdded](StreamRoster, 1),
	reg[RosterMemberRoleChanged](StreamRoster, 1),
	reg[RosterMemberRemoved](StreamRoster, 1),
}

// reg returns a builtin registration of E.
func reg[E Event](stream StreamType, version int, upcasters ...Upcaster) func(*Registry) error {
	return func(r *Registry) error { return Register[E](r, stream, version, upcasters...) }
}

// events is the built-in registry behind Encode, Decode and EventStream. It is never modified after
// package initialization.
var events = Builtin()

// Encode returns the stored form of a built-in event.
func Encode(ev Event) (Encoded, error) { return events.Encode(ev) }

// Decode returns the typed built-in event of a stored one, upcasting older payloads.
func Decode(enc Encoded) (Event, error) { return events.Decode(enc) }

// EventStream returns the stream type a built-in event type belongs to.
func EventStream(eventType string) (StreamType, bool) { return events.StreamOf(eventType) }

// payloadError describes why a payload did not decode without quoting any of it: the payload is
// personal data, and the error ends up in dead letters and logs (logcodec.Recorded promises as much).
// encoding/json's errors repeat the offending value or key.
func payloadError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ")
		return fmt.Errorf("a JSON %s where field %q needs a %s", kind, typ.Field, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the payload is empty or cut short")
	}
	return errors.New("an unknown field, or a value that does not parse (a time, a UUID, …)")
}

// writableTime reports whether t can be encoded again, as it is and in UTC: a decoded time with an
// offset of 24 hours or more, or a year outside 0–9999, cannot, and would fail Encode and the outbox.
func writableTime(t time.Time) bool {
	_, err := t.MarshalText()
	_, errUTC := t.UTC().MarshalText()
	return err == nil && errUTC == nil
}
