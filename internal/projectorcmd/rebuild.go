package projectorcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// rebuildCommand is `projector rebuild [flags] <target>`: rebuild.Run with a pool of the owner role
// and one of the projector role — progress on stderr (a bar per phase on a terminal, log lines
// otherwise), the verification on stdout. With -cleanup it runs rebuild.Cleanup instead.
//
// Exit codes: 0 when the live tables equal the rebuild (or were repaired with -force); 1 for a drift
// without -force (a *rebuild.DriftError: nothing was changed), parked dead letters, a lost lock, locks
// not taken in time, another run of the target, or a cancellation (SIGINT, SIGTERM); 2 for a usage or
// connection error, an unknown target and the outbox.
func rebuildCommand(ctx context.Context, args []string, env *Env) error {
	o, err := parseRebuild(args, env)
	if err != nil {
		return err
	}
	lo := o.log
	var bar *barProgress
	logOut := env.Stderr
	if isTerminal(env.Stderr) && !o.cleanup {
		// The log goes through the bar, which prints it above itself; text, as on any terminal.
		bar = newBarProgress(env.Stderr)
		logOut = bar
		if lo.format == "" || strings.EqualFold(lo.format, "auto") {
			lo.format = "text"
		}
	}
	log, err := newLogger(&lo, logOut)
	if err != nil {
		return err
	}

	// Both settings first (a missing URL is a usage error before any connection), then connect, so
	// that a refused login names the server, role and database — unless the library does not rebuild
	// the target: it refuses it before it uses a connection, in its own words (the outbox: why not).
	owner, err := openPool(ctx, &o.owner, 3) // the target's lock, the swap, one spare
	if err != nil {
		return err
	}
	defer owner.Close()
	// The audit rebuild's workers, its runner's poller, its progress query and the swap.
	projector, err := openPool(ctx, &o.db, int32(o.rebuild.WithDefaults().Workers)+3)
	if err != nil {
		return err
	}
	defer projector.Close()
	if slices.Contains(rebuild.Targets(), o.target) {
		for _, pool := range []*pgxpool.Pool{owner, projector} {
			if err := ping(ctx, pool); err != nil {
				return err
			}
		}
	}
	params := &rebuild.Params{Owner: owner, Projector: projector, Target: o.target}

	if o.cleanup {
		if err := rebuild.Cleanup(ctx, params); err != nil {
			return rebuildError(ctx, env.Stdout, o, err)
		}
		fmt.Fprintf(env.Stdout, "rebuild %s: cleaned up: schema %s dropped if it existed\n", o.target, rebuild.ShadowSchema(o.target))
		return nil
	}

	var prog progressReporter = bar
	if bar == nil {
		prog = newLineProgress(log, time.Now, progressLogInterval)
	}
	opts := o.rebuild
	opts.Logger = log
	opts.Progress = prog.report
	res, err := rebuild.Run(ctx, params, &opts)
	prog.close()
	if err != nil {
		return rebuildError(ctx, env.Stdout, o, err)
	}
	printRebuild(env.Stdout, res)
	return nil
}

// ping checks that pool, opened by openPool, can connect; a failure is described as connect does.
func ping(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pool.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return describeConnect(pool.Config().ConnConfig, err)
	}
	return nil
}

// rebuildError classifies an error of rebuild.Run or rebuild.Cleanup. A drift is printed on stdout
// (the differing tables, and what to do) and ends with exit code 1, as does a cancelled run; an
// unknown target, the outbox and invalid options are usage errors; the rest keep their message (the
// library's, redacted) and classification.
func rebuildError(ctx context.Context, w io.Writer, o *rebuildOptions, err error) error {
	var drift *rebuild.DriftError
	switch {
	case errors.As(err, &drift):
		printDrift(w, o, drift)
		return err
	case ctx.Err() != nil:
		// Not wrapped: an interrupted run exits with 1 whatever error it ended with (a broken
		// connection, say, which would be a 2).
		return fmt.Errorf("rebuild %s interrupted: %s", o.target, err.Error())
	case errors.Is(err, rebuild.ErrUnknownTarget), errors.Is(err, projections.ErrValidation):
		return usagef("%s", err)
	case errors.Is(err, rebuild.ErrNotRebuildable):
		return usagef("%s (the targets that can be rebuilt: %s)", err, strings.Join(rebuild.Targets(), ", "))
	}
	return err
}

// printRebuild prints the outcome of a rebuild: the verdict, the events, the durations and, per
// table, the live and rebuilt row counts, whether the checksums matched, and the rows the swap changed.
func printRebuild(w io.Writer, res *rebuild.Result) {
	var differed int
	var deleted, inserted int64
	for _, t := range res.Tables {
		if !t.Match() {
			differed++
		}
		deleted += t.Deleted
		inserted += t.Inserted
	}
	switch {
	case res.Repaired:
		fmt.Fprintf(w, "rebuild %s: drift repaired (-force): %d of %d tables differed; %d live %s deleted, %d inserted\n",
			res.Target, differed, len(res.Tables), deleted, plural(int(deleted), "row", "rows"), inserted)
	case res.Target == rebuild.TargetAudit && inserted > 0:
		fmt.Fprintf(w, "rebuild %s: verified, no drift; appended %d records the live projection had not written yet\n",
			res.Target, inserted)
	default:
		fmt.Fprintf(w, "rebuild %s: verified, no drift\n", res.Target)
	}
	fmt.Fprintf(w, "events: %d copied, %d caught up\n", res.CopyEvents, res.CatchUpEvents)
	held := "the read tables were locked for writes for"
	if res.Target == rebuild.TargetAudit {
		held = "the live audit projection paused for"
	}
	fmt.Fprintf(w, "time: %s (copy %s, catch-up %s, swap %s in %d %s); %s %s\n", ms(res.Duration), ms(res.CopyDuration),
		ms(res.CatchUpDuration), ms(res.SwapDuration), res.SwapAttempts, plural(res.SwapAttempts, "attempt", "attempts"),
		held, ms(res.LockDuration))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tLIVE ROWS\tSHADOW ROWS\tCHECKSUMS\tDELETED\tINSERTED")
	for _, t := range res.Tables {
		sums := "match"
		if !t.Match() {
			sums = "differed"
			if res.Repaired {
				sums = "differed, repaired"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\n", t.Table, t.LiveRows, t.ShadowRows, sums, t.Deleted, t.Inserted)
	}
	_ = tw.Flush()
}

// printDrift prints the tables a rebuild found different from the live ones, and the ways on.
func printDrift(w io.Writer, o *rebuildOptions, drift *rebuild.DriftError) {
	fmt.Fprintf(w, "rebuild %s: DRIFT: %d %s from the rebuild from the log; nothing was changed\n\n",
		drift.Target, len(drift.Tables), plural(len(drift.Tables), "table differs", "tables differ"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tLIVE ROWS\tSHADOW ROWS\tLIVE CHECKSUM\tSHADOW CHECKSUM")
	for _, t := range drift.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", t.Table, t.LiveRows, t.ShadowRows, t.LiveChecksum, t.ShadowChecksum)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nto replace the differing live rows with the rebuilt ones: projector rebuild -force %s\n", drift.Target)
	if o.rebuild.KeepShadow {
		fmt.Fprintf(w, "the rebuilt rows stay in schema %s until `projector rebuild -cleanup %s` or the next rebuild\n",
			rebuild.ShadowSchema(drift.Target), drift.Target)
	} else {
		fmt.Fprintf(w, "to compare the rows first: projector rebuild -keep-shadow %s (the rebuilt rows stay in schema %s)\n",
			drift.Target, rebuild.ShadowSchema(drift.Target))
	}
}

// ms is a duration rounded to the millisecond.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
