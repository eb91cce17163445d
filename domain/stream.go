package domain

import (
	"github.com/google/uuid"
)

// StreamType names the kind of aggregate a stream holds. One aggregate is one stream is one consistency
// boundary.
type StreamType string

// Stream types.
const (
	StreamTenant      StreamType = "tenant"
	StreamUser        StreamType = "user"
	StreamAccount     StreamType = "account"
	StreamIdentity    StreamType = "identity"
	StreamApplication StreamType = "application"
	StreamBinding     StreamType = "binding"
	StreamCatalog     StreamType = "catalog"
	// StreamProfile holds one user's values in one catalog; its id is ProfileStreamID(user, catalog).
	StreamProfile StreamType = "profile"
	// StreamRoster holds a tenant's memberships and the last-owner invariant; its id is
	// RosterStreamID(tenant).
	StreamRoster StreamType = "roster"
)

// StreamTypes lists every stream type.
var StreamTypes = []StreamType{
	StreamTenant, StreamUser, StreamAccount, StreamIdentity, StreamApplication,
	StreamBinding, StreamCatalog, StreamProfile, StreamRoster,
}

// Valid reports whether t is a known stream type.
func (t StreamType) Valid() bool {
	for _, s := range StreamTypes {
		if s == t {
			return true
		}
	}
	return false
}

// Entity returns the entity name the store reports for the stream type (in a VersionConflictError,
// for instance): the stream type itself, except "membership" for the roster, whose versions callers
// see per membership.
func (t StreamType) Entity() string {
	if t == StreamRoster {
		return "membership"
	}
	return string(t)
}

// StreamRef identifies one stream: its tenant, its type and its id. Stream ids are unique per tenant
// across all stream types: an entity id names exactly one stream.
type StreamRef struct {
	TenantID uuid.UUID
	Type     StreamType
	ID       uuid.UUID
}

// Namespaces of the name-based (version 5) stream ids. They are part of the stored data: never change
// them.
var (
	profileNamespace = uuid.MustParse("63921559-64f1-40a9-a868-99ecd982f02f")
	rosterNamespace  = uuid.MustParse("fe3206a3-f53a-4907-b21e-f19e87f80a67")
)

// ProfileStreamID returns the id of the profile stream of (user, catalog): a UUIDv5 of the two ids, so
// that every implementation and every replay derives the same one.
func ProfileStreamID(userID, catalogID uuid.UUID) uuid.UUID {
	name := make([]byte, 0, 32)
	name = append(name, userID[:]...)
	name = append(name, catalogID[:]...)
	return uuid.NewSHA1(profileNamespace, name)
}

// RosterStreamID returns the id of a tenant's membership roster stream: a UUIDv5 of the tenant id.
func RosterStreamID(tenantID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(rosterNamespace, tenantID[:])
}

// TenantRef returns the ref of a tenant's own stream; its id is the tenant id.
func TenantRef(tenantID uuid.UUID) StreamRef {
	return StreamRef{TenantID: tenantID, Type: StreamTenant, ID: tenantID}
}

// RosterRef returns the ref of a tenant's roster stream.
func RosterRef(tenantID uuid.UUID) StreamRef {
	return StreamRef{TenantID: tenantID, Type: StreamRoster, ID: RosterStreamID(tenantID)}
}

// ProfileRef returns the ref of the profile stream of (user, catalog).
func ProfileRef(tenantID, userID, catalogID uuid.UUID) StreamRef {
	return StreamRef{TenantID: tenantID, Type: StreamProfile, ID: ProfileStreamID(userID, catalogID)}
}

// Ref returns the ref of an entity's stream.
func Ref(tenantID uuid.UUID, t StreamType, id uuid.UUID) StreamRef {
	return StreamRef{TenantID: tenantID, Type: t, ID: id}
}
