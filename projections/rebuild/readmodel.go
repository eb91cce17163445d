package rebuild

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/projections/readmodel"
)

// readModelTables describes the read tables for the comparisons, from package readmodel.
func readModelTables() []table {
	var out []table
	for _, t := range readmodel.Tables() {
		out = append(out, table{name: t.Name, key: t.Key, cols: t.ColumnNames()})
	}
	return out
}

// readModel rebuilds the inline read model. A read row depends on the events of one stream only (a
// roster stream's on the memberships of its tenant), so the rebuild folds stream by stream: the copy
// folds every stream one snapshot sees, each catch-up re-folds the streams that got events the previous
// snapshot did not see, and a re-fold replaces the stream's rows (readmodel.Writer.QueueReplace) —
// repeating one is harmless.
func (r *run) readModel(ctx context.Context) error {
	tables := readModelTables()
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	if err := r.createShadow(ctx, names); err != nil {
		return err
	}
	w := readmodel.NewWriter(r.schema)

	start := time.Now()
	snapshot, n, err := r.copyStreams(ctx)
	if err != nil {
		return err
	}
	r.res.CopyEvents, r.res.CopyDuration = n, time.Since(start)
	r.log.InfoContext(ctx, "rebuild: copied", slog.String("target", r.p.Target), slog.Int64("events", n),
		slog.Duration("duration", r.res.CopyDuration))

	start = time.Now()
	r.progress(PhaseCatchUp, 0, 0, 0)
	round := func() error {
		next, n, err := r.catchUp(ctx, w, snapshot)
		if err != nil {
			return err
		}
		snapshot = next
		r.res.CatchUpEvents += n
		return nil
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
	r.log.InfoContext(ctx, "rebuild: caught up", slog.String("target", r.p.Target), slog.Int64("events", r.res.CatchUpEvents),
		slog.Duration("duration", r.res.CatchUpDuration))

	return r.swapAttempts(ctx, func(attempt int) error { return r.swapReadModel(ctx, w, tables, snapshot, attempt) }, round)
}

// copyStreams folds every stream of the log, as one REPEATABLE READ snapshot sees it, into the empty
// shadow tables, COPYing the rows in batches, and returns that snapshot: the catch-up folds what it did
// not see. The snapshot's transaction only reads (it has no transaction id, so it holds back no reader
// of the log), but it holds back vacuum while it runs.
func (r *run) copyStreams(ctx context.Context) (string, int64, error) {
	tx, err := r.p.Projector.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", 0, translate("begin the copy", err)
	}
	defer rollback(ctx, tx)
	var (
		snapshot string
		total    int64
	)
	if err := tx.QueryRow(ctx, sqlSnapshot).Scan(&snapshot); err != nil {
		return "", 0, translate("read the snapshot", err)
	}
	if err := tx.QueryRow(ctx, sqlCountEvents).Scan(&total); err != nil {
		return "", 0, translate("count the events", err)
	}
	r.progress(PhaseCopy, 0, total, 0)
	rows, err := tx.Query(ctx, sqlAllStreams)
	if err != nil {
		return "", 0, translate("read the log", err)
	}
	buf := newCopyBuffer()
	var done int64
	n, err := foldRows(rows, func(ref domain.StreamRef, state domain.Aggregate, events int) error {
		rs, err := readmodel.Rows(ref, state)
		if err != nil {
			return err
		}
		buf.add(rs)
		done += int64(events)
		if buf.rows >= r.o.BatchSize {
			if err := r.flush(ctx, buf); err != nil {
				return err
			}
			r.progress(PhaseCopy, done, total, 0)
		}
		return nil
	})
	if err != nil {
		return "", n, err
	}
	if err := r.flush(ctx, buf); err != nil {
		return "", n, err
	}
	r.progress(PhaseCopy, done, total, 0)
	return snapshot, n, nil
}

// copyBuffer holds rows for the shadow tables, per table, until a flush COPYs them.
type copyBuffer struct {
	byTable map[string][][]any
	rows    int
}

func newCopyBuffer() *copyBuffer { return &copyBuffer{byTable: map[string][][]any{}} }

func (b *copyBuffer) add(rows []readmodel.Row) {
	for _, r := range rows {
		b.byTable[r.Table] = append(b.byTable[r.Table], r.Values)
		b.rows++
	}
}

// flush COPYs the buffered rows into the shadow tables, in one transaction, and empties the buffer.
func (r *run) flush(ctx context.Context, b *copyBuffer) error {
	if b.rows == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, r.p.Projector, func(tx pgx.Tx) error {
		for _, t := range readmodel.Tables() {
			rows := b.byTable[t.Name]
			if len(rows) == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{r.schema, t.Name}, t.ColumnNames(), pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return translate("copy rows into the shadow tables", err)
	}
	b.byTable, b.rows = map[string][][]any{}, 0
	return nil
}

// streamKey names a stream.
type streamKey struct{ tenantID, streamID uuid.UUID }

// catchUp is a catch-up round: in a new REPEATABLE READ snapshot, it re-folds into the shadow tables
// every stream that has an event the snapshot since did not see, as the new snapshot sees the stream,
// and returns the new snapshot and the number of such events. By induction every stream's shadow rows
// are then the fold of what the new snapshot sees: a stream without a new event was folded as an
// earlier snapshot saw it, and has no event that one did not see.
func (r *run) catchUp(ctx context.Context, w *readmodel.Writer, since string) (string, int64, error) {
	tx, err := r.p.Projector.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return since, 0, translate("begin a catch-up", err)
	}
	defer rollback(ctx, tx)
	var snapshot string
	if err := tx.QueryRow(ctx, sqlSnapshot).Scan(&snapshot); err != nil {
		return since, 0, translate("read the snapshot", err)
	}
	n, err := r.refoldSince(ctx, tx, r.p.Projector, w, since, PhaseCatchUp, 0)
	if err != nil {
		return since, n, err
	}
	return snapshot, n, nil
}

// refoldSince re-folds every stream that has an event the snapshot since did not see (but read sees),
// reading the log with read and writing the shadow tables with write, BatchSize streams at a time, and
// returns the number of such events. Progress is reported as phase ph (of swap attempt attempt).
func (r *run) refoldSince(ctx context.Context, read, write querier, w *readmodel.Writer, since string, ph Phase, attempt int) (int64, error) {
	rows, err := read.Query(ctx, sqlSince, since)
	if err != nil {
		return 0, translate("read the log", err)
	}
	var (
		touched []streamKey
		seen    = map[streamKey]bool{}
		n       int64
	)
	for rows.Next() {
		var k streamKey
		if err := rows.Scan(&k.tenantID, &k.streamID); err != nil {
			rows.Close()
			return n, translate("read the log", err)
		}
		n++
		if !seen[k] {
			seen[k] = true
			touched = append(touched, k)
		}
	}
	if err := rows.Err(); err != nil {
		return n, translate("read the log", err)
	}
	var refolded int64
	for chunk := range chunks(touched, r.o.BatchSize) {
		if err := r.refold(ctx, read, write, w, chunk); err != nil {
			return n, err
		}
		refolded += int64(len(chunk))
		r.progress(ph, n*refolded/int64(len(touched)), n, attempt)
	}
	return n, nil
}

// refold reads the streams with read, folds each and replaces its rows in the shadow tables with write,
// in one batch (one implicit transaction on a pool).
func (r *run) refold(ctx context.Context, read, write querier, w *readmodel.Writer, streams []streamKey) error {
	tenants, ids := make([]string, len(streams)), make([]string, len(streams))
	for i, k := range streams {
		tenants[i], ids[i] = k.tenantID.String(), k.streamID.String()
	}
	rows, err := read.Query(ctx, sqlStreams, tenants, ids)
	if err != nil {
		return translate("read streams", err)
	}
	b := &pgx.Batch{}
	if _, err := foldRows(rows, func(ref domain.StreamRef, state domain.Aggregate, _ int) error {
		return w.QueueReplace(b, ref, state)
	}); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	return translate("write the shadow tables", write.SendBatch(ctx, b).Close())
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// swapReadModel is one swap attempt of the read model, in two transactions that overlap:
//
//  1. L (owner): LOCK the live read tables IN EXCLUSIVE MODE, in readmodel.Tables' order (tenants
//     first: every mutation of adapter/pgstore touches its tenant's row first, so the two cannot
//     deadlock), waiting at most Opts.LockTimeout. Readers go on (EXCLUSIVE admits ACCESS SHARE);
//     every mutation waits at its first read row, before it can commit.
//  2. P (projector, READ COMMITTED): re-fold the streams of every event the last catch-up's snapshot
//     did not see, as P's statements see them: every committed event. That is exactly the state of the
//     live tables under the lock: no transaction that writes a read table can commit while L holds
//     it, every one that committed did so before L got it (so P's statements see it), and one still
//     running (blocked by L, its events invisible) writes its rows after L ends, into the live tables,
//     where they belong. (The log's horizon plays no part: it protects a reader that must never see a
//     later event before an earlier one, which a fold of whole streams is not.) Then compare every
//     table's count and checksum, live against shadow, and commit P (it wrote only shadow tables).
//  3. Equal: there is nothing to swap — the live tables are the rebuild — and L commits, releasing
//     the writers. Different and not Opts.Force: L rolls back; a *DriftError. Different and Force: L
//     repairs the live tables (repairReadModel) and commits.
//
// The live tables are never replaced by the shadow ones (docs/adr/0009: a rename would hand rows
// committed under the lock to transactions whose snapshots are older than them, which then do not see
// them).
func (r *run) swapReadModel(ctx context.Context, w *readmodel.Writer, tables []table, since string, attempt int) error {
	if err := r.checkLock(ctx); err != nil {
		return err
	}
	lt, err := r.p.Owner.Begin(ctx)
	if err != nil {
		return translate("begin the swap", err)
	}
	defer rollback(ctx, lt)
	if _, err := lt.Exec(ctx, sqlSetLocals, millis(r.o.LockTimeout)); err != nil {
		return translate("begin the swap", err)
	}
	r.progress(PhaseSwap, 0, 0, attempt)
	idents := make([]string, len(tables))
	for i, t := range tables {
		idents[i] = ident(liveSchema, t.name)
	}
	if _, err := lt.Exec(ctx, `LOCK TABLE `+strings.Join(idents, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return translate("lock the read tables", err)
	}
	locked := time.Now()

	pt, err := r.p.Projector.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return translate("begin the swap's catch-up", err)
	}
	defer rollback(ctx, pt)
	if _, err := pt.Exec(ctx, sqlSetLocals, millis(r.o.LockTimeout)); err != nil {
		return translate("begin the swap's catch-up", err)
	}
	n, err := r.refoldSince(ctx, pt, pt, w, since, PhaseSwap, attempt)
	if err != nil {
		return err
	}
	r.res.CatchUpEvents += n
	r.progress(PhaseVerify, 0, 0, attempt)
	results, err := checksums(ctx, pt, r.schema, tables)
	if err != nil {
		return err
	}
	if err := pt.Commit(ctx); err != nil {
		return translate("commit the swap's catch-up", err)
	}
	r.res.Tables = results
	drift := differing(results)
	if len(drift) > 0 && !r.o.Force {
		return &DriftError{Target: r.p.Target, Tables: drift}
	}
	if len(drift) > 0 {
		if err := r.repairReadModel(ctx, lt, tables, results); err != nil {
			return err
		}
	}
	if err := r.checkLock(ctx); err != nil {
		return err
	}
	if err := lt.Commit(ctx); err != nil {
		return translate("commit the swap", err)
	}
	r.res.LockDuration = time.Since(locked)
	r.log.InfoContext(ctx, "rebuild: swapped", slog.String("target", r.p.Target), slog.Int("attempt", attempt),
		slog.Int64("final_events", n), slog.Int("tables_differing", len(drift)), slog.Duration("lock_duration", r.res.LockDuration))
	return nil
}

// repairReadModel makes the differing live tables equal to their shadow copies, in L (the owner's
// transaction, which holds the write lock): it deletes each live row that is not, column for column, a
// shadow row, and inserts each shadow row whose key the live table lacks (a re-inserted row's
// guard_seq starts at 0 again). The owner sees no live row under forced row-level security, so the
// repair lifts FORCE for the transaction (ALTER TABLE … NO FORCE, and FORCE again before the commit:
// the catalog ends as it began) — which takes an ACCESS EXCLUSIVE lock: readers of the repaired tables
// wait until L commits.
//
// It also rewrites every tenant row in place (version = version): a mutation that took its snapshot
// before the repair and waited for the lock then fails its tenant guard with a serialization failure
// and is re-run on a snapshot that sees the repaired rows, instead of, say, deleting a row it cannot
// see. Each repaired table is verified again afterwards, in L.
func (r *run) repairReadModel(ctx context.Context, lt pgx.Tx, tables []table, results []TableResult) error {
	touch := []string{readmodel.TableTenants}
	for i := range results {
		if !results[i].Match() && results[i].Table != readmodel.TableTenants {
			touch = append(touch, results[i].Table)
		}
	}
	forced, err := r.liftForce(ctx, lt, touch)
	if err != nil {
		return err
	}
	var repaired []table
	for i, t := range tables {
		if results[i].Match() {
			continue
		}
		live, shadow := ident(liveSchema, t.name), ident(r.schema, t.name)
		tag, err := lt.Exec(ctx, deleteDifferingSQL(live, shadow, t.key, t.cols))
		if err != nil {
			return translate("repair "+t.name, err)
		}
		results[i].Deleted = tag.RowsAffected()
		if tag, err = lt.Exec(ctx, insertMissingSQL(live, shadow, t.key, t.cols)); err != nil {
			return translate("repair "+t.name, err)
		}
		results[i].Inserted = tag.RowsAffected()
		repaired = append(repaired, t)
	}
	if _, err := lt.Exec(ctx, `UPDATE `+ident(liveSchema, readmodel.TableTenants)+` AS t SET version = t.version`); err != nil {
		return translate("rewrite the tenant rows", err)
	}
	after, err := checksums(ctx, lt, r.schema, repaired)
	if err != nil {
		return err
	}
	if d := differing(after); len(d) > 0 {
		return fmt.Errorf("rebuild: %s: the repair left %d tables different from the rebuild (first: %s)", r.p.Target, len(d), d[0].Table)
	}
	if err := r.restoreForce(ctx, lt, forced); err != nil {
		return err
	}
	r.res.Repaired = true
	return nil
}

// liftForce turns forced row-level security off, for the transaction, on those of the live tables that
// have it, and returns them.
func (r *run) liftForce(ctx context.Context, tx pgx.Tx, tables []string) ([]string, error) {
	var forced []string
	for _, t := range tables {
		var on bool
		if err := tx.QueryRow(ctx, `SELECT relforcerowsecurity FROM pg_catalog.pg_class WHERE oid = $1::text::regclass`,
			ident(liveSchema, t)).Scan(&on); err != nil {
			return nil, translate("read the row-level security of "+t, err)
		}
		if !on {
			continue
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(liveSchema, t)+` NO FORCE ROW LEVEL SECURITY`); err != nil {
			return nil, translate("lift forced row-level security on "+t, err)
		}
		forced = append(forced, t)
	}
	return forced, nil
}

// restoreForce forces row-level security again on the tables liftForce lifted it on.
func (r *run) restoreForce(ctx context.Context, tx pgx.Tx, tables []string) error {
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(liveSchema, t)+` FORCE ROW LEVEL SECURITY`); err != nil {
			return translate("force row-level security on "+t, err)
		}
	}
	return nil
}
