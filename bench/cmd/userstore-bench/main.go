// Command userstore-bench runs userstore's benchmarks (issue 9) against the PostgreSQL of
// `scripts/pg.sh env` and writes docs/benchmarks.md and docs/benchmarks.json. `make bench` runs it.
//
//	userstore-bench [-quick] [-render] [-cpuprofile file] [-pairs 5] [-run 5s] [-only prefix,…] [-out ../docs/benchmarks.md] [-json ../docs/benchmarks.json]
//
// BENCH_QUICK=1 is the same as -quick. The sizes of measurements 3 to 7 follow the mode and can be
// overridden: BENCH_LOG_EVENTS (the preloaded log of 3, 6 and 7), BENCH_AUDIT_EVENTS (3's audit chain),
// BENCH_GROWTH_EVENTS or BENCH_GROWTH (6's larger log, e.g. BENCH_GROWTH=10m), BENCH_RELAY_MESSAGES (4);
// counts take k and m suffixes.
//
// `userstore-bench replay-child …` is measurement 7's child process (run by the harness itself).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/netkingdom/userstore/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "userstore-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == harness.ReplayChildCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return harness.ReplayChild(ctx, os.Args[2:])
	}
	var (
		quick  = flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short runs (also BENCH_QUICK=1): the whole suite in well under 5 minutes")
		pairs  = flag.Int("pairs", 5, "interleaved pairs per measurement (at least 5)")
		runFor = flag.Duration("run", 0, "duration of one timed run of one side (default 5s, quick 1s)")
		only   = flag.String("only", "", "run only the measurements whose id starts with one of these comma-separated prefixes")
		out    = flag.String("out", "../docs/benchmarks.md", "markdown report")
		jsonTo = flag.String("json", "../docs/benchmarks.json", "JSON file with every raw pair")
		render = flag.Bool("render", false, "only rewrite -out from the -json of an earlier run (no database needed)")
		cpuOut = flag.String("cpuprofile", "", "write a CPU profile of this (client) process to the file, for go tool pprof")
	)
	flag.Parse()
	if *render {
		return harness.Render(*jsonTo, *out)
	}
	if *pairs < 5 {
		return fmt.Errorf("-pairs must be at least 5, got %d", *pairs)
	}
	opts := harness.Options{Pairs: *pairs, RunFor: 5 * time.Second, Warmup: 2 * time.Second,
		Progress: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }}
	if *quick {
		opts.RunFor, opts.Warmup = time.Second, 500*time.Millisecond
	}
	if *runFor > 0 {
		opts.RunFor = *runFor
	}
	sizes, err := harness.SizesFor(*quick)
	if err != nil {
		return err
	}

	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return harness.Main(ctx, harness.MainParams{Options: opts, Quick: *quick, Sizes: sizes, Only: strings.TrimSpace(*only), Out: *out, JSON: *jsonTo})
}
