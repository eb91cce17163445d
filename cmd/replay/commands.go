package main

import (
	"context"
	"fmt"

	"github.com/netkingdom/userstore/replay"
)

// runAudit prints a tenant's audit trail rebuilt from the events, record by record as it goes, and a
// summary on stderr.
func runAudit(ctx context.Context, c *command) (int, error) {
	tenant, err := parseTenant(c.tenant)
	if err != nil {
		return 0, err
	}
	// A table on a terminal; JSON lines for a pipe or a file.
	def := replay.FormatJSONL
	if c.env.isTerminal(c.env.stdout) {
		def = replay.FormatTable
	}
	format, err := pickFormat(c.format, def, replay.FormatTable, replay.FormatJSONL, replay.FormatCSV)
	if err != nil {
		return 0, err
	}
	params := &replay.AuditParams{TenantID: tenant}
	f := &params.Filter
	if c.actor != "" {
		f.ActorType, f.ActorID = parseActor(c.actor)
	}
	if c.target != "" {
		if f.TargetType, f.TargetID, err = parseTarget(c.target); err != nil {
			return 0, err
		}
	}
	f.Action = c.action
	if f.Since, err = parseTime("since", c.since); err != nil {
		return 0, err
	}
	if f.Until, err = parseTime("until", c.until); err != nil {
		return 0, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return 0, usageErr("--until must not be before --since")
	}
	w, err := replay.NewAuditWriter(c.env.stdout, format)
	if err != nil {
		return 0, err
	}
	// The progress bar would mix with the records on a terminal: only when they go elsewhere.
	r, done, err := c.replayer(ctx, !c.env.isTerminal(c.env.stdout))
	if err != nil {
		return 0, err
	}
	res, err := r.Audit(ctx, params, w.Write)
	done()
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write the output: %w", ferr)
	}
	if err != nil {
		return 0, err
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(c.env.stderr, "replay audit: event %s at position %d (%s) left out: skipped in the audit projection by %s at %s\n",
			s.EventID, s.Position, s.EventType, s.By, s.At.Format(replay.TimeLayout))
	}
	fmt.Fprintf(c.env.stderr, "replay audit: %d record(s) of %d event(s); %d skipped; %d event(s) above the read horizon not included\n",
		res.Records, res.Events, len(res.Skipped), res.Pending)
	return exitOK, nil
}

// runState prints an entity as it was at a point of the log.
func runState(ctx context.Context, c *command) (int, error) {
	tenant, err := parseTenant(c.tenant)
	if err != nil {
		return 0, err
	}
	if c.entity == "" {
		return 0, usageErr("--entity is required (TYPE:ID)")
	}
	entity, err := replay.ParseEntity(tenant, c.entity)
	if err != nil {
		return 0, err
	}
	params := &replay.StateParams{Entity: entity, AtPosition: c.atPosition, Diff: c.diff}
	if c.atPosition < 0 {
		return 0, usageErr("--at-position must not be negative")
	}
	if params.AtTime, err = parseTime("at-time", c.atTime); err != nil {
		return 0, err
	}
	if c.atPosition > 0 && !params.AtTime.IsZero() {
		return 0, usageErr("--at-position and --at-time exclude each other")
	}
	format, err := pickFormat(c.format, replay.FormatTable, replay.FormatTable, replay.FormatJSON)
	if err != nil {
		return 0, err
	}
	r, _, err := c.replayer(ctx, false)
	if err != nil {
		return 0, err
	}
	res, err := r.State(ctx, params)
	if err != nil {
		return 0, err
	}
	return exitOK, replay.WriteState(c.env.stdout, res, format)
}

// runVerifyChain verifies the audit chain of one tenant or all; exit code 1 on a divergence.
func runVerifyChain(ctx context.Context, c *command) (int, error) {
	params := &replay.VerifyChainParams{All: c.all}
	switch {
	case c.all && c.tenant != "":
		return 0, usageErr("--tenant and --all exclude each other")
	case !c.all && c.tenant == "":
		return 0, usageErr("--tenant T or --all is required")
	case !c.all:
		id, err := parseTenant(c.tenant)
		if err != nil {
			return 0, err
		}
		params.TenantID = id
	}
	format, err := pickFormat(c.format, replay.FormatTable, replay.FormatTable, replay.FormatJSON)
	if err != nil {
		return 0, err
	}
	r, done, err := c.replayer(ctx, true)
	if err != nil {
		return 0, err
	}
	rep, err := r.VerifyChain(ctx, params)
	done()
	if err != nil {
		return 0, err
	}
	if err := replay.WriteChainReport(c.env.stdout, rep, format); err != nil {
		return 0, err
	}
	if rep.Diverged() {
		return exitDivergence, nil
	}
	return exitOK, nil
}

// runVerifyProjections compares the read tables with the state folded from the log; exit code 1 on
// drift.
func runVerifyProjections(ctx context.Context, c *command) (int, error) {
	params := &replay.VerifyProjectionsParams{}
	if c.tenant != "" {
		id, err := parseTenant(c.tenant)
		if err != nil {
			return 0, err
		}
		params.TenantID = id
	}
	if c.maxDiffs < 1 {
		return 0, usageErr("--max-diffs must be at least 1")
	}
	format, err := pickFormat(c.format, replay.FormatTable, replay.FormatTable, replay.FormatJSON)
	if err != nil {
		return 0, err
	}
	r, done, err := c.replayer(ctx, true)
	if err != nil {
		return 0, err
	}
	rep, err := r.VerifyProjections(ctx, params)
	done()
	if err != nil {
		return 0, err
	}
	if err := replay.WriteProjectionReport(c.env.stdout, rep, format); err != nil {
		return 0, err
	}
	if rep.Drifted() {
		return exitDivergence, nil
	}
	return exitOK, nil
}
