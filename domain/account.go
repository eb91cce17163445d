package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Account event types.
const (
	EventAccountOpened       = "account.opened"
	EventAccountLoginChanged = "account.login_changed"
	EventAccountLocked       = "account.locked"
	EventAccountUnlocked     = "account.unlocked"
	EventAccountClosed       = "account.closed"
)

// AccountOpened starts an account's stream; it claims the login name.
type AccountOpened struct {
	AccountID     uuid.UUID             `json:"account_id"`
	TenantID      uuid.UUID             `json:"tenant_id"`
	UserID        uuid.UUID             `json:"user_id"`
	LoginName     string                `json:"login_name"`
	Kind          userstore.AccountKind `json:"kind"`
	CredentialRef string                `json:"credential_ref,omitempty"`
	At            time.Time             `json:"at"`
}

// AccountLoginChanged replaces the login name (release the previous claim, take the new one).
type AccountLoginChanged struct {
	LoginName         string    `json:"login_name"`
	PreviousLoginName string    `json:"previous_login_name"`
	At                time.Time `json:"at"`
}

// AccountLocked locks an active account.
type AccountLocked struct {
	At time.Time `json:"at"`
}

// AccountUnlocked unlocks a locked account.
type AccountUnlocked struct {
	At time.Time `json:"at"`
}

// AccountClosed closes an account for good and releases LoginName, its login name at closing.
type AccountClosed struct {
	LoginName string    `json:"login_name"`
	At        time.Time `json:"at"`
}

func (AccountOpened) EventType() string       { return EventAccountOpened }
func (e AccountOpened) OccurredAt() time.Time { return e.At }

func (AccountLoginChanged) EventType() string       { return EventAccountLoginChanged }
func (e AccountLoginChanged) OccurredAt() time.Time { return e.At }

func (AccountLocked) EventType() string       { return EventAccountLocked }
func (e AccountLocked) OccurredAt() time.Time { return e.At }

func (AccountUnlocked) EventType() string       { return EventAccountUnlocked }
func (e AccountUnlocked) OccurredAt() time.Time { return e.At }

func (AccountClosed) EventType() string       { return EventAccountClosed }
func (e AccountClosed) OccurredAt() time.Time { return e.At }

// AccountCommand is a command of the account aggregate.
type AccountCommand interface{ accountCommand() }

// OpenAccount opens an account for a user; UserStatus is the user's current status (the engine loads
// it and guards the user), and the user must be active.
type OpenAccount struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	UserID        uuid.UUID
	UserStatus    userstore.UserStatus
	LoginName     string
	Kind          userstore.AccountKind
	CredentialRef string
	At            time.Time
}

// RenameAccountLogin sets the login name of an open account; the same name changes nothing.
type RenameAccountLogin struct {
	LoginName string
	At        time.Time
}

// LockAccount locks an active account.
type LockAccount struct{ At time.Time }

// UnlockAccount unlocks a locked account.
type UnlockAccount struct{ At time.Time }

// CloseAccount closes an active or locked account.
type CloseAccount struct{ At time.Time }

func (OpenAccount) accountCommand()        {}
func (RenameAccountLogin) accountCommand() {}
func (LockAccount) accountCommand()        {}
func (UnlockAccount) accountCommand()      {}
func (CloseAccount) accountCommand()       {}

// AccountState is the account aggregate.
type AccountState struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	UserID        uuid.UUID
	LoginName     string
	Kind          userstore.AccountKind
	Status        userstore.AccountStatus
	CredentialRef string
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// StreamType implements Aggregate.
func (AccountState) StreamType() StreamType { return StreamAccount }

// Found implements Aggregate: a closed account is still found.
func (s AccountState) Found() bool { return s.Version > 0 }

// Open reports whether the account is active or locked.
func (s AccountState) Open() bool {
	return s.Found() && s.Status != userstore.AccountClosed
}

// Decide decides an account command. Every command on a closed account is refused with
// ReasonAccountClosed.
func (s AccountState) Decide(cmd AccountCommand) ([]Event, error) {
	if c, ok := cmd.(OpenAccount); ok {
		if s.Found() {
			return nil, duplicate(userstore.KindEntityID)
		}
		if err := requireActiveUser(c.UserStatus); err != nil {
			return nil, err
		}
		return []Event{AccountOpened{
			AccountID: c.ID, TenantID: c.TenantID, UserID: c.UserID, LoginName: c.LoginName,
			Kind: c.Kind, CredentialRef: c.CredentialRef, At: c.At,
		}}, nil
	}
	if !s.Found() {
		return nil, NotFound("account")
	}
	if s.Status == userstore.AccountClosed {
		return nil, precondition(userstore.ReasonAccountClosed, "the account is closed")
	}
	switch c := cmd.(type) {
	case RenameAccountLogin:
		if c.LoginName == s.LoginName {
			return nil, nil
		}
		return []Event{AccountLoginChanged{LoginName: c.LoginName, PreviousLoginName: s.LoginName, At: c.At}}, nil
	case LockAccount:
		if s.Status != userstore.AccountActive {
			return nil, invalidState("only an active account can be locked")
		}
		return []Event{AccountLocked{At: c.At}}, nil
	case UnlockAccount:
		if s.Status != userstore.AccountLocked {
			return nil, invalidState("only a locked account can be unlocked")
		}
		return []Event{AccountUnlocked{At: c.At}}, nil
	case CloseAccount:
		return []Event{AccountClosed{LoginName: s.LoginName, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one account event.
func (s AccountState) Evolve(ev Event) AccountState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case AccountOpened:
		s.ID, s.TenantID, s.UserID, s.LoginName = e.AccountID, e.TenantID, e.UserID, e.LoginName
		s.Kind, s.CredentialRef, s.Status, s.CreatedAt = e.Kind, e.CredentialRef, userstore.AccountActive, e.At
	case AccountLoginChanged:
		s.LoginName = e.LoginName
	case AccountLocked:
		s.Status = userstore.AccountLocked
	case AccountUnlocked:
		s.Status = userstore.AccountActive
	case AccountClosed:
		s.Status = userstore.AccountClosed
	}
	return s
}

// View returns the account entity. A closed account keeps its last login name for the record; the name
// is no longer claimed.
func (s AccountState) View() *userstore.Account {
	return &userstore.Account{
		ID: s.ID, TenantID: s.TenantID, UserID: s.UserID, LoginName: s.LoginName, Kind: s.Kind,
		Status: s.Status, CredentialRef: s.CredentialRef, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
