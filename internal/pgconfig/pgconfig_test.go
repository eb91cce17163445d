package pgconfig_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgconfig"
)

const canary = "pgconfig-canary-7d21"

func TestPoolConfig(t *testing.T) {
	cfg, err := pgconfig.PoolConfig(&pgconfig.Params{URL: "postgres://u:pw@db.internal:5432/app", Source: "-database-url",
		ApplicationName: "prog", ConnectTimeout: 3 * time.Second})
	require.NoError(t, err)
	require.Equal(t, "prog", cfg.ConnConfig.RuntimeParams["application_name"])
	require.Equal(t, 3*time.Second, cfg.ConnConfig.ConnectTimeout)

	// The string's own settings win.
	cfg, err = pgconfig.PoolConfig(&pgconfig.Params{URL: "postgres://u@db/app?application_name=mine&connect_timeout=7",
		Source: "x", ApplicationName: "prog", ConnectTimeout: time.Second})
	require.NoError(t, err)
	require.Equal(t, "mine", cfg.ConnConfig.RuntimeParams["application_name"])
	require.Equal(t, 7*time.Second, cfg.ConnConfig.ConnectTimeout)
}

func TestErrorsQuoteNoSecret(t *testing.T) {
	_, err := pgconfig.PoolConfig(&pgconfig.Params{URL: "postgres://u:" + canary + "@db:notaport/app", Source: "$DB_URL"})
	var se *pgconfig.SettingError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "$DB_URL does not hold a valid PostgreSQL URL or key=value string", err.Error())

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = pgconfig.ReadPassword(empty)
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "is empty")
	_, err = pgconfig.ReadPassword(filepath.Join(dir, "missing"))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "no such file")
}

func TestPasswordFileIsReadForEveryConnection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte(canary+"\r\n"), 0o600))
	cfg, err := pgconfig.PoolConfig(&pgconfig.Params{URL: "postgres://u:old@db/app", Source: "x", PasswordFile: file})
	require.NoError(t, err)
	require.Equal(t, canary, cfg.ConnConfig.Password, "read at once")

	require.NoError(t, os.WriteFile(file, []byte("rotated"), 0o600))
	cc := cfg.ConnConfig.Copy()
	require.NoError(t, cfg.BeforeConnect(context.Background(), cc))
	require.Equal(t, "rotated", cc.Password, "read again for a new connection")
}
