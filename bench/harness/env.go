package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/migrations"
)

// Environment variables (as `scripts/pg.sh env` prints them).
const (
	EnvOwnerURL = "USERSTORE_DATABASE_URL"
	EnvAppURL   = "USERSTORE_APP_DATABASE_URL"
	EnvAdminURL = "USERSTORE_ADMIN_DATABASE_URL"
)

// Env is the throwaway database of one benchmark run and its pools.
type Env struct {
	Name string
	// Owner is a pool of the owner role (migrations, baseline tables).
	Owner *pgxpool.Pool
	// App is THE pool both sides of every pair use: the app role, MaxConns connections.
	App *pgxpool.Pool
	// trips counts the app pool's round trips and statements.
	trips *roundTrips
}

func parse(env, database string) (*pgxpool.Config, error) {
	url := os.Getenv(env)
	if url == "" {
		return nil, fmt.Errorf("%s is not set: run `eval \"$(scripts/pg.sh env)\"` (or `make bench`)", env)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error would quote the URL, password included.
		return nil, fmt.Errorf("%s does not hold a valid PostgreSQL URL", env)
	}
	if database != "" {
		cfg.ConnConfig.Database = database
	}
	return cfg, nil
}

// adminExec runs one statement on the "postgres" database as the admin role (or the owner when no
// admin URL is set).
func adminExec(ctx context.Context, sql string) error {
	env := EnvAdminURL
	if os.Getenv(env) == "" {
		env = EnvOwnerURL
	}
	cfg, err := parse(env, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("connect as %s: %w", env, safe(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return safe(err)
}

// safe drops the connection details pgx may attach to an error.
func safe(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("connection failed: " + ce.Unwrap().Error())
	}
	return err
}

// NewEnv creates the database userstore_bench_<pid>_<random> (as the owner role, which has
// CREATEDB), migrates it as the owner and opens the app pool with maxConns connections.
func NewEnv(ctx context.Context, maxConns int32) (*Env, error) {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("userstore_bench_%d_%s", os.Getpid(), hex.EncodeToString(suffix))

	ocfg, err := parse(EnvOwnerURL, "postgres")
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, ocfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect as owner: %w", safe(err))
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	e := &Env{Name: name}
	fail := func(err error) (*Env, error) { return nil, errors.Join(err, e.Close(context.WithoutCancel(ctx))) }

	ocfg, err = parse(EnvOwnerURL, name)
	if err != nil {
		return fail(err)
	}
	ocfg.MaxConns = 4
	ocfg.ConnConfig.RuntimeParams["application_name"] = "userstore-bench/owner"
	if e.Owner, err = pgxpool.NewWithConfig(ctx, ocfg); err != nil {
		return fail(safe(err))
	}
	if _, err := migrations.Up(ctx, e.Owner); err != nil {
		return fail(fmt.Errorf("migrate %s: %w", name, err))
	}

	acfg, err := parse(EnvAppURL, name)
	if err != nil {
		return fail(err)
	}
	// pgx's default exec mode (statement cache), as pgstore.NewPool builds it without PgBouncer.
	acfg.MaxConns = maxConns
	acfg.MinConns = maxConns
	acfg.ConnConfig.RuntimeParams["application_name"] = "userstore-bench/app"
	e.trips = &roundTrips{printSQL: os.Getenv("BENCH_TRACE_SQL") == "1"}
	acfg.ConnConfig.Tracer = e.trips
	if e.App, err = pgxpool.NewWithConfig(ctx, acfg); err != nil {
		return fail(safe(err))
	}
	return e, nil
}

// Close closes the pools and drops the database.
func (e *Env) Close(ctx context.Context) error {
	if e.App != nil {
		e.App.Close()
	}
	if e.Owner != nil {
		e.Owner.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", e.Name, err)
	}
	return nil
}

// Machine describes where the figures come from.
type Machine struct {
	CPU               string `json:"cpu"`
	Cores             int    `json:"cores"`
	PostgreSQL        string `json:"postgresql"`
	SynchronousCommit string `json:"synchronous_commit"`
	Go                string `json:"go"`
	OS                string `json:"os"`
	LoadAvgStart      string `json:"loadavg_start"`
	LoadAvgEnd        string `json:"loadavg_end,omitempty"`
	Date              string `json:"date"`
	// Library is the commit of the library the run measured, "+dirty" when its working tree had
	// uncommitted changes to its Go or SQL files (bench/ aside).
	Library string `json:"library,omitempty"`
}

// DescribeMachine reads the CPU model, the core count, the server version and the load.
func DescribeMachine(ctx context.Context, pool *pgxpool.Pool) Machine {
	m := Machine{
		CPU: cpuModel(), Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		LoadAvgStart: LoadAvg(), Date: time.Now().UTC().Format(time.RFC3339), Library: libraryCommit(ctx),
	}
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&m.PostgreSQL)
	_ = pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&m.SynchronousCommit)
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// libraryCommit describes the library's git state (the parent directory of bench/), or "" outside git.
func libraryCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "-C", "..", "status", "--porcelain", "--", "*.go", "*.sql", "go.mod", "go.sum", ":(exclude)bench").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}
