package projectorcmd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/netkingdom/userstore/migrations"
)

// migrateCommand is `projector migrate`: migrations.Up as the owner role, then the version.
func migrateCommand(ctx context.Context, args []string, env *Env) error {
	o, err := parseMigrate(args, env)
	if err != nil {
		return err
	}
	log, err := newLogger(&o.log, env.Stderr)
	if err != nil {
		return err
	}
	pool, err := connect(ctx, &o.db, 2)
	if err != nil {
		return err
	}
	defer pool.Close()

	res, err := migrations.Up(ctx, pool)
	if err != nil {
		return err // migrations' errors keep connection settings out
	}
	st, err := migrations.Status(ctx, pool)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "projector: migrated", slog.Int64("version", st.Current), slog.Any("applied", res.Applied))
	if len(res.Applied) == 0 {
		fmt.Fprintf(env.Stdout, "schema version %d: up to date\n", st.Current)
	} else {
		fmt.Fprintf(env.Stdout, "schema version %d: applied %v\n", st.Current, res.Applied)
	}
	if !st.UpToDate() {
		return fmt.Errorf("the database has schema versions this build does not know (%v): it was migrated by a newer build", st.Unknown)
	}
	return nil
}
