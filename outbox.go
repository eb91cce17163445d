package userstore

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// OutboxEvent is a public integration event: a versioned, PII-minimized view of one domain event, for
// consumers outside the store. Its ID is the id of the domain event it comes from, so a consumer can
// dedupe by it.
type OutboxEvent struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// Type is the public event type with its schema version, e.g. "userstore.user.created.v1".
	Type string
	// AggregateType and AggregateID name the entity; AggregateVersion orders its events.
	AggregateType    string
	AggregateID      uuid.UUID
	AggregateVersion int64
	// Position is the event's position in the store's log: unique and increasing within one commit, but
	// events of concurrent commits may be read in an order that is not Position order. The order of
	// ReadOutbox (commit order) is the one to rely on; Position identifies the event.
	Position   int64
	OccurredAt time.Time
	// Payload is the JSON body of the public schema (docs/outbox.md).
	Payload json.RawMessage
}

// ReadOutboxParams reads the tenant's outbox events in commit order after a cursor a consumer keeps.
type ReadOutboxParams struct {
	ListOpts
}
