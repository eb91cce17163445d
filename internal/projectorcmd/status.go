package projectorcmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/migrations"
	"github.com/netkingdom/userstore/projections"
)

// statusReport is what `projector status` prints (its JSON form with -json).
type statusReport struct {
	Schema      schemaReport       `json:"schema"`
	Horizon     *horizonReport     `json:"horizon,omitempty"`
	Projections []projectionReport `json:"projections"`
	// Problems lists what makes the command exit with 1: a schema mismatch, parked dead letters.
	Problems []string `json:"problems"`
}

type schemaReport struct {
	Current  int64   `json:"current"`
	Expected int64   `json:"expected"`
	Pending  []int64 `json:"pending"`
	Unknown  []int64 `json:"unknown"`
	UpToDate bool    `json:"up_to_date"`
}

type horizonReport struct {
	// Xmin is the oldest running transaction id: events of later transactions are not readable yet.
	Xmin   string        `json:"xmin"`
	Holder *holderReport `json:"holder,omitempty"`
}

type holderReport struct {
	PID             int       `json:"pid"`
	ApplicationName string    `json:"application_name"`
	State           string    `json:"state"`
	XactStart       time.Time `json:"xact_start"`
	XactAgeSeconds  float64   `json:"xact_age_seconds"`
}

type projectionReport struct {
	Name          string  `json:"name"`
	Version       int     `json:"version"`
	EventsBehind  int64   `json:"events_behind"`
	SecondsBehind float64 `json:"seconds_behind"`
	Parked        int64   `json:"parked"`
	// Checkpoints counts the partitions that have a checkpoint.
	Checkpoints int `json:"checkpoints"`
	// Processed sums the events the checkpoints processed.
	Processed int64 `json:"processed"`
	// LastUpdatedAt is when a checkpoint last moved (absent: none yet).
	LastUpdatedAt *time.Time        `json:"last_updated_at,omitempty"`
	Partitions    []partitionReport `json:"partitions"`
}

type partitionReport struct {
	Partition     int16      `json:"partition"`
	TransactionID string     `json:"checkpoint_transaction_id"`
	Position      int64      `json:"checkpoint_position"`
	Processed     int64      `json:"processed"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
	EventsBehind  int64      `json:"events_behind"`
	SecondsBehind float64    `json:"seconds_behind"`
	Parked        int64      `json:"parked"`
}

// statusCommand is `projector status`.
func statusCommand(ctx context.Context, args []string, env *Env) error {
	o, err := parseStatus(args, env)
	if err != nil {
		return err
	}
	log, err := newLogger(&o.log, env.Stderr)
	if err != nil {
		return err
	}
	projs, release, err := projectionsFor(ctx, &o.proj, log)
	if err != nil {
		return err
	}
	defer release()
	pool, err := connect(ctx, &o.db, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := collectStatus(ctx, pool, projs)
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else {
		printStatus(env.Stdout, rep)
	}
	if len(rep.Problems) > 0 {
		return &silentError{code: ExitFailed}
	}
	return nil
}

// collectStatus reads the schema version, the horizon and, when the schema matches, the projections'
// status.
func collectStatus(ctx context.Context, pool *pgxpool.Pool, projs []projections.Projection) (*statusReport, error) {
	rep := &statusReport{Projections: []projectionReport{}, Problems: []string{}}
	st, err := migrations.Status(ctx, pool)
	if err != nil {
		return nil, err
	}
	rep.Schema = schemaReport{Current: st.Current, Expected: st.Expected, Pending: append([]int64{}, st.Pending...),
		Unknown: append([]int64{}, st.Unknown...), UpToDate: st.UpToDate()}
	if !st.UpToDate() {
		problem := fmt.Sprintf("the database is at schema version %d, this build expects %d", st.Current, st.Expected)
		if len(st.Pending) > 0 {
			problem += fmt.Sprintf("; pending versions %v: run `projector migrate` as the owner role", st.Pending)
		}
		if len(st.Unknown) > 0 {
			problem += fmt.Sprintf("; versions %v are unknown to this build: the database was migrated by a newer build", st.Unknown)
		}
		rep.Problems = append(rep.Problems, problem)
		return rep, nil
	}

	store, err := eventstore.New(pool, nil)
	if err != nil {
		return nil, err
	}
	h, err := store.Horizon(ctx)
	if err != nil {
		return nil, err
	}
	rep.Horizon = &horizonReport{Xmin: strconv.FormatUint(h.Xmin, 10)}
	if hh := h.Holder; hh != nil {
		rep.Horizon.Holder = &holderReport{PID: hh.PID, ApplicationName: hh.ApplicationName, State: hh.State,
			XactStart: hh.XactStart, XactAgeSeconds: hh.XactAge.Seconds()}
	}

	runner, err := projections.New(pool, store, projs, nil)
	if err != nil {
		return nil, err
	}
	ps, err := runner.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps.Projections {
		pr := projectionReport{Name: p.Name, Version: p.Version, EventsBehind: p.EventsBehind,
			SecondsBehind: p.Behind.Seconds(), Parked: p.Parked, Partitions: []partitionReport{}}
		for _, part := range p.Partitions {
			r := partitionReport{Partition: part.Partition, TransactionID: strconv.FormatUint(part.Checkpoint.TransactionID, 10),
				Position: part.Checkpoint.Position, Processed: part.Processed, EventsBehind: part.EventsBehind,
				SecondsBehind: part.Behind.Seconds(), Parked: part.Parked}
			if !part.UpdatedAt.IsZero() {
				at := part.UpdatedAt
				r.UpdatedAt = &at
				pr.Checkpoints++
				if pr.LastUpdatedAt == nil || at.After(*pr.LastUpdatedAt) {
					pr.LastUpdatedAt = &at
				}
			}
			pr.Processed += part.Processed
			pr.Partitions = append(pr.Partitions, r)
		}
		if p.Parked > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(
				"%s: %d dead letters parked (projector dead-letters list -projection %s)", p.Name, p.Parked, p.Name))
		}
		rep.Projections = append(rep.Projections, pr)
	}
	return rep, nil
}

func printStatus(w io.Writer, rep *statusReport) {
	s := rep.Schema
	if s.UpToDate {
		fmt.Fprintf(w, "schema version %d: up to date\n", s.Current)
	} else {
		fmt.Fprintf(w, "schema version %d: this build expects %d\n", s.Current, s.Expected)
	}
	if h := rep.Horizon; h != nil {
		if hh := h.Holder; hh != nil {
			fmt.Fprintf(w, "horizon: transaction %s, held back by pid %d (application %q, %s) for %s\n",
				h.Xmin, hh.PID, hh.ApplicationName, hh.State, seconds(hh.XactAgeSeconds))
		} else {
			fmt.Fprintf(w, "horizon: transaction %s, not held back\n", h.Xmin)
		}
	}
	if len(rep.Projections) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tVERSION\tEVENTS BEHIND\tSECONDS BEHIND\tPARKED\tCHECKPOINTS\tPROCESSED\tLAST CHECKPOINT")
		for _, p := range rep.Projections {
			last := "-"
			if p.LastUpdatedAt != nil {
				last = p.LastUpdatedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%d\t%d/%d\t%d\t%s\n", p.Name, p.Version, p.EventsBehind,
				p.SecondsBehind, p.Parked, p.Checkpoints, len(p.Partitions), p.Processed, last)
		}
		_ = tw.Flush()
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
