package replay

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections/audit"
)

// VerifyChainParams select the tenants whose audit chain VerifyChain checks: one, or all.
type VerifyChainParams struct {
	// TenantID is the tenant to verify; exactly one of TenantID and All.
	TenantID uuid.UUID
	// All verifies every tenant that has events or audit records, in tenant id order.
	All bool
}

// DivergenceKind says how a stored audit record departs from the log.
type DivergenceKind string

// Divergence kinds.
const (
	// DivergenceDiffers: the stored record at the sequence differs from the one the log implies.
	DivergenceDiffers DivergenceKind = "differs"
	// DivergenceMissing: the log implies a record at the sequence and the table has none there (the
	// next stored record, if any, has a later sequence: a deleted record).
	DivergenceMissing DivergenceKind = "missing"
	// DivergenceExtra: the table holds a record that no processed event of the log accounts for.
	DivergenceExtra DivergenceKind = "extra"
)

// ChainDivergence is the first place where a tenant's stored audit chain departs from the chain
// recomputed from the log.
type ChainDivergence struct {
	TenantID uuid.UUID      `json:"tenant_id"`
	Sequence int64          `json:"sequence"`
	Kind     DivergenceKind `json:"kind"`
	// ExpectedHash is the hash the log implies at Sequence (empty for an extra record); FoundHash the
	// hash of the stored record compared with it (empty when there is none).
	ExpectedHash string `json:"expected_hash,omitempty"`
	FoundHash    string `json:"found_hash,omitempty"`
	// Fields names the columns in which the stored record differs from the expected one.
	Fields []string `json:"fields,omitempty"`
	// FoundConsistent reports whether the stored record's hash matches its own content and prev_hash:
	// false when a record was altered without recomputing its hash; true for a record rewritten with a
	// recomputed hash (or moved), which the chain recomputed from the log still exposes.
	FoundConsistent bool `json:"found_consistent"`
	// Expected and Found are the two records (nil when absent).
	Expected *userstore.AuditRecord `json:"expected,omitempty"`
	Found    *userstore.AuditRecord `json:"found,omitempty"`
}

// ChainReport is the result of VerifyChain.
type ChainReport struct {
	// Tenants is the number of tenants verified.
	Tenants int64 `json:"tenants"`
	// Records counts the stored records equal to the ones the log implies (up to each tenant's first
	// divergence).
	Records int64 `json:"records"`
	// Unprojected counts the events below the horizon that the audit projection has not applied yet:
	// after its checkpoint, or parked as dead letters. Their records are not expected yet.
	Unprojected int64 `json:"unprojected"`
	// Pending counts the events above the snapshot's horizon (see AuditResult.Pending).
	Pending int64 `json:"pending"`
	// Skipped lists the events an operator skipped in the audit projection: they have no record, and the
	// chain goes on without them.
	Skipped []SkippedEvent `json:"skipped,omitempty"`
	// Divergences holds the first divergence of each tenant that has one.
	Divergences []ChainDivergence `json:"divergences,omitempty"`
}

// Diverged reports whether any tenant's stored chain departs from the log.
func (r *ChainReport) Diverged() bool { return len(r.Divergences) > 0 }

// VerifyChain recomputes the audit hash chain of one tenant, or of every tenant, from the log and
// compares it record for record with userstore.audit_records, in one REPEATABLE READ READ ONLY snapshot.
//
// The records expected are those of the events the audit projection has applied: the tenant's events
// up to the projection's checkpoint of the tenant's partition (which commits with the records, so the
// snapshot sees both or neither), before the tenant's first parked dead letter, minus the events an
// operator skipped — each record domain.Audit of its event, chained with domain.ChainAudit in the log's
// order. Every stored record is compared with the expected one of its place, field for field (hashes
// included); the first difference, missing record or extra record is the tenant's divergence, and the
// tenant's check stops there. Events not applied yet count as Unprojected, not as a divergence: a
// projector that lags is not a broken chain.
//
// Tampering by a role that bypasses the table's privileges shows: a changed field, a deleted record (the
// next one sits at the wrong sequence), two swapped records, a record re-hashed after a change — the
// log alone fixes every record's content and hash.
func (r *Replayer) VerifyChain(ctx context.Context, params *VerifyChainParams) (*ChainReport, error) {
	switch {
	case params == nil || (params.TenantID == uuid.Nil && !params.All):
		return nil, invalid("TenantID", "must not be empty (or set All)")
	case params.TenantID != uuid.Nil && params.All:
		return nil, invalid("All", "must not be set together with TenantID")
	}
	rep := &ChainReport{}
	err := r.readOnly(ctx, "verify chain", func(tx pgx.Tx) error {
		prog := r.newProgress()
		if !params.All {
			return r.verifyTenantChain(ctx, tx, params.TenantID, rep, prog, true)
		}
		if prog.enabled() {
			var n int64
			if err := tx.QueryRow(ctx, sqlCountAllBelowHorizon).Scan(&n); err != nil {
				return translate("count the log", err)
			}
			prog.total(n)
		}
		return forEachTenant(ctx, tx, chainTables, func(tenant uuid.UUID) error {
			return r.verifyTenantChain(ctx, tx, tenant, rep, prog, false)
		})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// forEachTenant calls fn with every tenant id found in the tables, in order.
func forEachTenant(ctx context.Context, tx pgx.Tx, tables []string, fn func(uuid.UUID) error) error {
	first, next := nextTenantSQL(true, tables...), nextTenantSQL(false, tables...)
	var after uuid.UUID // uuid.Nil, the smallest id: the first probe includes it
	for sql := first; ; sql = next {
		var tenant *uuid.UUID
		if err := tx.QueryRow(ctx, sql, after).Scan(&tenant); err != nil {
			return translate("find the next tenant", err)
		}
		if tenant == nil {
			return nil
		}
		if err := fn(*tenant); err != nil {
			return err
		}
		after = *tenant
	}
}

// chainBounds is what the audit projection has applied of a tenant's events.
type chainBounds struct {
	// checkpoint is the cursor of the last event processed in the tenant's partition (zero: none).
	checkpoint eventstore.Cursor
	// parked is the cursor of the tenant's first parked event, if any.
	parked *eventstore.Cursor
}

// applied reports whether the projection has applied (or skipped) the event at c.
func (b *chainBounds) applied(c eventstore.Cursor) bool {
	return !b.checkpoint.Less(c) && (b.parked == nil || c.Less(*b.parked))
}

func (r *Replayer) verifyTenantChain(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, rep *ChainReport, prog *progress, total bool) error {
	rep.Tenants++
	bounds, below, pending, err := readChainBounds(ctx, tx, tenant)
	if err != nil {
		return err
	}
	rep.Pending += pending
	if total {
		prog.total(below)
	}
	skipped, err := readSkipped(ctx, tx, tenant)
	if err != nil {
		return err
	}
	rep.Skipped = append(rep.Skipped, skippedList(skipped)...)

	c, err := r.newChainer(ctx, tx, tenant, prog)
	if err != nil {
		return err
	}
	defer func() { _ = c.events.c.closeCursor(ctx) }()
	stored := &recordReader{tx: tx, tenant: tenant, batch: r.cfg.BatchSize}
	var consumed int64 // events read within the applied range (skipped ones included)
	diverge := func(d ChainDivergence) {
		d.TenantID = tenant
		if d.Found != nil {
			d.FoundHash = d.Found.Hash
			if h, err := domain.AuditHash(d.Found.PrevHash, d.Found); err == nil && h == d.Found.Hash {
				d.FoundConsistent = true
			}
		}
		if d.Expected != nil {
			d.ExpectedHash = d.Expected.Hash
		}
		rep.Divergences = append(rep.Divergences, d)
	}
	for {
		ev, err := c.next(ctx)
		if err != nil {
			return err
		}
		if ev == nil || !bounds.applied(ev.Cursor()) {
			break
		}
		consumed++
		if _, ok := skipped[ev.EventID]; ok {
			continue
		}
		exp, err := c.chain(ev)
		if err != nil {
			return err
		}
		found, err := stored.next(ctx)
		if err != nil {
			return err
		}
		switch {
		case found == nil:
			diverge(ChainDivergence{Sequence: exp.Sequence, Kind: DivergenceMissing, Expected: &exp})
			return nil
		case found.Sequence > exp.Sequence:
			diverge(ChainDivergence{Sequence: exp.Sequence, Kind: DivergenceMissing, Fields: recordDiff(&exp, found), Expected: &exp, Found: found})
			return nil
		}
		if fields := recordDiff(&exp, found); len(fields) > 0 {
			diverge(ChainDivergence{Sequence: exp.Sequence, Kind: DivergenceDiffers, Fields: fields, Expected: &exp, Found: found})
			return nil
		}
		rep.Records++
	}
	rep.Unprojected += below - consumed
	extra, err := stored.next(ctx)
	if err != nil {
		return err
	}
	if extra != nil {
		diverge(ChainDivergence{Sequence: extra.Sequence, Kind: DivergenceExtra, Found: extra})
	}
	return nil
}

// readChainBounds reads, in one round trip, the audit projection's checkpoint of the tenant's partition,
// the tenant's first parked event and the counts of its events below and above the horizon.
func readChainBounds(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) (*chainBounds, int64, int64, error) {
	b := &chainBounds{}
	var below, above int64
	batch := &pgx.Batch{}
	batch.Queue(sqlCheckpoint, audit.Name, int32(audit.Version), eventstore.PartitionOf(tenant)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			c, err := scanCursor(rows)
			if err != nil {
				return err
			}
			b.checkpoint = c
		}
		return rows.Err()
	})
	batch.Queue(sqlFirstParked, tenant, audit.Name, int32(audit.Version)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			c, err := scanCursor(rows)
			if err != nil {
				return err
			}
			b.parked = &c
		}
		return rows.Err()
	})
	batch.Queue(sqlTenantCounts, tenant).QueryRow(func(row pgx.Row) error { return row.Scan(&below, &above) })
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, 0, 0, translate("read the audit projection's progress", err)
	}
	return b, below, above, nil
}

// scanCursor scans (transaction_id::text, global_position).
func scanCursor(rows pgx.Rows) (eventstore.Cursor, error) {
	var (
		xid string
		c   eventstore.Cursor
	)
	if err := rows.Scan(&xid, &c.Position); err != nil {
		return c, err
	}
	id, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return c, &parseError{fmt.Errorf("replay: parse a transaction id: %w", err)}
	}
	c.TransactionID = id
	return c, nil
}

// recordReader reads a tenant's stored audit records in sequence order, a batch at a time.
type recordReader struct {
	tx     pgx.Tx
	tenant uuid.UUID
	batch  int

	after int64
	buf   []userstore.AuditRecord
	i     int
	eof   bool
}

// next returns the next stored record, or nil after the last one.
func (rr *recordReader) next(ctx context.Context) (*userstore.AuditRecord, error) {
	if rr.i == len(rr.buf) {
		if rr.eof {
			return nil, nil
		}
		recs, err := audit.Read(ctx, rr.tx, &audit.ReadParams{TenantID: rr.tenant, AfterSequence: rr.after, Limit: rr.batch})
		if err != nil {
			// audit.Read's errors name the SQLSTATE only.
			return nil, fmt.Errorf("replay: read audit records: %w", err)
		}
		rr.buf, rr.i = recs, 0
		rr.eof = len(recs) < rr.batch
		if len(recs) == 0 {
			rr.eof = true
			return nil, nil
		}
		rr.after = recs[len(recs)-1].Sequence
	}
	rec := &rr.buf[rr.i]
	rr.i++
	return rec, nil
}

// recordDiff names the fields in which two audit records differ (audit_records' column names).
func recordDiff(a, b *userstore.AuditRecord) []string {
	var out []string
	add := func(differ bool, name string) {
		if differ {
			out = append(out, name)
		}
	}
	add(a.TenantID != b.TenantID, "tenant_id")
	add(a.Sequence != b.Sequence, "sequence")
	add(a.EventID != b.EventID, "event_id")
	add(a.Position != b.Position, "position")
	add(!a.OccurredAt.Truncate(time.Microsecond).Equal(b.OccurredAt.Truncate(time.Microsecond)), "occurred_at")
	add(a.Actor.Type != b.Actor.Type, "actor_type")
	add(a.Actor.ID != b.Actor.ID, "actor_id")
	add(a.Action != b.Action, "action")
	add(a.TargetType != b.TargetType, "target_type")
	add(a.TargetID != b.TargetID, "target_id")
	add(a.RequestID != b.RequestID, "request_id")
	add(a.Outcome != b.Outcome, "outcome")
	add(a.PrevHash != b.PrevHash, "prev_hash")
	add(a.Hash != b.Hash, "hash")
	return out
}
