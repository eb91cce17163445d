package logcodec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
)

// codecSentinels are the errors Recorded rejects a stored event with.
var codecSentinels = []error{domain.ErrUnknownEventType, domain.ErrUnknownSchemaVersion, domain.ErrBadPayload}

func isCodecRejection(err error) bool {
	for _, s := range codecSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzRecorded: any row of the log (event type, schema version, payload, correlation and causation
// ids) maps to a domain.Recorded or is rejected with one of the codec's sentinels — never a panic. An
// accepted row keeps its stream, version, id and position; its metadata maps back onto the log's
// unchanged when mapped again (DomainMetadata ∘ StoreMetadata is the identity on what DomainMetadata
// returns).
func FuzzRecorded(f *testing.F) {
	f.Add("user.disabled", int16(1), []byte(`{"at":"2026-06-05T12:00:00.123456Z"}`), "0197a1b2-0000-7000-8000-000000000001", "")
	f.Add("user.created", int16(1), []byte(`{"user_id":"0197a1b2-0000-7000-8000-000000000002","tenant_id":"0197a1b2-0000-7000-8000-000000000003","display_name":"A","email":"a@example.com","at":"2026-06-05T12:00:00Z"}`), "not-a-uuid", "URN:UUID:0197A1B2-0000-7000-8000-000000000004")
	f.Add("profile.values_set", int16(1), []byte(`{"values":{"k":{"type":"int","int":7}},"pii_keys":["k"],"at":"2026-06-05T12:00:00Z"}`), "{0197a1b2-0000-7000-8000-000000000001}", "")
	f.Add("user.disabled", int16(2), []byte(`{}`), "", "")
	f.Add("user.disabled", int16(-1), []byte(`{}`), "", "")
	f.Add("no.such", int16(1), []byte(`{}`), "", "")
	f.Add("user.disabled", int16(1), []byte(`{"at":"2026-06-05T12:00:00Z","x":1}`), "", "")
	f.Add("user.disabled", int16(1), []byte("\xff"), "", "")
	tenant := uuid.MustParse("0197a1b2-0000-7000-8000-0000000000aa")
	stream := uuid.MustParse("0197a1b2-0000-7000-8000-0000000000bb")
	f.Fuzz(func(t *testing.T, typ string, version int16, payload []byte, correlation, causation string) {
		stored := &eventstore.RecordedEvent{
			GlobalPosition: 42, TransactionID: 7, TenantID: tenant, StreamType: "user", StreamID: stream, StreamVersion: 3,
			EventID: stream, EventType: typ, EventVersion: version, Payload: payload,
			Metadata: eventstore.Metadata{ActorType: "service", ActorID: "svc", CorrelationID: correlation, CausationID: causation},
		}
		r, err := logcodec.Recorded(stored)
		if err != nil {
			if !isCodecRejection(err) {
				t.Fatalf("a rejection must match a codec sentinel, got %T: %v", err, err)
			}
			return
		}
		if r.Event == nil || r.Event.EventType() != typ || r.Stream.ID != stream || r.Stream.TenantID != tenant ||
			r.Version != 3 || r.Position != 42 || r.EventID != stream {
			t.Fatalf("Recorded changed the row: %+v", r)
		}
		if again := logcodec.DomainMetadata(logcodec.StoreMetadata(r.Metadata)); again != r.Metadata {
			t.Fatalf("metadata does not round-trip: %+v → %+v", r.Metadata, again)
		}
	})
}

// TestRecordedErrorsDoNotQuoteThePayload: Recorded's documentation promises that an error "never
// quotes the payload" — its text goes into dead letters, logs and the replay tool's output. A payload
// value or key that is not a schema's own must not appear in the error, whatever part of the decoding
// refuses it (a time, a UUID, an unknown field).
func TestRecordedErrorsDoNotQuoteThePayload(t *testing.T) {
	const canary = "ann.canary@example.org"
	cases := map[string]string{
		"a time":          `{"at":"` + canary + `"}`,
		"an unknown key":  `{"at":"2026-06-05T12:00:00Z","` + canary + `":1}`,
		"a uuid":          `{"user_id":"urn:uuid:` + canary + `-and-more-and-more-and-more-and","at":"2026-06-05T12:00:00Z"}`,
		"a nested value":  `{"values":{"k":{"type":"string","str":"x","` + canary + `":1}},"at":"2026-06-05T12:00:00Z"}`,
		"an enum as time": `{"values":{"k":{"type":"date","date":"x"}},"at":"` + canary + `"}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			for _, typ := range []string{domain.EventUserCreated, domain.EventProfileValuesSet} {
				_, err := logcodec.Recorded(&eventstore.RecordedEvent{EventType: typ, EventVersion: 1, Payload: []byte(payload)})
				if err == nil {
					t.Fatalf("%s: the payload was accepted", typ)
				}
				if strings.Contains(err.Error(), "canary") {
					t.Errorf("%s: the error quotes the payload: %v", typ, err)
				}
			}
		})
	}
}
