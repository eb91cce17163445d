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

	"github.com/netkingdom/userstore/projections"
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
	Sizes   Sizes
	// Only restricts the run to the cases whose id starts with one of its comma-separated prefixes
	// (then no report is written unless every case ran).
	Only string
	Out  string
	JSON string
}

// entry is one case of the run, made when its turn comes (the projector-side cases set up their
// databases then).
type entry struct {
	id   string
	make func(context.Context) (*Case, error)
}

// entries lists the cases of issue 9 in the order of the report.
func entries(setup *Setup, lab *Lab) []entry {
	var out []entry
	fixed := func(c *Case) entry { return entry{c.ID, func(context.Context) (*Case, error) { return c, nil }} }
	var peers []*Case
	for _, c := range setup.Cases() {
		if strings.HasPrefix(c.ID, "log/") {
			peers = append(peers, c)
			continue
		}
		out = append(out, fixed(c))
	}
	out = append(out,
		entry{"catchup/readmodel", lab.catchupReadModel},
		entry{"catchup/audit", lab.catchupAudit},
		entry{"relay/default", func(ctx context.Context) (*Case, error) {
			return lab.relayCase(ctx, "relay/default", "default batch sizes", nil, 0, 0)
		}},
		entry{"relay/tuned", func(ctx context.Context) (*Case, error) {
			return lab.relayCase(ctx, "relay/tuned", "tuned batch sizes", &projections.Config{BatchSize: 2000}, 1000, 10*time.Millisecond)
		}},
		entry{"latency/w16", func(ctx context.Context) (*Case, error) {
			return lab.latencyCase(ctx, "latency/w16", 16, nil, 0)
		}},
		entry{"latency/w16-tuned", func(ctx context.Context) (*Case, error) {
			return lab.latencyCase(ctx, "latency/w16-tuned", 16,
				&projections.Config{Workers: 16, PollIntervalMin: 2 * time.Millisecond}, 10*time.Millisecond)
		}},
		// The replay before growth: growth appends to the log the replay reads (and read tables lack
		// their rows).
		entry{"replay/audit", lab.replayCase},
		entry{"growth/projector", lab.growthProjector},
		entry{"growth/append", lab.growthAppend},
	)
	for _, c := range peers {
		out = append(out, fixed(c))
	}
	return out
}

// selected reports whether id starts with one of the comma-separated prefixes of only ("" selects all).
func selected(id, only string) bool {
	if only == "" {
		return true
	}
	for _, p := range strings.Split(only, ",") {
		if p = strings.TrimSpace(p); p != "" && strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// Main creates a throwaway database, runs the cases, writes the reports and drops the databases.
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
	lab := NewLab(p.Sizes, p.Options.RunFor, p.Options.Progress)
	defer func() { err = errors.Join(err, lab.Close(context.WithoutCancel(ctx))) }()
	rep := &Report{Machine: DescribeMachine(ctx, env.App), Quick: p.Quick, Pairs: p.Options.Pairs, RunFor: p.Options.RunFor.String(),
		Sizes: &p.Sizes}
	fmt.Printf("userstore-bench: database %s, %s, %d cores, PostgreSQL %s, load %s\n",
		env.Name, rep.Machine.CPU, rep.Machine.Cores, rep.Machine.PostgreSQL, rep.Machine.LoadAvgStart)
	all := entries(setup, lab)
	for _, e := range all {
		if !selected(e.id, p.Only) {
			continue
		}
		caseStart := time.Now()
		fmt.Printf("%s: setting up\n", e.id)
		c, err := e.make(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", e.id, err)
		}
		fmt.Printf("%s: %s vs %s\n", c.ID, c.Ours.Name, c.Baseline.Name)
		r, err := Run(ctx, env, c, p.Options)
		if err != nil {
			return err
		}
		r.WallSeconds = time.Since(caseStart).Seconds()
		fmt.Printf("  => ratio %.2f [%.2f–%.2f]%s; %s\n", r.RatioMedian, r.RatioMin, r.RatioMax, goalMark(r),
			time.Duration(r.WallSeconds*float64(time.Second)).Round(time.Second))
		rep.Results = append(rep.Results, r)
	}
	rep.Machine.LoadAvgEnd = LoadAvg()
	if busy(rep.Machine) {
		rep.Notes = append(rep.Notes, "The machine was busy: the load average exceeded the core count (other work, e.g. other "+
			"engineers' test runs, shared the CPUs). The interleaved pairs keep the ratios comparable, but their spread is "+
			"wide and the absolute figures are low; re-run on a quiet machine for figures to rely on.")
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Wall time of the run: %s (database setup and preloading included).", time.Since(start).Round(time.Second)))
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

func goalMark(r *Result) string {
	if r.GoalText == "—" {
		return ""
	}
	if r.MeetsGoal {
		return " ✓ (" + r.GoalText + ")"
	}
	return " ✗ (" + r.GoalText + ")"
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
