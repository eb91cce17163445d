package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
)

// shadowAuditName is the name of the shadow audit projection: its checkpoints, dead letters and
// partition locks are its own. Each run takes a version of its own (sqlShadowVersion).
const shadowAuditName = "audit.rebuild"

// auditTable describes userstore.audit_records for the comparisons: every column but projected_at
// (when the projector wrote the record: not part of the record) and prev_sequence (generated).
var auditTable = table{
	name: audit.TableDefault,
	key:  []string{"tenant_id", "sequence"},
	cols: []string{"tenant_id", "sequence", "event_id", "position", "transaction_id", "occurred_at", "actor_type",
		"actor_id", "action", "target_type", "target_id", "request_id", "outcome", "prev_hash", "hash"},
}

// shadowAudit is the audit projection writing the shadow table, under a name and version of its own.
type shadowAudit struct {
	*audit.Projection
	version int
}

func (*shadowAudit) Name() string   { return shadowAuditName }
func (s *shadowAudit) Version() int { return s.version }

var _ projections.Batcher = (*shadowAudit)(nil)

// errRepair asks for a swap in repair mode (Opts.Force, the live records differ).
var errRepair = errors.New("rebuild: the live records differ; repair")

// errCatchUpTimeout: the swap's last catch-up of the shadow projection took longer than
// Opts.LockTimeout; the attempt is given up like one that waited too long for a lock.
var errCatchUpTimeout = errors.New("the shadow projection's last catch-up took longer than the lock timeout")

// audit rebuilds the audit table: the audit projection itself (projections/audit, the same code as the
// live one) runs into the shadow table in a projections.Runner of its own, from position zero, while
// the live projection keeps running; the swap then hands the live projection the shadow's records and
// checkpoints (swapAudit).
func (r *run) audit(ctx context.Context) error {
	if err := r.createShadow(ctx, []string{auditTable.name}); err != nil {
		return err
	}
	var version int
	if err := r.p.Projector.QueryRow(ctx, sqlShadowVersion, shadowAuditName).Scan(&version); err != nil {
		return translate("pick the shadow projection's version", err)
	}
	proj := &shadowAudit{Projection: audit.New(&audit.Config{Schema: r.schema, Table: auditTable.name}), version: version}
	store, err := eventstore.New(r.p.Projector, &eventstore.Config{Logger: r.log})
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	runner, err := projections.New(r.p.Projector, store, []projections.Projection{proj}, &projections.Config{
		BatchSize:       min(r.o.BatchSize, eventstore.ReadLimitMax),
		Workers:         r.o.Workers,
		PollIntervalMax: 100 * time.Millisecond,
		Logger:          r.log,
	})
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}

	var total int64
	if err := r.p.Projector.QueryRow(ctx, sqlCountEvents).Scan(&total); err != nil {
		return translate("count the events", err)
	}
	start := time.Now()
	copied, err := r.catchUpShadow(ctx, runner, version, PhaseCopy, total, 0)
	if err != nil {
		return err
	}
	r.res.CopyEvents, r.res.CopyDuration = copied, time.Since(start)
	r.log.InfoContext(ctx, "rebuild: copied", slog.String("target", r.p.Target), slog.Int64("events", copied),
		slog.Duration("duration", r.res.CopyDuration))

	start = time.Now()
	r.progress(PhaseCatchUp, 0, 0, 0)
	round := func() error {
		_, err := r.catchUpShadow(ctx, runner, version, PhaseCatchUp, 0, r.res.CopyEvents)
		return err
	}
	for i := 1; i <= r.o.CatchUpRounds; i++ {
		before := r.res.CatchUpEvents
		if err := round(); err != nil {
			return err
		}
		if r.res.CatchUpEvents-before <= int64(r.o.BatchSize) {
			break
		}
	}
	r.res.CatchUpDuration = time.Since(start)

	repair := false
	return r.swapAttempts(ctx, func(attempt int) error {
		err := r.swapAudit(ctx, runner, version, attempt, repair)
		if errors.Is(err, errRepair) {
			repair = true
			err = r.swapAudit(ctx, runner, version, attempt, true)
		}
		return err
	}, round)
}

// catchUpShadow runs the shadow projection's CatchUp, reporting its progress every 250ms, and returns
// the events it processed; they count as catch-up events unless ph is PhaseCopy.
func (r *run) catchUpShadow(ctx context.Context, runner *projections.Runner, version int, ph Phase, total, base int64) (int64, error) {
	before, err := r.processed(ctx, version)
	if err != nil {
		return 0, err
	}
	stop := r.watch(ctx, version, ph, total, before)
	err = runner.CatchUp(ctx)
	stop()
	if err != nil {
		// The runner's errors are its own, redacted already (package projections).
		return 0, fmt.Errorf("rebuild: run the shadow projection: %w", err)
	}
	after, err := r.processed(ctx, version)
	if err != nil {
		return 0, err
	}
	if ph != PhaseCopy {
		r.res.CatchUpEvents += after - before
	}
	r.progress(ph, after-base, total, 0)
	return after - before, nil
}

// processed returns the events the shadow projection has processed.
func (r *run) processed(ctx context.Context, version int) (int64, error) {
	var n int64
	if err := r.p.Projector.QueryRow(ctx, sqlProcessed, shadowAuditName, version).Scan(&n); err != nil {
		return 0, translate("read the shadow projection's progress", err)
	}
	return n, nil
}

// watch reports the shadow projection's progress every 250ms until the returned function is called.
func (r *run) watch(ctx context.Context, version int, ph Phase, total, base int64) func() {
	if r.o.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := r.processed(ctx, version); err == nil {
					r.progress(ph, n-base, total, 0)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// swapAudit is one swap attempt of the audit table, in one transaction:
//
//  1. take the live audit projection's 64 partition locks (pg_advisory_xact_lock, in order, waiting
//     at most Opts.LockTimeout each): its running batches finish first, later ones find the partitions
//     held and leave them — the live table and checkpoints stand still;
//  2. catch the shadow projection up (its own runner, its own transactions; within Opts.LockTimeout,
//     or the attempt is given up): now it has processed, in every partition, at least what the live
//     one has — the live one's cursor was below the horizon when its last batch ran, the shadow's
//     passes every event committed before this step;
//  3. take the shadow projection's partition locks (nothing moves it any more), refuse if it parked
//     dead letters (ErrDeadLetters), check that no live checkpoint is ahead of the shadow's;
//  4. verify: per tenant, the live table holds a prefix of the chain (1..n); the shadow's records in
//     that range must equal the live ones (count and checksum), else a *DriftError — or, with
//     Opts.Force, the attempt is made again in repair mode;
//  5. append the shadow's records beyond the live range to the live table (the live projection was
//     behind), set the live checkpoints to the shadow's, mark the live projection's parked dead letters
//     whose events now have a record as retried (by "rebuild"), and verify that the live table now
//     equals the shadow table;
//  6. commit: the live projection goes on from the shadow's checkpoints, without a gap or a duplicate.
//
// It runs as the projector role, which may read both tables, append records, and write checkpoints and
// dead letters. In repair mode it runs as the owner instead, lifting forced row-level security on
// audit_records and projection_dead_letters for the transaction (the owner sees no row otherwise; an
// ACCESS EXCLUSIVE lock: readers of the trail wait until the commit): it replaces the whole chain of
// every tenant whose live records differ (a foreign key forbids cutting a chain in the middle).
func (r *run) swapAudit(ctx context.Context, runner *projections.Runner, version, attempt int, repair bool) error {
	if err := r.checkLock(ctx); err != nil {
		return err
	}
	pool := r.p.Projector
	if repair {
		pool = r.p.Owner
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return translate("begin the swap", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, sqlSetLocals, millis(r.o.LockTimeout)); err != nil {
		return translate("begin the swap", err)
	}
	r.progress(PhaseSwap, 0, 0, attempt)
	if _, err := tx.Exec(ctx, sqlLockPartitions, projections.LockKey(audit.Name, audit.Version), eventstore.Partitions); err != nil {
		return translate("lock the live audit projection", err)
	}
	locked := time.Now()
	// The live projection stands still until this transaction ends: bound the wait for the shadow's
	// last catch-up (which waits for the log's horizon) like a lock wait, and try again later.
	cctx, cancel := context.WithTimeout(ctx, r.o.LockTimeout)
	_, err = r.catchUpShadow(cctx, runner, version, PhaseSwap, 0, r.res.CopyEvents)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("rebuild: %s: %w", r.p.Target, errCatchUpTimeout)
		}
		return err
	}
	if _, err := tx.Exec(ctx, sqlLockPartitions, projections.LockKey(shadowAuditName, version), eventstore.Partitions); err != nil {
		return translate("lock the shadow audit projection", err)
	}
	// Only now: the shadow's batches read projection_dead_letters, and would wait for this lock.
	var forced []string
	if repair {
		if forced, err = r.liftForce(ctx, tx, []string{auditTable.name, "projection_dead_letters"}); err != nil {
			return err
		}
	}
	var parked, ahead int64
	if err := tx.QueryRow(ctx, sqlParked, shadowAuditName, version).Scan(&parked); err != nil {
		return translate("count the shadow's dead letters", err)
	}
	if parked > 0 {
		return fmt.Errorf("rebuild: %s: %w: %d events (projection %s version %d); fix or skip the live projection's first",
			r.p.Target, ErrDeadLetters, parked, shadowAuditName, version)
	}
	if err := tx.QueryRow(ctx, sqlCheckpointsAhead, audit.Name, audit.Version, shadowAuditName, version).Scan(&ahead); err != nil {
		return translate("compare the checkpoints", err)
	}
	if ahead > 0 {
		return fmt.Errorf("rebuild: %s: the live projection is ahead of the rebuild in %d partitions", r.p.Target, ahead)
	}

	r.progress(PhaseVerify, 0, 0, attempt)
	live, shadow := ident(liveSchema, auditTable.name), ident(r.schema, auditTable.name)
	res := TableResult{Table: auditTable.name}
	b := &pgx.Batch{}
	b.Queue(checksumSQL(live, auditTable.cols)).QueryRow(func(row pgx.Row) error { return row.Scan(&res.LiveRows, &res.LiveChecksum) })
	b.Queue(auditRangeChecksumSQL(live, shadow, auditTable.cols)).QueryRow(func(row pgx.Row) error {
		return row.Scan(&res.ShadowRows, &res.ShadowChecksum)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return translate("verify", err)
	}
	r.res.Tables = []TableResult{res}
	if !res.Match() && !repair {
		if !r.o.Force {
			return &DriftError{Target: r.p.Target, Tables: r.res.Tables}
		}
		return errRepair
	}

	if repair {
		tag, err := tx.Exec(ctx, auditDeleteDifferingSQL(live, shadow, auditTable.cols))
		if err != nil {
			return translate("repair the audit records", err)
		}
		res.Deleted = tag.RowsAffected()
		if tag, err = tx.Exec(ctx, insertMissingSQL(live, shadow, auditTable.key, auditTable.cols)); err != nil {
			return translate("repair the audit records", err)
		}
		res.Inserted = tag.RowsAffected()
	} else {
		tag, err := tx.Exec(ctx, auditTailSQL(live, shadow, auditTable.cols))
		if err != nil {
			return translate("append the audit records", err)
		}
		res.Inserted = tag.RowsAffected()
	}
	r.res.Tables = []TableResult{res}
	after, err := checksums(ctx, tx, r.schema, []table{auditTable})
	if err != nil {
		return err
	}
	if !after[0].Match() {
		return fmt.Errorf("rebuild: %s: after the swap the live records still differ from the rebuild (%d against %d)",
			r.p.Target, after[0].LiveRows, after[0].ShadowRows)
	}
	if _, err := tx.Exec(ctx, sqlHandOverCheckpoints, audit.Name, audit.Version, shadowAuditName, version); err != nil {
		return translate("hand the checkpoints over", err)
	}
	if _, err := tx.Exec(ctx, sqlResolveCovered, audit.Name, audit.Version); err != nil {
		return translate("resolve the live projection's dead letters", err)
	}
	var left int64
	if err := tx.QueryRow(ctx, sqlParked, audit.Name, audit.Version).Scan(&left); err != nil {
		return translate("count the live projection's dead letters", err)
	}
	if left > 0 {
		return fmt.Errorf("rebuild: %s: %d parked dead letters of the live projection have no record after the swap", r.p.Target, left)
	}
	if err := r.restoreForce(ctx, tx, forced); err != nil {
		return err
	}
	if err := r.checkLock(ctx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return translate("commit the swap", err)
	}
	r.res.LockDuration = time.Since(locked)
	r.res.Repaired = repair
	r.log.InfoContext(ctx, "rebuild: swapped", slog.String("target", r.p.Target), slog.Int("attempt", attempt),
		slog.Int64("appended", res.Inserted), slog.Bool("repaired", repair), slog.Duration("lock_duration", r.res.LockDuration))
	return nil
}
