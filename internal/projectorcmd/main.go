package projectorcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// Exit codes of the program.
const (
	// ExitOK: the command did what it was asked; run: it stopped on a signal.
	ExitOK = 0
	// ExitFailed: the operation failed, or found problems (status: a schema mismatch or parked dead
	// letters; dead-letters retry/skip: an event failed again or was not parked; rebuild: drift without
	// -force, dead letters, a lost lock, or a signal cancelled it).
	ExitFailed = 1
	// ExitUsage: a usage error (unknown command or flag, invalid or missing value) or a connection
	// error (the database cannot be reached or refuses the login).
	ExitUsage = 2
)

// Env is what the program takes from its process: output streams and environment variables.
type Env struct {
	// Stdout receives a command's results (status, dead letters, the migrated version).
	Stdout io.Writer
	// Stderr receives the logs and the usage.
	Stderr io.Writer
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string

	// listening, when set (tests), is called with the HTTP server's address once it listens.
	listening func(net.Addr)
}

const usage = `usage: projector <command> [flags]

commands:
  run                  run the projections; serve /metrics, /healthz and /readyz
  migrate              apply the schema migrations (as the owner role) and print the version
  status               print each projection's lag, dead letters and checkpoints, and the schema version
  dead-letters list    list dead letters
  dead-letters retry   apply a tenant's parked events now
  dead-letters skip    skip a parked event for good, then retry the tenant's others
  rebuild <target>     rebuild readmodel or audit from the log into shadow tables, verify, swap

"projector <command> -h" lists a command's flags; each flag may be set by its environment variable.
Exit codes: 0 ok, 1 the operation failed or found problems, 2 usage or connection error.
`

// Main runs the program with args (without the program's name) and returns its exit code. The run
// command runs until ctx ends (cmd/projector cancels it on SIGINT or SIGTERM).
func Main(ctx context.Context, args []string, env *Env) int {
	e := *env
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if len(args) == 0 {
		fmt.Fprint(e.Stderr, usage)
		return ExitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = runCommand(ctx, rest, &e)
	case "migrate":
		err = migrateCommand(ctx, rest, &e)
	case "status":
		err = statusCommand(ctx, rest, &e)
	case "dead-letters":
		err = deadLettersCommand(ctx, rest, &e)
	case "rebuild":
		err = rebuildCommand(ctx, rest, &e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.Stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(e.Stderr, "projector: unknown command %q\n\n%s", cmd, usage)
		return ExitUsage
	}
	return exitCode(err, e.Stderr)
}

// exitCode reports err (never a secret: every error here is built from redacted parts) and returns
// the exit code for it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return ExitOK
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	fmt.Fprintf(stderr, "projector: %s\n", err)
	var u *usageError
	var c *connectError
	switch {
	case errors.As(err, &u), errors.As(err, &c), unavailable(err):
		return ExitUsage
	}
	return ExitFailed
}

// unavailable reports whether err says the database could not be reached.
func unavailable(err error) bool {
	return errors.Is(err, projections.ErrUnavailable) || errors.Is(err, eventstore.ErrUnavailable) ||
		errors.Is(err, userstore.ErrUnavailable) || errors.Is(err, rebuild.ErrUnavailable)
}

// silentError ends a command with an exit code after it reported the problem itself.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }
