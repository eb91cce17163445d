package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Event is one immutable fact of an aggregate's history. Every event type is a plain struct whose JSON
// encoding is its payload (see Registry); it carries the time it occurred, set by the decider from the
// command, so that folding a stream is a pure function of the stream.
type Event interface {
	// EventType returns the event's type name, e.g. "user.created".
	EventType() string
	// OccurredAt returns when the event happened (UTC, microsecond precision as decided by the engine).
	OccurredAt() time.Time
}

// Aggregate is what every aggregate state has in common; adapters type-switch on the concrete state
// (TenantState, UserState, …) to update their read models.
type Aggregate interface {
	// StreamType returns the type of the stream the state is folded from.
	StreamType() StreamType
	// Found reports whether the entity exists for commands and queries: created and not removed. A
	// tombstone (a deleted user, a closed account) is found; an unlinked identity or a removed binding
	// is not.
	Found() bool
}

// Metadata is what a mutation records beside its events: who, on behalf of which request, and why.
// Adapters store it with every event (the event log's metadata column).
type Metadata struct {
	// Actor performs the mutation.
	Actor userstore.Actor `json:"actor"`
	// RequestID is the caller's request id, if any.
	RequestID string `json:"request_id,omitempty"`
	// IdempotencyKey is the mutation's idempotency key, if any.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Command is the store operation that produced the events, e.g. "DeleteUser".
	Command string `json:"command"`
	// CorrelationID is shared by every event of one mutation.
	CorrelationID uuid.UUID `json:"correlation_id,omitzero"`
	// CausationID is the id of the event that caused this one within the mutation (the user.deleted
	// event for the events of its cascade); zero for an event the command caused directly.
	CausationID uuid.UUID `json:"causation_id,omitzero"`
}

// Recorded is an event as the log holds it: with its stream, its place in the stream and the log, its
// id and its metadata. Audit and Outbox are functions of a Recorded.
type Recorded struct {
	Stream StreamRef
	// Version is the event's version within its stream: 1, 2, 3, …
	Version int64
	// EventID identifies the event (a UUIDv7); the outbox message id downstream.
	EventID uuid.UUID
	// Position is the event's position in the log: increasing, not necessarily dense.
	Position int64
	Event    Event
	Metadata Metadata
}
