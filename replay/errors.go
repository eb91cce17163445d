package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgerr"
)

// Sentinel errors; match them with errors.Is. No error of this package carries a connection string, a
// password, a PostgreSQL message or detail, or a bind value.
var (
	// ErrValidation: the input is invalid; nothing was sent to the database. Details in a
	// *ValidationError.
	ErrValidation = errors.New("replay: invalid input")
	// ErrNotFound: the entity has no event in the log (visible to the role).
	ErrNotFound = errors.New("replay: not found")
	// ErrUnavailable: the database could not be reached or the connection failed.
	ErrUnavailable = errors.New("replay: database unavailable")
	// ErrUndecodable: an event the operation needs does not decode with the domain's registry (an
	// unknown type or schema version, or a bad payload); the error names its position.
	ErrUndecodable = errors.New("replay: undecodable event")
)

// ValidationError says which input was invalid and why. It matches ErrValidation.
type ValidationError struct {
	// Field names the input, e.g. "TenantID".
	Field string
	// Reason says what is wrong, without quoting the value.
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("replay: invalid input: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrValidation) true.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

func invalid(field, reason string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(reason, args...)}
}

// DatabaseError is a database error that has no more specific meaning here. It carries the SQLSTATE,
// never the server's message or detail (they may quote values).
type DatabaseError struct {
	Code string
}

func (e *DatabaseError) Error() string {
	switch e.Code {
	case "42501":
		return "database error (SQLSTATE 42501: permission denied; run as the projector role)"
	case "40001":
		// On a hot standby, a long query conflicts with the replay of WAL (recovery conflict).
		return "database error (SQLSTATE 40001: serialization failure or, on a replica, a recovery conflict; " +
			"see max_standby_streaming_delay and hot_standby_feedback)"
	}
	return fmt.Sprintf("database error (SQLSTATE %s)", e.Code)
}

// translate turns an error of one of this package's statements into its vocabulary; it is the only place
// that inspects driver errors.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, own := range []error{ErrValidation, ErrNotFound, ErrUnavailable, ErrUndecodable} {
		if errors.Is(err, own) {
			return err
		}
	}
	var perr *parseError
	if errors.As(err, &perr) {
		return perr.err
	}
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("replay: %s: %w", op, ctxErr)
		}
	}
	// A connect error (even one the server reported, e.g. a failed login) holds the connection
	// settings: describe the cause, never wrap it.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("replay: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("replay: %s: %w", op, &DatabaseError{Code: pgErr.Code})
	}
	if pgerr.IsConnection(err) {
		return fmt.Errorf("replay: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	// Anything else is a driver-side failure (e.g. scanning a value): its text may quote values, so name
	// its type only.
	return fmt.Errorf("replay: %s: driver error (%s)", op, pgerr.Describe(err))
}

// fromEventstore wraps an error of the event store, which is already safe to show (it names SQLSTATEs
// and causes only), adding this package's sentinels.
func fromEventstore(op string, err error) error {
	if err == nil {
		return nil
	}
	var dbErr *eventstore.DatabaseError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("replay: %s: %w", op, err)
	case errors.Is(err, eventstore.ErrUnavailable):
		return fmt.Errorf("replay: %s: %w: %w", op, ErrUnavailable, err)
	case errors.As(err, &dbErr):
		return fmt.Errorf("replay: %s: %w", op, &DatabaseError{Code: dbErr.Code})
	}
	return fmt.Errorf("replay: %s: %w", op, err)
}

// parseError is a failure to parse a value this package read (not a driver error); its text is safe.
type parseError struct{ err error }

func (e *parseError) Error() string { return e.err.Error() }
