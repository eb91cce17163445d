package pgtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRolesAndDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.Default(t)
	require.Contains(t, db.Name, "pgtest")

	for role, want := range map[pgtest.Role]string{
		pgtest.Owner:     "userstore_owner",
		pgtest.App:       "userstore_app",
		pgtest.Projector: "userstore_projector",
	} {
		var user, database, mode string
		require.NoError(t, db.Pool(t, role).QueryRow(ctx,
			`SELECT current_user, current_database(), current_setting('application_name')`).Scan(&user, &database, &mode))
		require.Equal(t, want, user)
		require.Equal(t, db.Name, database)
		require.Equal(t, "userstore-test/pgtest/"+role.String(), mode)
	}
	var super bool
	require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super))
	require.True(t, super)

	st, err := migrations.Status(ctx, pgtest.AppPool(t))
	require.NoError(t, err)
	require.True(t, st.UpToDate(), "the package database is migrated")
}

func TestNewDatabaseIsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("create", func(t *testing.T) {
		db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
		name = db.Name
		st, err := migrations.Status(ctx, db.Pool(t, pgtest.Owner))
		require.NoError(t, err)
		require.Zero(t, st.Current)
		conn := db.Conn(t, pgtest.App)
		require.NoError(t, conn.Ping(ctx))
	})
	var exists bool
	require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists))
	require.False(t, exists)
}

// TestMissingEnvironmentFailsLoudly: without the cluster's environment the tests fail and say how
// to run them; they never skip.
func TestMissingEnvironmentFailsLoudly(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestRolesAndDatabase$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USERSTORE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "the test binary must fail, got %v: %s", err, out)
	require.Equal(t, 2, exitErr.ExitCode())
	require.Contains(t, string(out), pgtest.EnvOwnerURL)
	require.Contains(t, string(out), "make test")
	require.NotContains(t, string(out), "PASS")
}
