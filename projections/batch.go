package projections

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/netkingdom/userstore/eventstore"
)

// rollbackTimeout bounds the ROLLBACK that ends a failed or unneeded batch transaction.
const rollbackTimeout = 5 * time.Second

// dueTenantsPerBatch bounds the tenants whose parked events one batch retries automatically.
const dueTenantsPerBatch = 4

// byProjector is the resolved_by of dead letters that an automatic retry applied.
const byProjector = "projector"

// batchResult tells what one batch did.
type batchResult struct {
	// held: another transaction holds the partition; the batch did nothing.
	held bool
	// full: the batch read BatchSize events, so more may be waiting below the horizon.
	full bool
	// retriesLeft: more tenants were due for an automatic retry than the batch took.
	retriesLeft bool
	read        int
	applied     int
	parked      int
	retried     int

	// committed: the batch transaction committed (it had events to process or dead letters to retry).
	committed bool
}

// checkpoint is a partition's checkpoint as a batch reads it.
type checkpoint struct {
	exists bool
	cursor eventstore.Cursor
	parked int64
	due    int64
}

// runBatch runs one batch transaction of a projection on a partition:
//
//	BEGIN (READ COMMITTED)
//	pg_try_advisory_xact_lock(projection, partition)  — or give up: another transaction holds it
//	read the checkpoint (and whether dead letters are parked or due)
//	read the partition's next events after the checkpoint, below the horizon (eventstore.ReadAllTx)
//	retry the dead letters that are due, tenant by tenant
//	apply each event in a savepoint; park a failing event, and every later event of its tenant
//	flush the projection's batch applier
//	compare-and-set the checkpoint to the last event read
//	COMMIT
//
// The effects and the checkpoint commit together or not at all: every event is applied (or parked)
// exactly once, whatever happens to the process or its connection.
//
// READ COMMITTED is what the batch needs, and more than READ COMMITTED would hurt: each statement takes
// a new snapshot, so the checkpoint read after the lock sees what the lock's previous holder committed
// (under REPEATABLE READ the snapshot would be taken by the lock statement itself, before the lock was
// granted, and the batch would redo the previous holder's work until the compare-and-set failed on a
// serialization error). Nothing else can interleave: every writer of a partition's checkpoint, its dead
// letters and — per tenant, since a tenant lives in one partition — its projected rows holds the same
// lock.
func (r *Runner) runBatch(ctx context.Context, rp *registered, part int16) (res batchResult, err error) {
	defer func() { r.counters[rp.name].count(ctx, &res, err) }()
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return res, translate("begin batch", err)
	}
	defer rollback(ctx, tx)

	var (
		locked bool
		cp     checkpoint
		xid    string
	)
	b := &pgx.Batch{}
	b.Queue(sqlSetTxIdleTimeout, r.idleTimeout)
	b.Queue(sqlTryLock, rp.key, int32(part)).QueryRow(func(row pgx.Row) error { return row.Scan(&locked) })
	b.Queue(sqlCheckpoint, rp.name, rp.version, part).QueryRow(func(row pgx.Row) error {
		return row.Scan(&cp.exists, &xid, &cp.cursor.Position, &cp.parked, &cp.due)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return res, translate("lock and read checkpoint", err)
	}
	if !locked {
		res.held = true
		return res, nil
	}
	if cp.cursor.TransactionID, err = parseXid(xid); err != nil {
		return res, err
	}

	// Read before writing anything: until its first write the transaction has no transaction id, so it
	// holds back no other reader of the log.
	read, err := r.store.ReadAllTx(ctx, tx, &eventstore.ReadAllParams{After: cp.cursor, Partition: &part, Limit: r.cfg.BatchSize})
	if err != nil {
		return res, fmt.Errorf("projections: read the log: %w", err)
	}
	events := read.Events
	res.read = len(events)
	res.full = len(events) == r.cfg.BatchSize
	if len(events) == 0 && cp.due == 0 {
		return res, nil
	}

	ba, err := rp.start(ctx, tx, &BatchInfo{Projection: rp.name, Version: rp.version, Partition: part})
	if err != nil {
		return res, projectionError(rp.name+": start batch", err)
	}
	ap := &applier{tx: tx, ba: ba}

	// The tenants of this batch that have parked events: their events park behind them.
	blocked := map[uuid.UUID]bool{}
	if cp.parked > 0 && len(events) > 0 {
		if blocked, err = r.blockedTenants(ctx, tx, rp, events); err != nil {
			return res, err
		}
	}

	// Retry first: a tenant's parked events come before its events of this batch.
	if cp.due > 0 {
		tenants, err := r.dueTenants(ctx, tx, rp, part)
		if err != nil {
			return res, err
		}
		res.retriesLeft = len(tenants) == dueTenantsPerBatch
		for _, t := range tenants {
			rr, err := r.retryTenant(ctx, ap, rp, t, byProjector)
			if err != nil {
				return res, err
			}
			res.retried += rr.applied
			if rr.failedEventID == uuid.Nil && !rr.more {
				delete(blocked, t)
			}
		}
	}

	var park parkRows
	for i := range events {
		ev := &events[i]
		if blocked[ev.TenantID] {
			park.add(ev, nil, 0, nil)
			continue
		}
		applyErr, err := ap.apply(ctx, ev)
		if err != nil {
			return res, err
		}
		if applyErr != nil {
			text := redact(applyErr)
			var delay *int64
			if d, ok := r.cfg.retryDelay(1); ok {
				ms := d.Milliseconds()
				delay = &ms
			}
			park.add(ev, &text, 1, delay)
			blocked[ev.TenantID] = true
			r.log.WarnContext(ctx, "projections: event parked as a dead letter", slog.String("projection", rp.name),
				slog.Int("version", rp.version), slog.Int("partition", int(part)),
				slog.String("tenant_id", ev.TenantID.String()), slog.String("event_id", ev.EventID.String()),
				slog.Int64("position", ev.GlobalPosition), slog.String("error", text))
			continue
		}
		res.applied++
	}
	res.parked = len(park.tenants)
	if res.parked > 0 {
		if _, err := tx.Exec(ctx, sqlPark, rp.name, rp.version, part, park.tenants, park.xids, park.positions,
			park.eventIDs, park.types, park.errors, park.attempts, park.delays); err != nil {
			return res, translate("park dead letters", err)
		}
	}
	if err := ba.Flush(ctx, tx); err != nil {
		return res, projectionError(rp.name+": flush", err)
	}

	if len(events) > 0 {
		last := events[len(events)-1].Cursor()
		var tag pgconn.CommandTag
		if cp.exists {
			tag, err = tx.Exec(ctx, sqlAdvance, rp.name, rp.version, part,
				xidText(cp.cursor.TransactionID), cp.cursor.Position, xidText(last.TransactionID), last.Position, int64(len(events)))
		} else {
			tag, err = tx.Exec(ctx, sqlCreateCheckpoint, rp.name, rp.version, part,
				xidText(last.TransactionID), last.Position, int64(len(events)))
		}
		if err != nil {
			return res, translate("advance the checkpoint", err)
		}
		if tag.RowsAffected() != 1 {
			return res, ErrCheckpointMoved
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return res, translate("commit batch", err)
	}
	res.committed = true
	return res, nil
}

func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	_ = tx.Rollback(rctx) // no-op after a commit; a broken connection is discarded by the pool
}

func xidText(x uint64) string { return strconv.FormatUint(x, 10) }

// blockedTenants returns which tenants of events have parked events.
func (r *Runner) blockedTenants(ctx context.Context, tx pgx.Tx, rp *registered, events []eventstore.RecordedEvent) (map[uuid.UUID]bool, error) {
	seen := map[uuid.UUID]bool{}
	var tenants []string // uuid arrays travel as text (see queries.go)
	for i := range events {
		if t := events[i].TenantID; !seen[t] {
			seen[t] = true
			tenants = append(tenants, t.String())
		}
	}
	rows, err := tx.Query(ctx, sqlBlockedTenants, rp.name, rp.version, tenants)
	if err != nil {
		return nil, translate("read blocked tenants", err)
	}
	blocked := map[uuid.UUID]bool{}
	for rows.Next() {
		var t uuid.UUID
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, translate("read blocked tenants", err)
		}
		blocked[t] = true
	}
	return blocked, translate("read blocked tenants", rows.Err())
}

// dueTenants returns tenants of a partition whose first parked event is due for an automatic retry.
func (r *Runner) dueTenants(ctx context.Context, tx pgx.Tx, rp *registered, part int16) ([]uuid.UUID, error) {
	rows, err := tx.Query(ctx, sqlDueTenants, rp.name, rp.version, part, dueTenantsPerBatch)
	if err != nil {
		return nil, translate("read due dead letters", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return tenants, translate("read due dead letters", err)
}

// applier applies events one by one, each in a savepoint of the batch transaction.
type applier struct {
	tx pgx.Tx
	ba BatchApplier
	// open: the savepoint is set (released and set again before each further event).
	open bool
}

// apply applies ev in a savepoint. applyErr is the projection's error for this event (its statements
// are rolled back): the caller parks the event. err is an error that fails the whole batch: a transient
// error of the projection (a lost connection, a cancelled context, a serialization failure) — the event
// says nothing wrong about itself then — or a failure of the savepoint statements.
func (a *applier) apply(ctx context.Context, ev *eventstore.RecordedEvent) (applyErr, err error) {
	sp := sqlSavepoint
	if a.open {
		sp = sqlSavepointNext
	}
	if _, err := a.tx.Exec(ctx, sp); err != nil {
		return nil, translate("savepoint", err)
	}
	a.open = true
	applyErr = a.ba.Apply(ctx, a.tx, ev)
	if applyErr == nil {
		return nil, nil
	}
	if ctx.Err() != nil || transient(applyErr) || a.tx.Conn().IsClosed() {
		return nil, fmt.Errorf("projections: apply the event at position %d: %s", ev.GlobalPosition, redact(applyErr))
	}
	if _, err := a.tx.Exec(ctx, sqlSavepointRollback); err != nil {
		return nil, translate("roll back to savepoint", err)
	}
	return applyErr, nil
}

// parkRows collects dead letters as the parallel arrays of sqlPark.
type parkRows struct {
	tenants   []string
	xids      []string
	positions []int64
	eventIDs  []string
	types     []string
	errors    []*string
	attempts  []int32
	delays    []*int64
}

func (p *parkRows) add(ev *eventstore.RecordedEvent, errText *string, attempts int32, delayMs *int64) {
	p.tenants = append(p.tenants, ev.TenantID.String())
	p.xids = append(p.xids, xidText(ev.TransactionID))
	p.positions = append(p.positions, ev.GlobalPosition)
	p.eventIDs = append(p.eventIDs, ev.EventID.String())
	p.types = append(p.types, ev.EventType)
	p.errors = append(p.errors, errText)
	p.attempts = append(p.attempts, attempts)
	p.delays = append(p.delays, delayMs)
}
