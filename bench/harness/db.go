package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/migrations"
)

// EnvProjectorURL is the projector role's URL (as `scripts/pg.sh env` prints it).
const EnvProjectorURL = "USERSTORE_PROJECTOR_DATABASE_URL"

// DB is a throwaway, migrated database of the projector-side measurements (3 to 7), with a pool per
// role. It is dropped by Close.
type DB struct {
	Name string
	// Owner: the owner role (migrations, rebuild's shadow schema, the baselines' tables).
	Owner *pgxpool.Pool
	// App: the app role (pgstore, eventstore appends).
	App *pgxpool.Pool
	// Projector: the projector role (projections, rebuild, replay).
	Projector *pgxpool.Pool
	// Admin: the superuser, which alone may write every tenant's events straight into the log
	// (preloading).
	Admin *pgxpool.Pool
	// trips counts the round trips of the owner, app and projector pools (not the admin's).
	trips *roundTrips
}

// DBSizes are the connections of each pool of a DB.
type DBSizes struct {
	Owner, App, Projector, Admin int32
}

// NewDB creates the database userstore_bench_<pid>_<random>_<label> as the owner role, migrates it and
// opens the pools.
func NewDB(ctx context.Context, label string, sizes DBSizes) (*DB, error) {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	d := &DB{Name: fmt.Sprintf("userstore_bench_%d_%s_%s", os.Getpid(), hex.EncodeToString(suffix), label), trips: &roundTrips{}}
	ocfg, err := parse(EnvOwnerURL, "postgres")
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, ocfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect as owner: %w", safe(err))
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.Name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.Name, err)
	}
	fail := func(err error) (*DB, error) { return nil, errors.Join(err, d.Close(context.WithoutCancel(ctx))) }
	open := func(env string, n int32, app string) (*pgxpool.Pool, error) {
		if n == 0 {
			return nil, nil
		}
		cfg, err := parse(env, d.Name)
		if err != nil {
			return nil, err
		}
		cfg.MaxConns = n
		cfg.ConnConfig.RuntimeParams["application_name"] = "userstore-bench/" + app
		if env != EnvAdminURL {
			cfg.ConnConfig.Tracer = d.trips
		}
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		return p, safe(err)
	}
	if d.Owner, err = open(EnvOwnerURL, max(sizes.Owner, 1), "owner"); err != nil {
		return fail(err)
	}
	if _, err := migrations.Up(ctx, d.Owner); err != nil {
		return fail(fmt.Errorf("migrate %s: %w", d.Name, err))
	}
	if d.App, err = open(EnvAppURL, sizes.App, "app"); err != nil {
		return fail(err)
	}
	if d.Projector, err = open(EnvProjectorURL, sizes.Projector, "projector"); err != nil {
		return fail(err)
	}
	if sizes.Admin > 0 && os.Getenv(EnvAdminURL) == "" {
		return fail(fmt.Errorf("%s is not set: preloading the log needs the superuser", EnvAdminURL))
	}
	if d.Admin, err = open(EnvAdminURL, sizes.Admin, "admin"); err != nil {
		return fail(err)
	}
	return d, nil
}

// Close closes the pools and drops the database.
func (d *DB) Close(ctx context.Context) error {
	for _, p := range []*pgxpool.Pool{d.Owner, d.App, d.Projector, d.Admin} {
		if p != nil {
			p.Close()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}

// analyze runs ANALYZE on the log (after a preload: the planner's estimates of the new rows).
func (d *DB) analyze(ctx context.Context) error {
	_, err := d.Admin.Exec(ctx, "ANALYZE userstore.events")
	return err
}
