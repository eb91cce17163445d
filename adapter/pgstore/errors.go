package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/netkingdom/userstore/internal/pgerr"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/eventstore"
)

// Constraint names of migrations/sql/00002_read_model.sql that the store interprets. Violations are
// recognized by SQLSTATE and constraint name, never by message text.
const (
	constraintClaims          = "claims_pkey"
	constraintTenantSlug      = "tenant_slugs_pkey"
	constraintTenantSlugOwner = "tenant_slugs_tenant_key"
	constraintIdempotencyKey  = "idempotency_keys_pkey"
	constraintBindingPair     = "bindings_application_user_key"
)

// SQLSTATE codes and classes the store interprets.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeInsufficientPriv     = "42501"
	codeQueryCanceled        = "57014"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
	classConnection          = "08"
	classResources           = "53"
	classAuthorization       = "28"
)

// retryError marks a failure that re-running the whole mutation from BEGIN may cure: a serialization
// failure, a deadlock, a lost append race or a concurrent request with the same idempotency key. It
// carries the cause as a code, never the server's message.
type retryError struct {
	// cause is a SQLSTATE, or "append" for a lost append race, or "guard" for a guarded stream that
	// moved.
	cause string
}

func (e *retryError) Error() string { return "pgstore: transaction must be re-run (" + e.cause + ")" }

// internalError is an inconsistency the store found in its own work — a bug, neither the database's
// nor the caller's. translate passes it through as it is.
type internalError struct{ msg string }

func (e *internalError) Error() string { return "pgstore: " + e.msg }

func internalf(format string, args ...any) error {
	return &internalError{msg: fmt.Sprintf(format, args...)}
}

// errClaimTaken is a claim (or a tenant slug) another stream holds, found by the unique constraint of
// its table: the caller turns it into the *userstore.DuplicateError of the claim's kind.
var errClaimTaken = errors.New("pgstore: claim held by another stream")

// phase says how far a failed call may have got, for connection errors: phaseCommit means a COMMIT may
// have reached the server.
type phase int

const (
	phaseWork phase = iota
	phaseCommit
)

// translate turns an error of pgx, pgconn or eventstore into the store's vocabulary. It is the only
// place that inspects driver errors. The result never wraps a driver error (pgconn's connect errors
// carry the connection settings, password included), never carries PgError.Message or Detail (they
// may quote values) and never a bind value: only the operation, a SQLSTATE and a constraint name.
//
//   - pgx.ErrNoRows → userstore.ErrNotFound;
//   - 40001, 40P01, an eventstore version conflict (a concurrent append won), 23505 on
//     idempotency_keys_pkey or tenant_slugs_tenant_key → *retryError;
//   - 23505 on claims_pkey or tenant_slugs_pkey → errClaimTaken; on bindings_application_user_key →
//     a *userstore.DuplicateError of KindBinding;
//   - connect errors (a wrong password included), class 08, 28, 53, 57P01-03, broken connections →
//     userstore.ErrUnavailable, or userstore.ErrCommitOutcomeUnknown when a COMMIT may have been sent;
//   - context cancellation → the context's error (a connection attempt that timed out: both);
//   - anything else → an error naming the SQLSTATE and constraint, or the Go type of the cause.
func translate(op string, err error, ph phase) error {
	if err == nil || isOwn(err) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: %s: %w", op, userstore.ErrNotFound)
	}

	// eventstore has translated its own driver errors already; map its vocabulary onto ours.
	var conflict *eventstore.VersionConflictError
	switch {
	case errors.As(err, &conflict):
		return &retryError{cause: "append"}
	case errors.Is(err, eventstore.ErrCommitOutcomeUnknown):
		return fmt.Errorf("pgstore: %s: %w", op, userstore.ErrCommitOutcomeUnknown)
	case errors.Is(err, eventstore.ErrUnavailable):
		return fmt.Errorf("pgstore: %s: %w", op, userstore.ErrUnavailable)
	case errors.Is(err, eventstore.ErrPermission):
		return fmt.Errorf("pgstore: %s: permission denied (SQLSTATE %s)", op, codeInsufficientPriv)
	}
	var esDB *eventstore.DatabaseError
	if errors.As(err, &esDB) {
		return translatePg(op, esDB.Code, esDB.Constraint)
	}
	if errors.Is(err, eventstore.ErrValidation) || errors.Is(err, eventstore.ErrIsolation) ||
		errors.Is(err, eventstore.ErrDuplicateEventID) {
		// The engine hands eventstore valid input at REPEATABLE READ: this is a bug, not the caller's.
		return fmt.Errorf("pgstore: %s: %s", op, err.Error())
	}

	ctxErr := contextError(err)
	// A connect error never got as far as sending anything. It holds the connection settings: describe
	// its cause (a SQLSTATE such as 28P01, a network error, a timeout), never wrap it. A connection
	// attempt the caller cancelled is the context's error; one that timed out is also unavailability.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		switch ctxErr {
		case context.Canceled:
			return fmt.Errorf("pgstore: %s: %w", op, ctxErr)
		case context.DeadlineExceeded:
			return fmt.Errorf("pgstore: %s: %w (%s): %w", op, userstore.ErrUnavailable, pgerr.Describe(err), ctxErr)
		}
		return fmt.Errorf("pgstore: %s: %w (%s)", op, userstore.ErrUnavailable, pgerr.Describe(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return translatePg(op, pgErr.Code, pgErr.ConstraintName)
	}
	if ctxErr != nil {
		if ph == phaseCommit && !pgconn.SafeToRetry(err) {
			return fmt.Errorf("pgstore: %s: %w: %w", op, userstore.ErrCommitOutcomeUnknown, ctxErr)
		}
		return fmt.Errorf("pgstore: %s: %w", op, ctxErr)
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		// The server answered COMMIT with ROLLBACK: the transaction had failed; nothing was committed.
		return &retryError{cause: "rollback at commit"}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, pgx.ErrTxClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err) || isClosedPool(err) {
		// The server never answered. After a COMMIT was sent it may well have committed.
		if ph == phaseCommit && !pgconn.SafeToRetry(err) {
			return fmt.Errorf("pgstore: %s: %w (%s)", op, userstore.ErrCommitOutcomeUnknown, pgerr.Describe(err))
		}
		return fmt.Errorf("pgstore: %s: %w (%s)", op, userstore.ErrUnavailable, pgerr.Describe(err))
	}
	if ph == phaseCommit && !pgconn.SafeToRetry(err) {
		return fmt.Errorf("pgstore: %s: %w (%s)", op, userstore.ErrCommitOutcomeUnknown, pgerr.Describe(err))
	}
	// A driver-side failure before anything was sent (encoding an argument, scanning a row). Its text
	// may quote a value: name its type only.
	return fmt.Errorf("pgstore: %s: driver error (%s)", op, pgerr.Describe(err))
}

// contextError returns the context error err carries, if any.
func contextError(err error) error {
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return ctxErr
		}
	}
	return nil
}

// translatePg maps a server error, known by its SQLSTATE and constraint name.
func translatePg(op, code, constraint string) error {
	switch {
	case code == codeSerializationFailure || code == codeDeadlockDetected:
		return &retryError{cause: code}
	case code == codeUniqueViolation:
		switch constraint {
		case constraintClaims, constraintTenantSlug:
			return errClaimTaken
		case constraintIdempotencyKey, constraintTenantSlugOwner:
			// A concurrent transaction reserved the same idempotency key, or created the same tenant
			// id, and committed: a re-run sees its outcome.
			return &retryError{cause: code + " " + constraint}
		case constraintBindingPair:
			return &userstore.DuplicateError{Kind: userstore.KindBinding}
		}
	case code == codeQueryCanceled:
		return fmt.Errorf("pgstore: %s: %w (SQLSTATE %s)", op, context.Canceled, code)
	case len(code) == 5 && (code[:2] == classConnection || code[:2] == classResources || code[:2] == classAuthorization),
		code == codeAdminShutdown, code == codeCrashShutdown, code == codeCannotConnectNow:
		return fmt.Errorf("pgstore: %s: %w (SQLSTATE %s)", op, userstore.ErrUnavailable, code)
	}
	if constraint != "" {
		return fmt.Errorf("pgstore: %s: database error (SQLSTATE %s, constraint %s)", op, code, constraint)
	}
	return fmt.Errorf("pgstore: %s: database error (SQLSTATE %s)", op, code)
}

// isOwn reports whether err needs no translation: the store's own errors and the protocol's.
func isOwn(err error) bool {
	var (
		internal   *internalError
		retry      *retryError
		validation *userstore.ValidationError
		duplicate  *userstore.DuplicateError
		version    *userstore.VersionConflictError
		pre        *userstore.PreconditionError
		schema     *userstore.SchemaMismatchError
	)
	return errors.As(err, &internal) || errors.As(err, &retry) || errors.Is(err, errClaimTaken) || errors.As(err, &validation) ||
		errors.As(err, &duplicate) || errors.As(err, &version) || errors.As(err, &pre) || errors.As(err, &schema) ||
		errors.Is(err, userstore.ErrNotFound) || errors.Is(err, userstore.ErrConflict) ||
		errors.Is(err, userstore.ErrIdempotencyConflict) || errors.Is(err, userstore.ErrTenantRequired) ||
		errors.Is(err, userstore.ErrActorRequired) || errors.Is(err, userstore.ErrUnsupported) ||
		errors.Is(err, userstore.ErrUnavailable) || errors.Is(err, userstore.ErrCommitOutcomeUnknown)
}

// isClosedPool reports the error of acquiring a connection from a closed pgxpool.Pool.
func isClosedPool(err error) bool { return errors.Is(err, puddle.ErrClosedPool) }
