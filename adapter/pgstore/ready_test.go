package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/migrations"
)

// failing returns the names of the checks that failed and are not warnings.
func failing(r *userstore.Readiness) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK && !c.Warning {
			out = append(out, c.Name)
		}
	}
	return out
}

func check(t *testing.T, r *userstore.Readiness, name string) userstore.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, r.Checks)
	return userstore.Check{}
}

func exec(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql string) {
	t.Helper()
	_, err := pool.Exec(ctx, sql)
	require.NoError(t, err)
}

func TestReadyOnTheHealthyDatabase(t *testing.T) {
	t.Parallel()
	r, err := shared(t).Ready(bounded(t, time.Minute))
	require.NoError(t, err)
	require.True(t, r.Ready, "%+v", r.Checks)
	for _, name := range []string{pgstore.CheckConnectivity, pgstore.CheckSchemaVersion, pgstore.CheckRowLevelSecurity,
		pgstore.CheckRole, pgstore.CheckSynchronousCommit, pgstore.CheckServerVersion} {
		require.True(t, check(t, r, name).OK, "%s: %s", name, check(t, r, name).Reason)
	}
	check(t, r, pgstore.CheckHorizon) // OK, or a warning when a test elsewhere holds the horizon
}

// TestReadyFailsForItsOwnReason breaks one thing at a time, each on a database (or a role) of its own,
// and expects exactly the check about that thing to fail, saying why.
func TestReadyFailsForItsOwnReason(t *testing.T) {
	t.Parallel()

	t.Run("RLSNotForced", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		db := pgtest.NewDatabase(t, nil)
		exec(t, ctx, db.Pool(t, pgtest.Owner), `ALTER TABLE userstore.accounts NO FORCE ROW LEVEL SECURITY`)
		r, err := newStore(t, db.Pool(t, pgtest.App), nil).Ready(ctx)
		require.NoError(t, err)
		require.False(t, r.Ready)
		require.Equal(t, []string{pgstore.CheckRowLevelSecurity}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckRowLevelSecurity).Reason, "not forced on userstore.accounts")
	})

	t.Run("RLSDisabled", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		db := pgtest.NewDatabase(t, nil)
		exec(t, ctx, db.Pool(t, pgtest.Owner), `ALTER TABLE userstore.claims DISABLE ROW LEVEL SECURITY`)
		r, err := newStore(t, db.Pool(t, pgtest.App), nil).Ready(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{pgstore.CheckRowLevelSecurity}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckRowLevelSecurity).Reason, "not enabled on userstore.claims")
	})

	t.Run("AppOwnsATable", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		db := pgtest.NewDatabase(t, nil)
		exec(t, ctx, db.Pool(t, pgtest.Admin), `ALTER TABLE userstore.memberships OWNER TO userstore_app`)
		r, err := newStore(t, db.Pool(t, pgtest.App), nil).Ready(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{pgstore.CheckRole}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckRole).Reason, "owns userstore.memberships")
	})

	t.Run("BypassRLS", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		// A throwaway login role with BYPASSRLS and the app role's privileges: roles are cluster-wide,
		// so userstore_app itself is left alone.
		role := "ut_bypass_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
		password := uuid.NewString()
		admin := pgtest.AdminPool(t)
		exec(t, ctx, admin, `CREATE ROLE `+role+` LOGIN BYPASSRLS IN ROLE userstore_app PASSWORD '`+password+`'`)
		cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
		cfg.ConnConfig.User, cfg.ConnConfig.Password = role, password
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() {
			pool.Close()
			_, _ = admin.Exec(context.WithoutCancel(ctx), `DROP ROLE IF EXISTS `+role)
		})
		r, err := newStore(t, pool, nil).Ready(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{pgstore.CheckRole}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckRole).Reason, "BYPASSRLS")
	})

	t.Run("SynchronousCommitOff", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		db := pgtest.NewDatabase(t, nil)
		exec(t, ctx, db.Pool(t, pgtest.Admin), `ALTER DATABASE `+pgx.Identifier{db.Name}.Sanitize()+` SET synchronous_commit = off`)
		r, err := newStore(t, db.Pool(t, pgtest.App), nil).Ready(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{pgstore.CheckSynchronousCommit}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckSynchronousCommit).Reason, "synchronous_commit is off")
	})

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		s := newStore(t, pool, nil)
		pool.Close()
		r, err := s.Ready(ctx)
		require.NoError(t, err)
		require.False(t, r.Ready)
		c := check(t, r, pgstore.CheckConnectivity)
		require.False(t, c.OK)
		require.Contains(t, c.Reason, userstore.ErrUnavailable.Error())
		require.NotContains(t, c.Reason, cfg.ConnConfig.Password)
	})

	t.Run("SchemaVersion", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t, time.Minute)
		db := pgtest.NewDatabase(t, nil)
		s := newStore(t, db.Pool(t, pgtest.App), nil)
		latest := migrations.Versions()[len(migrations.Versions())-1]
		exec(t, ctx, db.Pool(t, pgtest.Admin), `DELETE FROM `+migrations.VersionTable+` WHERE version_id = `+strconv.FormatInt(latest, 10))
		r, err := s.Ready(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{pgstore.CheckSchemaVersion}, failing(r))
		require.Contains(t, check(t, r, pgstore.CheckSchemaVersion).Reason, fmt.Sprintf("this build expects %d", latest))
	})
}

// TestReadyWarnsAboutAHeldHorizon: a transaction that holds an xid longer than HorizonWarnAfter holds
// back every reader of the log; Ready reports it as a warning naming its backend, and stays ready.
func TestReadyWarnsAboutAHeldHorizon(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	s := newStore(t, pgtest.AppPool(t), &pgstore.Config{HorizonWarnAfter: time.Nanosecond})
	holder := pgtest.Default(t).Conn(t, pgtest.App)
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // hold it as briefly as possible: others' Sync waits
	var (
		pid int
		xid string
	)
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid(), pg_current_xact_id()::text`).Scan(&pid, &xid))

	want := fmt.Sprintf("backend pid %d ", pid)
	// Any held transaction is older than the threshold at once; poll (bounded) only because another
	// package's transaction may be the oldest holder for a moment.
	var (
		last  *userstore.Readiness
		found userstore.Check
	)
	require.Eventually(t, func() bool {
		r, err := s.Ready(ctx)
		if err != nil {
			return false
		}
		last = r
		for _, c := range r.Checks {
			if c.Name == pgstore.CheckHorizon && c.Warning && strings.Contains(c.Reason, want) {
				found = c
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "no horizon warning naming pid %d", pid)
	require.True(t, last.Ready, "a held horizon is a warning, not unreadiness")
	require.False(t, found.OK)
}

// TestNewRefusesAnotherSchemaVersion: New refuses a database older (pending migrations, or none at
// all) or newer (a version this build does not know) than this build.
func TestNewRefusesAnotherSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	versions := migrations.Versions()
	latest := versions[len(versions)-1]

	requireMismatch := func(t *testing.T, pool *pgxpool.Pool, current int64) {
		t.Helper()
		_, err := pgstore.New(ctx, pool, nil)
		require.ErrorIs(t, err, userstore.ErrSchemaMismatch)
		var sm *userstore.SchemaMismatchError
		require.True(t, errors.As(err, &sm))
		require.Equal(t, current, sm.Current)
		require.Equal(t, latest, sm.Expected)
		require.Contains(t, err.Error(), fmt.Sprintf("database is at %d, code expects %d", current, latest))
	}

	t.Run("Unmigrated", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
		requireMismatch(t, db.Pool(t, pgtest.App), 0)
	})
	t.Run("OlderAndNewer", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t, nil)
		admin, app := db.Pool(t, pgtest.Admin), db.Pool(t, pgtest.App)
		s := newStore(t, app, nil)
		v, err := s.SchemaVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, &userstore.SchemaVersion{Current: latest, Expected: latest}, v)

		exec(t, ctx, admin, `DELETE FROM `+migrations.VersionTable+` WHERE version_id = `+strconv.FormatInt(latest, 10))
		requireMismatch(t, app, versions[len(versions)-2])
		v, err = s.SchemaVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, []int64{latest}, v.Pending)

		exec(t, ctx, admin, `INSERT INTO `+migrations.VersionTable+` (version_id, is_applied) VALUES (`+strconv.FormatInt(latest, 10)+`, true), (99999, true)`)
		requireMismatch(t, app, 99999)
	})
	t.Run("NilPool", func(t *testing.T) {
		_, err := pgstore.New(ctx, nil, nil)
		require.Error(t, err)
	})
	t.Run("InvalidConfig", func(t *testing.T) {
		_, err := pgstore.New(ctx, pgtest.AppPool(t), &pgstore.Config{MaxRetries: -1})
		require.ErrorContains(t, err, "Config.MaxRetries")
		_, err = pgstore.New(ctx, pgtest.AppPool(t), &pgstore.Config{RetryBaseDelay: time.Second, RetryMaxDelay: time.Millisecond})
		require.ErrorContains(t, err, "Config.RetryBaseDelay")
	})
}
