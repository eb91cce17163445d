// Command replay reconstructs, from the immutable event log alone, what happened in a tenant and what
// its state was, and verifies that the derived tables tell the truth: `replay audit`, `replay state`,
// `replay verify-chain` and `replay verify-projections`. It only reads, in one REPEATABLE READ READ ONLY
// transaction per command, as the projector role by default — also against a streaming replica. The
// work is done by package replay; this program parses the command line, connects and prints. See
// docs/replay.md, or run `replay help`.
//
// Exit codes: 0 clean, 1 divergence or drift found, 2 usage, connection or other error, 130 stopped
// by SIGINT or SIGTERM.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first SIGINT or SIGTERM cancels the command, which rolls back its read-only transaction and
	// exits with 130; a second one ends the process at once (the default action is restored).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], &environ{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, isTerminal: isTerminal})
	stop()
	os.Exit(code)
}
