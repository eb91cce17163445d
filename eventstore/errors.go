package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/netkingdom/userstore/internal/pgerr"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors; match them with errors.Is. No error of this package carries a connection
// string, a password, a PostgreSQL error message or detail, or a bind value.
var (
	// ErrValidation: the input is invalid; nothing was sent to the database. Details in a
	// *ValidationError.
	ErrValidation = errors.New("eventstore: invalid input")
	// ErrVersionConflict: the stream's version did not match the expected version. Details in a
	// *VersionConflictError.
	ErrVersionConflict = errors.New("eventstore: version conflict")
	// ErrDuplicateEventID: an event with one of the given event ids is already in the log.
	ErrDuplicateEventID = errors.New("eventstore: duplicate event id")
	// ErrIsolation: AppendTx was called in a transaction below REPEATABLE READ.
	ErrIsolation = errors.New("eventstore: append needs a REPEATABLE READ or SERIALIZABLE transaction")
	// ErrPermission: the role may not do this, or a row-level security policy rejected the row
	// (e.g. the app role writing another tenant's events).
	ErrPermission = errors.New("eventstore: permission denied")
	// ErrUnavailable: the database could not be reached or the connection failed.
	ErrUnavailable = errors.New("eventstore: database unavailable")
	// ErrCommitOutcomeUnknown: the connection failed after the commit was sent; the append may
	// or may not have been committed. Never retry it blindly: read the stream (or use an
	// idempotency key) to find out.
	ErrCommitOutcomeUnknown = errors.New("eventstore: commit outcome unknown")
)

// ValidationError says which input was invalid and why. It matches ErrValidation.
type ValidationError struct {
	// Field names the input, e.g. "StreamID" or "Events[3].Payload".
	Field string
	// Reason says what is wrong, without quoting the value.
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("eventstore: invalid input: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrValidation) true.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

func invalid(field, reason string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(reason, args...)}
}

// ActualVersionUnknown is VersionConflictError.Actual when the actual version could not be read:
// AppendTx lost a race to a concurrent append (SQLSTATE 23505 or 40001) and the caller's
// transaction is aborted; the actual version is then greater than the expected one.
const ActualVersionUnknown int64 = -1

// VersionConflictError is a failed optimistic-concurrency check. It matches ErrVersionConflict.
type VersionConflictError struct {
	StreamID uuid.UUID
	// Expected is the caller's condition.
	Expected ExpectedVersion
	// Actual is the stream's version (0: no event), or ActualVersionUnknown.
	Actual int64
}

func (e *VersionConflictError) Error() string {
	actual := "unknown (a concurrent append won)"
	if e.Actual != ActualVersionUnknown {
		actual = fmt.Sprintf("%d", e.Actual)
	}
	return fmt.Sprintf("eventstore: version conflict on stream %s: expected %s, actual %s", e.StreamID, e.Expected, actual)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// DatabaseError is a database error that has no more specific meaning here. It carries the SQLSTATE
// and the constraint name, never the server's message or detail (they may quote values).
type DatabaseError struct {
	Code       string
	Constraint string
}

func (e *DatabaseError) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("database error (SQLSTATE %s, constraint %s)", e.Code, e.Constraint)
	}
	return fmt.Sprintf("database error (SQLSTATE %s)", e.Code)
}

// Constraint names of userstore.events (migrations/sql/00001_event_log.sql).
const (
	constraintStreamVersion = "events_stream_version_key"
	constraintEventID       = "events_event_id_key"
)

// SQLSTATE codes this package interprets.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeInsufficientPriv     = "42501"
	classDataException       = "22"
)

// conflictInfo is what translateError needs to build a VersionConflictError.
type conflictInfo struct {
	streamID uuid.UUID
	expected ExpectedVersion
}

// translateError turns an error from pgx into this package's vocabulary. It is the only place that
// inspects driver errors. op names the operation for the message ("append", "read stream", ...);
// conflict, when not nil, is the append whose conflicts are being translated; sent tells that a
// commit may have reached the server (so a broken connection leaves the outcome unknown).
func translateError(op string, err error, conflict *conflictInfo, sent bool) error {
	if err == nil || isOwn(err) {
		return err
	}
	// A connect error (even one the server reported, e.g. a failed login) never reached the point of sending anything. pgx's connect errors hold the
	// connection settings: describe the cause, never wrap it.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("eventstore: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case conflict != nil && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == constraintStreamVersion,
			conflict != nil && pgErr.Code == codeSerializationFailure:
			return &VersionConflictError{StreamID: conflict.streamID, Expected: conflict.expected, Actual: ActualVersionUnknown}
		case pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == constraintEventID:
			return fmt.Errorf("eventstore: %s: %w", op, ErrDuplicateEventID)
		case pgErr.Code == codeInsufficientPriv:
			return fmt.Errorf("eventstore: %s: %w", op, ErrPermission)
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == classDataException:
			// e.g. a JSON string escape PostgreSQL rejects; the statement wrote nothing.
			return &ValidationError{Field: "Events", Reason: fmt.Sprintf("rejected by the database (SQLSTATE %s)", pgErr.Code)}
		}
		return fmt.Errorf("eventstore: %s: %w", op, &DatabaseError{Code: pgErr.Code, Constraint: pgErr.ConstraintName})
	}
	// Did the request possibly reach the server? pgx marks the errors raised before anything was
	// sent as safe to retry.
	unknown := sent && !pgconn.SafeToRetry(err)
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			if unknown {
				return fmt.Errorf("eventstore: %s: %w: %w", op, ErrCommitOutcomeUnknown, ctxErr)
			}
			return fmt.Errorf("eventstore: %s: %w", op, ctxErr)
		}
	}
	if errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return fmt.Errorf("eventstore: %s: %w", op, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if unknown {
			return fmt.Errorf("eventstore: %s: %w (%s)", op, ErrCommitOutcomeUnknown, pgerr.Describe(err))
		}
		return fmt.Errorf("eventstore: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	// Anything else is a driver-side failure (e.g. encoding an argument) before the request was
	// sent. Its text may quote bind values: name its type only.
	return fmt.Errorf("eventstore: %s: driver error (%s)", op, pgerr.Describe(err))
}

// isOwn reports whether err was made by this package (for example by a batch callback) and needs no
// translation.
func isOwn(err error) bool {
	var (
		conflict   *VersionConflictError
		validation *ValidationError
	)
	return errors.As(err, &conflict) || errors.As(err, &validation) || errors.Is(err, ErrIsolation)
}
