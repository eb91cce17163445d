package domain

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// NotFound returns an ErrNotFound naming the kind of entity ("user", "catalog attribute", …). The text
// is the same for a missing entity and for another tenant's, and never carries an id or a value.
func NotFound(entity string) error {
	return fmt.Errorf("%s: %w", entity, userstore.ErrNotFound)
}

func precondition(reason, msg string) error {
	return &userstore.PreconditionError{Reason: reason, Message: msg}
}

func duplicate(kind string) error { return &userstore.DuplicateError{Kind: kind} }

// invalidState is the refusal of a status transition the current state does not allow (enabling an
// active user, locking a locked account, …).
func invalidState(msg string) error { return precondition(userstore.ReasonInvalidState, msg) }

// CheckVersion returns a *userstore.VersionConflictError when expected is non-zero and differs from
// actual.
func CheckVersion(entity string, id uuid.UUID, expected, actual int64) error {
	if expected != 0 && expected != actual {
		return &userstore.VersionConflictError{Entity: entity, ID: id, Expected: expected, Actual: actual}
	}
	return nil
}

// requireActiveUser refuses a command that needs an active user: deleted → ReasonUserDeleted, otherwise
// not active → ReasonUserInactive; an empty status means the user was not found.
func requireActiveUser(status userstore.UserStatus) error {
	switch status {
	case userstore.UserActive:
		return nil
	case "":
		return NotFound("user")
	case userstore.UserDeleted:
		return precondition(userstore.ReasonUserDeleted, "the user is deleted")
	default:
		return precondition(userstore.ReasonUserInactive, "the user is not active")
	}
}

// requireUserNotDeleted refuses a command on a deleted (or unknown) user.
func requireUserNotDeleted(status userstore.UserStatus) error {
	switch status {
	case "":
		return NotFound("user")
	case userstore.UserDeleted:
		return precondition(userstore.ReasonUserDeleted, "the user is deleted")
	}
	return nil
}

// errUnknownCommand reports a command the aggregate does not know: a programming error.
func errUnknownCommand(cmd any) error {
	return fmt.Errorf("domain: unknown command %T", cmd)
}
