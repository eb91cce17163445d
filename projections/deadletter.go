package projections

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/eventstore"
)

// DeadLetterStatus is the state of a dead letter.
type DeadLetterStatus string

// Dead letter states.
const (
	// StatusParked: not applied. The tenant's first parked event failed; the later ones wait behind it,
	// so that the tenant's events are applied in the log's order.
	StatusParked DeadLetterStatus = "parked"
	// StatusRetried: applied later, by an automatic retry or an operator's Retry.
	StatusRetried DeadLetterStatus = "retried"
	// StatusSkipped: an operator's Skip decided it is never to be applied.
	StatusSkipped DeadLetterStatus = "skipped"
)

// DeadLetter is an event a projection could not apply (or that waited behind one), and what became of
// it.
type DeadLetter struct {
	Projection string
	Version    int
	TenantID   uuid.UUID
	Partition  int16
	EventID    uuid.UUID
	// Cursor is the event's place in the log's order.
	Cursor    eventstore.Cursor
	EventType string
	Status    DeadLetterStatus
	// Error is why the event failed, redacted (a database error is its SQLSTATE and constraint); empty
	// for an event that waits behind an earlier one of its tenant.
	Error string
	// Attempts counts the failed attempts to apply the event.
	Attempts int
	// NextAttemptAt is when the projector retries it on its own; zero: it does not (the event waits
	// behind another, has no automatic attempt left, or is resolved).
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// ResolvedAt and ResolvedBy tell when and by whom it was retried or skipped ("projector" for an
	// automatic retry).
	ResolvedAt time.Time
	ResolvedBy string
}

// DeadLettersLimitDefault and DeadLettersLimitMax bound DeadLettersParams.Limit.
const (
	DeadLettersLimitDefault = 100
	DeadLettersLimitMax     = 10_000
)

// DeadLettersParams filter the dead letters to list. Filters combine with AND.
type DeadLettersParams struct {
	// Projection filters by projection name. Default: every projection.
	Projection string
	// TenantID filters by tenant. Default: every tenant.
	TenantID uuid.UUID
	// Status filters by status. Default: every status.
	Status DeadLetterStatus
	// Limit caps the number of dead letters, at most DeadLettersLimitMax. Default:
	// DeadLettersLimitDefault.
	Limit int
}

// DeadLettersResult holds dead letters in (projection, version, tenant, log) order.
type DeadLettersResult struct {
	DeadLetters []DeadLetter
}

// DeadLetters lists dead letters (of any projection, not only this Runner's).
func (r *Runner) DeadLetters(ctx context.Context, params *DeadLettersParams) (*DeadLettersResult, error) {
	if params == nil {
		params = &DeadLettersParams{}
	}
	limit := params.Limit
	switch {
	case limit < 0 || limit > DeadLettersLimitMax:
		return nil, invalid("Limit", "must be between 0 and %d, got %d", DeadLettersLimitMax, limit)
	case limit == 0:
		limit = DeadLettersLimitDefault
	}
	switch params.Status {
	case "", StatusParked, StatusRetried, StatusSkipped:
	default:
		return nil, invalid("Status", "must be parked, retried or skipped")
	}
	var tenant *uuid.UUID
	if params.TenantID != uuid.Nil {
		tenant = &params.TenantID
	}
	rows, err := r.pool.Query(ctx, sqlDeadLetters, params.Projection, tenant, string(params.Status), int64(limit))
	if err != nil {
		return nil, translate("list dead letters", err)
	}
	defer rows.Close()
	res := &DeadLettersResult{DeadLetters: []DeadLetter{}}
	for rows.Next() {
		var (
			d                   DeadLetter
			xid, status         string
			next, resolved      *time.Time
			version, attempts32 int32
		)
		if err := rows.Scan(&d.Projection, &version, &d.TenantID, &d.Partition, &xid, &d.Cursor.Position,
			&d.EventID, &d.EventType, &status, &d.Error, &attempts32, &next, &d.CreatedAt, &d.UpdatedAt,
			&resolved, &d.ResolvedBy); err != nil {
			return nil, translate("list dead letters", err)
		}
		if d.Cursor.TransactionID, err = parseXid(xid); err != nil {
			return nil, err
		}
		d.Version, d.Attempts, d.Status = int(version), int(attempts32), DeadLetterStatus(status)
		if next != nil {
			d.NextAttemptAt = *next
		}
		if resolved != nil {
			d.ResolvedAt = *resolved
		}
		res.DeadLetters = append(res.DeadLetters, d)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("list dead letters", err)
	}
	return res, nil
}

// RetryParams name the tenant whose parked events to retry.
type RetryParams struct {
	// Projection is the projection's name; the Runner's version of it is retried. Required.
	Projection string
	// TenantID is the tenant. Required.
	TenantID uuid.UUID
	// By names the operator; recorded with every dead letter the call resolves. Required.
	By string
}

// RetryResult tells what a Retry or Skip did.
type RetryResult struct {
	// Retried counts the parked events the call applied.
	Retried int
	// Parked counts the tenant's events still parked afterwards.
	Parked int
	// FailedEventID is the parked event that failed again, if one did (it stays first in line, with its
	// new error and attempt count); uuid.Nil otherwise.
	FailedEventID uuid.UUID
	// Error is that event's error, redacted.
	Error string
}

// Retry applies a tenant's parked events in the log's order, now, whatever their attempts and backoff,
// until one fails again or none is left. Applied events are marked retried (by params.By). It waits for
// the batch that holds the tenant's partition, if one runs, and applies the events in transactions of
// at most Config.BatchSize events. The error is nil when the events were tried, whether or not one
// failed again: see the result.
func (r *Runner) Retry(ctx context.Context, params *RetryParams) (*RetryResult, error) {
	if params == nil {
		return nil, invalid("RetryParams", "must not be nil")
	}
	rp, err := r.operatorTarget(params.Projection, params.TenantID, params.By)
	if err != nil {
		return nil, err
	}
	res := &RetryResult{}
	if err := r.retryLoop(ctx, rp, params.TenantID, params.By, res, nil); err != nil {
		return nil, err
	}
	r.log.InfoContext(ctx, "projections: dead letters retried", slog.String("projection", rp.name),
		slog.Int("version", rp.version), slog.String("tenant_id", params.TenantID.String()),
		slog.String("by", params.By), slog.Int("retried", res.Retried), slog.Int("parked", res.Parked))
	return res, nil
}

// SkipParams name the parked event to skip.
type SkipParams struct {
	// Projection is the projection's name; the Runner's version of it is meant. Required.
	Projection string
	// TenantID is the event's tenant. Required.
	TenantID uuid.UUID
	// EventID is the parked event that is never to be applied. Required.
	EventID uuid.UUID
	// By names the operator; recorded with the skip. Required.
	By string
}

// Skip records that a parked event is never to be applied (status skipped, with params.By and the
// time), then retries the tenant's remaining parked events as Retry does — in the same transaction for
// the first of them, so the skip and what it unblocks commit together. The skipped event's effects are
// missing from the projection for good: for the audit trail, the replay tool reports it. Skip returns
// ErrNotParked when the event is not a parked dead letter of the tenant.
func (r *Runner) Skip(ctx context.Context, params *SkipParams) (*RetryResult, error) {
	if params == nil {
		return nil, invalid("SkipParams", "must not be nil")
	}
	rp, err := r.operatorTarget(params.Projection, params.TenantID, params.By)
	if err != nil {
		return nil, err
	}
	if params.EventID == uuid.Nil {
		return nil, invalid("EventID", "must not be empty")
	}
	res := &RetryResult{}
	skip := func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlResolve, params.TenantID, rp.name, rp.version, []string{params.EventID.String()},
			string(StatusSkipped), params.By)
		if err != nil {
			return translate("skip", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w: event %s of tenant %s in projection %s", ErrNotParked, params.EventID, params.TenantID, rp.name)
		}
		return nil
	}
	if err := r.retryLoop(ctx, rp, params.TenantID, params.By, res, skip); err != nil {
		return nil, err
	}
	r.log.InfoContext(ctx, "projections: dead letter skipped", slog.String("projection", rp.name),
		slog.Int("version", rp.version), slog.String("tenant_id", params.TenantID.String()),
		slog.String("event_id", params.EventID.String()), slog.String("by", params.By),
		slog.Int("retried", res.Retried), slog.Int("parked", res.Parked))
	return res, nil
}

func (r *Runner) operatorTarget(projection string, tenant uuid.UUID, by string) (*registered, error) {
	switch {
	case tenant == uuid.Nil:
		return nil, invalid("TenantID", "must not be empty")
	case by == "":
		return nil, invalid("By", "must name the operator")
	case len(by) > 256:
		return nil, invalid("By", "must be at most 256 bytes")
	}
	rp, ok := r.byName[projection]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, projection)
	}
	return rp, nil
}

// retryLoop retries a tenant's parked events in transactions of at most BatchSize events each, until
// one fails or none is left; first, when not nil, runs at the start of the first transaction.
func (r *Runner) retryLoop(ctx context.Context, rp *registered, tenant uuid.UUID, by string, res *RetryResult,
	first func(context.Context, pgx.Tx) error) error {
	for {
		var out retryOutcome
		err := r.tenantTx(ctx, rp, tenant, func(ctx context.Context, tx pgx.Tx, ap *applier) error {
			if first != nil {
				if err := first(ctx, tx); err != nil {
					return err
				}
				first = nil
			}
			var err error
			out, err = r.retryTenant(ctx, ap, rp, tenant, by)
			return err
		})
		if err != nil {
			return err
		}
		res.Retried += out.applied
		if out.failedEventID != uuid.Nil {
			res.FailedEventID, res.Error = out.failedEventID, out.failErr
			break
		}
		if !out.more {
			break
		}
	}
	var parked int64
	if err := r.pool.QueryRow(ctx, sqlParkedCount, tenant, rp.name, rp.version).Scan(&parked); err != nil {
		return translate("count parked events", err)
	}
	res.Parked = int(parked)
	return nil
}

// tenantTx runs fn in a transaction that holds the lock of the tenant's partition (waiting for it) and
// has a batch applier of the projection, then flushes the applier and commits.
func (r *Runner) tenantTx(ctx context.Context, rp *registered, tenant uuid.UUID,
	fn func(context.Context, pgx.Tx, *applier) error) error {
	part := eventstore.PartitionOf(tenant)
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return translate("begin", err)
	}
	defer rollback(ctx, tx)
	b := &pgx.Batch{}
	b.Queue(sqlSetTxIdleTimeout, r.idleTimeout)
	b.Queue(sqlLock, rp.key, int32(part))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return translate("lock the partition", err)
	}
	ba, err := rp.start(ctx, tx, &BatchInfo{Projection: rp.name, Version: rp.version, Partition: part, Retry: true})
	if err != nil {
		return projectionError(rp.name+": start batch", err)
	}
	if err := fn(ctx, tx, &applier{tx: tx, ba: ba}); err != nil {
		return err
	}
	if err := ba.Flush(ctx, tx); err != nil {
		return projectionError(rp.name+": flush", err)
	}
	return translate("commit", tx.Commit(ctx))
}

// retryOutcome tells what retryTenant did.
type retryOutcome struct {
	applied       int
	failedEventID uuid.UUID
	failErr       string
	// more: parked events remain beyond this call's share, and none failed.
	more bool
}

type parkedEvent struct {
	id       uuid.UUID
	cursor   eventstore.Cursor
	attempts int32
}

// retryTenant applies up to BatchSize of a tenant's parked events, in the log's order, in the
// transaction of ap (which holds the tenant's partition lock), until one fails. Applied events are
// marked retried by by; a failure is recorded on the failing event (error, attempt, next automatic
// retry). When parked events remain beyond its share, it makes the next one due at once.
func (r *Runner) retryTenant(ctx context.Context, ap *applier, rp *registered, tenant uuid.UUID, by string) (retryOutcome, error) {
	var out retryOutcome
	limit := r.cfg.BatchSize
	rows, err := ap.tx.Query(ctx, sqlParked, tenant, rp.name, rp.version, int64(limit+1))
	if err != nil {
		return out, translate("read parked events", err)
	}
	var list []parkedEvent
	for rows.Next() {
		var (
			p   parkedEvent
			xid string
		)
		if err := rows.Scan(&p.id, &xid, &p.cursor.Position, &p.attempts); err != nil {
			rows.Close()
			return out, translate("read parked events", err)
		}
		if p.cursor.TransactionID, err = parseXid(xid); err != nil {
			rows.Close()
			return out, err
		}
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return out, translate("read parked events", err)
	}
	if len(list) == 0 {
		return out, nil
	}
	var next *parkedEvent
	if len(list) > limit {
		out.more, next, list = true, &list[limit], list[:limit]
	}

	// Read the events from the log, from the first parked one on, and apply the parked ones in order.
	// Between them the tenant may have resolved (skipped) events; nothing of the tenant was applied.
	part := eventstore.PartitionOf(tenant)
	after := eventstore.Cursor{TransactionID: list[0].cursor.TransactionID, Position: list[0].cursor.Position - 1}
	var retried []string // uuid arrays travel as text (see queries.go)
	i := 0
scan:
	for i < len(list) {
		page, err := r.store.ReadAllTx(ctx, ap.tx, &eventstore.ReadAllParams{
			After: after, Partition: &part, TenantID: tenant, Limit: r.cfg.BatchSize})
		if err != nil {
			return out, fmt.Errorf("projections: read parked events from the log: %w", err)
		}
		if len(page.Events) == 0 {
			return out, fmt.Errorf("projections: parked event %s of tenant %s is not in the log", list[i].id, tenant)
		}
		for j := range page.Events {
			ev := &page.Events[j]
			if ev.EventID != list[i].id {
				continue
			}
			applyErr, err := ap.apply(ctx, ev)
			if err != nil {
				return out, err
			}
			if applyErr != nil {
				out.failedEventID, out.failErr, out.more = ev.EventID, redact(applyErr), false
				var delay *int64
				if d, ok := r.cfg.retryDelay(int(list[i].attempts) + 1); ok {
					ms := d.Milliseconds()
					delay = &ms
				}
				if _, err := ap.tx.Exec(ctx, sqlFail, tenant, rp.name, rp.version, ev.EventID, out.failErr, delay); err != nil {
					return out, translate("record the failed retry", err)
				}
				r.log.WarnContext(ctx, "projections: retry of a dead letter failed", slog.String("projection", rp.name),
					slog.Int("version", rp.version), slog.String("tenant_id", tenant.String()),
					slog.String("event_id", ev.EventID.String()), slog.Int("attempts", int(list[i].attempts)+1),
					slog.String("error", out.failErr))
				break scan
			}
			retried = append(retried, ev.EventID.String())
			out.applied++
			if i++; i == len(list) {
				break scan
			}
		}
		after = page.Next
	}
	if len(retried) > 0 {
		tag, err := ap.tx.Exec(ctx, sqlResolve, tenant, rp.name, rp.version, retried, string(StatusRetried), by)
		if err != nil {
			return out, translate("mark dead letters retried", err)
		}
		if tag.RowsAffected() != int64(len(retried)) {
			return out, fmt.Errorf("projections: dead letters of tenant %s changed concurrently", tenant)
		}
	}
	if out.more && next != nil {
		if _, err := ap.tx.Exec(ctx, sqlDueNow, tenant, rp.name, rp.version, next.id); err != nil {
			return out, translate("schedule the next parked event", err)
		}
	}
	return out, nil
}
