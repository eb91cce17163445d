package projectorcmd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
)

const deadLettersUsage = `usage: projector dead-letters <list|retry|skip> [flags]

  list    list dead letters (parked ones unless -status says otherwise)
  retry   apply a tenant's parked events of a projection now, in order, until one fails again
  skip    record that a parked event is never to be applied, then retry the tenant's others

"projector dead-letters <subcommand> -h" lists its flags.
`

// deadLettersCommand is `projector dead-letters list|retry|skip`.
func deadLettersCommand(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, deadLettersUsage)
		return &silentError{code: ExitUsage}
	}
	sub := args[0]
	switch sub {
	case "list", "retry", "skip":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, deadLettersUsage)
		return nil
	default:
		fmt.Fprintf(env.Stderr, "projector: unknown dead-letters subcommand %q\n\n%s", sub, deadLettersUsage)
		return &silentError{code: ExitUsage}
	}
	o, err := parseDeadLetters(sub, args[1:], env)
	if err != nil {
		return err
	}
	log, err := newLogger(&o.log, env.Stderr)
	if err != nil {
		return err
	}
	var tenant, event uuid.UUID
	if o.tenant != "" {
		if tenant, err = uuid.Parse(o.tenant); err != nil {
			return usagef("-tenant must be a UUID")
		}
	}
	if o.event != "" {
		if event, err = uuid.Parse(o.event); err != nil {
			return usagef("-event must be a UUID")
		}
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
	store, err := eventstore.New(pool, &eventstore.Config{Logger: log})
	if err != nil {
		return err
	}
	runner, err := projections.New(pool, store, projs, &projections.Config{Logger: log})
	if err != nil {
		return err
	}

	switch sub {
	case "list":
		res, err := runner.DeadLetters(ctx, &projections.DeadLettersParams{Projection: o.projection, TenantID: tenant,
			Status: projections.DeadLetterStatus(o.status), Limit: o.limit})
		if err != nil {
			return operatorError(err)
		}
		if o.json {
			return writeJSON(env.Stdout, deadLettersJSON(res.DeadLetters))
		}
		printDeadLetters(env.Stdout, res.DeadLetters)
		return nil
	case "retry":
		res, err := runner.Retry(ctx, &projections.RetryParams{Projection: o.projection, TenantID: tenant, By: o.by})
		if err != nil {
			return operatorError(err)
		}
		return reportRetry(env.Stdout, o, "", res)
	default:
		res, err := runner.Skip(ctx, &projections.SkipParams{Projection: o.projection, TenantID: tenant, EventID: event, By: o.by})
		if err != nil {
			return operatorError(err)
		}
		return reportRetry(env.Stdout, o, event.String(), res)
	}
}

// operatorError classifies an error of a Runner's operator method: invalid input and an unknown
// projection are usage errors; the others (a database error, an event not parked) failures.
func operatorError(err error) error {
	if errors.Is(err, projections.ErrValidation) || errors.Is(err, projections.ErrUnknownProjection) {
		return usagef("%s", err)
	}
	return err
}

// retryReport is what retry and skip print (their JSON form with -json).
type retryReport struct {
	Projection string `json:"projection"`
	TenantID   string `json:"tenant_id"`
	// Skipped is the event skip marked skipped; empty for retry.
	Skipped string `json:"skipped,omitempty"`
	Retried int    `json:"retried"`
	Parked  int    `json:"parked"`
	// FailedEventID and Error tell which parked event failed again, and why.
	FailedEventID string `json:"failed_event_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

// reportRetry prints the result of a retry or skip; an event that failed again is an error (exit 1).
func reportRetry(w io.Writer, o *deadLetterOptions, skipped string, res *projections.RetryResult) error {
	rep := retryReport{Projection: o.projection, TenantID: o.tenant, Skipped: skipped, Retried: res.Retried, Parked: res.Parked}
	if res.FailedEventID != uuid.Nil {
		rep.FailedEventID, rep.Error = res.FailedEventID.String(), res.Error
	}
	if o.json {
		if err := writeJSON(w, rep); err != nil {
			return err
		}
	} else {
		if skipped != "" {
			fmt.Fprintf(w, "skipped event %s\n", skipped)
		}
		fmt.Fprintf(w, "retried %d events of tenant %s in %s; %d still parked\n", rep.Retried, rep.TenantID, rep.Projection, rep.Parked)
		if rep.FailedEventID != "" {
			fmt.Fprintf(w, "event %s failed again: %s\n", rep.FailedEventID, rep.Error)
		}
	}
	if rep.FailedEventID != "" {
		return fmt.Errorf("dead-letters: event %s of tenant %s failed again in %s; %d events still parked",
			rep.FailedEventID, rep.TenantID, rep.Projection, rep.Parked)
	}
	return nil
}

// deadLetterJSON is one dead letter as list -json prints it.
type deadLetterJSON struct {
	Projection    string     `json:"projection"`
	Version       int        `json:"version"`
	TenantID      string     `json:"tenant_id"`
	Partition     int16      `json:"partition"`
	EventID       string     `json:"event_id"`
	TransactionID string     `json:"transaction_id"`
	Position      int64      `json:"position"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Error         string     `json:"error,omitempty"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	ResolvedAt    *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy    string     `json:"resolved_by,omitempty"`
}

func deadLettersJSON(dls []projections.DeadLetter) []deadLetterJSON {
	out := make([]deadLetterJSON, 0, len(dls))
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	for _, d := range dls {
		out = append(out, deadLetterJSON{Projection: d.Projection, Version: d.Version, TenantID: d.TenantID.String(),
			Partition: d.Partition, EventID: d.EventID.String(), TransactionID: strconv.FormatUint(d.Cursor.TransactionID, 10),
			Position: d.Cursor.Position, EventType: d.EventType, Status: string(d.Status), Error: d.Error,
			Attempts: d.Attempts, NextAttemptAt: opt(d.NextAttemptAt), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
			ResolvedAt: opt(d.ResolvedAt), ResolvedBy: d.ResolvedBy})
	}
	return out
}

func printDeadLetters(w io.Writer, dls []projections.DeadLetter) {
	if len(dls) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tVERSION\tTENANT\tEVENT\tPOSITION\tTYPE\tSTATUS\tATTEMPTS\tNEXT ATTEMPT\tRESOLVED BY\tERROR")
		for _, d := range dls {
			next := "-"
			if !d.NextAttemptAt.IsZero() {
				next = d.NextAttemptAt.UTC().Format(time.RFC3339)
			}
			by := cmp.Or(d.ResolvedBy, "-")
			errText := cmp.Or(strings.Join(strings.Fields(d.Error), " "), "-")
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Projection, d.Version, d.TenantID, d.EventID,
				d.Cursor.Position, d.EventType, d.Status, d.Attempts, next, by, errText)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "%d dead letters\n", len(dls))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
