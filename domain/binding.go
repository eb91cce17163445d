package domain

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Binding event types.
const (
	EventBindingCreated      = "binding.created"
	EventBindingRolesChanged = "binding.roles_changed"
	EventBindingRemoved      = "binding.removed"
)

// BindingCreated starts a binding's stream; it claims (application, user).
type BindingCreated struct {
	BindingID     uuid.UUID `json:"binding_id"`
	TenantID      uuid.UUID `json:"tenant_id"`
	ApplicationID uuid.UUID `json:"application_id"`
	UserID        uuid.UUID `json:"user_id"`
	Roles         []string  `json:"roles"`
	At            time.Time `json:"at"`
}

// BindingRolesChanged replaces the roles.
type BindingRolesChanged struct {
	ApplicationID uuid.UUID `json:"application_id"`
	UserID        uuid.UUID `json:"user_id"`
	Roles         []string  `json:"roles"`
	At            time.Time `json:"at"`
}

// BindingRemoved ends the binding and releases (application, user). The stream accepts nothing after it.
type BindingRemoved struct {
	ApplicationID uuid.UUID `json:"application_id"`
	UserID        uuid.UUID `json:"user_id"`
	At            time.Time `json:"at"`
}

func (BindingCreated) EventType() string       { return EventBindingCreated }
func (e BindingCreated) OccurredAt() time.Time { return e.At }

func (BindingRolesChanged) EventType() string       { return EventBindingRolesChanged }
func (e BindingRolesChanged) OccurredAt() time.Time { return e.At }

func (BindingRemoved) EventType() string       { return EventBindingRemoved }
func (e BindingRemoved) OccurredAt() time.Time { return e.At }

// BindingCommand is a command of the binding aggregate.
type BindingCommand interface{ bindingCommand() }

// Bind grants an active user roles in an active application; UserStatus and ApplicationStatus are their
// current statuses. Roles are normalized (NormalizeRoles).
type Bind struct {
	ID                uuid.UUID
	TenantID          uuid.UUID
	ApplicationID     uuid.UUID
	ApplicationStatus userstore.ApplicationStatus
	UserID            uuid.UUID
	UserStatus        userstore.UserStatus
	Roles             []string
	At                time.Time
}

// ChangeBindingRoles replaces the roles; the same set changes nothing.
type ChangeBindingRoles struct {
	Roles []string
	At    time.Time
}

// Unbind removes the binding.
type Unbind struct{ At time.Time }

func (Bind) bindingCommand()               {}
func (ChangeBindingRoles) bindingCommand() {}
func (Unbind) bindingCommand()             {}

// BindingState is the binding aggregate.
type BindingState struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	ApplicationID uuid.UUID
	UserID        uuid.UUID
	Roles         []string
	Removed       bool
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// StreamType implements Aggregate.
func (BindingState) StreamType() StreamType { return StreamBinding }

// Found implements Aggregate: a removed binding is gone.
func (s BindingState) Found() bool { return s.Version > 0 && !s.Removed }

// requireActiveApp refuses a command that needs an active application.
func requireActiveApp(status userstore.ApplicationStatus) error {
	switch status {
	case userstore.AppActive:
		return nil
	case "":
		return NotFound("application")
	case userstore.AppDeleted:
		return precondition(userstore.ReasonAppDeleted, "the application is deleted")
	default:
		return precondition(userstore.ReasonAppInactive, "the application is not active")
	}
}

// Decide decides a binding command.
func (s BindingState) Decide(cmd BindingCommand) ([]Event, error) {
	if c, ok := cmd.(Bind); ok {
		if s.Version > 0 {
			return nil, duplicate(userstore.KindEntityID)
		}
		if err := requireActiveUser(c.UserStatus); err != nil {
			return nil, err
		}
		if err := requireActiveApp(c.ApplicationStatus); err != nil {
			return nil, err
		}
		return []Event{BindingCreated{
			BindingID: c.ID, TenantID: c.TenantID, ApplicationID: c.ApplicationID, UserID: c.UserID,
			Roles: sortedSet(c.Roles), At: c.At,
		}}, nil
	}
	if !s.Found() {
		return nil, NotFound("binding")
	}
	switch c := cmd.(type) {
	case ChangeBindingRoles:
		roles := sortedSet(c.Roles)
		if slices.Equal(roles, s.Roles) {
			return nil, nil
		}
		return []Event{BindingRolesChanged{ApplicationID: s.ApplicationID, UserID: s.UserID, Roles: roles, At: c.At}}, nil
	case Unbind:
		return []Event{BindingRemoved{ApplicationID: s.ApplicationID, UserID: s.UserID, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one binding event.
func (s BindingState) Evolve(ev Event) BindingState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case BindingCreated:
		s.ID, s.TenantID, s.ApplicationID, s.UserID = e.BindingID, e.TenantID, e.ApplicationID, e.UserID
		s.Roles, s.CreatedAt = sortedSet(e.Roles), e.At
	case BindingRolesChanged:
		s.Roles = sortedSet(e.Roles)
	case BindingRemoved:
		s.Removed = true
	}
	return s
}

// View returns the binding entity (meaningful only while Found); Roles is never nil.
func (s BindingState) View() *userstore.Binding {
	return &userstore.Binding{
		ID: s.ID, TenantID: s.TenantID, ApplicationID: s.ApplicationID, UserID: s.UserID,
		Roles: sortedSet(s.Roles), Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// sortedSet returns a sorted, de-duplicated, non-nil copy of ss.
func sortedSet(ss []string) []string {
	out := append(make([]string, 0, len(ss)), ss...)
	slices.Sort(out)
	return slices.Compact(out)
}
