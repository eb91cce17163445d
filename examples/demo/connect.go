package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/internal/pgerr"

	"github.com/netkingdom/userstore/migrations"
)

// The environment variables the demo reads, as `scripts/pg.sh env` prints them. Each holds a URL with a
// password: the demo never prints one, nor an error that quotes one.
const (
	envOwner     = "USERSTORE_DATABASE_URL"
	envApp       = "USERSTORE_APP_DATABASE_URL"
	envProjector = "USERSTORE_PROJECTOR_DATABASE_URL"
)

// pools are the demo's connections, one pool per role.
type pools struct {
	owner, app, projector *pgxpool.Pool
}

// connect builds a pool per role from the environment. pgxpool connects lazily: the first statement
// of each role tells whether its settings work.
func connect(ctx context.Context, getenv func(string) string) (*pools, error) {
	p := &pools{}
	for _, role := range []struct {
		env  string
		pool **pgxpool.Pool
	}{{envOwner, &p.owner}, {envApp, &p.app}, {envProjector, &p.projector}} {
		url := getenv(role.env)
		if url == "" {
			p.close()
			return nil, fmt.Errorf("%s is not set; start the database and load its settings first: "+
				"scripts/pg.sh up && eval \"$(scripts/pg.sh env)\"", role.env)
		}
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			p.close()
			// pgx's parse error quotes the URL: say which variable, not what it holds.
			return nil, fmt.Errorf("%s does not hold a valid PostgreSQL URL", role.env)
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = "userstore-demo"
		cfg.MaxConns = 8 // the projector's catch-up works on 4 partitions at once
		if *role.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			p.close()
			return nil, fmt.Errorf("open a pool for %s: %s", role.env, pgerr.Describe(err))
		}
	}
	return p, nil
}

func (p *pools) close() {
	for _, pool := range []*pgxpool.Pool{p.owner, p.app, p.projector} {
		if pool != nil {
			pool.Close()
		}
	}
}

// migrate applies the pending migrations as the owner role (migrations.Up: safe to run again, and
// beside another run).
func migrate(ctx context.Context, p *pools, r *report) error {
	res, err := migrations.Up(ctx, p.owner)
	if err != nil {
		// migrations' errors keep connection settings out.
		return fmt.Errorf("migrate the database (as %s): %w", envOwner, err)
	}
	applied := "none pending"
	if len(res.Applied) > 0 {
		applied = "applied"
		for _, v := range res.Applied {
			applied += " " + strconv.FormatInt(v, 10)
		}
	}
	cc := p.owner.Config().ConnConfig
	r.line("%-10s %s on %s:%d, schema version %d (%s)", "database", cc.Database, cc.Host, cc.Port, res.Current, applied)
	return nil
}
