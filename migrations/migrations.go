package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Schema is the PostgreSQL schema that holds every object of the store.
const Schema = "userstore"

// VersionTable is the schema-qualified table in which goose records the applied versions.
const VersionTable = Schema + ".goose_db_version"

// LockID is the PostgreSQL advisory lock key that serializes concurrent runs of [Up] (and the schema
// bootstrap). It is an arbitrary constant, distinct from goose's default key.
const LockID int64 = 0x7573_6572_7374_6f72 // "userstor"

//go:embed sql/*.sql
var embedded embed.FS

// files is the directory of versioned SQL files, named NNNNN_description.sql.
var files = mustSub(embedded, "sql")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// UpResult tells what [Up] did.
type UpResult struct {
	// Applied lists the versions this call applied, in order; empty when the schema was already up
	// to date (for example because a concurrent Up applied them).
	Applied []int64
	// Current is the schema version after the call.
	Current int64
}

// StatusResult reports the schema version of a database against the migrations compiled into this
// build.
type StatusResult struct {
	// Current is the highest applied version; 0 when none is.
	Current int64
	// Expected is the highest version compiled into this build.
	Expected int64
	// Applied lists the applied versions, ascending.
	Applied []int64
	// Pending lists compiled-in versions that are not applied, ascending.
	Pending []int64
	// Unknown lists applied versions this build does not know: the database was migrated by a
	// newer build.
	Unknown []int64
}

// UpToDate reports whether every compiled-in migration is applied and no unknown one is.
func (s *StatusResult) UpToDate() bool { return len(s.Pending) == 0 && len(s.Unknown) == 0 }

// Versions returns the versions compiled into this build, ascending.
func Versions() []int64 { return slices.Clone(compiledVersions()) }

var compiledVersions = sync.OnceValue(func() []int64 {
	p, err := newProvider(nil)
	if err != nil {
		panic(err) // the embedded files are checked by the tests
	}
	var out []int64
	for _, src := range p.ListSources() {
		out = append(out, src.Version)
	}
	return out
})

// Up applies every pending migration to the database of pool, creating the schema first if it
// does not exist. It is safe to run concurrently from several processes: runs are serialized by a
// session-level advisory lock (key [LockID]) and each version is applied exactly once; a run that
// waited finds nothing left to do.
//
// The pool's role becomes the owner of the objects; run Up as the owner/migrator role, never as
// the runtime app role. The roles userstore_app and userstore_projector must exist (see the
// package doc). Up holds a session lock, so it opens its own dedicated connections from the pool's
// connection settings (never one of the pool's connections, to which the lock could otherwise leak)
// and closes them before it returns; they must reach PostgreSQL directly or through a session-mode
// pooler, not through PgBouncer in transaction mode.
func Up(ctx context.Context, pool *pgxpool.Pool) (*UpResult, error) {
	if pool == nil {
		return nil, errors.New("migrations: up: pool is nil")
	}
	db := stdlib.OpenDB(*pool.Config().ConnConfig.Copy())
	db.SetMaxOpenConns(2)
	defer db.Close()

	if err := bootstrap(ctx, db); err != nil {
		return nil, fmt.Errorf("migrations: up: create schema %s: %w", Schema, safe(err))
	}
	p, err := newProvider(db, goose.WithSessionLocker(&blockingLocker{id: LockID}))
	if err != nil {
		return nil, fmt.Errorf("migrations: up: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: up: %w", safe(err))
	}
	res := &UpResult{}
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Version)
	}
	if res.Current, err = p.GetDBVersion(ctx); err != nil {
		return nil, fmt.Errorf("migrations: up: read version: %w", safe(err))
	}
	return res, nil
}

// bootstrap creates the schema that holds goose's version table. Concurrent CREATE SCHEMA IF NOT
// EXISTS can fail with a unique violation, so it runs under the same advisory lock, transaction-scoped.
// It checks for the schema first, so a role without CREATE on the database can run Up against a
// schema its DBA created.
func bootstrap(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, LockID); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regnamespace($1) IS NOT NULL`, Schema).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+Schema); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Status reports the schema version of the database of pool: current, expected (compiled in) and
// pending versions. It only reads (it creates nothing and takes no lock), so any role with SELECT on
// the version table may call it — the app and projector roles may — and it works through PgBouncer
// in transaction mode. On a database that was never migrated everything is pending.
func Status(ctx context.Context, pool *pgxpool.Pool) (*StatusResult, error) {
	if pool == nil {
		return nil, errors.New("migrations: status: pool is nil")
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()

	store, err := database.NewStore(database.DialectPostgres, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	expected := compiledVersions()
	st := &StatusResult{Expected: expected[len(expected)-1]}

	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, VersionTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrations: status: %w", safe(err))
	}
	applied := map[int64]bool{}
	if exists {
		rows, err := store.ListMigrations(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("migrations: status: %w", safe(err))
		}
		// Rows come newest first; the newest row of a version tells whether it is applied.
		seen := map[int64]bool{}
		for _, r := range rows {
			if seen[r.Version] {
				continue
			}
			seen[r.Version] = true
			if r.IsApplied && r.Version > 0 {
				applied[r.Version] = true
			}
		}
	}
	for v := range applied {
		st.Applied = append(st.Applied, v)
		if !slices.Contains(expected, v) {
			st.Unknown = append(st.Unknown, v)
		}
	}
	slices.Sort(st.Applied)
	slices.Sort(st.Unknown)
	if n := len(st.Applied); n > 0 {
		st.Current = st.Applied[n-1]
	}
	for _, v := range expected {
		if !applied[v] {
			st.Pending = append(st.Pending, v)
		}
	}
	return st, nil
}

func newProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	if db == nil {
		// ListSources needs no connection; goose insists on a non-nil *sql.DB, which never opens.
		db = sql.OpenDB(noConnector{})
		defer db.Close()
	}
	opts = append([]goose.ProviderOption{
		goose.WithTableName(VersionTable),
		goose.WithDisableGlobalRegistry(true),
	}, opts...)
	return goose.NewProvider(goose.DialectPostgres, db, files, opts...)
}

// blockingLocker is a goose session locker that waits for the advisory lock in PostgreSQL
// (pg_advisory_lock, cancelled with ctx) instead of polling pg_try_advisory_lock every few seconds:
// a run that waits for a concurrent one starts the moment the lock is free.
type blockingLocker struct{ id int64 }

func (l *blockingLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, l.id); err != nil {
		return fmt.Errorf("acquire migration lock: %w", err)
	}
	return nil
}

func (l *blockingLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, l.id).Scan(&released); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	if !released {
		return errors.New("release migration lock: lock was not held")
	}
	return nil
}

// safe keeps connection settings out of an error: pgx's connect errors hold them (password
// included), so a failed connection is described, not wrapped. Other errors — goose's, or a
// PostgreSQL error raised by a migration's DDL — pass through.
func safe(err error) error {
	var connectErr *pgconn.ConnectError
	if !errors.As(err, &connectErr) {
		return err
	}
	var pgErr *pgconn.PgError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pgErr):
		return fmt.Errorf("cannot connect to the database (SQLSTATE %s)", pgErr.Code)
	case errors.As(err, &opErr) && opErr.Err != nil:
		return fmt.Errorf("cannot connect to the database (network: %s: %s)", opErr.Op, opErr.Err.Error())
	}
	return errors.New("cannot connect to the database")
}

// noConnector is a database/sql connector that never connects (see newProvider).
type noConnector struct{}

var errNoConnection = errors.New("migrations: no database connection")

func (noConnector) Connect(context.Context) (driver.Conn, error) { return nil, errNoConnection }
func (noConnector) Driver() driver.Driver                        { return noDriver{} }

type noDriver struct{}

func (noDriver) Open(string) (driver.Conn, error) { return nil, errNoConnection }
