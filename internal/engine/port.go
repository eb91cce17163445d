package engine

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// UnitOfWork is the port an adapter implements for one transaction. The adapter opens it, runs one
// Op in it and commits; when Run returns an error it rolls everything back. Every method sees the
// writes made before it in the same unit of work (read-your-writes within the transaction).
//
// An adapter may defer its guards and writes (Guard, Append, Claim, Release, SaveIdempotency) to its
// commit, to send them together: then a write that fails — a claim another stream holds, a lost append race — fails the
// commit instead of the call, with the same error, and the Op's result is discarded. The engine allows
// it: a command takes its claims in its last step, after everything it reads and decides, so the first
// error a command meets is the same whether its writes fail at once or at commit.
//
// An adapter whose database may refuse a transaction for a serialization failure or a deadlock re-runs
// the whole Op in a new unit of work: Op.Run is re-runnable and decides again from what it loads.
type UnitOfWork interface {
	// Load returns the stream with the id in the tenant, whatever its type (ids are unique per tenant
	// across stream types); a stream that does not exist is a *Stream with Version 0 and no events.
	Load(ctx context.Context, tenantID, streamID uuid.UUID) (*Stream, error)

	// Append records a write: its events at versions ExpectedVersion+1…, with their metadata, and the
	// read-model change (the read row of a stream is State's view: see Write). It fails when the
	// stream's version is no longer ExpectedVersion (another transaction appended first); the adapter's
	// error for that is retryable.
	Append(ctx context.Context, w *Write) error

	// Claim takes a uniqueness claim for owner; a claim another stream holds is a
	// *userstore.DuplicateError of the claim's kind (never carrying the value).
	Claim(ctx context.Context, c domain.Claim, owner domain.StreamRef) error
	// Release releases a claim owner holds; releasing a claim it does not hold changes nothing.
	Release(ctx context.Context, c domain.Claim, owner domain.StreamRef) error

	// Guard declares that the command depends on the stream staying at version until commit, without
	// writing it: a concurrent append to that stream must make one of the two transactions fail (and be
	// re-run), or the command commit first — and then its events come first in the log too
	// (docs/adr/0010). The engine guards the tenant of every entity command and the aggregates whose
	// facts a command reads (the user of OpenAccount, LinkIdentity, Bind, AddMember, SetProfileValues
	// and ClearProfileValues; the application of Bind; the catalog of SetProfileValues and
	// ClearProfileValues), so that, for instance, DeleteUser racing OpenAccount cannot leave an open
	// account of a deleted user. In memory under one lock it is a no-op. On PostgreSQL (docs/adr/0004) the tenant and the catalog are guarded
	// by a shared row lock (FOR SHARE) on the read row plus a version check; the user and the application
	// need a real write of their read row, because DeleteUser and DeleteApplication read the dependents
	// with their snapshot and PostgreSQL fails their later write only if the row was modified, not if it
	// was merely locked.
	Guard(ctx context.Context, ref domain.StreamRef, version int64) error

	// UserDependents returns what a user's deletion cascades to, each list in id order.
	UserDependents(ctx context.Context, tenantID, userID uuid.UUID) (*UserDependents, error)
	// ApplicationBindings returns the ids of an application's bindings, in id order.
	ApplicationBindings(ctx context.Context, tenantID, applicationID uuid.UUID) ([]uuid.UUID, error)

	// Idempotency returns the record of an idempotency key in a tenant, or nil when there is none.
	Idempotency(ctx context.Context, tenantID uuid.UUID, key string) (*IdempotencyRecord, error)
	// SaveIdempotency records an idempotency key with the request's hash and result. Two transactions
	// saving the same (tenant, key) concurrently must not both commit (a unique key on it does): the
	// loser is re-run and then finds the winner's record.
	SaveIdempotency(ctx context.Context, rec *IdempotencyRecord) error
}

// Planner is an optional extension of UnitOfWork for adapters that pay per round trip. Op.Run calls
// Plan once, before any other method of the unit of work, with what the operation will read before it
// decides (see Plan); the adapter may fetch all of it at once and answer the calls that follow from what
// it fetched.
type Planner interface {
	Plan(ctx context.Context, p *Plan) error
}

// Plan is what an operation reads before it decides, known when it is prepared: its idempotency key
// and the streams it loads (those it guards included). It is a hint, not a contract: the operation may
// stop short of it (at its first error, or on a recorded idempotency key) or read more than it (a
// cascade's dependents), and the adapter must answer every call the same whether it was planned or not.
type Plan struct {
	TenantID uuid.UUID
	// IdempotencyKey is the key Idempotency is asked for first; empty when the operation has none.
	IdempotencyKey string
	// Streams are the ids of the streams, in TenantID, that Load is asked for, in that order.
	Streams []uuid.UUID
}

// Stream is a stream as Load returns it: its events in their stored form, oldest first.
type Stream struct {
	// Type is the stream's type; empty when the stream does not exist.
	Type domain.StreamType
	// Version is the number of events in the stream (the version of its last event); 0: no stream.
	Version int64
	// Events are the stream's events, Events[i] at version i+1.
	Events []domain.Encoded
}

// Write is one append to one stream, with the read-model change it implies.
type Write struct {
	Stream domain.StreamRef
	// ExpectedVersion is the stream's version the events were decided on (0: a new stream).
	ExpectedVersion int64
	// Events are the new events in order, at versions ExpectedVersion+1, +2, …
	Events []PendingEvent
	// Metadata goes with every event of the write.
	Metadata domain.Metadata
	// State is the aggregate after the events: one of the domain's state types (TenantState, UserState,
	// …, RosterState). The adapter's read model of the stream is its view: set the row to View(), or
	// delete it when the state is no longer Found (an unlinked identity, a removed binding); for the
	// roster, the memberships of the users the events name (domain.RosterUser) are set from
	// Membership(user) or deleted.
	State domain.Aggregate
}

// PendingEvent is one event of a Write: typed and encoded, with its id and stream version.
type PendingEvent struct {
	// EventID is the event's id: a new UUIDv7 (Config.NewID).
	EventID uuid.UUID
	// Version is the event's stream version.
	Version int64
	// Event is the typed event; Encoded its stored form (domain.Encode).
	Event domain.Event
	domain.Encoded
}

// UserDependents is what DeleteUser cascades to.
type UserDependents struct {
	// Accounts are the user's open (active or locked) accounts.
	Accounts []uuid.UUID
	// Identities are the user's linked identities.
	Identities []uuid.UUID
	// Bindings are the user's bindings.
	Bindings []uuid.UUID
	// Catalogs are the catalogs in which the user has a profile with values.
	Catalogs []uuid.UUID
}

// IdempotencyRecord is a used idempotency key.
type IdempotencyRecord struct {
	TenantID uuid.UUID
	// Key is the caller's idempotency key.
	Key string
	// Operation is the store operation the key was used with, e.g. "CreateUser".
	Operation string
	// RequestHash is the lower-case hex SHA-256 of the request's canonical encoding (see RequestHash).
	RequestHash string
	// Result is the JSON of the operation's result ("null" or "{}" for operations that return none).
	Result json.RawMessage
}

// DuplicateOf returns the error an adapter's Claim returns for a claim another stream holds.
func DuplicateOf(c domain.Claim) error { return &userstore.DuplicateError{Kind: c.Kind} }
