package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

const (
	maxStreamTypeBytes = 64
	maxEventTypeBytes  = 128
)

// appendBatch is a validated append, ready for the append statement.
type appendBatch struct {
	params    *AppendParams
	partition int16
	ids       []uuid.UUID
	idTexts   []string // ids as text: QueryExecModeExec cannot encode []uuid.UUID
	types     []string
	versions  []int16
	payloads  []string
	metadata  []string
}

func (b *appendBatch) conflict() *conflictInfo {
	return &conflictInfo{streamID: b.params.StreamID, expected: b.params.Expected}
}

// prepareAppend validates p and converts it into statement arguments. Nothing touches the
// database before it succeeds.
func (s *Store) prepareAppend(p *AppendParams) (*appendBatch, error) {
	if p == nil {
		return nil, invalid("AppendParams", "must not be nil")
	}
	if p.TenantID == uuid.Nil {
		return nil, invalid("TenantID", "must not be empty")
	}
	if p.StreamID == uuid.Nil {
		return nil, invalid("StreamID", "must not be empty")
	}
	if err := validateStreamType(p.StreamType); err != nil {
		return nil, err
	}
	switch p.Expected.kind {
	case kindAny, kindNoStream, kindStreamExists:
	case kindExact:
		if p.Expected.version < 0 {
			return nil, invalid("Expected", "exact version must not be negative, got %d", p.Expected.version)
		}
	default:
		return nil, invalid("Expected", "unknown expected-version kind (use Any, NoStream, StreamExists or Exact)")
	}
	n := len(p.Events)
	if n == 0 {
		return nil, invalid("Events", "at least one event is required")
	}
	if n > s.cfg.MaxEventsPerAppend {
		return nil, invalid("Events", "%d events exceed the maximum of %d per append", n, s.cfg.MaxEventsPerAppend)
	}

	b := &appendBatch{
		params:    p,
		partition: PartitionOf(p.TenantID),
		ids:       make([]uuid.UUID, n),
		idTexts:   make([]string, n),
		types:     make([]string, n),
		versions:  make([]int16, n),
		payloads:  make([]string, n),
		metadata:  make([]string, n),
	}
	seen := make(map[uuid.UUID]struct{}, n)
	for i := range p.Events {
		e := &p.Events[i]
		field := func(name string) string { return fmt.Sprintf("Events[%d].%s", i, name) }

		id := e.ID
		if id == uuid.Nil {
			var err error
			if id, err = uuid.NewV7(); err != nil {
				return nil, fmt.Errorf("eventstore: generate event id: %w", err)
			}
		}
		if _, dup := seen[id]; dup {
			return nil, invalid(field("ID"), "duplicate event id within the append")
		}
		seen[id] = struct{}{}

		if err := validateText(field("Type"), e.Type, maxEventTypeBytes); err != nil {
			return nil, err
		}
		version := e.SchemaVersion
		if version == 0 {
			version = 1
		}
		if version < 0 {
			return nil, invalid(field("SchemaVersion"), "must not be negative, got %d", version)
		}
		if err := s.validatePayload(field("Payload"), e.Payload); err != nil {
			return nil, err
		}
		meta, err := s.encodeMetadata(field("Metadata"), &e.Metadata)
		if err != nil {
			return nil, err
		}

		b.ids[i] = id
		b.idTexts[i] = id.String()
		b.types[i] = e.Type
		b.versions[i] = version
		b.payloads[i] = string(e.Payload)
		b.metadata[i] = meta
	}
	return b, nil
}

func validateStreamType(t string) error {
	if t == "" {
		return invalid("StreamType", "must not be empty")
	}
	if len(t) > maxStreamTypeBytes {
		return invalid("StreamType", "%d bytes exceed the maximum of %d", len(t), maxStreamTypeBytes)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return invalid("StreamType", "may only contain a-z, 0-9, '_', '.' and '-'")
		}
	}
	return nil
}

func validateText(field, s string, maxBytes int) error {
	switch {
	case s == "":
		return invalid(field, "must not be empty")
	case len(s) > maxBytes:
		return invalid(field, "%d bytes exceed the maximum of %d", len(s), maxBytes)
	case !utf8.ValidString(s):
		return invalid(field, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, "contains a NUL character")
	}
	return nil
}

// validatePayload accepts a JSON document that PostgreSQL's jsonb accepts: valid UTF-8 (jsonb
// rejects invalid encoding) and no NUL character, raw or escaped as \u0000 (jsonb rejects both).
func (s *Store) validatePayload(field string, p json.RawMessage) error {
	switch {
	case len(p) == 0:
		return invalid(field, "is empty (not JSON)")
	case len(p) > s.cfg.MaxPayloadBytes:
		return invalid(field, "%d bytes exceed the maximum of %d", len(p), s.cfg.MaxPayloadBytes)
	case !utf8.Valid(p):
		return invalid(field, "is not valid UTF-8")
	case !json.Valid(p):
		return invalid(field, "is not valid JSON")
	case containsNUL(p):
		return invalid(field, "contains a NUL character")
	}
	return nil
}

// containsNUL reports whether a valid JSON document holds a NUL byte or a \u0000 escape. In valid
// JSON a backslash only occurs inside strings and always starts a two-character escape or \uXXXX,
// so skipping the character after each backslash keeps `\\u0000` (a backslash, then "u0000") apart
// from `\u0000`.
func containsNUL(p []byte) bool {
	if bytes.IndexByte(p, 0) >= 0 {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '\\' {
			continue
		}
		if i+5 < len(p) && p[i+1] == 'u' && string(p[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}

func (s *Store) encodeMetadata(field string, m *Metadata) (string, error) {
	for _, f := range [...]struct{ name, v string }{
		{"ActorType", m.ActorType}, {"ActorID", m.ActorID}, {"RequestID", m.RequestID},
		{"CorrelationID", m.CorrelationID}, {"CausationID", m.CausationID},
		{"IdempotencyKey", m.IdempotencyKey}, {"SourceIP", m.SourceIP}, {"UserAgent", m.UserAgent},
	} {
		if !utf8.ValidString(f.v) {
			return "", invalid(field+"."+f.name, "is not valid UTF-8")
		}
		if strings.IndexByte(f.v, 0) >= 0 {
			return "", invalid(field+"."+f.name, "contains a NUL character")
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("eventstore: encode metadata: %w", err)
	}
	if len(out) > s.cfg.MaxPayloadBytes {
		return "", invalid(field, "%d bytes exceed the maximum of %d", len(out), s.cfg.MaxPayloadBytes)
	}
	return string(out), nil
}
