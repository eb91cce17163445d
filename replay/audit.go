package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections/audit"
)

// AuditFilter selects audit records; its conditions combine with AND and the zero value selects every
// record. The filters apply after chaining: a record keeps the sequence and hash it has in the whole
// trail.
type AuditFilter struct {
	// ActorType and ActorID keep the records of an actor; either may be empty (any).
	ActorType userstore.ActorType
	ActorID   string
	// TargetType and TargetID keep the records of a target type, or of one target (TargetID needs
	// TargetType).
	TargetType string
	TargetID   uuid.UUID
	// Action keeps the records of one action (event type).
	Action string
	// Since and Until bound OccurredAt: Since <= OccurredAt < Until, as in userstore.ListAuditParams.
	// Zero: unbounded.
	Since time.Time
	Until time.Time
}

// Matches reports whether rec passes the filter.
func (f *AuditFilter) Matches(rec *userstore.AuditRecord) bool {
	switch {
	case f.ActorType != "" && rec.Actor.Type != f.ActorType,
		f.ActorID != "" && rec.Actor.ID != f.ActorID,
		f.TargetType != "" && rec.TargetType != f.TargetType,
		f.TargetID != uuid.Nil && rec.TargetID != f.TargetID,
		f.Action != "" && rec.Action != f.Action,
		!f.Since.IsZero() && rec.OccurredAt.Before(f.Since),
		!f.Until.IsZero() && !rec.OccurredAt.Before(f.Until):
		return false
	}
	return true
}

func (f *AuditFilter) validate() error {
	switch {
	case f.TargetID != uuid.Nil && f.TargetType == "":
		return invalid("Filter.TargetType", "is required with TargetID")
	case !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since):
		return invalid("Filter.Until", "must not be before Since")
	}
	return nil
}

// AuditParams select the audit trail of one tenant.
type AuditParams struct {
	// TenantID is the tenant; required.
	TenantID uuid.UUID
	// Filter selects the records passed on; the zero value passes every record.
	Filter AuditFilter
}

// SkippedEvent is an event that an operator skipped in the audit projection (projections.Runner.Skip):
// it has no audit record and never will, so the rebuilt trail leaves it out too, and says so.
type SkippedEvent struct {
	TenantID  uuid.UUID `json:"tenant_id"`
	EventID   uuid.UUID `json:"event_id"`
	Position  int64     `json:"position"`
	EventType string    `json:"event_type"`
	// By and At say who skipped it and when.
	By string    `json:"by"`
	At time.Time `json:"at"`

	cursor eventstore.Cursor
}

// AuditResult summarizes a rebuilt audit trail.
type AuditResult struct {
	// Events is the number of events chained: the tenant's events below the snapshot's horizon, minus
	// the skipped ones.
	Events int64 `json:"events"`
	// Records is the number of records that passed the filter (and were handed to the callback).
	Records int64 `json:"records"`
	// Skipped lists the events left out because an operator skipped them in the audit projection.
	Skipped []SkippedEvent `json:"skipped,omitempty"`
	// Pending counts the tenant's events above the snapshot's horizon: committed by transactions that
	// began after the oldest transaction still running, so their place in the log's order is not final
	// yet. The trail stops before them, as the audit projection does; they appear once that transaction
	// ends.
	Pending int64 `json:"pending"`
}

// Audit rebuilds a tenant's audit trail from its events alone — never from userstore.audit_records —
// and calls fn with each record that passes params.Filter, in sequence order (the record is valid during
// the call only). A record is domain.Audit
// of the event decoded by internal/logcodec, chained with domain.ChainAudit in the log's order
// (transaction id, global position) restricted to the tenant: exactly what the audit projection writes,
// so for every event it has processed the records are equal, field for field.
//
// The events are those below the snapshot's horizon (see AuditResult.Pending), read in batches of
// Config.BatchSize; the records are not kept, so memory stays bounded whatever the size of the trail.
// An error from fn stops the replay and is returned as it is. An event that does not decode is an
// error matching ErrUndecodable, unless it was skipped.
func (r *Replayer) Audit(ctx context.Context, params *AuditParams, fn func(*userstore.AuditRecord) error) (*AuditResult, error) {
	switch {
	case params == nil || params.TenantID == uuid.Nil:
		return nil, invalid("TenantID", "must not be empty")
	case fn == nil:
		return nil, invalid("fn", "must not be nil")
	}
	if err := params.Filter.validate(); err != nil {
		return nil, err
	}
	res := &AuditResult{}
	err := r.readOnly(ctx, "audit", func(tx pgx.Tx) error {
		prog := r.newProgress()
		below, pending, err := tenantCounts(ctx, tx, params.TenantID)
		if err != nil {
			return err
		}
		res.Pending = pending
		prog.total(below)
		skipped, err := readSkipped(ctx, tx, params.TenantID)
		if err != nil {
			return err
		}
		res.Skipped = skippedList(skipped)
		c, err := r.newChainer(ctx, tx, params.TenantID, prog)
		if err != nil {
			return err
		}
		for {
			ev, err := c.next(ctx)
			if err != nil {
				return err
			}
			if ev == nil {
				return nil
			}
			if _, ok := skipped[ev.EventID]; ok {
				continue
			}
			rec, err := c.chain(ev)
			if err != nil {
				return err
			}
			res.Events++
			if !params.Filter.Matches(&rec) {
				continue
			}
			res.Records++
			if err := fn(&rec); err != nil {
				return &callbackError{err}
			}
		}
	})
	var cbErr *callbackError
	if errors.As(err, &cbErr) {
		return nil, cbErr.err
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// callbackError carries a callback's error through readOnly unchanged.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// chainer reads a tenant's events below the horizon in the log's order, a batch at a time, and chains
// their audit records.
type chainer struct {
	events *eventCursor
	seq    int64
	prev   string
}

func (r *Replayer) newChainer(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, prog *progress) (*chainer, error) {
	ec, err := openEventCursor(ctx, tx, "read the log", r.cfg.BatchSize, prog, sqlTenantLog, tenant)
	if err != nil {
		return nil, err
	}
	return &chainer{events: ec, prev: domain.AuditGenesisHash}, nil
}

// next returns the tenant's next event below the horizon, or nil after the last one. The event is valid
// until the batch after the current one is fetched.
func (c *chainer) next(ctx context.Context) (*eventstore.RecordedEvent, error) {
	return c.events.next(ctx)
}

// chain returns the audit record of ev, chained to the previous one.
func (c *chainer) chain(ev *eventstore.RecordedEvent) (userstore.AuditRecord, error) {
	rec, err := auditRecord(ev)
	if err != nil {
		return rec, err
	}
	if err := domain.ChainAudit(&rec, c.seq, c.prev); err != nil {
		return rec, fmt.Errorf("replay: chain the record of the event at position %d: %w", ev.GlobalPosition, err)
	}
	c.seq, c.prev = rec.Sequence, rec.Hash
	return rec, nil
}

// auditRecord returns the unchained audit record of a stored event, as the audit projection derives it.
func auditRecord(ev *eventstore.RecordedEvent) (userstore.AuditRecord, error) {
	r, err := logcodec.Recorded(ev)
	if err != nil {
		// logcodec names the position and the codec's reason, never the payload.
		return userstore.AuditRecord{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return domain.Audit(r), nil
}

// tenantCounts counts the tenant's events below and above the snapshot's horizon.
func tenantCounts(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) (below, above int64, err error) {
	if err := tx.QueryRow(ctx, sqlTenantCounts, tenant).Scan(&below, &above); err != nil {
		return 0, 0, translate("count the tenant's events", err)
	}
	return below, above, nil
}

// readSkipped reads the events an operator skipped in the audit projection for a tenant, by event id.
// Skips are operator actions, so there are few of them.
func readSkipped(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) (map[uuid.UUID]SkippedEvent, error) {
	rows, err := tx.Query(ctx, sqlSkipped, tenant, audit.Name, int32(audit.Version))
	if err != nil {
		return nil, translate("read the audit projection's skipped events", err)
	}
	out := map[uuid.UUID]SkippedEvent{}
	var xid string
	for rows.Next() {
		s := SkippedEvent{TenantID: tenant}
		if err := rows.Scan(&s.EventID, &s.Position, &xid, &s.EventType, &s.By, &s.At); err != nil {
			rows.Close()
			return nil, translate("read the audit projection's skipped events", err)
		}
		s.At = s.At.UTC()
		if s.cursor.TransactionID, err = strconv.ParseUint(xid, 10, 64); err != nil {
			rows.Close()
			return nil, fmt.Errorf("replay: parse a transaction id: %w", err)
		}
		s.cursor.Position = s.Position
		out[s.EventID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, translate("read the audit projection's skipped events", err)
	}
	return out, nil
}

// skippedList returns the skipped events in the log's order.
func skippedList(m map[uuid.UUID]SkippedEvent) []SkippedEvent {
	if len(m) == 0 {
		return nil
	}
	out := make([]SkippedEvent, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sortSkipped(out)
	return out
}

func sortSkipped(s []SkippedEvent) {
	slices.SortFunc(s, func(a, b SkippedEvent) int {
		switch {
		case a.cursor.Less(b.cursor):
			return -1
		case b.cursor.Less(a.cursor):
			return 1
		}
		return 0
	})
}
