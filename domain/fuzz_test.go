package domain_test

// Fuzz targets for the domain's decoders and validators of outside input: the event codec (decoding
// and upcasting stored payloads), catalog attributes and profile values, binding roles, notes,
// credential references, tokens, attribute keys and dates. (The normalizers of emails, slugs, login
// names, issuers, subjects, client keys and names have theirs in normalize_test.go.)
//
// What "rejection" means per target, and the property every rejection has:
//
//   - the codec (FuzzDecode, FuzzUpcast): Decode returns an error; it matches exactly one of
//     domain.ErrUnknownEventType, domain.ErrUnknownSchemaVersion and domain.ErrBadPayload — the codec's
//     validation sentinels;
//   - every validator: it returns an error; the error is a *userstore.ValidationError (errors.Is
//     userstore.ErrValidation) whose Field names the input as the caller passed it.
//
// What is accepted is checked too: a decoded event re-encodes and decodes to the same payload (the
// encoding is a fixed point after one decode) and feeds Fold, Claims, Audit and Outbox without a panic;
// a normalized value normalizes to itself again; an accepted profile value survives the event payload
// it is stored in. Run one with, e.g., `go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 20s ./domain`;
// scripts/fuzz.sh runs them all.

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// requireValidation fails unless err is a *userstore.ValidationError matching ErrValidation whose
// field is field or, with a trailing "*", starts with the rest.
func requireValidation(t *testing.T, err error, field string) {
	t.Helper()
	var ve *userstore.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, userstore.ErrValidation) {
		t.Fatalf("a rejection must be a *userstore.ValidationError, got %T: %v", err, err)
	}
	if prefix, ok := strings.CutSuffix(field, "*"); ok {
		if !strings.HasPrefix(ve.Field, prefix) {
			t.Fatalf("the rejection names field %q, want %s…", ve.Field, prefix)
		}
	} else if ve.Field != field {
		t.Fatalf("the rejection names field %q, want %q", ve.Field, field)
	}
}

// codecSentinels are the errors the codec rejects a stored event with.
var codecSentinels = []error{domain.ErrUnknownEventType, domain.ErrUnknownSchemaVersion, domain.ErrBadPayload}

// requireCodecRejection fails unless err matches exactly one of the codec's sentinels.
func requireCodecRejection(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range codecSentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a codec rejection must match exactly one of ErrUnknownEventType, ErrUnknownSchemaVersion, ErrBadPayload; got %T: %v", err, err)
	}
}

// fuzzTypes are the built-in event types; FuzzDecode picks one by index so that most inputs reach a
// payload decoder instead of the unknown-type check.
var fuzzTypes = domain.Builtin().Types()

// FuzzDecode: Decode of any (type, schema version, payload) never panics and rejects only with the
// codec's sentinels. An event it accepts is the registered type, re-encodes at the current version to a
// payload that decodes and re-encodes to the same bytes, and goes through Fold (in a stream of its
// type), Claims, Audit and Outbox without a panic (Outbox without an error, to valid JSON).
//
// The version is fuzzed too: once an event type has upcasters, the chain runs on hostile payloads here.
func FuzzDecode(f *testing.F) {
	if len(fuzzTypes) == 0 || len(fuzzTypes) >= 255 {
		f.Fatalf("FuzzDecode picks one of %d types with a byte below 255", len(fuzzTypes))
	}
	for _, s := range samples() {
		enc, err := domain.Encode(s.ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(slices.Index(fuzzTypes, enc.Type)), "", enc.SchemaVersion, []byte(enc.Payload))
	}
	for i, p := range []string{"", "null", "{}", "[]", `"x"`, "\xff", `{"at":"2026-01-01T00:00:00+23:59"}`,
		`{"at":"0001-01-01T00:00:00Z"}`, `{"values":{"k":{"type":"int","int":1e400}}}`,
		`{"values":{"k":null}}`, `{"attributes":[null]}`, `{"roles":[null,""]}`, `{"user_id":"00000000-0000-0000-0000-000000000000"}`,
		`{"at":"2026-01-01T00:00:00Z"}{}`, `{"at":"2026-01-01T00:00:00Z","at":"2027-01-01T00:00:00Z"}`,
		`{"at":"2026-01-01T00:00:00.1234567891Z"}`} {
		f.Add(uint8(i), "", 1, []byte(p))
	}
	f.Add(uint8(255), "user.teleported", 1, []byte("{}"))
	f.Add(uint8(255), "", 0, []byte("{}"))
	f.Add(uint8(0), "", 2, []byte("{}"))
	f.Add(uint8(0), "", -1<<31, []byte("{}"))

	tenant := uuid.MustParse("01970000-0000-7000-8000-0000000000f1")
	stream := uuid.MustParse("01970000-0000-7000-8000-0000000000f2")
	f.Fuzz(func(t *testing.T, pick uint8, typ string, version int, payload []byte) {
		if pick != 255 {
			typ = fuzzTypes[int(pick)%len(fuzzTypes)]
		}
		ev, err := domain.Decode(domain.Encoded{Type: typ, SchemaVersion: version, Payload: payload})
		if err != nil {
			requireCodecRejection(t, err)
			return
		}
		if ev == nil || ev.EventType() != typ {
			t.Fatalf("Decode(%s) returned %T", typ, ev)
		}
		enc, err := domain.Encode(ev)
		if err != nil {
			t.Fatalf("a decoded %s does not encode: %v", typ, err)
		}
		again, err := domain.Decode(enc)
		if err != nil {
			t.Fatalf("a re-encoded %s does not decode: %v\npayload %s", typ, err, enc.Payload)
		}
		enc2, err := domain.Encode(again)
		if err != nil || !bytes.Equal(enc.Payload, enc2.Payload) {
			t.Fatalf("the encoding of a %s is not a fixed point: %s → %s (%v)", typ, enc.Payload, enc2.Payload, err)
		}

		st, ok := domain.EventStream(typ)
		if !ok {
			t.Fatalf("no stream type for %s", typ)
		}
		ref := domain.Ref(tenant, st, stream)
		if _, err := domain.Fold(ref, []domain.Event{ev, again}); err != nil {
			t.Fatalf("Fold of a decoded %s: %v", typ, err)
		}
		_ = domain.Claims(ref, ev)
		rec := domain.Recorded{Stream: ref, Version: 1, EventID: stream, Position: 1, Event: ev,
			Metadata: domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorService, ID: "fuzz"}, Command: "Fuzz"}}
		audit := domain.Audit(rec)
		if err := domain.ChainAudit(&audit, 0, domain.AuditGenesisHash); err != nil {
			t.Fatalf("ChainAudit of a decoded %s: %v", typ, err)
		}
		out, err := domain.Outbox(rec)
		if err != nil {
			t.Fatalf("Outbox of a decoded %s: %v", typ, err)
		}
		if !json.Valid(out.Payload) {
			t.Fatalf("Outbox of a decoded %s is not JSON: %q", typ, out.Payload)
		}
		// The public integration event is what sinks and consumers serialize; its OccurredAt is the
		// event's time in UTC, which must be writable as RFC 3339 like the payload's own.
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("the outbox event of a decoded %s does not marshal: %v", typ, err)
		}
	})
}

// fuzzWidget is the event of FuzzUpcast, at schema version 3 of its payload: v1 {"name", "at"}; v2
// renamed name to title; v3 added size (default 1).
type fuzzWidget struct {
	Title string    `json:"title"`
	Size  int       `json:"size"`
	At    time.Time `json:"at"`
}

func (fuzzWidget) EventType() string       { return "fuzz.widget" }
func (e fuzzWidget) OccurredAt() time.Time { return e.At }

// upcastObject returns an upcaster that edits a payload as a JSON object; a payload that is not an
// object (null included) is an error, as a real upcaster's must be.
func upcastObject(edit func(m map[string]json.RawMessage)) domain.Upcaster {
	return func(p json.RawMessage) (json.RawMessage, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errors.New("the payload is not an object")
		}
		edit(m)
		return json.Marshal(m)
	}
}

// fuzzWidgets is a registry with the built-in events and fuzzWidget at version 3.
func fuzzWidgets(tb testing.TB) *domain.Registry {
	r := domain.Builtin()
	err := domain.Register[fuzzWidget](r, "widget", 3,
		upcastObject(func(m map[string]json.RawMessage) {
			if v, ok := m["name"]; ok {
				m["title"] = v
				delete(m, "name")
			}
		}),
		upcastObject(func(m map[string]json.RawMessage) {
			if _, ok := m["size"]; !ok {
				m["size"] = json.RawMessage("1")
			}
		}))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// FuzzUpcast: decoding a payload of any version through a chain of upcasters never panics; a version
// outside 1..3 is ErrUnknownSchemaVersion, a payload the chain or the decoder refuses ErrBadPayload. An
// accepted payload decodes to a current event that encodes at version 3 and decodes back to itself.
func FuzzUpcast(f *testing.F) {
	f.Add(1, []byte(`{"name":"gear","at":"2026-06-05T12:00:00.123456Z"}`))
	f.Add(2, []byte(`{"title":"gear","at":"2026-06-05T12:00:00.123456Z"}`))
	f.Add(3, []byte(`{"title":"gear","size":7,"at":"2026-06-05T12:00:00.123456Z"}`))
	f.Add(1, []byte(`{"name":"gear","title":"x","size":"big"}`))
	f.Add(1, []byte(`null`))
	f.Add(2, []byte(`[1,2]`))
	f.Add(0, []byte(`{}`))
	f.Add(4, []byte(`{}`))
	r := fuzzWidgets(f)
	f.Fuzz(func(t *testing.T, version int, payload []byte) {
		ev, err := r.Decode(domain.Encoded{Type: "fuzz.widget", SchemaVersion: version, Payload: payload})
		switch {
		case version < 1 || version > 3:
			if !errors.Is(err, domain.ErrUnknownSchemaVersion) {
				t.Fatalf("version %d: want ErrUnknownSchemaVersion, got %v", version, err)
			}
			return
		case err != nil:
			if !errors.Is(err, domain.ErrBadPayload) {
				t.Fatalf("version %d: want ErrBadPayload, got %v", version, err)
			}
			return
		}
		w, ok := ev.(fuzzWidget)
		if !ok {
			t.Fatalf("decoded %T", ev)
		}
		enc, err := r.Encode(w)
		if err != nil {
			t.Fatalf("a decoded widget does not encode: %v", err)
		}
		if enc.SchemaVersion != 3 {
			t.Fatalf("encoded at version %d, want 3", enc.SchemaVersion)
		}
		back, err := r.Decode(enc)
		if err != nil {
			t.Fatalf("a re-encoded widget does not decode: %v", err)
		}
		if b := back.(fuzzWidget); b.Title != w.Title || b.Size != w.Size || !b.At.Equal(w.At) {
			t.Fatalf("round trip changed the widget: %+v → %+v", w, b)
		}
	})
}

// FuzzNormalizeNote, FuzzNormalizeCredentialRef: the normalizer properties of fuzzNormalizer.
func FuzzNormalizeNote(f *testing.F) {
	fuzzNormalizer(f, func(s string) (string, error) { return domain.NormalizeNote("reason", s) },
		append(fuzzSeeds, "line\nbreak", "tab\there", "\r\n", "\u2028")...)
}

func FuzzNormalizeCredentialRef(f *testing.F) {
	fuzzNormalizer(f, domain.NormalizeCredentialRef, append(fuzzSeeds, "vault:kv/users/ann", strings.Repeat("r", 513))...)
}

// FuzzValidateToken: an idempotency key, request id or actor id is accepted only as printable, valid
// UTF-8 without NUL of at most 255 bytes; a rejection names the field. ValidateActor adds the actor's
// type and a required id.
func FuzzValidateToken(f *testing.F) {
	for _, s := range append(fuzzSeeds, "signup-7f3a", "req\t1", "\u00a0", "\u200b", strings.Repeat("k", 256)) {
		f.Add(s, "service")
	}
	f.Add("u-1", "robot")
	f.Fuzz(func(t *testing.T, s, actorType string) {
		if err := domain.ValidateToken("idempotency_key", s); err != nil {
			requireValidation(t, err, "idempotency_key")
		} else if len(s) > userstore.MaxKeyLength || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("accepted an invalid token %q", s)
		}
		a := userstore.Actor{Type: userstore.ActorType(actorType), ID: s}
		if err := domain.ValidateActor(a); err != nil {
			requireValidation(t, err, "actor.*")
		} else if !a.Type.Valid() || s == "" {
			t.Fatalf("accepted an invalid actor %+v", a)
		}
	})
}

// FuzzNormalizeRoles: binding roles (the fuzzed string split at commas) are accepted only as a sorted
// set of valid names, which normalizes to itself; a rejection names "roles" or "roles[i]".
func FuzzNormalizeRoles(f *testing.F) {
	for _, s := range []string{"", "viewer", "admin,viewer,admin", "Admin", "a b", ",", "x:y.z_-9", strings.Repeat("r", 65),
		strings.Repeat("r,", 70), "\xff", "ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var in []string
		if s != "" {
			in = strings.Split(s, ",")
		}
		out, err := domain.NormalizeRoles(in)
		if err != nil {
			requireValidation(t, err, "roles*")
			return
		}
		if out == nil || !slices.IsSorted(out) || len(slices.Compact(slices.Clone(out))) != len(out) || len(out) > userstore.MaxRoles {
			t.Fatalf("roles %q normalized to %q", in, out)
		}
		again, err := domain.NormalizeRoles(out)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", in, out, again, err)
		}
	})
}

// FuzzValidateAttributeKey: a key is accepted only as [a-z][a-z0-9_]{0,63}.
func FuzzValidateAttributeKey(f *testing.F) {
	for _, s := range []string{"", "nick", "Nick", "9lives", "a_b_9", strings.Repeat("k", 65), "ä", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := domain.ValidateAttributeKey("attributes[0].key", key)
		if err != nil {
			requireValidation(t, err, "attributes[0].key")
			return
		}
		if len(key) == 0 || len(key) > domain.MaxAttrKeyLength || key[0] < 'a' || key[0] > 'z' ||
			strings.IndexFunc(key, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') }) >= 0 {
			t.Fatalf("accepted key %q", key)
		}
	})
}

// FuzzValidDate: a date is accepted only as a real calendar day written YYYY-MM-DD.
func FuzzValidDate(f *testing.F) {
	for _, s := range []string{"2026-02-28", "2026-02-29", "2024-02-29", "0000-01-01", "9999-12-31", "2026-1-1", "+2026-01-01", "2026-01-01T00:00:00Z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !domain.ValidDate(s) {
			return
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil || len(s) != 10 || d.Format(time.DateOnly) != s {
			t.Fatalf("accepted date %q", s)
		}
	})
}

// FuzzCatalogValue: a catalog attribute (its type, enum values — the fuzzed string split at line
// breaks —, maximum length, flags) is accepted or refused on a field under "attributes[0]"; a profile
// value for an accepted attribute is accepted or refused on "values.k". An accepted value has the
// attribute's type, fits it (valid UTF-8 without NUL within the length for strings, one of the values
// for enums, a calendar day for dates), validates to itself again, and survives the event payload that
// stores it (profile.values_set) unchanged.
func FuzzCatalogValue(f *testing.F) {
	f.Add("string", "", 0, false, "string", "Annie", int64(0), false)
	f.Add("string", "", 3, true, "string", "äöüß", int64(0), false)
	f.Add("string", "", 4096, false, "string", "\xff", int64(0), false)
	f.Add("string", "a", 0, false, "string", "a", int64(0), false)
	f.Add("enum", "gold\nsilver", 0, false, "enum", "gold", int64(0), false)
	f.Add("enum", "gold\ngold", 0, false, "enum", "gold", int64(0), false)
	f.Add("enum", "", 0, false, "enum", "", int64(0), false)
	f.Add("enum", "a\x00", 0, false, "enum", "a\x00", int64(0), false)
	f.Add("enum", "gold\nsilver", 5, false, "enum", "gold", int64(0), false)
	f.Add("int", "", 0, false, "int", "", int64(-1<<63), false)
	f.Add("bool", "", 0, false, "bool", "", int64(0), true)
	f.Add("date", "", 0, false, "date", "2024-02-29", int64(0), false)
	f.Add("date", "", 0, false, "date", "2026-02-29", int64(0), false)
	f.Add("date", "", 0, false, "string", "2026-02-28", int64(0), false)
	f.Add("float", "", 0, false, "float", "1.5", int64(0), false)
	f.Add("string", "", -1, false, "string", "", int64(0), false)
	f.Fuzz(func(t *testing.T, attrType, enums string, maxLength int, pii bool, valueType, s string, n int64, b bool) {
		attr := userstore.Attribute{Key: "k", Type: userstore.AttributeType(attrType), MaxLength: maxLength, PII: pii}
		if enums != "" {
			attr.EnumValues = strings.Split(enums, "\n")
		}
		a, err := domain.NormalizeAttribute("attributes[0]", attr)
		if err != nil {
			requireValidation(t, err, "attributes[0].*")
			return
		}
		if !domain.ValidAttributeType(a.Type) {
			t.Fatalf("accepted attribute type %q", a.Type)
		}
		v := userstore.Value{Type: userstore.AttributeType(valueType), Str: s, Int: n, Bool: b, Date: s}
		got, err := domain.ValidateValue("values.k", a, v)
		if err != nil {
			requireValidation(t, err, "values.k")
			return
		}
		if got.Type != a.Type {
			t.Fatalf("a %s attribute accepted a value of type %s", a.Type, got.Type)
		}
		switch a.Type {
		case userstore.AttrString:
			limit := cmpOr(a.MaxLength, userstore.MaxValueLength)
			if !utf8.ValidString(got.Str) || strings.ContainsRune(got.Str, 0) || utf8.RuneCountInString(got.Str) > limit {
				t.Fatalf("accepted string %q for max length %d", got.Str, a.MaxLength)
			}
		case userstore.AttrEnum:
			if !slices.Contains(a.EnumValues, got.Str) {
				t.Fatalf("accepted enum value %q not in %q", got.Str, a.EnumValues)
			}
		case userstore.AttrDate:
			if !domain.ValidDate(got.Date) {
				t.Fatalf("accepted date %q", got.Date)
			}
		}
		again, err := domain.ValidateValue("values.k", a, got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %+v → %+v → %+v (%v)", v, got, again, err)
		}
		set := domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{"k": got}, At: t0}
		enc, err := domain.Encode(set)
		if err != nil {
			t.Fatalf("an accepted value does not encode: %v", err)
		}
		back, err := domain.Decode(enc)
		if err != nil {
			t.Fatalf("an accepted value does not decode: %v", err)
		}
		if stored := back.(domain.ProfileValuesSet).Values["k"]; stored != got {
			t.Fatalf("the stored value changed: %+v → %+v", got, stored)
		}
	})
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
