package faultproxy_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/faultproxy"
	"github.com/netkingdom/userstore/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// setup starts a proxy in front of the package database and returns it with a table to write to and a
// function that connects through the proxy as the owner.
func setup(t *testing.T) (*faultproxy.Proxy, string, func() *pgx.Conn) {
	t.Helper()
	db := pgtest.Default(t)
	direct := db.Pool(t, pgtest.Owner)
	table := fmt.Sprintf("fp_%d", time.Now().UnixNano())
	_, err := direct.Exec(t.Context(), "CREATE TABLE "+table+" (id int PRIMARY KEY)")
	require.NoError(t, err)
	cfg := db.PoolConfig(t, pgtest.Owner).ConnConfig.Copy()
	target := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	p, err := faultproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	cfg.Host, cfg.Port, cfg.TLSConfig, cfg.Fallbacks = "127.0.0.1", p.Port(), nil, nil
	connect := func() *pgx.Conn {
		conn, err := pgx.ConnectConfig(t.Context(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) })
		return conn
	}
	return p, table, connect
}

func count(t *testing.T, table string, id int) int {
	t.Helper()
	var n int
	require.NoError(t, pgtest.Default(t).Pool(t, pgtest.Owner).QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE id = $1", id).Scan(&n))
	return n
}

func TestPassForwards(t *testing.T) {
	t.Parallel()
	p, table, connect := setup(t)
	p.SetLatency(time.Millisecond)
	conn := connect()
	_, err := conn.Exec(t.Context(), "INSERT INTO "+table+" VALUES (1)")
	require.NoError(t, err)
	require.Equal(t, 1, count(t, table, 1))
}

func TestDropCommitReplyCommitsButBreaksTheClient(t *testing.T) {
	t.Parallel()
	p, table, connect := setup(t)
	conn := connect()
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "INSERT INTO "+table+" VALUES (2)")
	require.NoError(t, err)
	p.SetMode(faultproxy.DropCommitReply)
	require.Error(t, tx.Commit(t.Context()), "the client must not learn the outcome")
	require.Equal(t, int64(1), p.Commits())
	require.Equal(t, 1, count(t, table, 2), "the server committed")
}

func TestCloseBeforeCommitDoesNotCommit(t *testing.T) {
	t.Parallel()
	p, table, connect := setup(t)
	conn := connect()
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "INSERT INTO "+table+" VALUES (3)")
	require.NoError(t, err)
	p.SetMode(faultproxy.CloseBeforeCommit)
	require.Error(t, tx.Commit(t.Context()))
	// The server rolls the transaction back when it sees the connection end; wait for that, bounded.
	require.NoError(t, p.WaitClosed(t.Context()))
	require.Eventually(t, func() bool { return count(t, table, 3) == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestBlackholeHoldsTrafficUntilLifted(t *testing.T) {
	t.Parallel()
	p, _, connect := setup(t)
	conn := connect()
	p.SetMode(faultproxy.Blackhole)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT 1")
	require.Error(t, err, "a blackholed query cannot complete")
	p.SetMode(faultproxy.Pass)
	// pgx closes a connection whose query was cancelled mid-flight; a new one works again.
	conn2 := connect()
	_, err = conn2.Exec(t.Context(), "SELECT 1")
	require.NoError(t, err)
}

func TestRefuseClosesNewConnections(t *testing.T) {
	t.Parallel()
	p, _, connect := setup(t)
	conn := connect()
	p.SetMode(faultproxy.Refuse)
	_, err := conn.Exec(t.Context(), "SELECT 1")
	require.NoError(t, err, "existing connections keep working")
	cfg := conn.Config().Copy()
	_, err = pgx.ConnectConfig(t.Context(), cfg)
	require.Error(t, err)
}
