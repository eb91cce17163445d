// Package pgconfig builds the pool configuration of the programs (cmd/projector, cmd/replay) from a
// connection string and an optional password file, in one place and without ever quoting a secret: pgx's
// parse errors repeat the whole string, password included, so every error here names where the setting
// came from (a flag or an environment variable) and why it is unusable, never its value.
package pgconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SettingError is a connection setting the program cannot use: a string that does not parse, an
// unreadable or empty password file. Its text holds no secret.
type SettingError struct{ msg string }

func (e *SettingError) Error() string { return e.msg }

func settingErr(format string, args ...any) error {
	return &SettingError{msg: fmt.Sprintf(format, args...)}
}

// Params locate a database.
type Params struct {
	// URL is a PostgreSQL URL or key=value connection string (pgx's syntax); required.
	URL string
	// Source names where URL came from — "-database-url", "$USERSTORE_PROJECTOR_DATABASE_URL" — for
	// messages.
	Source string
	// PasswordFile, when set, holds the password: read now and again for every new connection (so a
	// rotated secret takes effect), replacing a password in URL.
	PasswordFile string
	// ApplicationName is the application_name of the connections when URL sets none.
	ApplicationName string
	// ConnectTimeout bounds a connection attempt when URL sets no connect_timeout.
	ConnectTimeout time.Duration
}

// PoolConfig parses p into a pool configuration. It opens no connection. Its errors are *SettingError.
func PoolConfig(p *Params) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(p.URL)
	if err != nil {
		return nil, settingErr("%s does not hold a valid PostgreSQL URL or key=value string", p.Source)
	}
	cc := cfg.ConnConfig
	if cc.RuntimeParams["application_name"] == "" && p.ApplicationName != "" {
		cc.RuntimeParams["application_name"] = p.ApplicationName
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = p.ConnectTimeout
	}
	if file := p.PasswordFile; file != "" {
		// Read now (a copy of the connection settings, as migrations.Up takes, has no pool hook) and
		// again for every new connection.
		password, err := ReadPassword(file)
		if err != nil {
			return nil, err
		}
		cc.Password = password
		cfg.BeforeConnect = func(_ context.Context, c *pgx.ConnConfig) error {
			password, err := ReadPassword(file)
			if err != nil {
				return err
			}
			c.Password = password
			return nil
		}
	}
	return cfg, nil
}

// ReadPassword reads a password file: its content without one trailing line break. The error, a
// *SettingError, names the file and the reason, never any content.
func ReadPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		reason := "unreadable"
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			reason = pathErr.Err.Error()
		}
		return "", settingErr("password file %q: %s", file, reason)
	}
	password := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if password == "" {
		return "", settingErr("password file %q is empty", file)
	}
	return password, nil
}
