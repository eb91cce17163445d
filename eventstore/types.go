package eventstore

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Partitions is the number of partitions of the log: the projector's unit of scale-out. It is part
// of the stored data (column partition) and must never change.
const Partitions = 64

// PartitionOf returns the partition of a tenant's events: FNV-1a (32 bit) of the 16 bytes of the
// tenant id, modulo [Partitions]. Deterministic across processes and versions.
//
// The partition follows the tenant, not the stream, so that one partition holds all of a tenant's
// events in commit order: the audit hash chain and the outbox are per-tenant sequences in commit order,
// and a projector that owns a partition can build them without coordinating with other partitions
// (docs/adr/0005-partition-by-tenant.md).
func PartitionOf(tenantID uuid.UUID) int16 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, b := range tenantID {
		h ^= uint32(b)
		h *= prime32
	}
	return int16(h % Partitions)
}

// ExpectedVersion is the optimistic-concurrency condition of an append. Build one with [Any],
// [NoStream], [StreamExists] or [Exact]; the zero value is invalid.
type ExpectedVersion struct {
	kind    expectedKind
	version int64
}

type expectedKind uint8

const (
	kindUnset expectedKind = iota
	kindAny
	kindNoStream
	kindStreamExists
	kindExact
)

// Any appends whatever the stream's version. Concurrent appends to the same stream can still
// collide on the next version number: Append retries such a collision a few times; AppendTx
// returns it as a version conflict.
func Any() ExpectedVersion { return ExpectedVersion{kind: kindAny} }

// NoStream appends only if the stream has no event yet.
func NoStream() ExpectedVersion { return ExpectedVersion{kind: kindNoStream} }

// StreamExists appends only if the stream has at least one event.
func StreamExists() ExpectedVersion { return ExpectedVersion{kind: kindStreamExists} }

// Exact appends only if the stream's current version is v (0: the stream has no event).
func Exact(v int64) ExpectedVersion { return ExpectedVersion{kind: kindExact, version: v} }

// String describes the condition: "any", "no stream", "stream exists" or "version N".
func (e ExpectedVersion) String() string {
	switch e.kind {
	case kindAny:
		return "any"
	case kindNoStream:
		return "no stream"
	case kindStreamExists:
		return "stream exists"
	case kindExact:
		return "version " + strconv.FormatInt(e.version, 10)
	}
	return "unset"
}

// sqlKind is the kind as the append statement spells it.
func (e ExpectedVersion) sqlKind() string {
	switch e.kind {
	case kindAny:
		return "any"
	case kindNoStream:
		return "no_stream"
	case kindStreamExists:
		return "stream_exists"
	case kindExact:
		return "exact"
	}
	return ""
}

// Metadata is the generic context recorded with every event. The event store knows no domain: these
// are opaque strings, omitted from the stored JSON when empty.
type Metadata struct {
	ActorType      string `json:"actor_type,omitempty"`
	ActorID        string `json:"actor_id,omitempty"`
	RequestID      string `json:"request_id,omitempty"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	SourceIP       string `json:"source_ip,omitempty"`
	UserAgent      string `json:"user_agent,omitempty"`
	// Command names the operation that appended the event (e.g. "DeleteUser"), for audits and replays.
	Command string `json:"command,omitempty"`
}

// EventData is one event to append.
type EventData struct {
	// ID is the event's unique id (the outbox message id downstream). Zero: a new UUIDv7.
	ID uuid.UUID
	// Type names the event, e.g. "user.created"; 1 to 128 bytes of UTF-8.
	Type string
	// SchemaVersion is the version of the payload's schema, for upcasting. Zero means 1.
	SchemaVersion int16
	// Payload is the event's data: a JSON document (stored as jsonb) without NUL characters.
	Payload json.RawMessage
	// Metadata is the event's generic context.
	Metadata Metadata
}

// AppendParams are the parameters of an append to one stream.
type AppendParams struct {
	// TenantID is the tenant that owns the stream; required.
	TenantID uuid.UUID
	// StreamType names the kind of aggregate, e.g. "user": 1 to 64 bytes of [a-z0-9_.-].
	StreamType string
	// StreamID identifies the stream (the aggregate); required.
	StreamID uuid.UUID
	// Expected is the optimistic-concurrency condition; required.
	Expected ExpectedVersion
	// Events are appended in order with contiguous versions; at least one.
	Events []EventData
}

// AppendResult tells where an append's events went.
type AppendResult struct {
	// NewVersion is the stream's version after the append (the version of the last event).
	NewVersion int64
	// Positions are the global positions of the events, in order.
	Positions []int64
	// EventIDs are the ids of the events, in order, including the generated ones.
	EventIDs []uuid.UUID
	// TransactionID is the PostgreSQL transaction id (xid8) that wrote the events.
	TransactionID uint64
	// Partition is the stream's partition.
	Partition int16
}

// Cursor is a position in the log's order, (transaction id, global position). The zero Cursor is
// before the first event.
type Cursor struct {
	TransactionID uint64
	Position      int64
}

// Less reports whether c comes before d in the log's order.
func (c Cursor) Less(d Cursor) bool {
	if c.TransactionID != d.TransactionID {
		return c.TransactionID < d.TransactionID
	}
	return c.Position < d.Position
}

// RecordedEvent is one event as stored in the log.
type RecordedEvent struct {
	GlobalPosition int64
	TransactionID  uint64
	TenantID       uuid.UUID
	StreamType     string
	StreamID       uuid.UUID
	StreamVersion  int64
	Partition      int16
	EventID        uuid.UUID
	EventType      string
	EventVersion   int16
	Payload        json.RawMessage
	Metadata       Metadata
	RecordedAt     time.Time
}

// Cursor returns the event's place in the log's order.
func (e *RecordedEvent) Cursor() Cursor {
	return Cursor{TransactionID: e.TransactionID, Position: e.GlobalPosition}
}

// ReadStreamParams select events of one stream.
type ReadStreamParams struct {
	// TenantID is the tenant that owns the stream; required.
	TenantID uuid.UUID
	// StreamID identifies the stream; required.
	StreamID uuid.UUID
	// FromVersion is the first version to return (inclusive); 0 or 1 start at the beginning.
	FromVersion int64
	// Limit caps the number of events; 0 returns every event from FromVersion on.
	Limit int
}

// ReadStreamResult holds the events of a stream read, ordered by version.
type ReadStreamResult struct {
	Events []RecordedEvent
}

// ReadAllParams select a page of the log in (transaction id, global position) order.
type ReadAllParams struct {
	// After is the cursor to resume from (exclusive); zero starts at the beginning.
	After Cursor
	// Partition restricts the read to one partition; nil reads all.
	Partition *int16
	// TenantID restricts the read to one tenant (required for the app role, whose row-level
	// security shows it one tenant at a time); uuid.Nil reads every tenant the role may see.
	TenantID uuid.UUID
	// Limit caps the number of events, at most ReadLimitMax. Default: ReadLimitDefault.
	Limit int
}

// ReadAllResult is one page of the log.
type ReadAllResult struct {
	// Events in (transaction id, global position) order, all committed and below the horizon.
	Events []RecordedEvent
	// Next is the cursor to pass as After to read on: the last event's, or After when empty.
	Next Cursor
}

// FollowParams configure [Store.Follow].
type FollowParams struct {
	// After is the cursor to resume from (exclusive); zero starts at the beginning.
	After Cursor
	// Partition restricts the follow to one partition; nil follows all.
	Partition *int16
	// TenantID restricts the follow to one tenant (see ReadAllParams.TenantID).
	TenantID uuid.UUID
	// BatchSize caps the events of one handler call, at most ReadLimitMax. Default:
	// ReadLimitDefault.
	BatchSize int
	// CaughtUpFunc, when set, is called (on Follow's goroutine) after every poll that returned
	// fewer events than BatchSize, with the cursor after the last event delivered: the follower has
	// delivered everything below the horizon as of that poll.
	CaughtUpFunc func(Cursor)
}

// Horizon is the read horizon of the log: readers deliver only events whose transaction id is below
// Xmin, the oldest transaction id still running in the cluster.
type Horizon struct {
	// Xmin is pg_snapshot_xmin(pg_current_snapshot()).
	Xmin uint64
	// Holder is the backend whose open transaction holds the horizon back, when there is one and the
	// role may see it (pg_read_all_stats); nil otherwise (also for a prepared transaction).
	Holder *HorizonHolder
}

// HorizonHolder describes the backend whose transaction holds the horizon back.
type HorizonHolder struct {
	PID             int
	ApplicationName string
	// State is pg_stat_activity.state, e.g. "idle in transaction".
	State string
	// XactStart is when its transaction began; XactAge how long ago.
	XactStart time.Time
	XactAge   time.Duration
	// XidAge is age(backend_xid): how many transaction ids were assigned since.
	XidAge int32
}
