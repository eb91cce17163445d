package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/replay"
)

// Exit codes.
const (
	exitOK          = 0   // the command ran; nothing diverged
	exitDivergence  = 1   // verify-chain or verify-projections found a divergence or drift
	exitUsage       = 2   // usage, connection or any other error
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it)
)

// environ is what the program takes from its process: output streams, the environment and whether a
// stream is a terminal (tests substitute them).
type environ struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	isTerminal     func(io.Writer) bool
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const usage = `usage: replay <command> [flags]

Reconstructs and verifies, from the event log alone, the audit trail and the state of any tenant or
entity. Read-only: one REPEATABLE READ READ ONLY transaction per command (works on a streaming replica).

commands:
  audit               the audit trail rebuilt from the events (not read from audit_records)
                        --tenant T [--actor [TYPE:]ID] [--target TYPE[:ID]] [--action X]
                        [--since t] [--until t] [--format table|jsonl|csv]
  state               an entity as it was at a position or time, folded from its stream
                        --tenant T --entity TYPE:ID [--at-position P | --at-time t] [--diff]
                        [--format table|json]
  verify-chain        recompute the per-tenant hash chain and compare it with audit_records
                        --tenant T | --all [--format table|json]
  verify-projections  fold every stream and compare the read tables row by row
                        [--tenant T] [--max-diffs N] [--format table|json]
  help                this text

connection (every command): the URL (or key=value string) in $USERSTORE_REPLAY_DATABASE_URL, else
$USERSTORE_PROJECTOR_DATABASE_URL, or --database-url; --password-file (or
$USERSTORE_REPLAY_DATABASE_PASSWORD_FILE) supplies the password. Log in as userstore_projector.

times (--since, --until, --at-time): RFC 3339 (2025-01-02T15:04:05Z) or a date (2025-01-02, UTC).

exit codes: 0 clean, 1 divergence or drift found, 2 usage or connection error, 130 interrupted.
Run 'replay <command> -h' for a command's flags; docs/replay.md has examples.
`

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, env *environ) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, usage)
		return exitUsage
	}
	var cmd func(context.Context, *command) (int, error)
	switch args[0] {
	case "audit":
		cmd = runAudit
	case "state":
		cmd = runState
	case "verify-chain":
		cmd = runVerifyChain
	case "verify-projections":
		cmd = runVerifyProjections
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(env.stderr, "replay: unknown command %s\n\n%s", quoteWord(args[0]), usage)
		return exitUsage
	}
	c := newCommand(args[0], env)
	if err := c.parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		if !errors.Is(err, errFlagReported) {
			fmt.Fprintf(env.stderr, "replay %s: %v\n", c.name, err)
		}
		return exitUsage
	}
	code, err := cmd(ctx, c)
	if c.pool != nil {
		c.pool.Close()
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(env.stderr, "replay %s: interrupted\n", c.name)
		return exitInterrupted
	case err != nil:
		fmt.Fprintf(env.stderr, "replay %s: %v\n", c.name, err)
		return exitUsage
	}
	return code
}

// errFlagReported: the flag package has already printed the error and the usage.
var errFlagReported = errors.New("flag error reported")

// quoteWord quotes an argument for a message if it is a plain word; anything else (a URL with a
// password given by mistake, say) is not repeated.
func quoteWord(s string) string {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return "(not shown)"
		}
	}
	return strconv.Quote(s)
}

// usageErr is a mistake on the command line.
func usageErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

// parseTenant parses a tenant flag; the error does not quote the value.
func parseTenant(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, usageErr("--tenant must be a tenant id (a UUID)")
	}
	return id, nil
}

// parseTime parses an RFC 3339 time or a date (midnight UTC).
func parseTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErr("--%s must be an RFC 3339 time (2025-01-02T15:04:05Z) or a date (2025-01-02)", flagName)
}

// parseActor parses --actor: TYPE:ID with a known actor type, or an id of any type.
func parseActor(s string) (userstore.ActorType, string) {
	if typ, id, ok := strings.Cut(s, ":"); ok {
		switch userstore.ActorType(typ) {
		case userstore.ActorUser, userstore.ActorService, userstore.ActorSystem:
			return userstore.ActorType(typ), id
		}
	}
	return "", s
}

// parseTarget parses --target: TYPE or TYPE:ID.
func parseTarget(s string) (string, uuid.UUID, error) {
	typ, id, ok := strings.Cut(s, ":")
	if typ == "" {
		return "", uuid.Nil, usageErr("--target must be TYPE or TYPE:ID")
	}
	if !ok {
		return typ, uuid.Nil, nil
	}
	v, err := uuid.Parse(id)
	if err != nil {
		return "", uuid.Nil, usageErr("--target's id must be a UUID")
	}
	return typ, v, nil
}

// format picks the output format: the flag's, or def.
func pickFormat(flagValue string, def replay.Format, allowed ...replay.Format) (replay.Format, error) {
	if flagValue == "" {
		return def, nil
	}
	for _, f := range allowed {
		if replay.Format(flagValue) == f {
			return f, nil
		}
	}
	names := make([]string, len(allowed))
	for i, f := range allowed {
		names[i] = string(f)
	}
	return "", usageErr("--format must be one of %s", strings.Join(names, ", "))
}
