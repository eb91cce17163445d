package domain_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/domain"
)

func TestSamplesCoverEveryEventType(t *testing.T) {
	var got []string
	for _, s := range samples() {
		got = append(got, s.ev.EventType())
	}
	slices.Sort(got)
	require.Equal(t, domain.Builtin().Types(), got, "one sample per registered event type")
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.ev.EventType(), func(t *testing.T) {
			enc, err := domain.Encode(s.ev)
			require.NoError(t, err)
			require.Equal(t, s.ev.EventType(), enc.Type)
			require.Equal(t, 1, enc.SchemaVersion)
			require.True(t, json.Valid(enc.Payload))
			got, err := domain.Decode(enc)
			require.NoError(t, err)
			require.Equal(t, s.ev, got)
			stream, ok := domain.EventStream(enc.Type)
			require.True(t, ok)
			require.Equal(t, s.ref.Type, stream, "event belongs to its sample's stream")
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := domain.Encode(domain.UserDisabled{At: t0})
	require.NoError(t, err)
	cases := []struct {
		name string
		enc  domain.Encoded
		want error
	}{
		{"unknown type", domain.Encoded{Type: "user.teleported", SchemaVersion: 1, Payload: good.Payload}, domain.ErrUnknownEventType},
		{"empty type", domain.Encoded{SchemaVersion: 1, Payload: good.Payload}, domain.ErrUnknownEventType},
		{"version 0", domain.Encoded{Type: good.Type, SchemaVersion: 0, Payload: good.Payload}, domain.ErrUnknownSchemaVersion},
		{"newer version", domain.Encoded{Type: good.Type, SchemaVersion: 2, Payload: good.Payload}, domain.ErrUnknownSchemaVersion},
		{"not json", domain.Encoded{Type: good.Type, SchemaVersion: 1, Payload: []byte("{")}, domain.ErrBadPayload},
		{"empty payload", domain.Encoded{Type: good.Type, SchemaVersion: 1}, domain.ErrBadPayload},
		{"unknown field", domain.Encoded{Type: good.Type, SchemaVersion: 1, Payload: []byte(`{"at":"2026-01-01T00:00:00Z","x":1}`)}, domain.ErrBadPayload},
		{"trailing data", domain.Encoded{Type: good.Type, SchemaVersion: 1, Payload: []byte(`{"at":"2026-01-01T00:00:00Z"} {}`)}, domain.ErrBadPayload},
		{"wrong field type", domain.Encoded{Type: good.Type, SchemaVersion: 1, Payload: []byte(`{"at":5}`)}, domain.ErrBadPayload},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.Decode(c.enc)
			require.ErrorIs(t, err, c.want)
		})
	}
}

func TestEncodeRejectsUnregistered(t *testing.T) {
	_, err := domain.Encode(widgetV3{})
	require.ErrorIs(t, err, domain.ErrUnknownEventType)
	_, err = domain.Encode(nil)
	require.ErrorIs(t, err, domain.ErrUnknownEventType)
}

// widgetV3 is a test event whose payload went through three schema versions:
// v1 {"name": "..."}; v2 renamed name → title; v3 added size (default 1).
type widgetV3 struct {
	Title string    `json:"title"`
	Size  int       `json:"size"`
	At    time.Time `json:"at"`
}

func (widgetV3) EventType() string       { return "widget.made" }
func (e widgetV3) OccurredAt() time.Time { return e.At }

func renameField(from, to string) domain.Upcaster {
	return func(p json.RawMessage) (json.RawMessage, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			return nil, err
		}
		m[to] = m[from]
		delete(m, from)
		return json.Marshal(m)
	}
}

func addDefault(field string, value any) domain.Upcaster {
	return func(p json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			return nil, err
		}
		if _, ok := m[field]; !ok {
			m[field] = value
		}
		return json.Marshal(m)
	}
}

func TestUpcasting(t *testing.T) {
	r := domain.Builtin()
	require.NoError(t, domain.Register[widgetV3](r, "widget", 3, renameField("name", "title"), addDefault("size", 1)))

	v1 := domain.Encoded{Type: "widget.made", SchemaVersion: 1, Payload: []byte(`{"name":"gear","at":"2026-06-05T12:00:00.123456Z"}`)}
	got, err := r.Decode(v1)
	require.NoError(t, err)
	require.Equal(t, widgetV3{Title: "gear", Size: 1, At: t0}, got)

	v2 := domain.Encoded{Type: "widget.made", SchemaVersion: 2, Payload: []byte(`{"title":"gear","at":"2026-06-05T12:00:00.123456Z"}`)}
	got, err = r.Decode(v2)
	require.NoError(t, err)
	require.Equal(t, widgetV3{Title: "gear", Size: 1, At: t0}, got)

	// Encoding writes the current version; decoding it back needs no upcasting.
	enc, err := r.Encode(widgetV3{Title: "cog", Size: 7, At: t0})
	require.NoError(t, err)
	require.Equal(t, 3, enc.SchemaVersion)
	got, err = r.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, widgetV3{Title: "cog", Size: 7, At: t0}, got)

	// A failing upcaster is a bad payload, not a panic.
	_, err = r.Decode(domain.Encoded{Type: "widget.made", SchemaVersion: 1, Payload: []byte(`[1,2]`)})
	require.ErrorIs(t, err, domain.ErrBadPayload)

	// The built-in registry behind Decode is not affected.
	_, err = domain.Decode(v1)
	require.ErrorIs(t, err, domain.ErrUnknownEventType)
}

func TestRegisterRejects(t *testing.T) {
	r := domain.NewRegistry()
	require.Error(t, domain.Register[widgetV3](r, "widget", 3, renameField("a", "b")), "too few upcasters")
	require.Error(t, domain.Register[widgetV3](r, "widget", 0), "version 0")
	require.Error(t, domain.Register[widgetV3](r, "", 1), "no stream")
	require.Error(t, domain.Register[widgetV3](r, "widget", 2, nil), "nil upcaster")
	require.NoError(t, domain.Register[widgetV3](r, "widget", 1))
	require.Error(t, domain.Register[widgetV3](r, "widget", 1), "registered twice")
}

func TestFold(t *testing.T) {
	ref := domain.Ref(tenantID, domain.StreamUser, userID)
	s, err := domain.Fold(ref, []domain.Event{
		domain.UserCreated{UserID: userID, TenantID: tenantID, DisplayName: "Ann", Email: "a@x.io", At: t0},
		domain.UserDisabled{At: t0.Add(time.Second)},
	})
	require.NoError(t, err)
	u := s.(domain.UserState)
	require.Equal(t, int64(2), u.Version)
	require.Equal(t, t0.Add(time.Second), u.UpdatedAt)

	_, err = domain.Fold(ref, []domain.Event{domain.AccountLocked{At: t0}})
	require.Error(t, err, "an account event in a user stream")
	_, err = domain.Fold(ref, []domain.Event{nil})
	require.Error(t, err)
	_, err = domain.Fold(domain.StreamRef{Type: "nope"}, nil)
	require.Error(t, err)

	roster, err := domain.Fold(domain.RosterRef(tenantID), nil)
	require.NoError(t, err)
	require.Equal(t, tenantID, roster.(domain.RosterState).TenantID, "the roster knows its tenant before any event")
	require.True(t, roster.Found())
}

func TestDecodeNeverPanics(t *testing.T) {
	// Every registered type with hostile payloads.
	payloads := [][]byte{nil, []byte(""), []byte("null"), []byte("[]"), []byte(`"x"`), []byte(`{"at":null}`), []byte("\xff"), []byte(`{"values":{"a":{"type":1}}}`)}
	for _, typ := range domain.Builtin().Types() {
		for _, p := range payloads {
			_, err := domain.Decode(domain.Encoded{Type: typ, SchemaVersion: 1, Payload: p})
			if err != nil && !errors.Is(err, domain.ErrBadPayload) {
				t.Fatalf("%s %q: %v", typ, p, err)
			}
		}
	}
}
