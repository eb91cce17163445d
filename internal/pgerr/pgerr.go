// Package pgerr describes driver errors for the packages that talk to PostgreSQL, in the one way that
// is safe to put into an error message or a log line: it names the cause (an SQLSTATE, a network
// operation, a timeout, a closed connection) and never quotes a server message, a Detail, a bind value
// or a connection setting.
package pgerr

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Describe names the cause of a driver error without quoting connection settings or values.
func Describe(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return "SQLSTATE " + pgErr.Code
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		if opErr.Err != nil {
			return "network: " + opErr.Op + ": " + opErr.Err.Error()
		}
		return "network: " + opErr.Op
	}
	if pgconn.Timeout(err) {
		return "timeout"
	}
	switch {
	case errors.Is(err, puddle.ErrClosedPool):
		return "closed pool"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, pgx.ErrTxClosed):
		return "connection closed"
	}
	return fmt.Sprintf("%T", err)
}

// IsConnection reports whether err says the connection failed (a network error, a closed connection or
// transaction, an unexpected end of stream, a timeout) rather than that the server refused a statement.
func IsConnection(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgx.ErrTxClosed) || pgconn.Timeout(err)
}
