package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// User event types.
const (
	EventUserCreated        = "user.created"
	EventUserProfileUpdated = "user.profile_updated"
	EventUserEmailChanged   = "user.email_changed"
	EventUserDisabled       = "user.disabled"
	EventUserEnabled        = "user.enabled"
	EventUserDeleted        = "user.deleted"
)

// UserCreated starts a user's stream; it claims the email.
type UserCreated struct {
	UserID      uuid.UUID `json:"user_id"`
	TenantID    uuid.UUID `json:"tenant_id"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	At          time.Time `json:"at"`
}

// UserProfileUpdated changes the display name.
type UserProfileUpdated struct {
	DisplayName string    `json:"display_name"`
	At          time.Time `json:"at"`
}

// UserEmailChanged replaces the email: the previous one's claim is released, the new one's taken (when
// the two differ only in case, the claim stays).
type UserEmailChanged struct {
	Email         string    `json:"email"`
	PreviousEmail string    `json:"previous_email"`
	At            time.Time `json:"at"`
}

// UserDisabled disables an active user.
type UserDisabled struct {
	At time.Time `json:"at"`
}

// UserEnabled enables a disabled user.
type UserEnabled struct {
	At time.Time `json:"at"`
}

// UserDeleted turns the user into a tombstone and releases Email, its email at deletion.
type UserDeleted struct {
	Email string    `json:"email"`
	At    time.Time `json:"at"`
}

func (UserCreated) EventType() string       { return EventUserCreated }
func (e UserCreated) OccurredAt() time.Time { return e.At }

func (UserProfileUpdated) EventType() string       { return EventUserProfileUpdated }
func (e UserProfileUpdated) OccurredAt() time.Time { return e.At }

func (UserEmailChanged) EventType() string       { return EventUserEmailChanged }
func (e UserEmailChanged) OccurredAt() time.Time { return e.At }

func (UserDisabled) EventType() string       { return EventUserDisabled }
func (e UserDisabled) OccurredAt() time.Time { return e.At }

func (UserEnabled) EventType() string       { return EventUserEnabled }
func (e UserEnabled) OccurredAt() time.Time { return e.At }

func (UserDeleted) EventType() string       { return EventUserDeleted }
func (e UserDeleted) OccurredAt() time.Time { return e.At }

// UserCommand is a command of the user aggregate.
type UserCommand interface{ userCommand() }

// CreateUser creates a user. DisplayName and Email are normalized.
type CreateUser struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	DisplayName string
	Email       string
	At          time.Time
}

// UpdateUserProfile sets the display name; the same name changes nothing.
type UpdateUserProfile struct {
	DisplayName string
	At          time.Time
}

// ChangeUserEmail sets the email; the same email (exactly) changes nothing.
type ChangeUserEmail struct {
	Email string
	At    time.Time
}

// DisableUser disables an active user.
type DisableUser struct{ At time.Time }

// EnableUser enables a disabled user.
type EnableUser struct{ At time.Time }

// DeleteUser deletes an active or disabled user. The cascade to its other aggregates is the engine's.
type DeleteUser struct{ At time.Time }

func (CreateUser) userCommand()        {}
func (UpdateUserProfile) userCommand() {}
func (ChangeUserEmail) userCommand()   {}
func (DisableUser) userCommand()       {}
func (EnableUser) userCommand()        {}
func (DeleteUser) userCommand()        {}

// UserState is the user aggregate.
type UserState struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	DisplayName string
	Email       string
	Status      userstore.UserStatus
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// StreamType implements Aggregate.
func (UserState) StreamType() StreamType { return StreamUser }

// Found implements Aggregate: a deleted user is a tombstone and still found.
func (s UserState) Found() bool { return s.Version > 0 }

// Decide decides a user command. Every command on a deleted user is refused with ReasonUserDeleted.
// Updates to the current value emit nothing; a status transition the state does not allow (enabling an
// active user) is refused with ReasonInvalidState.
func (s UserState) Decide(cmd UserCommand) ([]Event, error) {
	if c, ok := cmd.(CreateUser); ok {
		if s.Found() {
			return nil, duplicate(userstore.KindEntityID)
		}
		return []Event{UserCreated{UserID: c.ID, TenantID: c.TenantID, DisplayName: c.DisplayName, Email: c.Email, At: c.At}}, nil
	}
	if err := requireUserNotDeleted(s.Status); err != nil {
		return nil, err
	}
	switch c := cmd.(type) {
	case UpdateUserProfile:
		if c.DisplayName == s.DisplayName {
			return nil, nil
		}
		return []Event{UserProfileUpdated{DisplayName: c.DisplayName, At: c.At}}, nil
	case ChangeUserEmail:
		if c.Email == s.Email {
			return nil, nil
		}
		return []Event{UserEmailChanged{Email: c.Email, PreviousEmail: s.Email, At: c.At}}, nil
	case DisableUser:
		if s.Status != userstore.UserActive {
			return nil, invalidState("only an active user can be disabled")
		}
		return []Event{UserDisabled{At: c.At}}, nil
	case EnableUser:
		if s.Status != userstore.UserDisabled {
			return nil, invalidState("only a disabled user can be enabled")
		}
		return []Event{UserEnabled{At: c.At}}, nil
	case DeleteUser:
		return []Event{UserDeleted{Email: s.Email, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one user event.
func (s UserState) Evolve(ev Event) UserState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case UserCreated:
		s.ID, s.TenantID, s.DisplayName, s.Email, s.Status, s.CreatedAt = e.UserID, e.TenantID, e.DisplayName, e.Email, userstore.UserActive, e.At
	case UserProfileUpdated:
		s.DisplayName = e.DisplayName
	case UserEmailChanged:
		s.Email = e.Email
	case UserDisabled:
		s.Status = userstore.UserDisabled
	case UserEnabled:
		s.Status = userstore.UserActive
	case UserDeleted:
		s.Status, s.Email = userstore.UserDeleted, ""
	}
	return s
}

// View returns the user entity; a deleted user has an empty email.
func (s UserState) View() *userstore.User {
	return &userstore.User{
		ID: s.ID, TenantID: s.TenantID, DisplayName: s.DisplayName, Email: s.Email, Status: s.Status,
		Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
