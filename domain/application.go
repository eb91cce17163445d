package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Application event types.
const (
	EventApplicationRegistered = "application.registered"
	EventApplicationUpdated    = "application.updated"
	EventApplicationDisabled   = "application.disabled"
	EventApplicationEnabled    = "application.enabled"
	EventApplicationDeleted    = "application.deleted"
)

// ApplicationRegistered starts an application's stream; it claims the client key.
type ApplicationRegistered struct {
	ApplicationID uuid.UUID                 `json:"application_id"`
	TenantID      uuid.UUID                 `json:"tenant_id"`
	Name          string                    `json:"name"`
	ClientKey     string                    `json:"client_key"`
	Kind          userstore.ApplicationKind `json:"kind"`
	At            time.Time                 `json:"at"`
}

// ApplicationUpdated sets the name and kind.
type ApplicationUpdated struct {
	Name string                    `json:"name"`
	Kind userstore.ApplicationKind `json:"kind"`
	At   time.Time                 `json:"at"`
}

// ApplicationDisabled disables an active application.
type ApplicationDisabled struct {
	At time.Time `json:"at"`
}

// ApplicationEnabled enables a disabled application.
type ApplicationEnabled struct {
	At time.Time `json:"at"`
}

// ApplicationDeleted turns the application into a tombstone and releases ClientKey, its key at deletion.
type ApplicationDeleted struct {
	ClientKey string    `json:"client_key"`
	At        time.Time `json:"at"`
}

func (ApplicationRegistered) EventType() string       { return EventApplicationRegistered }
func (e ApplicationRegistered) OccurredAt() time.Time { return e.At }

func (ApplicationUpdated) EventType() string       { return EventApplicationUpdated }
func (e ApplicationUpdated) OccurredAt() time.Time { return e.At }

func (ApplicationDisabled) EventType() string       { return EventApplicationDisabled }
func (e ApplicationDisabled) OccurredAt() time.Time { return e.At }

func (ApplicationEnabled) EventType() string       { return EventApplicationEnabled }
func (e ApplicationEnabled) OccurredAt() time.Time { return e.At }

func (ApplicationDeleted) EventType() string       { return EventApplicationDeleted }
func (e ApplicationDeleted) OccurredAt() time.Time { return e.At }

// ApplicationCommand is a command of the application aggregate.
type ApplicationCommand interface{ applicationCommand() }

// RegisterApplication registers an application.
type RegisterApplication struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Name      string
	ClientKey string
	Kind      userstore.ApplicationKind
	At        time.Time
}

// UpdateApplication sets the name and kind; the same name and kind change nothing.
type UpdateApplication struct {
	Name string
	Kind userstore.ApplicationKind
	At   time.Time
}

// DisableApplication disables an active application.
type DisableApplication struct{ At time.Time }

// EnableApplication enables a disabled application.
type EnableApplication struct{ At time.Time }

// DeleteApplication deletes an active or disabled application. The cascade to its bindings is the
// engine's.
type DeleteApplication struct{ At time.Time }

func (RegisterApplication) applicationCommand() {}
func (UpdateApplication) applicationCommand()   {}
func (DisableApplication) applicationCommand()  {}
func (EnableApplication) applicationCommand()   {}
func (DeleteApplication) applicationCommand()   {}

// ApplicationState is the application aggregate.
type ApplicationState struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Name      string
	ClientKey string
	Kind      userstore.ApplicationKind
	Status    userstore.ApplicationStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StreamType implements Aggregate.
func (ApplicationState) StreamType() StreamType { return StreamApplication }

// Found implements Aggregate: a deleted application is a tombstone and still found.
func (s ApplicationState) Found() bool { return s.Version > 0 }

// Decide decides an application command. Every command on a deleted application is refused with
// ReasonAppDeleted.
func (s ApplicationState) Decide(cmd ApplicationCommand) ([]Event, error) {
	if c, ok := cmd.(RegisterApplication); ok {
		if s.Found() {
			return nil, duplicate(userstore.KindEntityID)
		}
		return []Event{ApplicationRegistered{ApplicationID: c.ID, TenantID: c.TenantID, Name: c.Name, ClientKey: c.ClientKey, Kind: c.Kind, At: c.At}}, nil
	}
	if !s.Found() {
		return nil, NotFound("application")
	}
	if s.Status == userstore.AppDeleted {
		return nil, precondition(userstore.ReasonAppDeleted, "the application is deleted")
	}
	switch c := cmd.(type) {
	case UpdateApplication:
		if c.Name == s.Name && c.Kind == s.Kind {
			return nil, nil
		}
		return []Event{ApplicationUpdated{Name: c.Name, Kind: c.Kind, At: c.At}}, nil
	case DisableApplication:
		if s.Status != userstore.AppActive {
			return nil, invalidState("only an active application can be disabled")
		}
		return []Event{ApplicationDisabled{At: c.At}}, nil
	case EnableApplication:
		if s.Status != userstore.AppDisabled {
			return nil, invalidState("only a disabled application can be enabled")
		}
		return []Event{ApplicationEnabled{At: c.At}}, nil
	case DeleteApplication:
		return []Event{ApplicationDeleted{ClientKey: s.ClientKey, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one application event.
func (s ApplicationState) Evolve(ev Event) ApplicationState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case ApplicationRegistered:
		s.ID, s.TenantID, s.Name, s.ClientKey = e.ApplicationID, e.TenantID, e.Name, e.ClientKey
		s.Kind, s.Status, s.CreatedAt = e.Kind, userstore.AppActive, e.At
	case ApplicationUpdated:
		s.Name, s.Kind = e.Name, e.Kind
	case ApplicationDisabled:
		s.Status = userstore.AppDisabled
	case ApplicationEnabled:
		s.Status = userstore.AppActive
	case ApplicationDeleted:
		s.Status, s.ClientKey = userstore.AppDeleted, ""
	}
	return s
}

// View returns the application entity; a deleted one has an empty client key.
func (s ApplicationState) View() *userstore.Application {
	return &userstore.Application{
		ID: s.ID, TenantID: s.TenantID, Name: s.Name, ClientKey: s.ClientKey, Kind: s.Kind,
		Status: s.Status, Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
