// Command userstore-bench runs userstore's benchmarks (issue 9) against the PostgreSQL of
// `scripts/pg.sh env` and writes docs/benchmarks.md and docs/benchmarks.json. `make bench` runs it.
//
//	userstore-bench [-quick] [-render] [-cpuprofile file] [-pairs 5] [-run 5s] [-only prefix] [-out ../docs/benchmarks.md] [-json ../docs/benchmarks.json]
//
// BENCH_QUICK=1 is the same as -quick.
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
	var (
		quick  = flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short runs (also BENCH_QUICK=1): the whole suite in well under 5 minutes")
		pairs  = flag.Int("pairs", 5, "interleaved pairs per measurement (at least 5)")
		runFor = flag.Duration("run", 0, "duration of one timed run of one side (default 5s, quick 1s)")
		only   = flag.String("only", "", "run only the measurements whose id starts with this prefix")
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
	return harness.Main(ctx, harness.MainParams{Options: opts, Quick: *quick, Only: strings.TrimSpace(*only), Out: *out, JSON: *jsonTo})
}
