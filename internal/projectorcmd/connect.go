package projectorcmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/internal/pgconfig"
	"github.com/netkingdom/userstore/internal/pgerr"
)

// connectError is a failed connection attempt, described without the connection settings' secrets:
// the server's address, the role and the database, and the cause as internal/pgerr names it (an
// SQLSTATE, a network operation, a timeout) — never pgx's error, whose ConnectError carries the whole
// configuration, password included, nor the server's message.
type connectError struct {
	where  string
	reason string
	// service is what was unavailable; empty: the database.
	service string
}

func (e *connectError) Error() string {
	return fmt.Sprintf("connect to %s: %s unavailable (%s)", e.where, cmp.Or(e.service, "database"), e.reason)
}

// poolConfig builds a pool configuration from a database URL (or key=value string) and an optional
// password file (internal/pgconfig), and sizes the pool to at least minConns connections. Its errors
// never quote the URL nor the password file's content.
func poolConfig(o *dbOptions, minConns int32) (*pgxpool.Config, error) {
	if o.url == "" {
		return nil, usagef("no database: set %s", o.source)
	}
	cfg, err := pgconfig.PoolConfig(&pgconfig.Params{URL: o.url, Source: o.source, PasswordFile: o.passwordFile,
		ApplicationName: ApplicationNameDefault, ConnectTimeout: ConnectTimeoutDefault})
	if err != nil {
		return nil, usagef("%s", err)
	}
	cfg.MaxConns = max(cfg.MaxConns, minConns)
	return cfg, nil
}

// openPool opens a pool from o (no connection yet: pgxpool connects on first use).
func openPool(ctx context.Context, o *dbOptions, minConns int32) (*pgxpool.Pool, error) {
	cfg, err := poolConfig(o, minConns)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, describeConnect(cfg.ConnConfig, err)
	}
	return pool, nil
}

// connect opens a pool from o and checks that a connection can be made.
func connect(ctx context.Context, o *dbOptions, minConns int32) (*pgxpool.Pool, error) {
	pool, err := openPool(ctx, o, minConns)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, describeConnect(pool.Config().ConnConfig, err)
	}
	return pool, nil
}

// describeConnect turns a connection failure into a *connectError, or passes a usage error (a bad
// password file) through.
func describeConnect(cc *pgx.ConnConfig, err error) error {
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	where := cc.Host
	if !strings.HasPrefix(where, "/") {
		where = net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
	}
	return &connectError{
		where:  fmt.Sprintf("%s as %q, database %q", where, cc.User, cc.Database),
		reason: pgerr.Describe(err),
	}
}
