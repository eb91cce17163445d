package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections/outbox"
)

// --- 6. Growth: the same work on a log of LogEvents and on one of GrowthEvents --------------------
//
// "Ours" is the larger log, "baseline" the smaller: both sides run the library, and the ratio is the
// cost on the larger log over the cost on the smaller (goal ≤ 1.3). Run after measurements 3 and 7's
// setup: the appends add events to the smaller log (valid ones, but the read tables do not have their
// rows), so measurement 3's read model would see drift if it ran after this.

func (l *Lab) growthDBs(ctx context.Context) (small, large *logFixture, err error) {
	if small, err = l.logDB(ctx); err != nil {
		return nil, nil, err
	}
	if large, err = l.preloaded(ctx, &l.large, "growth", l.Sizes.GrowthEvents); err != nil {
		return nil, nil, err
	}
	return small, large, nil
}

func growthWhat(small, large *logFixture, what string) string {
	return fmt.Sprintf("6. growth: %s, log of %s vs %s events", what, count3(large.events), count3(small.events))
}

// appendSide appends one user.created event to a new user stream per call, through eventstore on the
// app pool of f.
func appendSide(f *logFixture, name string) (Side, error) {
	st, err := eventstore.New(f.db.App, nil)
	if err != nil {
		return Side{}, err
	}
	meta := logcodec.StoreMetadata(domain.Metadata{Actor: benchActor, Command: "CreateUser", RequestID: "growth"})
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Side{Name: name, Op: func(ctx context.Context, w, i int) (int, error) {
		tenant := f.tenants[(w+i)%len(f.tenants)].ID
		id := userstore.NewID()
		enc, err := domain.Encode(domain.UserCreated{UserID: id, TenantID: tenant, DisplayName: "Growth",
			Email: fmt.Sprintf("g.%s@example.com", id), At: at})
		if err != nil {
			return 0, err
		}
		_, err = st.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: string(domain.StreamUser), StreamID: id,
			Expected: eventstore.NoStream(), Events: []eventstore.EventData{{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion),
				Payload: enc.Payload, Metadata: meta}}})
		return 1, err
	}}, nil
}

// growthAppend: eventstore.Append of single events, one writer, p50 on the larger log over p50 on the
// smaller one.
func (l *Lab) growthAppend(ctx context.Context) (*Case, error) {
	small, large, err := l.growthDBs(ctx)
	if err != nil {
		return nil, err
	}
	ours, err := appendSide(large, "eventstore.Append, 1 event (larger log)")
	if err != nil {
		return nil, err
	}
	base, err := appendSide(small, "eventstore.Append, 1 event (smaller log)")
	if err != nil {
		return nil, err
	}
	return &Case{
		ID: "growth/append", Unit: "events", Workers: 1, NoRoundTrips: true,
		What:      growthWhat(small, large, "append p50, single events, 1 writer"),
		RatioText: "p50 larger log / p50 smaller log",
		RatioOf: func(p *Pair) float64 {
			if p.Baseline.P50Ms == 0 {
				return 0
			}
			return p.Ours.P50Ms / p.Baseline.P50Ms
		},
		Meets:    func(r *Result) bool { return r.RatioMedian <= 1.3 },
		GoalText: "≤ 1.3",
		Ours:     ours, Baseline: base,
	}, nil
}

// growthProjector: the outbox relay (the projection runtime reading the log) catching up GrowthBatch
// new events; its checkpoints start at the head of the preloaded log. Events/s on the smaller log over
// events/s on the larger one.
func (l *Lab) growthProjector(ctx context.Context) (*Case, error) {
	small, large, err := l.growthDBs(ctx)
	if err != nil {
		return nil, err
	}
	usersPerRun := max(1, l.Sizes.GrowthBatch/(len(small.tenants)*eventsPerUser))
	side := func(f *logFixture, name string) (Side, error) {
		if err := checkpointAtHead(ctx, f, outbox.Name, outbox.Version); err != nil {
			return Side{}, fmt.Errorf("set the relay's checkpoints: %w", err)
		}
		runner, err := relayRunner(f, nil)
		if err != nil {
			return Side{}, err
		}
		var written int64
		return Side{
			Name:  name,
			Trips: f.db.trips,
			Prepare: func(ctx context.Context) error {
				// Anything appended since (measurement 6's appends) is not part of the run.
				if err := runner.CatchUp(ctx); err != nil {
					return err
				}
				written, err = f.appendUsers(ctx, usersPerRun)
				return err
			},
			Job: func(ctx context.Context) (RunStats, error) {
				if err := runner.CatchUp(ctx); err != nil {
					return RunStats{}, err
				}
				return RunStats{Units: int(written)}, nil
			},
		}, nil
	}
	ours, err := side(large, "outbox relay Runner.CatchUp of new events (larger log)")
	if err != nil {
		return nil, err
	}
	base, err := side(small, "outbox relay Runner.CatchUp of new events (smaller log)")
	if err != nil {
		return nil, err
	}
	return &Case{
		ID: "growth/projector", Unit: "events", Workers: 1, NoRoundTrips: true, Warmup: true,
		What: growthWhat(small, large, fmt.Sprintf("projector events/s catching up %s new events",
			count3(int64(usersPerRun*len(small.tenants)*eventsPerUser)))),
		RatioText: "events/s smaller log / events/s larger log",
		RatioOf: func(p *Pair) float64 {
			if p.Ours.PerSecond == 0 {
				return 0
			}
			return p.Baseline.PerSecond / p.Ours.PerSecond
		},
		Meets:    func(r *Result) bool { return r.RatioMedian <= 1.3 },
		GoalText: "≤ 1.3",
		Ours:     ours, Baseline: base,
	}, nil
}
