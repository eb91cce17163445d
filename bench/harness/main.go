package harness

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// analysis is the hand-written part of docs/benchmarks.md: what limits the figures that miss their
// goal, and what would lift them. It is appended to the generated table.
//
//go:embed analysis.md
var analysis string

// MainParams are the settings of one benchmark run.
type MainParams struct {
	Options Options
	Quick   bool
	// Only restricts the run to the cases whose id starts with it (then no report is written unless
	// every case ran).
	Only string
	Out  string
	JSON string
}

// Main creates a throwaway database, runs the cases, writes the reports and drops the database.
func Main(ctx context.Context, p MainParams) (err error) {
	const maxWriters = 16
	start := time.Now()
	env, err := NewEnv(ctx, maxWriters)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Close(context.WithoutCancel(ctx))) }()
	setup, err := NewSetup(ctx, env, maxWriters)
	if err != nil {
		return err
	}
	rep := &Report{Machine: DescribeMachine(ctx, env.App), Quick: p.Quick, Pairs: p.Options.Pairs, RunFor: p.Options.RunFor.String()}
	fmt.Printf("userstore-bench: database %s, %s, %d cores, PostgreSQL %s, load %s\n",
		env.Name, rep.Machine.CPU, rep.Machine.Cores, rep.Machine.PostgreSQL, rep.Machine.LoadAvgStart)
	all := setup.Cases()
	for _, c := range all {
		if !strings.HasPrefix(c.ID, p.Only) {
			continue
		}
		fmt.Printf("%s: %s vs %s\n", c.ID, c.Ours.Name, c.Baseline.Name)
		r, err := Run(ctx, env, c, p.Options)
		if err != nil {
			return err
		}
		fmt.Printf("  => ratio %.2f [%.2f–%.2f]; round trips per call: ours %.1f, baseline %.1f\n",
			r.RatioMedian, r.RatioMin, r.RatioMax, r.OursRoundTrips, r.BaselineRoundTrips)
		rep.Results = append(rep.Results, r)
	}
	rep.Machine.LoadAvgEnd = LoadAvg()
	if busy(rep.Machine) {
		rep.Notes = append(rep.Notes, "The machine was busy: the load average exceeded the core count (other work, e.g. other "+
			"engineers' test runs, shared the CPUs). The interleaved pairs keep the ratios comparable, but their spread is "+
			"wide and the absolute figures are low; re-run on a quiet machine for figures to rely on.")
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Wall time of the run: %s (database setup included).", time.Since(start).Round(time.Second)))
	if len(rep.Results) != len(all) {
		fmt.Println("userstore-bench: -only given: reports not written")
		return nil
	}
	if err := rep.WriteJSON(p.JSON); err != nil {
		return err
	}
	if err := rep.WriteMarkdown(p.Out, p.JSON, analysis); err != nil {
		return err
	}
	fmt.Printf("userstore-bench: wrote %s and %s in %s\n", p.Out, p.JSON, time.Since(start).Round(time.Second))
	return nil
}

// Render rewrites the markdown report from the JSON file of an earlier run (after an edit of the
// analysis, say) without running anything.
func Render(jsonPath, out string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("read %s: %w", jsonPath, err)
	}
	return rep.WriteMarkdown(out, jsonPath, analysis)
}

// busy reports whether the 1-minute load average, at the start or the end, exceeded the core count.
func busy(m Machine) bool {
	for _, la := range []string{m.LoadAvgStart, m.LoadAvgEnd} {
		var one float64
		if _, err := fmt.Sscanf(la, "%g", &one); err == nil && one > float64(m.Cores) {
			return true
		}
	}
	return false
}
