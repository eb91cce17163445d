package harness

import (
	"context"
	"fmt"

	"github.com/netkingdom/userstore/projections/readmodel"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// --- 3. Projector catch-up: rebuild the read tables and the audit chain from a preloaded log -------

// rebuildJob runs rebuild.Run on a target and reports its events, its phases and how long it held its
// locks.
func rebuildJob(f *logFixture, target string) Job {
	return func(ctx context.Context) (RunStats, error) {
		res, err := rebuild.Run(ctx, &rebuild.Params{Owner: f.db.Owner, Projector: f.db.Projector, Target: target}, nil)
		if err != nil {
			return RunStats{}, err
		}
		return RunStats{Units: int(res.Events()), Seconds: res.Duration.Seconds(), Extra: map[string]float64{
			"events":    float64(res.Events()),
			"copy_s":    res.CopyDuration.Seconds(),
			"catchup_s": res.CatchUpDuration.Seconds(),
			"swap_s":    res.SwapDuration.Seconds(),
			"other_s":   (res.Duration - res.CopyDuration - res.CatchUpDuration - res.SwapDuration).Seconds(),
			"lock_ms":   float64(res.LockDuration.Milliseconds()),
		}}, nil
	}
}

// copyJob COPYs a copy set's rows; it counts the events they were derived from, so that the ratio of
// the rates is the ratio of the durations.
func copyJob(cs *copySet, events int64) Side {
	return Side{
		Name:    "COPY FROM STDIN of the resulting rows into plain copies of the tables",
		Prepare: cs.truncate,
		Job: func(ctx context.Context) (RunStats, error) {
			n, err := cs.copy(ctx)
			if err != nil {
				return RunStats{}, err
			}
			return RunStats{Units: int(events), Extra: map[string]float64{"rows": float64(n)}}, nil
		},
	}
}

// catchupReadModel is measurement 3 for the read tables: rebuild.Run readmodel over the preloaded log
// (the live tables already hold the fold: the rebuild folds, copies into the shadow, verifies and
// changes nothing) against COPY of the same rows.
func (l *Lab) catchupReadModel(ctx context.Context) (*Case, error) {
	f, err := l.logDB(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.ensureReadModel(ctx, f); err != nil {
		return nil, err
	}
	var tables []string
	for _, t := range readmodel.Tables() {
		tables = append(tables, t.Name)
	}
	cs, err := captureCopySet(ctx, f.db, "bench_readmodel", tables)
	if err != nil {
		return nil, err
	}
	return &Case{
		ID: "catchup/readmodel", Unit: "events", Workers: 1, NoRoundTrips: true,
		What: fmt.Sprintf("3. projector catch-up: rebuild the read tables from a log of %s events (%s rows)",
			count3(f.events), count3(cs.rows)),
		Goal: 0.5, GoalText: "≥ 0.5",
		Ours:     Side{Name: "rebuild.Run readmodel (fold, COPY into shadow tables, verify)", Job: rebuildJob(f, rebuild.TargetReadModel), Trips: f.db.trips},
		Baseline: copyJob(cs, f.events),
	}, nil
}

// catchupAudit is measurement 3 for the audit chain: rebuild.Run audit (the audit projection from
// position zero into a shadow table, verify, hand over) against COPY of the same records. It runs on a
// log of its own (Sizes.AuditEvents): the audit projection's rate makes a million events take minutes
// per run.
func (l *Lab) catchupAudit(ctx context.Context) (*Case, error) {
	f, err := l.preloaded(ctx, &l.audit, "audit", l.Sizes.AuditEvents)
	if err != nil {
		return nil, err
	}
	if err := l.ensureAudit(ctx, f); err != nil {
		return nil, err
	}
	cs, err := captureCopySet(ctx, f.db, "bench_audit", []string{"audit_records"})
	if err != nil {
		return nil, err
	}
	return &Case{
		ID: "catchup/audit", Unit: "events", Workers: 1, NoRoundTrips: true,
		What: fmt.Sprintf("3. projector catch-up: rebuild the audit chain from a log of %s events (%s records)",
			count3(f.events), count3(cs.rows)),
		Goal: 0.5, GoalText: "≥ 0.5",
		Ours:     Side{Name: "rebuild.Run audit (audit projection into a shadow table, verify)", Job: rebuildJob(f, rebuild.TargetAudit), Trips: f.db.trips},
		Baseline: copyJob(cs, f.events),
	}, nil
}

// count3 prints a count with thousands separators.
func count3(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
