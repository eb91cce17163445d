// Command projector runs userstore's asynchronous projections (the audit trail and the outbox relay)
// and serves /metrics, /healthz and /readyz; its other commands migrate the schema, report the
// projections' status, rebuild the read model and the audit trail, and handle dead letters. See docs/projector.md, or run `projector help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/netkingdom/userstore/internal/projectorcmd"
)

func main() {
	os.Exit(run())
}

// run runs the program until it ends or, for `projector run`, until SIGINT or SIGTERM: the first
// signal stops it gracefully, a second one ends the process at once (the default action is restored).
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	return projectorcmd.Main(ctx, os.Args[1:], &projectorcmd.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}
