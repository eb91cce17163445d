package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// result is one run of the program.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the program with args, the environment vars (nothing else of the process's) and terminal
// flags for stdout and stderr.
type cli struct {
	vars           map[string]string
	stdoutTerminal bool
	stderrTerminal bool
}

func (c *cli) run(ctx context.Context, args ...string) result {
	var out, errOut bytes.Buffer
	env := &environ{
		stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return c.vars[k] },
		isTerminal: func(w io.Writer) bool {
			return (w == io.Writer(&out) && c.stdoutTerminal) || (w == io.Writer(&errOut) && c.stderrTerminal)
		},
	}
	code := run(ctx, args, env)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// fixture is a private database with a history of several tenants, projected by the audit projection.
type fixture struct {
	db      *pgtest.Database
	tenants []uuid.UUID
	cli     *cli
}

func setup(t *testing.T, tenants int) *fixture {
	t.Helper()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	f := &fixture{db: db, tenants: workload.History(t, ctx, s, tenants)}
	pool := db.Pool(t, pgtest.Projector)
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	runner, err := projections.New(pool, es, []projections.Projection{audit.New(nil)}, nil)
	require.NoError(t, err)
	require.NoError(t, runner.CatchUp(ctx))
	f.cli = &cli{vars: map[string]string{envDatabaseURL: databaseURL(t, db, pgtest.EnvProjectorURL)}}
	return f
}

// databaseURL returns the URL of the local cluster's role in env, on db.
func databaseURL(t *testing.T, db *pgtest.Database, env string) string {
	t.Helper()
	u, err := url.Parse(os.Getenv(env))
	require.NoError(t, err)
	u.Path = "/" + db.Name
	return u.String()
}

// asAdmin runs fn in a superuser transaction; replica skips triggers and foreign keys.
func asAdmin(t *testing.T, ctx context.Context, db *pgtest.Database, replica bool, stmts ...string) func(args ...any) {
	t.Helper()
	return func(args ...any) {
		t.Helper()
		require.NoError(t, pgx.BeginFunc(ctx, db.Pool(t, pgtest.Admin), func(tx pgx.Tx) error {
			if replica {
				if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
					return err
				}
			}
			for _, s := range stmts {
				tag, err := tx.Exec(ctx, s, args...)
				if err != nil {
					return err
				}
				require.Positive(t, tag.RowsAffected(), s)
			}
			return nil
		}))
	}
}
