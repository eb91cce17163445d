package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"

	"github.com/netkingdom/userstore/replay"
)

// command is one subcommand's flags and state.
type command struct {
	name string
	env  *environ
	fs   *flag.FlagSet

	// every command
	databaseURL  string
	passwordFile string
	batchSize    int
	noProgress   bool
	format       string

	// per command
	tenant     string
	entity     string
	atPosition int64
	atTime     string
	diff       bool
	all        bool
	actor      string
	target     string
	action     string
	since      string
	until      string
	maxDiffs   int

	pool *pgxpool.Pool
}

var synopses = map[string]string{
	"audit":              "audit --tenant T [--actor [TYPE:]ID] [--target TYPE[:ID]] [--action X] [--since t] [--until t] [--format table|jsonl|csv]",
	"state":              "state --tenant T --entity TYPE:ID [--at-position P | --at-time t] [--diff] [--format table|json]",
	"verify-chain":       "verify-chain --tenant T | --all [--format table|json]",
	"verify-projections": "verify-projections [--tenant T] [--max-diffs N] [--format table|json]",
}

func newCommand(name string, env *environ) *command {
	c := &command{name: name, env: env, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs := c.fs
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: replay %s\n\nflags:\n", synopses[name])
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nexit codes: 0 clean, 1 divergence or drift found, 2 usage or connection error, 130 interrupted")
	}
	fs.StringVar(&c.databaseURL, "database-url", "", "PostgreSQL URL or key=value string; prefer the environment: a flag shows in the process list\n(default $"+envDatabaseURL+", else $"+envProjectorDatabaseURL+")")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding the password, read for every connection (default $"+envPasswordFile+")")
	fs.IntVar(&c.batchSize, "batch-size", replay.BatchSizeDefault, fmt.Sprintf("events or rows read per fetch, 1..%d: bounds memory", replay.BatchSizeMax))
	fs.BoolVar(&c.noProgress, "no-progress", false, "no progress bar (it shows only when stderr is a terminal)")
	switch name {
	case "audit":
		fs.StringVar(&c.tenant, "tenant", "", "tenant id (required)")
		fs.StringVar(&c.actor, "actor", "", "keep the records of an actor: TYPE:ID (user, service, system) or an ID of any type")
		fs.StringVar(&c.target, "target", "", "keep the records of a target: TYPE or TYPE:ID (e.g. user:0196…)")
		fs.StringVar(&c.action, "action", "", "keep the records of an action (event type, e.g. user.created)")
		fs.StringVar(&c.since, "since", "", "keep the records that occurred at or after this time")
		fs.StringVar(&c.until, "until", "", "keep the records that occurred before this time")
		fs.StringVar(&c.format, "format", "", "table, jsonl or csv (default table on a terminal, jsonl otherwise)")
	case "state":
		fs.StringVar(&c.tenant, "tenant", "", "tenant id (required)")
		fs.StringVar(&c.entity, "entity", "", "TYPE:ID: tenant, user, account, identity, application, binding, catalog,\nmembership:USER, profile:USER/CATALOG or roster (required)")
		fs.Int64Var(&c.atPosition, "at-position", 0, "fold the events at or before this global position")
		fs.StringVar(&c.atTime, "at-time", "", "fold the events recorded at or before this time")
		fs.BoolVar(&c.diff, "diff", false, "show what every event changed")
		fs.StringVar(&c.format, "format", "", "table or json (default table)")
	case "verify-chain":
		fs.StringVar(&c.tenant, "tenant", "", "tenant id")
		fs.BoolVar(&c.all, "all", false, "verify every tenant")
		fs.StringVar(&c.format, "format", "", "table or json (default table)")
	case "verify-projections":
		fs.StringVar(&c.tenant, "tenant", "", "tenant id (default: every tenant)")
		fs.IntVar(&c.maxDiffs, "max-diffs", replay.MaxDiffsDefault, "differing rows to show (all are counted)")
		fs.StringVar(&c.format, "format", "", "table or json (default table)")
	}
	return c
}

// parse parses the command's flags. Errors that the flag package reported (with the usage) come back
// as errFlagReported; -h as flag.ErrHelp.
func (c *command) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagReported
	}
	if c.fs.NArg() > 0 {
		return usageErr("unexpected argument %s (the command takes flags only)", quoteWord(c.fs.Arg(0)))
	}
	if c.batchSize < 1 || c.batchSize > replay.BatchSizeMax {
		return usageErr("--batch-size must be between 1 and %d", replay.BatchSizeMax)
	}
	return nil
}

// replayer connects and returns a Replayer; progress, when true, reports to a progress bar on stderr if
// stderr is a terminal (the returned function clears it).
func (c *command) replayer(ctx context.Context, progress bool) (*replay.Replayer, func(), error) {
	pool, err := connect(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	c.pool = pool
	cfg := &replay.Config{BatchSize: c.batchSize, MaxDiffs: c.maxDiffs}
	done := func() {}
	if progress && !c.noProgress && c.env.isTerminal(c.env.stderr) {
		cfg.ProgressFunc, done = progressBar(c.env, c.name)
	}
	r, err := replay.New(pool, cfg)
	if err != nil {
		return nil, nil, err
	}
	return r, done, nil
}

// progressBar returns a ProgressFunc drawing a bar with events/s and the time left on stderr, and a
// function that clears it. The bar appears with the first report (when the total is known).
func progressBar(env *environ, desc string) (func(replay.Progress), func()) {
	var bar *progressbar.ProgressBar
	report := func(p replay.Progress) {
		if bar == nil {
			total := p.Total
			if total <= 0 {
				total = -1 // unknown: a spinner
			}
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(env.stderr),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionSetWidth(30),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("events"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set64(p.Done)
	}
	clear := func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
	return report, clear
}
