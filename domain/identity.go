package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Identity event types.
const (
	EventIdentityLinked   = "identity.linked"
	EventIdentityUnlinked = "identity.unlinked"
)

// IdentityLinked starts an identity link's stream; it claims (issuer, subject).
type IdentityLinked struct {
	IdentityID uuid.UUID `json:"identity_id"`
	TenantID   uuid.UUID `json:"tenant_id"`
	UserID     uuid.UUID `json:"user_id"`
	Issuer     string    `json:"issuer"`
	Subject    string    `json:"subject"`
	At         time.Time `json:"at"`
}

// IdentityUnlinked ends the link and releases (Issuer, Subject). The stream accepts nothing after it.
type IdentityUnlinked struct {
	UserID  uuid.UUID `json:"user_id"`
	Issuer  string    `json:"issuer"`
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
}

func (IdentityLinked) EventType() string       { return EventIdentityLinked }
func (e IdentityLinked) OccurredAt() time.Time { return e.At }

func (IdentityUnlinked) EventType() string       { return EventIdentityUnlinked }
func (e IdentityUnlinked) OccurredAt() time.Time { return e.At }

// IdentityCommand is a command of the identity aggregate.
type IdentityCommand interface{ identityCommand() }

// LinkIdentity links (Issuer, Subject) to an active user (UserStatus: the user's current status).
type LinkIdentity struct {
	ID         uuid.UUID
	TenantID   uuid.UUID
	UserID     uuid.UUID
	UserStatus userstore.UserStatus
	Issuer     string
	Subject    string
	At         time.Time
}

// UnlinkIdentity removes the link.
type UnlinkIdentity struct{ At time.Time }

func (LinkIdentity) identityCommand()   {}
func (UnlinkIdentity) identityCommand() {}

// IdentityState is the identity link aggregate.
type IdentityState struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	UserID    uuid.UUID
	Issuer    string
	Subject   string
	Unlinked  bool
	Version   int64
	CreatedAt time.Time
}

// StreamType implements Aggregate.
func (IdentityState) StreamType() StreamType { return StreamIdentity }

// Found implements Aggregate: an unlinked identity is gone.
func (s IdentityState) Found() bool { return s.Version > 0 && !s.Unlinked }

// Decide decides an identity command.
func (s IdentityState) Decide(cmd IdentityCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case LinkIdentity:
		if s.Version > 0 {
			return nil, duplicate(userstore.KindEntityID)
		}
		if err := requireActiveUser(c.UserStatus); err != nil {
			return nil, err
		}
		return []Event{IdentityLinked{IdentityID: c.ID, TenantID: c.TenantID, UserID: c.UserID, Issuer: c.Issuer, Subject: c.Subject, At: c.At}}, nil
	case UnlinkIdentity:
		if !s.Found() {
			return nil, NotFound("identity")
		}
		return []Event{IdentityUnlinked{UserID: s.UserID, Issuer: s.Issuer, Subject: s.Subject, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one identity event.
func (s IdentityState) Evolve(ev Event) IdentityState {
	if ev == nil {
		return s
	}
	s.Version++
	switch e := ev.(type) {
	case IdentityLinked:
		s.ID, s.TenantID, s.UserID, s.Issuer, s.Subject, s.CreatedAt = e.IdentityID, e.TenantID, e.UserID, e.Issuer, e.Subject, e.At
	case IdentityUnlinked:
		s.Unlinked = true
	}
	return s
}

// View returns the identity entity (meaningful only while Found).
func (s IdentityState) View() *userstore.ExternalIdentity {
	return &userstore.ExternalIdentity{
		ID: s.ID, TenantID: s.TenantID, UserID: s.UserID, Issuer: s.Issuer, Subject: s.Subject,
		Version: s.Version, CreatedAt: s.CreatedAt,
	}
}
