package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/migrations"
)

// helperEnv makes the test binary run migrations.Up against the named database and exit: the
// "other process" of TestConcurrentUpProcesses.
const helperEnv = "USERSTORE_MIGRATIONS_TEST_UP_DATABASE"

func TestMain(m *testing.M) {
	if db := os.Getenv(helperEnv); db != "" {
		os.Exit(runUpHelper(db))
	}
	pgtest.Main(m)
}

func runUpHelper(database string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(os.Getenv(pgtest.EnvOwnerURL))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: invalid", pgtest.EnvOwnerURL)
		return 2
	}
	cfg.ConnConfig.Database = database
	cfg.ConnConfig.RuntimeParams["application_name"] = "migrations-up-helper"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: connect failed")
		return 2
	}
	defer pool.Close()
	res, err := migrations.Up(ctx, pool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	out, _ := json.Marshal(res)
	fmt.Println("RESULT " + string(out))
	return 0
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestVersions(t *testing.T) {
	t.Parallel()
	v := migrations.Versions()
	require.NotEmpty(t, v)
	require.Equal(t, int64(1), v[0])
	for i := 1; i < len(v); i++ {
		require.Greater(t, v[i], v[i-1])
	}
}

func TestStatusBeforeAndAfterUp(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
	owner := db.Pool(t, pgtest.Owner)
	all := migrations.Versions()
	latest := all[len(all)-1]

	st, err := migrations.Status(ctx, owner)
	require.NoError(t, err)
	require.Equal(t, &migrations.StatusResult{Current: 0, Expected: latest, Pending: all}, st)
	require.False(t, st.UpToDate())

	res, err := migrations.Up(ctx, owner)
	require.NoError(t, err)
	require.Equal(t, all, res.Applied)
	require.Equal(t, latest, res.Current)

	for _, role := range []pgtest.Role{pgtest.Owner, pgtest.App, pgtest.Projector} {
		st, err = migrations.Status(ctx, db.Pool(t, role))
		require.NoError(t, err, role.String())
		require.Equal(t, &migrations.StatusResult{Current: latest, Expected: latest, Applied: all}, st, role.String())
		require.True(t, st.UpToDate())
	}

	// Running Up again does nothing.
	res, err = migrations.Up(ctx, owner)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Equal(t, latest, res.Current)

	// A version this build does not know (applied by a newer build) is reported.
	_, err = owner.Exec(ctx, `INSERT INTO `+migrations.VersionTable+` (version_id, is_applied) VALUES (99999, true)`)
	require.NoError(t, err)
	st, err = migrations.Status(ctx, owner)
	require.NoError(t, err)
	require.Equal(t, int64(99999), st.Current)
	require.Equal(t, []int64{99999}, st.Unknown)
	require.False(t, st.UpToDate())
}

// TestConcurrentUpProcesses: two processes run Up at the same moment on a fresh database; both
// succeed and the schema is applied once.
func TestConcurrentUpProcesses(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})
	admin := db.Pool(t, pgtest.Admin)

	// Hold the migration lock so that both processes start and queue on it; release it once both
	// wait, so they race from the same moment.
	gate, err := admin.Acquire(ctx)
	require.NoError(t, err)
	defer gate.Release()
	_, err = gate.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrations.LockID)
	require.NoError(t, err)

	exe, err := os.Executable()
	require.NoError(t, err)
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+db.Name)
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{out, err}
		}()
	}

	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			 WHERE datname = $1 AND application_name = 'migrations-up-helper' AND wait_event_type = 'Lock'`,
			db.Name).Scan(&waiting))
		if waiting == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "both processes should wait for the migration lock")
		<-poll.C
	}
	_, err = gate.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrations.LockID)
	require.NoError(t, err)

	var applied [][]int64
	for range 2 {
		r := <-results
		require.NoError(t, r.err, string(r.out))
		line := ""
		for l := range strings.Lines(string(r.out)) {
			if strings.HasPrefix(l, "RESULT ") {
				line = strings.TrimPrefix(strings.TrimSpace(l), "RESULT ")
			}
		}
		var res migrations.UpResult
		require.NoError(t, json.Unmarshal([]byte(line), &res), string(r.out))
		applied = append(applied, res.Applied)
	}
	all := migrations.Versions()
	require.ElementsMatch(t, [][]int64{all, nil}, applied, "one process applied everything, the other nothing")
	requireAppliedOnce(t, ctx, db)
}

// TestConcurrentUpGoroutines: several pools in one process run Up at once.
func TestConcurrentUpGoroutines(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t, &pgtest.DatabaseOpts{Unmigrated: true})

	const n = 4
	start := make(chan struct{})
	errs := make([]error, n)
	applied := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		pool := pgtest.NewPool(t, db.PoolConfig(t, pgtest.Owner))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := migrations.Up(ctx, pool)
			errs[i] = err
			if err == nil {
				applied[i] = len(res.Applied)
			}
		}()
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range n {
		require.NoError(t, errs[i])
		total += applied[i]
	}
	require.Equal(t, len(migrations.Versions()), total)
	requireAppliedOnce(t, ctx, db)
}

func requireAppliedOnce(t *testing.T, ctx context.Context, db *pgtest.Database) {
	t.Helper()
	rows, err := db.Pool(t, pgtest.Admin).Query(ctx,
		`SELECT version_id, count(*) FROM `+migrations.VersionTable+` GROUP BY version_id ORDER BY version_id`)
	require.NoError(t, err)
	counts := map[int64]int{}
	for rows.Next() {
		var v int64
		var c int
		require.NoError(t, rows.Scan(&v, &c))
		counts[v] = c
	}
	require.NoError(t, rows.Err())
	want := map[int64]int{0: 1}
	for _, v := range migrations.Versions() {
		want[v] = 1
	}
	require.Equal(t, want, counts)
	st, err := migrations.Status(ctx, db.Pool(t, pgtest.Owner))
	require.NoError(t, err)
	require.True(t, st.UpToDate())
}

// TestGrants: the app role may SELECT and INSERT on the log, nothing more, and owns nothing; the
// projector may only read; row-level security is forced.
func TestGrants(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	admin := pgtest.AdminPool(t)

	privileges := func(role string) map[string]bool {
		got := map[string]bool{}
		for _, p := range []string{"SELECT", "INSERT", "UPDATE", "REFERENCES"} {
			var ok bool
			require.NoError(t, admin.QueryRow(ctx, `SELECT has_any_column_privilege($1, 'userstore.events', $2)`, role, p).Scan(&ok))
			got[p] = ok
		}
		for _, p := range []string{"DELETE", "TRUNCATE", "TRIGGER"} {
			var ok bool
			require.NoError(t, admin.QueryRow(ctx, `SELECT has_table_privilege($1, 'userstore.events', $2)`, role, p).Scan(&ok))
			got[p] = ok
		}
		return got
	}
	require.Equal(t, map[string]bool{"SELECT": true, "INSERT": true, "UPDATE": false, "DELETE": false,
		"TRUNCATE": false, "REFERENCES": false, "TRIGGER": false}, privileges("userstore_app"))
	require.Equal(t, map[string]bool{"SELECT": true, "INSERT": false, "UPDATE": false, "DELETE": false,
		"TRUNCATE": false, "REFERENCES": false, "TRIGGER": false}, privileges("userstore_projector"))

	// The app role inserts every column except those that must take their defaults.
	rows, err := admin.Query(ctx, `
		SELECT attname, has_column_privilege('userstore_app', 'userstore.events', attname, 'INSERT')
		  FROM pg_attribute WHERE attrelid = 'userstore.events'::regclass AND attnum > 0 AND NOT attisdropped`)
	require.NoError(t, err)
	insertable := map[string]bool{}
	for rows.Next() {
		var col string
		var ok bool
		require.NoError(t, rows.Scan(&col, &ok))
		insertable[col] = ok
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]bool{
		"global_position": false, "transaction_id": false, "recorded_at": false,
		"tenant_id": true, "stream_type": true, "stream_id": true, "stream_version": true, "partition": true,
		"event_id": true, "event_type": true, "event_version": true, "payload": true, "metadata": true,
	}, insertable)

	for _, role := range []string{"userstore_app", "userstore_projector"} {
		var owns int
		var bypass, super, create bool
		require.NoError(t, admin.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			         WHERE n.nspname = 'userstore' AND c.relowner = r.oid)
			     + (SELECT count(*) FROM pg_namespace n WHERE n.nspname = 'userstore' AND n.nspowner = r.oid),
			       r.rolbypassrls, r.rolsuper, has_schema_privilege(r.rolname, 'userstore', 'CREATE')
			  FROM pg_roles r WHERE r.rolname = $1`, role).Scan(&owns, &bypass, &super, &create))
		require.Zero(t, owns, role)
		require.False(t, bypass, role)
		require.False(t, super, role)
		require.False(t, create, role)
	}

	var enabled, forced bool
	require.NoError(t, admin.QueryRow(ctx,
		`SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'userstore.events'::regclass`).Scan(&enabled, &forced))
	require.True(t, enabled)
	require.True(t, forced)

	var policies []string
	rows, err = admin.Query(ctx, `SELECT policyname || ':' || cmd || ':' || array_to_string(roles, ',')
		FROM pg_policies WHERE schemaname = 'userstore' AND tablename = 'events' ORDER BY policyname`)
	require.NoError(t, err)
	for rows.Next() {
		var p string
		require.NoError(t, rows.Scan(&p))
		policies = append(policies, p)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"events_app_insert:INSERT:userstore_app",
		"events_app_select:SELECT:userstore_app",
		"events_projector_select:SELECT:userstore_projector",
	}, policies)
}

// TestErrorsCarryNoPassword: a connection failure does not expose the connection settings.
func TestErrorsCarryNoPassword(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	const secret = "s3cret-password-value"
	cfg := pgtest.Default(t).PoolConfig(t, pgtest.Owner)
	cfg.ConnConfig.Password = secret
	pool := pgtest.NewPool(t, cfg)

	_, upErr := migrations.Up(ctx, pool)
	_, statusErr := migrations.Status(ctx, pool)
	for _, err := range []error{upErr, statusErr} {
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret)
		require.Contains(t, err.Error(), "28P01") // invalid password
		var connectErr *pgconn.ConnectError
		require.False(t, errors.As(err, &connectErr))
	}
}
