package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors; match them with errors.Is. No error of this package carries credentials, a URL's
// user information or a payload. Invalid configuration is a [*ConfigError] (projections.ErrValidation).
var (
	// ErrUnavailable: NATS could not be reached, the connection is down (it reconnects by itself), or
	// no stream answered in time. A batch that fails with it is tried again by the runner.
	ErrUnavailable = errors.New("outbox/jetstream: NATS unavailable")
	// ErrStreamNotFound: the stream does not exist and Config.CreateStream is off.
	ErrStreamNotFound = errors.New("outbox/jetstream: stream not found")
	// ErrStreamMismatch: the stream does not fit the configuration: it does not capture the subject,
	// its duplicate window is shorter than Config.DuplicateWindow, or it does not acknowledge publishes.
	ErrStreamMismatch = errors.New("outbox/jetstream: stream does not fit the configuration")
	// ErrRejected: the server refused a message or a request (a JetStream API error: a stream limit, a
	// permission, an unexpected stream). The error names the server's code and description.
	ErrRejected = errors.New("outbox/jetstream: rejected by NATS")
	// ErrClosed: the relay was closed.
	ErrClosed = errors.New("outbox/jetstream: relay is closed")
)

// unavailable are the client's errors that say the connection, not the request, failed.
var unavailable = []error{
	nats.ErrNoServers, nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
	nats.ErrReconnectBufExceeded, nats.ErrDisconnected, nats.ErrConnectionDraining, nats.ErrStaleConnection,
	nats.ErrNoResponders, nats.ErrNoStreamResponse, nats.ErrNoInfoReceived, nats.ErrMaxConnectionsExceeded,
	natsjs.ErrNoStreamResponse, context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
}

// refused are the client's errors, with fixed texts, that say the server or the client refused.
var refused = []error{
	nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
	nats.ErrPermissionViolation, nats.ErrMaxPayload, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted,
	nats.ErrBadSubject, nats.ErrHeadersNotSupported, nats.ErrTLS, nats.ErrInvalidJSAck,
}

// translate turns an error of the NATS client into this package's vocabulary; it is the only place
// that inspects the client's errors. The result names the cause in words that are safe to log: a
// client sentinel (a fixed text), a JetStream API error's code and description, a network operation.
// Anything else is named by its type only — a client error may quote a URL, credentials included. A
// context's cancellation stays matchable (a cancelled batch is not a failure of NATS).
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("outbox/jetstream: %s: %w", op, context.Canceled)
	}
	var apiErr *nats.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode != 0 {
		return fmt.Errorf("%w: %s: code %d, error code %d: %s", ErrRejected, op,
			apiErr.Code, apiErr.ErrorCode, apiErr.Description)
	}
	var jsAPIErr *natsjs.APIError
	if errors.As(err, &jsAPIErr) && jsAPIErr.ErrorCode != 0 {
		return fmt.Errorf("%w: %s: code %d, error code %d: %s", ErrRejected, op,
			jsAPIErr.Code, jsAPIErr.ErrorCode, jsAPIErr.Description)
	}
	for _, s := range unavailable {
		if errors.Is(err, s) {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, s)
		}
	}
	for _, s := range refused {
		if errors.Is(err, s) {
			return fmt.Errorf("%w: %s: %w", ErrRejected, op, s)
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		cause := opErr.Op
		if opErr.Err != nil {
			cause += ": " + opErr.Err.Error()
		}
		return fmt.Errorf("%w: %s: network: %s", ErrUnavailable, op, cause)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %s: network error (%T)", ErrUnavailable, op, netErr)
	}
	return fmt.Errorf("outbox/jetstream: %s: client error (%T)", op, err)
}
