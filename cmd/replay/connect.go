package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/internal/pgconfig"
	"github.com/netkingdom/userstore/internal/pgerr"
)

// The environment variables of the connection. Their values hold a password or its file: never print
// them.
const (
	envDatabaseURL          = "USERSTORE_REPLAY_DATABASE_URL"
	envProjectorDatabaseURL = "USERSTORE_PROJECTOR_DATABASE_URL" // what scripts/pg.sh env prints
	envPasswordFile         = "USERSTORE_REPLAY_DATABASE_PASSWORD_FILE"
)

// Connection defaults.
const (
	applicationName = "userstore-replay"
	connectTimeout  = 10 * time.Second
	// maxConns: a command uses one connection (its transaction); one more is spare.
	maxConns = 2
)

// connectError is a failed connection, described without secrets: the server's address, the role, the
// database and the cause as internal/pgerr names it — never pgx's error (its ConnectError carries the
// whole configuration, password included) nor the server's message.
type connectError struct {
	where, reason string
}

func (e *connectError) Error() string {
	return fmt.Sprintf("connect to %s: database unavailable (%s)", e.where, e.reason)
}

// poolConfig builds the pool configuration from the command's settings. Its errors never quote the URL
// (pgx's parse errors do, password included) nor the password file's content.
func poolConfig(c *command) (*pgxpool.Config, error) {
	url, source := c.databaseURL, "--database-url"
	for _, env := range []string{envDatabaseURL, envProjectorDatabaseURL} {
		if url == "" {
			url, source = c.env.getenv(env), "$"+env
		}
	}
	if url == "" {
		return nil, usageErr("no database: set $%s (or $%s) to a PostgreSQL URL", envDatabaseURL, envProjectorDatabaseURL)
	}
	file := c.passwordFile
	if file == "" {
		file = c.env.getenv(envPasswordFile)
	}
	cfg, err := pgconfig.PoolConfig(&pgconfig.Params{URL: url, Source: source, PasswordFile: file,
		ApplicationName: applicationName, ConnectTimeout: connectTimeout})
	if err != nil {
		return nil, usageErr("%s", err)
	}
	cfg.MaxConns = maxConns
	cfg.MinConns = 0
	return cfg, nil
}

// connect opens the command's pool and checks that a connection can be made.
func connect(ctx context.Context, c *command) (*pgxpool.Pool, error) {
	cfg, err := poolConfig(c)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, describeConnect(cfg.ConnConfig, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, describeConnect(cfg.ConnConfig, err)
	}
	return pool, nil
}

// describeConnect turns a connection failure into a *connectError.
func describeConnect(cc *pgx.ConnConfig, err error) error {
	where := cc.Host
	if !strings.HasPrefix(where, "/") {
		where = net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
	}
	return &connectError{where: fmt.Sprintf("%s as %q, database %q", where, cc.User, cc.Database), reason: pgerr.Describe(err)}
}
