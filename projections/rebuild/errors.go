package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/netkingdom/userstore/internal/pgerr"
	"github.com/netkingdom/userstore/projections"
)

// Sentinel errors; match them with errors.Is. No error of this package carries a connection string, a
// password, a PostgreSQL message or detail, or a bind value.
var (
	// ErrUnknownTarget: the target is not one of [Targets].
	ErrUnknownTarget = errors.New("rebuild: unknown target")
	// ErrNotRebuildable: the target exists but cannot be rebuilt (the outbox: it is a delivery, not
	// state — what it handed over cannot be taken back, and downstream deduplicates by event id).
	ErrNotRebuildable = errors.New("rebuild: target cannot be rebuilt")
	// ErrRunning: another rebuild (or cleanup) of the same target is running.
	ErrRunning = errors.New("rebuild: another rebuild of the target is running")
	// ErrDrift: the live tables differ from the rebuild; nothing was changed. See [DriftError].
	ErrDrift = errors.New("rebuild: the live tables differ from the rebuild")
	// ErrDeadLetters: the rebuilt audit projection parked events it could not apply; nothing was
	// changed.
	ErrDeadLetters = errors.New("rebuild: the rebuild parked dead letters")
	// ErrLocked: the swap could not take its locks within Opts.LockTimeout in Opts.SwapAttempts
	// attempts (a long transaction holds the tables, or writers kept deadlocking with it); nothing was
	// changed.
	ErrLocked = errors.New("rebuild: the swap could not take its locks")
	// ErrLostLock: the connection that held the target's lock broke during the run; nothing was
	// changed after that.
	ErrLostLock = errors.New("rebuild: lost the target's lock")
	// ErrUnavailable: the database could not be reached or the connection failed.
	ErrUnavailable = errors.New("rebuild: database unavailable")
)

// DriftError reports that the live tables of a target differ from their rebuild from the log: the
// tables whose row counts or checksums differ. The rebuild changed nothing; run it with Opts.Force to
// replace the live rows with the rebuilt ones. errors.Is(err, ErrDrift) holds.
type DriftError struct {
	Target string
	// Tables are the tables that differ, with both counts and checksums.
	Tables []TableResult
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Tables))
	for i, t := range e.Tables {
		parts[i] = fmt.Sprintf("%s (live %d rows, checksum %s; rebuilt %d rows, checksum %s)",
			t.Table, t.LiveRows, t.LiveChecksum, t.ShadowRows, t.ShadowChecksum)
	}
	return fmt.Sprintf("rebuild: %s: the live tables differ from the rebuild: %s", e.Target, strings.Join(parts, "; "))
}

// Is reports whether target is ErrDrift.
func (e *DriftError) Is(target error) bool { return target == ErrDrift }

// translate turns a driver error of this package's statements into its vocabulary: a server error is
// a *projections.DatabaseError (SQLSTATE and constraint, never the message or detail); a failed
// connection is ErrUnavailable; a context error stays matchable. It is the only place that inspects
// driver errors here.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, keep := range []error{ErrUnavailable, ErrDrift, ErrRunning, ErrLocked, ErrLostLock, ErrDeadLetters} {
		if errors.Is(err, keep) {
			return err
		}
	}
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("rebuild: %s: %w", op, ctxErr)
		}
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("rebuild: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("rebuild: %s: %w", op, &projections.DatabaseError{Code: pgErr.Code, Constraint: pgErr.ConstraintName})
	}
	var dbErr *projections.DatabaseError
	if errors.As(err, &dbErr) {
		return fmt.Errorf("rebuild: %s: %w", op, err)
	}
	if pgerr.IsConnection(err) {
		return fmt.Errorf("rebuild: %s: %w (%s)", op, ErrUnavailable, pgerr.Describe(err))
	}
	// A driver-side failure before the request was sent (encoding an argument): its text may quote
	// bind values, so name its type only.
	return fmt.Errorf("rebuild: %s: driver error (%s)", op, pgerr.Describe(err))
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	var dbErr *projections.DatabaseError
	if errors.As(err, &dbErr) {
		return dbErr.Code
	}
	return ""
}

// lockConflict reports whether an error is one a swap attempt may be retried after: its lock wait
// timed out (55P03, lock_timeout), it was chosen as a deadlock victim (40P01), or the audit swap's last
// catch-up outlasted the lock timeout.
func lockConflict(err error) bool {
	if errors.Is(err, errCatchUpTimeout) {
		return true
	}
	switch sqlState(err) {
	case "55P03", "40P01":
		return true
	}
	return false
}
