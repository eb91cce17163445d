package userstore

import (
	"time"

	"github.com/google/uuid"
)

// AuditRecord is the audit fact of one event of a committed mutation. Records form a per-tenant chain:
// Sequence is gapless from 1 and Hash = sha256(PrevHash || canonical record) (see domain.AuditHash).
type AuditRecord struct {
	TenantID uuid.UUID
	// Sequence is the record's place in its tenant's trail: 1, 2, 3, … without gaps.
	Sequence int64
	// EventID is the id of the event the record derives from.
	EventID uuid.UUID
	// Position is the event's position in the log (increasing, not dense).
	Position   int64
	OccurredAt time.Time
	Actor      Actor
	// Action is the event type, e.g. "user.created".
	Action     string
	TargetType string
	TargetID   uuid.UUID
	RequestID  string
	// Outcome is "success": refused mutations change nothing and leave no record.
	Outcome string
	// PrevHash and Hash are lower-case hex SHA-256; PrevHash of the first record is 64 zeros.
	PrevHash string
	Hash     string
}

// Audit outcomes.
const OutcomeSuccess = "success"

// ListAuditParams queries the tenant's audit trail in sequence order. Filters combine with AND.
type ListAuditParams struct {
	ListOpts
	// Actor filters by actor (type and id must both match). Default: any.
	Actor *Actor
	// TargetType and TargetID filter by target; TargetID needs TargetType. Default: any.
	TargetType string
	TargetID   uuid.UUID
	// Action filters by action. Default: any.
	Action string
	// Since and Until bound OccurredAt: Since <= t < Until. Zero: unbounded.
	Since time.Time
	Until time.Time
}
