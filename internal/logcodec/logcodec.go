// Package logcodec maps between the event log's generic records (package eventstore, which knows no
// domain) and the domain's recorded events (package domain, which knows no storage). Everything that
// reads domain events back from the PostgreSQL log — the audit projection, the outbox relay, the replay
// tool, the durable store's derived views — converts them here, so that they all see the same
// domain.Recorded for the same stored event.
package logcodec

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
)

// Recorded returns the domain form of an event read from the log: the stream, version, id and position
// as stored, the payload decoded (and upcast) by the domain's registry, and the metadata mapped back by
// [DomainMetadata]. A payload the registry cannot decode is an error matching domain.ErrUnknownEventType,
// domain.ErrUnknownSchemaVersion or domain.ErrBadPayload; it never quotes the payload.
func Recorded(e *eventstore.RecordedEvent) (domain.Recorded, error) {
	ev, err := domain.Decode(domain.Encoded{Type: e.EventType, SchemaVersion: int(e.EventVersion), Payload: e.Payload})
	if err != nil {
		return domain.Recorded{}, fmt.Errorf("decode the event at position %d: %w", e.GlobalPosition, err)
	}
	return domain.Recorded{
		Stream:   domain.StreamRef{TenantID: e.TenantID, Type: domain.StreamType(e.StreamType), ID: e.StreamID},
		Version:  e.StreamVersion,
		EventID:  e.EventID,
		Position: e.GlobalPosition,
		Event:    ev,
		Metadata: DomainMetadata(e.Metadata),
	}, nil
}

// StoreMetadata maps a mutation's metadata onto the log's generic metadata.
func StoreMetadata(m domain.Metadata) eventstore.Metadata {
	out := eventstore.Metadata{
		ActorType:      string(m.Actor.Type),
		ActorID:        m.Actor.ID,
		RequestID:      m.RequestID,
		IdempotencyKey: m.IdempotencyKey,
		Command:        m.Command,
	}
	if m.CorrelationID != uuid.Nil {
		out.CorrelationID = m.CorrelationID.String()
	}
	if m.CausationID != uuid.Nil {
		out.CausationID = m.CausationID.String()
	}
	return out
}

// DomainMetadata is the inverse of [StoreMetadata], for events read back from the log. Correlation and
// causation ids that are not UUIDs map to zero.
func DomainMetadata(m eventstore.Metadata) domain.Metadata {
	out := domain.Metadata{
		Actor:          userstore.Actor{Type: userstore.ActorType(m.ActorType), ID: m.ActorID},
		RequestID:      m.RequestID,
		IdempotencyKey: m.IdempotencyKey,
		Command:        m.Command,
	}
	if id, err := uuid.Parse(m.CorrelationID); err == nil {
		out.CorrelationID = id
	}
	if id, err := uuid.Parse(m.CausationID); err == nil {
		out.CausationID = id
	}
	return out
}
