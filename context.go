package userstore

import (
	"context"

	"github.com/google/uuid"
)

// ActorType says what kind of principal performs a mutation.
type ActorType string

// Actor types.
const (
	ActorUser    ActorType = "user"
	ActorService ActorType = "service"
	ActorSystem  ActorType = "system"
)

// Valid reports whether t is one of the known actor types.
func (t ActorType) Valid() bool {
	switch t {
	case ActorUser, ActorService, ActorSystem:
		return true
	}
	return false
}

// Actor is who performs a mutation: recorded in every event's metadata and every audit record.
type Actor struct {
	// Type is the kind of principal: user, service or system.
	Type ActorType `json:"type"`
	// ID identifies the principal within its type (a user id, a service name, a job name).
	ID string `json:"id"`
}

// IsZero reports whether no actor is set.
func (a Actor) IsZero() bool { return a.Type == "" && a.ID == "" }

type ctxKey int

const (
	tenantKey ctxKey = iota
	actorKey
	requestIDKey
)

// WithTenant returns a context that runs store calls in the given tenant.
func WithTenant(ctx context.Context, tenantID uuid.UUID) context.Context {
	return context.WithValue(ctx, tenantKey, tenantID)
}

// TenantFromContext returns the tenant set by WithTenant, if any.
func TenantFromContext(ctx context.Context) (uuid.UUID, bool) {
	id, ok := ctx.Value(tenantKey).(uuid.UUID)
	return id, ok && id != uuid.Nil
}

// WithActor returns a context whose mutations are performed by the given actor.
func WithActor(ctx context.Context, actor Actor) context.Context {
	return context.WithValue(ctx, actorKey, actor)
}

// ActorFromContext returns the actor set by WithActor, if any.
func ActorFromContext(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey).(Actor)
	return a, ok && !a.IsZero()
}

// WithRequestID returns a context whose mutations record the given request id.
func WithRequestID(ctx context.Context, requestID string) context.Context {
	return context.WithValue(ctx, requestIDKey, requestID)
}

// RequestIDFromContext returns the request id set by WithRequestID, if any.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(requestIDKey).(string)
	return id, ok && id != ""
}

// NewID returns a new entity id: a UUIDv7, so that ids sort by creation time.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }
