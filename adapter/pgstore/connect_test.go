package pgstore_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// connectConfig returns settings that reach the package database directly as role, with the role's
// password in a file of the test's.
func connectConfig(t *testing.T, role pgtest.Role) *pgstore.ConnectConfig {
	t.Helper()
	cc := pgtest.Default(t).PoolConfig(t, role).ConnConfig
	return &pgstore.ConnectConfig{
		Host:           cc.Host,
		Port:           cc.Port,
		Database:       cc.Database,
		User:           cc.User,
		PasswordFile:   writeSecret(t, cc.Password),
		ConnectTimeout: 10 * time.Second,
	}
}

// writeSecret writes a password file (mode 0600) in the test's directory and returns its path.
func writeSecret(t *testing.T, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(path, []byte(password+"\n"), 0o600))
	return path
}

// newPool opens a pool with pgstore.NewPool and closes it when the test ends.
func newPool(t *testing.T, cfg *pgstore.ConnectConfig) *pgxpool.Pool {
	t.Helper()
	pool, err := pgstore.NewPool(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// loginRole creates a throwaway LOGIN role (as the superuser) with password, a member of
// userstore_app, and drops it when the test ends.
func loginRole(t *testing.T, password string) string {
	t.Helper()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "ut_login_" + hex.EncodeToString(suffix)
	admin := pgtest.AdminPool(t)
	// A role's password cannot be a bind parameter: quote it as a literal.
	_, err := admin.Exec(t.Context(), "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN IN ROLE userstore_app PASSWORD "+quoteLiteral(password))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
		require.NoError(t, err)
		_, err = admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
	})
	return name
}

func setRolePassword(t *testing.T, role, password string) {
	t.Helper()
	_, err := pgtest.AdminPool(t).Exec(t.Context(), "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD "+quoteLiteral(password))
	require.NoError(t, err)
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on).
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// requireLibraryError checks that err is one of the library's and that pgx's connection and parse
// errors (which carry the settings, password included) are not reachable from it.
func requireLibraryError(t *testing.T, err error, want error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, want)
	var connectErr *pgconn.ConnectError
	require.False(t, errors.As(err, &connectErr), "a *pgconn.ConnectError is reachable from %v", err)
	var parseErr *pgconn.ParseConfigError
	require.False(t, errors.As(err, &parseErr), "a *pgconn.ParseConfigError is reachable from %v", err)
	var pgErr *pgconn.PgError
	require.False(t, errors.As(err, &pgErr), "a *pgconn.PgError is reachable from %v", err)
}

func TestNewPoolConnects(t *testing.T) {
	t.Parallel()
	cfg := connectConfig(t, pgtest.App)
	cfg.ApplicationName = "connect-test"
	pool := newPool(t, cfg)
	require.Equal(t, pgstore.ConnectMaxConnsDefault, pool.Config().MaxConns)
	require.Equal(t, pgx.QueryExecModeCacheStatement, pool.Config().ConnConfig.DefaultQueryExecMode)
	require.Nil(t, pool.Config().ConnConfig.TLSConfig, "a loopback host connects without TLS by default")
	require.Empty(t, pool.Config().ConnConfig.Password, "the password is fetched per connection, not kept in the config")
	require.Equal(t, "!password", pool.Config().ConnConfig.RequireAuth, "the password is never sent in clear text")

	var user, database, app string
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT current_user, current_database(), current_setting('application_name')`).Scan(&user, &database, &app))
	require.Equal(t, "userstore_app", user)
	require.Equal(t, pgtest.Default(t).Name, database)
	require.Equal(t, "connect-test", app)

	// The pool serves a store.
	s, err := pgstore.New(t.Context(), pool, nil)
	require.NoError(t, err)
	ctx, tn := tenantCtx(t, s)
	got, err := s.GetTenant(ctx)
	require.NoError(t, err)
	require.Equal(t, tn.ID, got.ID)
}

// TestNewPoolIgnoresTheEnvironment: the PG* variables that libpq and pgx honour change nothing (not
// parallel: it sets the process environment).
func TestNewPoolIgnoresTheEnvironment(t *testing.T) {
	cfg := connectConfig(t, pgtest.App) // before the environment changes: pgtest parses URLs
	pass := filepath.Join(t.TempDir(), "pgpass")
	require.NoError(t, os.WriteFile(pass, []byte("*:*:*:*:from-pgpass\n"), 0o600))
	for k, v := range map[string]string{
		"PGHOST": "/nonexistent", "PGPORT": "1", "PGDATABASE": "nope", "PGUSER": "nobody",
		"PGPASSWORD": "from-env", "PGPASSFILE": pass, "PGAPPNAME": "from-env",
		"PGOPTIONS": "-c search_path=from_env", "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/nonexistent",
		"PGCONNECT_TIMEOUT": "1", "PGTARGETSESSIONATTRS": "standby",
	} {
		t.Setenv(k, v)
	}
	pool := newPool(t, cfg)
	require.Empty(t, pool.Config().ConnConfig.Password)
	var app, searchPath string
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT current_setting('application_name'), current_setting('search_path')`).Scan(&app, &searchPath))
	require.Equal(t, pgstore.ConnectApplicationNameDefault, app)
	require.NotContains(t, searchPath, "from_env")
}

func TestNewPoolReadsThePasswordForEveryConnection(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first, second := "first-"+rand.Text(), "second-"+rand.Text()
	role := loginRole(t, first)
	cfg := connectConfig(t, pgtest.App)
	cfg.User = role
	cfg.PasswordFile = writeSecret(t, first)
	pool := newPool(t, cfg)

	// Rotation: the server takes a new password; connections opened before keep working, new ones
	// fail until the file holds the new password too, and then work without a new pool.
	setRolePassword(t, role, second)
	require.NoError(t, pool.Ping(ctx))
	pool.Reset()
	require.Error(t, pool.Ping(ctx), "a new connection with the old password must fail")

	require.NoError(t, os.WriteFile(cfg.PasswordFile, []byte(second), 0o600))
	pool.Reset()
	var user string
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, role, user)
}

func TestNewPoolCallsPasswordFuncForEveryConnection(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	password := pgtest.Default(t).PoolConfig(t, pgtest.App).ConnConfig.Password
	var calls atomic.Int32
	cfg := connectConfig(t, pgtest.App)
	cfg.PasswordFile = ""
	cfg.MaxConns = 3
	cfg.PasswordFunc = func(ctx context.Context) (string, error) {
		require.NotNil(t, ctx)
		calls.Add(1)
		return password, nil
	}
	pool := newPool(t, cfg)
	conns := make([]*pgxpool.Conn, 0, 3)
	for range 3 {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	require.Equal(t, int32(3), calls.Load(), "one call per connection")
}

func TestNewPoolRefusesInvalidSettings(t *testing.T) {
	t.Parallel()
	valid := func() *pgstore.ConnectConfig {
		return &pgstore.ConnectConfig{Host: "127.0.0.1", Database: "db", User: "u", PasswordFile: "/nonexistent"}
	}
	for _, tc := range []struct {
		field  string
		modify func(c *pgstore.ConnectConfig)
	}{
		{"host", func(c *pgstore.ConnectConfig) { c.Host = "" }},
		{"host", func(c *pgstore.ConnectConfig) { c.Host = "a,b" }},
		{"host", func(c *pgstore.ConnectConfig) { c.Host = "./relative" }},
		{"host", func(c *pgstore.ConnectConfig) { c.Host = "[::1]" }},
		{"database", func(c *pgstore.ConnectConfig) { c.Database = "" }},
		{"user", func(c *pgstore.ConnectConfig) { c.User = "" }},
		{"password_file", func(c *pgstore.ConnectConfig) {
			c.PasswordFunc = func(context.Context) (string, error) { return "x", nil }
		}},
		{"insecure", func(c *pgstore.ConnectConfig) { c.Insecure, c.TLSConfig = true, &tls.Config{} }},
		{"tls_config", func(c *pgstore.ConnectConfig) { c.Host, c.TLSConfig = "/var/run/postgresql", &tls.Config{} }},
		{"application_name", func(c *pgstore.ConnectConfig) { c.ApplicationName = string(make([]byte, 64)) }},
		{"max_conns", func(c *pgstore.ConnectConfig) { c.MaxConns = -1 }},
		{"connect_timeout", func(c *pgstore.ConnectConfig) { c.ConnectTimeout = -time.Second }},
	} {
		cfg := valid()
		tc.modify(cfg)
		_, err := pgstore.NewPool(t.Context(), cfg)
		requireLibraryError(t, err, userstore.ErrValidation)
		var verr *userstore.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Equal(t, tc.field, verr.Field)
	}
	_, err := pgstore.NewPool(t.Context(), nil)
	requireLibraryError(t, err, userstore.ErrValidation)
}

func TestNewPoolErrorsAreTheLibrarys(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("secret manager down")
	for _, tc := range []struct {
		name   string
		modify func(t *testing.T, c *pgstore.ConnectConfig)
		reason string
	}{
		{"closed port", func(t *testing.T, c *pgstore.ConnectConfig) { c.Port = closedPort(t) }, "connection refused"},
		{"wrong password", func(t *testing.T, c *pgstore.ConnectConfig) { c.PasswordFile = writeSecret(t, "wrong") }, "refused the login (SQLSTATE 28P01)"},
		{"no socket", func(t *testing.T, c *pgstore.ConnectConfig) { c.Host = "/nonexistent-socket-dir" }, "no socket at that path"},
		{"unknown database", func(t *testing.T, c *pgstore.ConnectConfig) { c.Database = "ut_no_such_database" }, "does not exist (SQLSTATE 3D000)"},
		{"unknown host", func(t *testing.T, c *pgstore.ConnectConfig) { c.Host, c.Insecure = "no-such-host.invalid", true }, "does not resolve"},
		{"missing password file", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.PasswordFile = filepath.Join(t.TempDir(), "missing")
		}, "no such file"},
		{"empty password file", func(t *testing.T, c *pgstore.ConnectConfig) { c.PasswordFile = writeSecret(t, "") }, "is empty"},
		{"no TLS on the server", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}, "connection failed"},
		{"password func fails", func(t *testing.T, c *pgstore.ConnectConfig) {
			c.PasswordFile = ""
			c.PasswordFunc = func(context.Context) (string, error) { return "", sentinel }
		}, "secret manager down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := connectConfig(t, pgtest.App)
			tc.modify(t, cfg)
			pool, err := pgstore.NewPool(t.Context(), cfg)
			require.Nil(t, pool)
			requireLibraryError(t, err, userstore.ErrUnavailable)
			require.Contains(t, err.Error(), tc.reason)
			if tc.name == "password func fails" {
				require.ErrorIs(t, err, sentinel, "the callback's own error stays reachable")
			}
		})
	}

	t.Run("context ended", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := pgstore.NewPool(ctx, connectConfig(t, pgtest.App))
		requireLibraryError(t, err, userstore.ErrUnavailable)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// TestNewPoolRequiresTLSForARemoteHost: by default, a host that is not a loopback address must offer
// TLS (the local cluster does not, so the connection fails); Insecure connects without it.
func TestNewPoolRequiresTLSForARemoteHost(t *testing.T) {
	t.Parallel()
	cfg := connectConfig(t, pgtest.App)
	host, port := forwardFromExternalAddress(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	cfg.Host, cfg.Port = host, port

	_, err := pgstore.NewPool(t.Context(), cfg)
	requireLibraryError(t, err, userstore.ErrUnavailable)

	cfg.Insecure = true
	pool := newPool(t, cfg)
	require.Nil(t, pool.Config().ConnConfig.TLSConfig)
	require.NoError(t, pool.Ping(t.Context()))

	cfg.Insecure = false
	cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS13}
	_, err = pgstore.NewPool(t.Context(), cfg)
	requireLibraryError(t, err, userstore.ErrUnavailable)
}

func TestNewPoolForPgBouncer(t *testing.T) {
	t.Parallel()
	bc := pgtest.Default(t).BouncerPoolConfig(t, pgtest.App).ConnConfig
	cfg := &pgstore.ConnectConfig{
		Host: bc.Host, Port: bc.Port, Database: bc.Database, User: bc.User,
		PasswordFile: writeSecret(t, bc.Password), PgBouncer: true,
	}
	pool := newPool(t, cfg)
	require.Equal(t, pgx.QueryExecModeExec, pool.Config().ConnConfig.DefaultQueryExecMode)
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT $1::int + 1`, 41).Scan(&n))
	require.Equal(t, 42, n)
}

// closedPort returns a TCP port of 127.0.0.1 on which nothing listens.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	return port
}

// forwardFromExternalAddress listens on a non-loopback IPv4 address of this machine and forwards every
// connection to target (plain TCP), until the test ends. It returns the address and port.
func forwardFromExternalAddress(t *testing.T, target string) (string, uint16) {
	t.Helper()
	var ip net.IP
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ip = n.IP
			break
		}
	}
	require.NotNil(t, ip, "this test needs a non-loopback IPv4 address on the machine")
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	require.NoError(t, err)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  = map[net.Conn]struct{}{}
	)
	// track registers the connections of one forward; it fails once the forwarder is closing.
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return false
		}
		for _, c := range cs {
			conns[c] = struct{}{}
		}
		wg.Add(2)
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			if !track(client, server) {
				_ = client.Close()
				_ = server.Close()
				return
			}
			go func() { defer wg.Done(); _, _ = io.Copy(server, client); _ = server.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(client, server); _ = client.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ip.String(), uint16(ln.Addr().(*net.TCPAddr).Port)
}
