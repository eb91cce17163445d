// Package harness runs userstore's benchmarks (issue 9): every figure is a pair — our path against a
// baseline doing the same work — run interleaved on the same machine, reported as the median of the
// per-pair ratios with their minimum and maximum.
//
// The harness lives in a module of its own (github.com/netkingdom/userstore/bench) so that peers and
// baselines (watermill, watermill-sql) never enter the library's dependencies.
package harness

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Op performs one unit of work for worker w (its i-th call) and returns how many units (commands,
// events, rows) it completed.
type Op func(ctx context.Context, w, i int) (int, error)

// Side is one contender of a pair.
type Side struct {
	// Name describes the side, e.g. "pgstore.CreateUser".
	Name string
	// Op is the unit of work.
	Op Op
}

// Case is one measurement: ours against a baseline doing the same work.
type Case struct {
	// ID is a stable identifier, e.g. "create_user/w16".
	ID string
	// What describes the measurement for the table.
	What string
	// Unit names what Op counts ("commands", "events").
	Unit string
	// Workers is the number of concurrent workers.
	Workers int
	// Goal is the ratio (ours/baseline) the issue asks for; 0 when "ahead", i.e. > 1.
	Goal float64
	// GoalText is the goal as the issue states it.
	GoalText string
	Ours     Side
	Baseline Side
}

// RunStats is the outcome of one timed run of one side.
type RunStats struct {
	Units     int     `json:"units"`
	Ops       int     `json:"ops"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// RoundTripsPerOp and StatementsPerOp: what the app pool sent per call (BEGIN and COMMIT included).
	RoundTripsPerOp float64 `json:"round_trips_per_op"`
	StatementsPerOp float64 `json:"statements_per_op"`
}

// Pair is one interleaved pair of runs.
type Pair struct {
	Index    int      `json:"index"`
	Order    string   `json:"order"` // "ours-first" or "baseline-first"
	Ours     RunStats `json:"ours"`
	Baseline RunStats `json:"baseline"`
	Ratio    float64  `json:"ratio"` // ours.per_second / baseline.per_second
}

// Result is a case with all its pairs and the summary.
type Result struct {
	ID          string  `json:"id"`
	What        string  `json:"what"`
	Unit        string  `json:"unit"`
	Workers     int     `json:"workers"`
	Ours        string  `json:"ours"`
	Baseline    string  `json:"baseline"`
	GoalText    string  `json:"goal"`
	Goal        float64 `json:"goal_ratio"`
	Pairs       []Pair  `json:"pairs"`
	RatioMedian float64 `json:"ratio_median"`
	RatioMin    float64 `json:"ratio_min"`
	RatioMax    float64 `json:"ratio_max"`
	// Medians over the pairs of our side's and the baseline's absolute figures.
	OursPerSecond      float64 `json:"ours_per_second_median"`
	OursP50Ms          float64 `json:"ours_p50_ms_median"`
	OursP99Ms          float64 `json:"ours_p99_ms_median"`
	BaselinePerSecond  float64 `json:"baseline_per_second_median"`
	BaselineP50Ms      float64 `json:"baseline_p50_ms_median"`
	BaselineP99Ms      float64 `json:"baseline_p99_ms_median"`
	OursRoundTrips     float64 `json:"ours_round_trips_per_op"`
	BaselineRoundTrips float64 `json:"baseline_round_trips_per_op"`
	MeetsGoal          bool    `json:"meets_goal"`
}

// Options control the runs.
type Options struct {
	// Pairs is the number of interleaved pairs per case (at least 5 by the issue).
	Pairs int
	// RunFor is the duration of one timed run of one side.
	RunFor time.Duration
	// Warmup is the duration of the untimed run of each side before the pairs.
	Warmup time.Duration
	// Progress, when set, receives one line per pair.
	Progress func(format string, args ...any)
}

// Run measures one case: a warm-up of each side, then Pairs pairs alternating the order (A B, B A, …).
func Run(ctx context.Context, env *Env, c *Case, opts Options) (*Result, error) {
	if opts.Warmup > 0 {
		for _, s := range []Side{c.Ours, c.Baseline} {
			if _, err := timed(ctx, env, s.Op, c.Workers, opts.Warmup); err != nil {
				return nil, fmt.Errorf("%s: warm-up of %s: %w", c.ID, s.Name, err)
			}
		}
	}
	res := &Result{
		ID: c.ID, What: c.What, Unit: c.Unit, Workers: c.Workers, Ours: c.Ours.Name, Baseline: c.Baseline.Name,
		GoalText: c.GoalText, Goal: c.Goal,
	}
	for i := range opts.Pairs {
		p := Pair{Index: i + 1}
		runOurs := func() (err error) { p.Ours, err = timed(ctx, env, c.Ours.Op, c.Workers, opts.RunFor); return }
		runBase := func() (err error) { p.Baseline, err = timed(ctx, env, c.Baseline.Op, c.Workers, opts.RunFor); return }
		first, second := runOurs, runBase
		p.Order = "ours-first"
		if i%2 == 1 {
			first, second = runBase, runOurs
			p.Order = "baseline-first"
		}
		if err := first(); err != nil {
			return nil, fmt.Errorf("%s: pair %d: %w", c.ID, i+1, err)
		}
		if err := second(); err != nil {
			return nil, fmt.Errorf("%s: pair %d: %w", c.ID, i+1, err)
		}
		if p.Baseline.PerSecond > 0 {
			p.Ratio = p.Ours.PerSecond / p.Baseline.PerSecond
		}
		res.Pairs = append(res.Pairs, p)
		if opts.Progress != nil {
			opts.Progress("  %-28s pair %d/%d (%s): ours %9.0f %s/s  baseline %9.0f %s/s  ratio %.2f",
				c.ID, i+1, opts.Pairs, p.Order, p.Ours.PerSecond, c.Unit, p.Baseline.PerSecond, c.Unit, p.Ratio)
		}
	}
	res.summarize()
	return res, nil
}

func (r *Result) summarize() {
	pick := func(f func(Pair) float64) []float64 {
		out := make([]float64, len(r.Pairs))
		for i, p := range r.Pairs {
			out[i] = f(p)
		}
		return out
	}
	ratios := pick(func(p Pair) float64 { return p.Ratio })
	r.RatioMedian = median(ratios)
	r.RatioMin, r.RatioMax = slices.Min(ratios), slices.Max(ratios)
	r.OursPerSecond = median(pick(func(p Pair) float64 { return p.Ours.PerSecond }))
	r.OursP50Ms = median(pick(func(p Pair) float64 { return p.Ours.P50Ms }))
	r.OursP99Ms = median(pick(func(p Pair) float64 { return p.Ours.P99Ms }))
	r.BaselinePerSecond = median(pick(func(p Pair) float64 { return p.Baseline.PerSecond }))
	r.BaselineP50Ms = median(pick(func(p Pair) float64 { return p.Baseline.P50Ms }))
	r.BaselineP99Ms = median(pick(func(p Pair) float64 { return p.Baseline.P99Ms }))
	r.OursRoundTrips = median(pick(func(p Pair) float64 { return p.Ours.RoundTripsPerOp }))
	r.BaselineRoundTrips = median(pick(func(p Pair) float64 { return p.Baseline.RoundTripsPerOp }))
	if r.Goal > 0 {
		r.MeetsGoal = r.RatioMedian >= r.Goal
	} else {
		r.MeetsGoal = r.RatioMedian > 1
	}
}

// timed runs op on workers goroutines until d has passed (each worker finishes the call in flight)
// and returns the throughput and the latency percentiles of the calls.
func timed(ctx context.Context, env *Env, op Op, workers int, d time.Duration) (RunStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		units    = make([]int, workers)
		lats     = make([][]time.Duration, workers)
	)
	trips0, stmts0 := env.trips.snapshot()
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				n, err := op(ctx, w, i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
				units[w] += n
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	trips1, stmts1 := env.trips.snapshot()
	if firstErr != nil {
		return RunStats{}, firstErr
	}
	var all []time.Duration
	total := 0
	for w := range workers {
		all = append(all, lats[w]...)
		total += units[w]
	}
	slices.Sort(all)
	perOp := func(n int64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(n) / float64(len(all))
	}
	return RunStats{
		RoundTripsPerOp: perOp(trips1 - trips0),
		StatementsPerOp: perOp(stmts1 - stmts0),
		Units:           total,
		Ops:             len(all),
		Seconds:         elapsed.Seconds(),
		PerSecond:       float64(total) / elapsed.Seconds(),
		P50Ms:           ms(percentile(all, 0.50)),
		P99Ms:           ms(percentile(all, 0.99)),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
