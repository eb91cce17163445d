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
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Op performs one unit of work for worker w (its i-th call) and returns how many units (commands,
// events, rows) it completed.
type Op func(ctx context.Context, w, i int) (int, error)

// Job performs one whole piece of work (a rebuild, a relay of N messages, a replay) and returns its
// statistics; Seconds and PerSecond are filled in by the harness when the job leaves them zero.
type Job func(ctx context.Context) (RunStats, error)

// Side is one contender of a pair.
type Side struct {
	// Name describes the side, e.g. "pgstore.CreateUser".
	Name string
	// Op is the unit of work, called by Case.Workers workers for Options.RunFor. Either Op or Job is
	// set.
	Op Op
	// Job is the whole work of one timed run (Case.Workers is then informational).
	Job Job
	// Prepare, when set, runs before each run of the side (warm-up included), untimed: it lays out
	// the work the run will do (appends the events a relay will move, truncates a baseline's table).
	Prepare func(ctx context.Context) error
	// Trips, when set, counts the round trips of a Job's pools: the run reports them per unit
	// (Extra "rt_per_unit").
	Trips *roundTrips
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
	// RatioText says what the ratio is when it is not ours / baseline throughput (RatioOf set).
	RatioText string
	// RatioOf computes a pair's ratio; default: ours.PerSecond / baseline.PerSecond.
	RatioOf func(p *Pair) float64
	// Meets decides whether the result meets the goal (and may add figures to its extras); default:
	// the median ratio is at least Goal (above 1 when Goal is 0).
	Meets func(r *Result) bool
	// Warmup: run each side once, untimed, before the pairs. Op cases always warm up (for
	// Options.Warmup); Job cases only when this is set (their setup usually did the same work).
	Warmup bool
	// NoRoundTrips: the round-trip tracer does not see this case's pools; the report shows none.
	NoRoundTrips bool
	// Latency: the Job's P50Ms and P99Ms are latencies of its messages, not its duration.
	Latency bool
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
	// Extra holds a case's own figures (peak RSS, phase durations, …), by name.
	Extra map[string]float64 `json:"extra,omitempty"`
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
	// RatioText says what the ratio is when it is not ours / baseline throughput.
	RatioText string `json:"ratio_text,omitempty"`
	// NoRoundTrips: round trips were not counted for this case.
	NoRoundTrips bool `json:"no_round_trips,omitempty"`
	// Kind is "calls" (a run is many calls; p50/p99 per call), "job" (a run is one job; p50 = p99 =
	// its duration) or "latency" (a run is one job; p50/p99 are its messages' latencies).
	Kind string `json:"kind"`
	// OursExtra and BaselineExtra: medians over the pairs of each side's extra figures.
	OursExtra     map[string]float64 `json:"ours_extra_median,omitempty"`
	BaselineExtra map[string]float64 `json:"baseline_extra_median,omitempty"`
	MeetsGoal     bool               `json:"meets_goal"`
	// WallSeconds is the case's wall time, its setup included.
	WallSeconds float64 `json:"wall_seconds"`
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
	if (opts.Warmup > 0 && c.Ours.Job == nil) || c.Warmup {
		for _, s := range []Side{c.Ours, c.Baseline} {
			if _, err := runSide(ctx, env, c, s, opts.Warmup); err != nil {
				return nil, fmt.Errorf("%s: warm-up of %s: %w", c.ID, s.Name, err)
			}
		}
	}
	res := &Result{
		ID: c.ID, What: c.What, Unit: c.Unit, Workers: c.Workers, Ours: c.Ours.Name, Baseline: c.Baseline.Name,
		GoalText: c.GoalText, Goal: c.Goal, RatioText: c.RatioText, NoRoundTrips: c.NoRoundTrips, Kind: "calls",
	}
	switch {
	case c.Latency:
		res.Kind = "latency"
	case c.Ours.Job != nil:
		res.Kind = "job"
	}
	for i := range opts.Pairs {
		p := Pair{Index: i + 1}
		runOurs := func() (err error) { p.Ours, err = runSide(ctx, env, c, c.Ours, opts.RunFor); return }
		runBase := func() (err error) { p.Baseline, err = runSide(ctx, env, c, c.Baseline, opts.RunFor); return }
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
		switch {
		case c.RatioOf != nil:
			p.Ratio = c.RatioOf(&p)
		case p.Baseline.PerSecond > 0:
			p.Ratio = p.Ours.PerSecond / p.Baseline.PerSecond
		}
		res.Pairs = append(res.Pairs, p)
		if opts.Progress != nil {
			opts.Progress("  %-28s pair %d/%d (%s): ours %9.0f %s/s p99 %6.1f ms  baseline %9.0f %s/s p99 %6.1f ms  ratio %.2f%s",
				c.ID, i+1, opts.Pairs, p.Order, p.Ours.PerSecond, c.Unit, p.Ours.P99Ms, p.Baseline.PerSecond, c.Unit, p.Baseline.P99Ms, p.Ratio,
				extraText("ours", p.Ours.Extra)+extraText("baseline", p.Baseline.Extra))
		}
	}
	res.summarize()
	if c.Meets != nil {
		res.MeetsGoal = c.Meets(res)
	}
	return res, nil
}

// runSide prepares and runs one side once: its Job, or its Op on the case's workers for d.
func runSide(ctx context.Context, env *Env, c *Case, s Side, d time.Duration) (RunStats, error) {
	if s.Prepare != nil {
		if err := s.Prepare(ctx); err != nil {
			return RunStats{}, fmt.Errorf("prepare %s: %w", s.Name, err)
		}
	}
	if s.Job == nil {
		return timed(ctx, env, s.Op, c.Workers, d)
	}
	var trips0 int64
	if s.Trips != nil {
		trips0, _ = s.Trips.snapshot()
	}
	start := time.Now()
	st, err := s.Job(ctx)
	if err != nil {
		return RunStats{}, err
	}
	if s.Trips != nil && st.Units > 0 {
		trips1, _ := s.Trips.snapshot()
		if st.Extra == nil {
			st.Extra = map[string]float64{}
		}
		st.Extra["rt_per_unit"] = float64(trips1-trips0) / float64(st.Units)
	}
	if st.Seconds == 0 {
		st.Seconds = time.Since(start).Seconds()
	}
	if st.PerSecond == 0 && st.Seconds > 0 {
		st.PerSecond = float64(st.Units) / st.Seconds
	}
	if st.Ops == 0 {
		st.Ops = 1
		st.P50Ms, st.P99Ms = st.Seconds*1000, st.Seconds*1000
	}
	return st, nil
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
	r.OursExtra = medianExtra(r.Pairs, func(p Pair) map[string]float64 { return p.Ours.Extra })
	r.BaselineExtra = medianExtra(r.Pairs, func(p Pair) map[string]float64 { return p.Baseline.Extra })
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

// extraText prints a side's extra figures for the progress lines.
func extraText(side string, extra map[string]float64) string {
	if len(extra) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(extra))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, extra[k])
	}
	return "\n      " + side + ": " + strings.Join(parts, " ")
}

// medianExtra is the median over the pairs of each extra figure of one side.
func medianExtra(pairs []Pair, side func(Pair) map[string]float64) map[string]float64 {
	vals := map[string][]float64{}
	for _, p := range pairs {
		for k, v := range side(p) {
			vals[k] = append(vals[k], v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	out := make(map[string]float64, len(vals))
	for k, v := range vals {
		out[k] = median(v)
	}
	return out
}

// maxOver is the largest value of f over the pairs.
func maxOver(pairs []Pair, f func(Pair) float64) float64 {
	m := 0.0
	for _, p := range pairs {
		m = max(m, f(p))
	}
	return m
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
