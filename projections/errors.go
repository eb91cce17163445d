package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/netkingdom/userstore/internal/pgerr"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors; match them with errors.Is. No error of this package carries a connection string, a
// password, a PostgreSQL message or detail, or a bind value.
var (
	// ErrValidation: the input is invalid; nothing was sent to the database.
	ErrValidation = errors.New("projections: invalid input")
	// ErrUnknownProjection: the runner has no projection of that name.
	ErrUnknownProjection = errors.New("projections: unknown projection")
	// ErrNotParked: the event is not a parked dead letter of the tenant (Skip).
	ErrNotParked = errors.New("projections: event is not parked")
	// ErrRunning: Run was called while the Runner was already running.
	ErrRunning = errors.New("projections: runner is already running")
	// ErrUnavailable: the database could not be reached or the connection failed.
	ErrUnavailable = errors.New("projections: database unavailable")
	// ErrCheckpointMoved: a batch found its checkpoint moved by someone else when it tried to advance
	// it; the batch was rolled back (nothing of it committed). It should not happen while every writer
	// of checkpoints takes the partition's lock.
	ErrCheckpointMoved = errors.New("projections: checkpoint moved concurrently")
)

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

func invalid(field, reason string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrValidation, field, fmt.Sprintf(reason, args...))
}

// translate turns an error of a runtime statement into this package's vocabulary; it is the only place
// that inspects driver errors of the runtime's own SQL. Errors of a projection's Apply are recorded with
// redact instead.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrCheckpointMoved) || errors.Is(err, ErrValidation) || errors.Is(err, ErrNotParked) {
		return err
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("projections: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("projections: %s: %w", op, &DatabaseError{Code: pgErr.Code, Constraint: pgErr.ConstraintName})
	}
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("projections: %s: %w", op, ctxErr)
		}
	}
	if pgerr.IsConnection(err) {
		return fmt.Errorf("projections: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	// Anything else is a driver-side failure before the request was sent (e.g. encoding an argument):
	// its text may quote bind values, so name its type only.
	return fmt.Errorf("projections: %s: driver error (%s)", op, pgerr.Describe(err))
}

// projectionError wraps an error of a projection's StartBatch or Flush, which fails the whole batch. A
// context error stays matchable; the text is redacted like a dead letter's.
func projectionError(op string, err error) error {
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("projections: %s: %w", op, ctxErr)
		}
	}
	return fmt.Errorf("projections: %s: %s", op, redact(err))
}

// transient reports whether an Apply error says something about the connection or the moment rather
// than about the event: the batch then fails as a whole and is tried again, and the event is not parked.
// A cancelled context, a broken connection, and SQLSTATE classes 08 (connection), 40 (serialization
// failure, deadlock), 53 (insufficient resources), 57 (operator intervention: query cancelled, server
// shutting down), 58 (system error) and 55P03 (lock not available) are transient.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "55P03" {
			return true
		}
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	return pgerr.IsConnection(err)
}

// maxErrorBytes bounds the error text stored with a dead letter (the column's check allows 2048).
const maxErrorBytes = 1024

// redact returns the text of a projection's Apply error for the dead-letter table: the error's own text,
// except that a PostgreSQL error in it is reduced to its SQLSTATE and constraint (its message may quote
// values, its detail does) and a connect error to a fixed phrase; truncated to maxErrorBytes.
func redact(err error) string {
	text := err.Error()
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connectErr):
		text = "cannot connect to the database"
	case errors.As(err, &pgErr):
		safe := (&DatabaseError{Code: pgErr.Code, Constraint: pgErr.ConstraintName}).Error()
		if raw := pgErr.Error(); raw != "" && strings.Contains(text, raw) {
			text = strings.ReplaceAll(text, raw, safe)
		} else {
			text = safe
		}
	}
	if len(text) > maxErrorBytes {
		text = text[:maxErrorBytes]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
	}
	return text
}
