// Command demo shows userstore end to end on the local PostgreSQL, in about a screen of plain text: it
// migrates the database, runs a small workload through the durable store (adapter/pgstore) as the app
// role in a tenant of its own — with a refused duplicate and a refused demotion of the last owner —,
// catches the projector up in-process (the audit and outbox projections, as the projector role), and
// prints what is there now: the tenant's events, read rows, audit records and outbox messages, a slice
// of the audit trail with its hash chain verified, and the outbox messages of the tenant.
//
// It is what `make demo` runs, after `scripts/pg.sh up`:
//
//	eval "$(scripts/pg.sh env)" && go run ./examples/demo
//
// The connections come from the environment, as `scripts/pg.sh env` prints them: USERSTORE_DATABASE_URL
// (the owner role, for the migrations), USERSTORE_APP_DATABASE_URL (the store's runtime role) and
// USERSTORE_PROJECTOR_DATABASE_URL (the projector role). Every run creates a fresh tenant, so it can run
// again and again on the same database. It exits with status 1 and a message on failure; no message
// ever holds a connection URL or a password.
//
// It lives under examples/, not cmd/: it is a runnable walkthrough of the library for people, not a
// program to deploy (cmd/ holds those: the projector and the replay tool).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// timeout bounds a whole run: a catch-up waits for every transaction of the cluster older than it, so
// a transaction left open elsewhere must not hang the demo.
const timeout = 2 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	err := run(ctx, os.Getenv, os.Stdout)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// run is the demo: getenv reads the environment (os.Getenv), stdout receives the report.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	pools, err := connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer pools.close()
	r := &report{w: stdout}
	r.title("userstore demo")

	if err := migrate(ctx, pools, r); err != nil {
		return err
	}
	d, err := workload(ctx, pools, r)
	if err != nil {
		return err
	}
	if err := refusals(d, r); err != nil {
		return err
	}
	if err := project(ctx, pools, r); err != nil {
		return err
	}
	if err := counts(ctx, pools, d, r); err != nil {
		return err
	}
	if err := trail(d, r); err != nil {
		return err
	}
	if err := messages(ctx, pools, d, r); err != nil {
		return err
	}
	return r.err
}
