package pgerr_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgerr"
)

func TestDescribeNamesTheCauseOnly(t *testing.T) {
	t.Parallel()
	secret := "alice@example.com"
	pg := &pgconn.PgError{Code: "23505", Message: "duplicate key " + secret, Detail: "Key (email)=(" + secret + ")"}
	require.Equal(t, "SQLSTATE 23505", pgerr.Describe(fmt.Errorf("wrapped: %w", pg)))
	require.Equal(t, "network: dial: refused", pgerr.Describe(&net.OpError{Op: "dial", Err: errors.New("refused")}))
	require.Equal(t, "connection closed by the server", pgerr.Describe(io.ErrUnexpectedEOF))
	require.NotContains(t, pgerr.Describe(errors.New(secret)), secret)
}

func TestIsConnection(t *testing.T) {
	t.Parallel()
	require.True(t, pgerr.IsConnection(fmt.Errorf("x: %w", io.EOF)))
	require.True(t, pgerr.IsConnection(&net.OpError{Op: "read", Err: errors.New("reset")}))
	require.False(t, pgerr.IsConnection(&pgconn.PgError{Code: "23505"}))
}
