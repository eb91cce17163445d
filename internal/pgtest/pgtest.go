package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/netkingdom/userstore/migrations"
)

// The environment variables that locate the local cluster, as printed by `scripts/pg.sh env`. Each
// holds a URL with a password: never print them.
const (
	EnvOwnerURL     = "USERSTORE_DATABASE_URL"           // userstore_owner: owns the schema, runs migrations, CREATEDB
	EnvAppURL       = "USERSTORE_APP_DATABASE_URL"       // userstore_app: the library's runtime role
	EnvProjectorURL = "USERSTORE_PROJECTOR_DATABASE_URL" // userstore_projector: reads all tenants
	EnvAdminURL     = "USERSTORE_ADMIN_DATABASE_URL"     // a superuser
)

// Role selects the PostgreSQL role a pool connects as. Roles are cluster-wide, so the grants and
// policies that the migrations give a role apply in every test database.
type Role int

const (
	// Owner is userstore_owner: owns the schema and the tables (FORCE RLS: it sees no event row).
	Owner Role = iota
	// App is userstore_app: SELECT and INSERT on the log, tenant-scoped by row-level security.
	App
	// Projector is userstore_projector: reads every tenant.
	Projector
	// Admin is a superuser: bypasses RLS; for tests that inspect or tamper with raw rows.
	Admin
)

var roleEnv = map[Role]string{Owner: EnvOwnerURL, App: EnvAppURL, Projector: EnvProjectorURL, Admin: EnvAdminURL}

// The environment variables that locate the local PgBouncers (transaction pooling mode), as printed by
// `scripts/pg.sh env`. The URLs hold a password: never print them.
const (
	EnvBouncerOwnerURL     = "USERSTORE_PGBOUNCER_DATABASE_URL"           // userstore_owner through PgBouncer
	EnvBouncerAppURL       = "USERSTORE_PGBOUNCER_APP_DATABASE_URL"       // userstore_app through PgBouncer
	EnvBouncerProjectorURL = "USERSTORE_PGBOUNCER_PROJECTOR_DATABASE_URL" // userstore_projector through PgBouncer
	// EnvBouncerSinglePort is the port of the second PgBouncer, whose pool holds exactly one server
	// connection per (database, user); the URLs above reach it with this port instead.
	EnvBouncerSinglePort = "USERSTORE_PGBOUNCER_SINGLE_PORT"
)

// bouncerEnv has no superuser: the PgBouncers authenticate the userstore_* roles only.
var bouncerEnv = map[Role]string{Owner: EnvBouncerOwnerURL, App: EnvBouncerAppURL, Projector: EnvBouncerProjectorURL}

func (r Role) String() string {
	switch r {
	case Owner:
		return "owner"
	case App:
		return "app"
	case Projector:
		return "projector"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// MaxConnsDefault is the size of each pool the package hands out.
const MaxConnsDefault = 32

const setupHint = "Run the tests with `make test`, or start the local database and load its settings first:\n" +
	"\tscripts/pg.sh up && eval \"$(scripts/pg.sh env)\" && go test ./..."

// Database is a throwaway database in the local cluster.
type Database struct {
	// Name is the database name.
	Name string

	mu    sync.Mutex
	pools map[Role]*pgxpool.Pool
}

var (
	mainMu  sync.Mutex
	mainDB  *Database
	pkgName = packageName()
)

// Main is the TestMain of a package that uses PostgreSQL:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// It creates the package's own database (named after the package), applies the migrations with
// migrations.Up as the owner role, runs the tests, closes the pools, drops the database and then
// checks for leaked goroutines with goleak (extra goleak options may be given). It exits the process
// with the tests' status. When the environment variables of the local cluster are missing it fails
// loudly: it never skips.
func Main(m *testing.M, opts ...goleak.Option) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts []goleak.Option) int {
	if err := checkEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	db, err := createDatabase(ctx, pkgName, true)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 2
	}
	mainMu.Lock()
	mainDB = db
	mainMu.Unlock()

	code := m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.drop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: goroutines leaked after the tests: %v\n", err)
			code = 1
		}
	}
	return code
}

func checkEnv() error {
	var missing []string
	for _, role := range []Role{Owner, App, Projector, Admin} {
		if os.Getenv(roleEnv[role]) == "" {
			missing = append(missing, roleEnv[role])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pgtest: these tests need PostgreSQL, and the environment does not locate it (unset: %s).\n%s",
			strings.Join(missing, ", "), setupHint)
	}
	return nil
}

// Default returns the package's database, created and migrated by [Main].
func Default(tb testing.TB) *Database {
	tb.Helper()
	mainMu.Lock()
	defer mainMu.Unlock()
	if mainDB == nil {
		tb.Fatalf("pgtest: no package database: call pgtest.Main from TestMain.\n%s", setupHint)
	}
	return mainDB
}

// OwnerPool returns the shared pool of the package database for userstore_owner.
func OwnerPool(tb testing.TB) *pgxpool.Pool { tb.Helper(); return Default(tb).Pool(tb, Owner) }

// AppPool returns the shared pool of the package database for userstore_app.
func AppPool(tb testing.TB) *pgxpool.Pool { tb.Helper(); return Default(tb).Pool(tb, App) }

// ProjectorPool returns the shared pool of the package database for userstore_projector.
func ProjectorPool(tb testing.TB) *pgxpool.Pool { tb.Helper(); return Default(tb).Pool(tb, Projector) }

// AdminPool returns the shared pool of the package database for the superuser.
func AdminPool(tb testing.TB) *pgxpool.Pool { tb.Helper(); return Default(tb).Pool(tb, Admin) }

// ExamplePool returns the shared pool of the package database for role, for runnable examples
// (which get no testing.TB). It panics when [Main] did not create the package database.
func ExamplePool(role Role) *pgxpool.Pool {
	mainMu.Lock()
	db := mainDB
	mainMu.Unlock()
	if db == nil {
		panic("pgtest: no package database: call pgtest.Main from TestMain.\n" + setupHint)
	}
	return db.Pool(panicTB{}, role)
}

// panicTB is the testing.TB of ExamplePool: its failures panic.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                           {}
func (panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// DatabaseOpts are the options of [NewDatabase].
type DatabaseOpts struct {
	// Unmigrated leaves the new database empty (no schema): for tests of the migrations themselves.
	Unmigrated bool
}

// NewDatabase creates another throwaway database for one test, migrated unless opts says otherwise,
// and drops it (closing its pools first) when the test ends.
func NewDatabase(tb testing.TB, opts *DatabaseOpts) *Database {
	tb.Helper()
	if err := checkEnv(); err != nil {
		tb.Fatal(err)
	}
	if opts == nil {
		opts = &DatabaseOpts{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := createDatabase(ctx, pkgName+"_"+tb.Name(), !opts.Unmigrated)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := db.drop(ctx); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return db
}

// PoolConfig returns a new pool configuration for role on this database, to adjust before
// [NewPool]. Pools use pgx's QueryExecModeExec (no prepared statements, no session state: what
// PgBouncer in transaction mode allows) and application_name "userstore-test/<package>/<role>".
func (d *Database) PoolConfig(tb testing.TB, role Role) *pgxpool.Config {
	tb.Helper()
	cfg, err := poolConfig(d.Name, role)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return cfg
}

// BouncerPoolConfig returns a new pool configuration for role on this database THROUGH the local
// PgBouncer in transaction pooling mode (scripts/pg.sh runs it; USERSTORE_PGBOUNCER_PORT), to adjust
// before [NewPool]. Consecutive transactions of one client connection may run on different server
// connections, and one server connection serves many clients: only what a transaction does is
// reliable. The configuration uses QueryExecModeExec and application_name
// "userstore-test/<package>/<role>/pgbouncer". Owner, App and Projector only: the bouncer does not
// admit the superuser.
func (d *Database) BouncerPoolConfig(tb testing.TB, role Role) *pgxpool.Config {
	tb.Helper()
	cfg, err := bouncerPoolConfig(d.Name, role, false)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return cfg
}

// SingleBouncerPoolConfig is [Database.BouncerPoolConfig] through the second local PgBouncer
// (USERSTORE_PGBOUNCER_SINGLE_PORT), whose pool holds exactly ONE server connection per (database,
// user): every transaction of every client of role on this database runs on the same server session,
// one after another. Tests use it to prove that nothing a transaction does outlives it. Tests that
// share a database and role share that one session, so they must not leave session state on it.
func (d *Database) SingleBouncerPoolConfig(tb testing.TB, role Role) *pgxpool.Config {
	tb.Helper()
	cfg, err := bouncerPoolConfig(d.Name, role, true)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return cfg
}

// Pool returns this database's shared pool for role, created on first use and closed when the
// database is dropped. Tests share it: do not close it, and keep no session state on its connections.
func (d *Database) Pool(tb testing.TB, role Role) *pgxpool.Pool {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.pools[role]; p != nil {
		return p
	}
	cfg := d.PoolConfig(tb, role)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pgtest: open %s pool: %v", role, safeErr(err))
	}
	d.pools[role] = p
	return p
}

// NewPool opens a pool from cfg (see [Database.PoolConfig]) and closes it when the test ends.
func NewPool(tb testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pgtest: open pool: %v", safeErr(err))
	}
	tb.Cleanup(p.Close)
	return p
}

// Conn opens a single dedicated connection for role (for tests that hold a transaction open while
// others run) and closes it when the test ends.
func (d *Database) Conn(tb testing.TB, role Role) *pgx.Conn {
	tb.Helper()
	cfg := d.PoolConfig(tb, role)
	c, err := pgx.ConnectConfig(context.Background(), cfg.ConnConfig)
	if err != nil {
		tb.Fatalf("pgtest: connect as %s: %v", role, safeErr(err))
	}
	tb.Cleanup(func() { _ = c.Close(context.WithoutCancel(context.Background())) })
	return c
}

func poolConfig(database string, role Role) (*pgxpool.Config, error) {
	env := roleEnv[role]
	url := os.Getenv(env)
	if url == "" {
		return nil, fmt.Errorf("%s is not set.\n%s", env, setupHint)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error would quote the URL, password included.
		return nil, fmt.Errorf("%s does not hold a valid PostgreSQL URL", env)
	}
	cfg.ConnConfig.Database = database
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.RuntimeParams["application_name"] = truncate("userstore-test/"+pkgName+"/"+role.String(), 63)
	cfg.MaxConns = MaxConnsDefault
	return cfg, nil
}

func bouncerPoolConfig(database string, role Role, single bool) (*pgxpool.Config, error) {
	env, ok := bouncerEnv[role]
	if !ok {
		return nil, fmt.Errorf("the local PgBouncer does not admit the %s role", role)
	}
	url := os.Getenv(env)
	if url == "" {
		return nil, fmt.Errorf("%s is not set (a PgBouncer test needs `scripts/pg.sh env` of a current scripts/pg.sh).\n%s", env, setupHint)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s does not hold a valid PostgreSQL URL", env)
	}
	name := "pgbouncer"
	if single {
		name = "pgbouncer-single"
		raw := os.Getenv(EnvBouncerSinglePort)
		port, err := strconv.ParseUint(raw, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("%s must hold a port number, got %q.\n%s", EnvBouncerSinglePort, raw, setupHint)
		}
		cfg.ConnConfig.Port = uint16(port)
	}
	cfg.ConnConfig.Database = database
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.RuntimeParams["application_name"] = truncate("userstore-test/"+pkgName+"/"+role.String()+"/"+name, 63)
	cfg.MaxConns = MaxConnsDefault
	return cfg, nil
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// createDatabase creates a database named after hint (plus a random suffix) as the owner role, and
// migrates it when migrate is set.
func createDatabase(ctx context.Context, hint string, migrate bool) (*Database, error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	base := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(hint), "_"), "_")
	name := truncate("ut_"+base, 63-9) + "_" + hex.EncodeToString(suffix)

	if err := adminExec(ctx, Owner, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	db := &Database{Name: name, pools: map[Role]*pgxpool.Pool{}}
	if !migrate {
		return db, nil
	}
	cfg, err := poolConfig(name, Owner)
	if err != nil {
		return nil, errors.Join(err, db.drop(ctx))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		_, err = migrations.Up(ctx, pool)
		pool.Close()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("migrate database %s: %w", name, safeErr(err)), db.drop(ctx))
	}
	return db, nil
}

// drop closes the database's pools and drops it, terminating any connection left (as superuser).
func (d *Database) drop(ctx context.Context) error {
	d.mu.Lock()
	for role, p := range d.pools {
		p.Close()
		delete(d.pools, role)
	}
	d.mu.Unlock()
	if err := adminExec(ctx, Admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}

// adminExec runs one statement on the maintenance database ("postgres") as role.
func adminExec(ctx context.Context, role Role, sql string) error {
	cfg, err := poolConfig("postgres", role)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return safeErr(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return safeErr(err)
}

// safeErr drops the connection settings that pgx connect errors carry (they hold the password).
func safeErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(err.Error())
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// packageName is the name of the test binary ("eventstore" for eventstore.test).
func packageName() string {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	return strings.TrimSuffix(name, ".exe")
}
