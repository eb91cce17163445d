package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections"
)

// Name and Version identify the projection's checkpoints and dead letters.
const (
	Name    = "audit"
	Version = 1
)

// Projection is the audit projection. It holds no state between batches and is safe for concurrent use.
type Projection struct{}

var (
	_ projections.Projection   = (*Projection)(nil)
	_ projections.Batcher      = (*Projection)(nil)
	_ projections.BatchApplier = (*batch)(nil)
)

// New returns the audit projection.
func New() *Projection { return &Projection{} }

// Name returns "audit".
func (*Projection) Name() string { return Name }

// Version returns the version of the audit records' encoding and table (1).
func (*Projection) Version() int { return Version }

// Apply appends the audit record of one event to its tenant's chain. The runtime applies events through
// StartBatch's applier, which caches each tenant's last record within the batch; Apply reads it every
// time.
func (*Projection) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	return (&batch{}).Apply(ctx, tx, ev)
}

// StartBatch returns the applier of one batch transaction: it remembers the last (sequence, hash) of
// each tenant it chained in the batch, so that a tenant's chain costs one read per batch.
func (*Projection) StartBatch(context.Context, pgx.Tx, *projections.BatchInfo) (projections.BatchApplier, error) {
	return &batch{last: map[uuid.UUID]link{}}, nil
}

// link is the end of a tenant's chain.
type link struct {
	seq  int64
	hash string
}

// batch applies the events of one batch transaction. Its cache is valid only inside that transaction,
// and only holds what committed statements of it wrote: it is updated after the insert succeeded.
type batch struct {
	last map[uuid.UUID]link // nil: no cache
}

// Apply decodes the event, derives its audit record (domain.Audit — the same function the stores use),
// chains it to the tenant's last record (domain.ChainAudit) and inserts it.
func (b *batch) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	r, err := logcodec.Recorded(ev)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	rec := domain.Audit(r)
	prev, ok := b.last[ev.TenantID]
	if !ok {
		err := tx.QueryRow(ctx, sqlLast, ev.TenantID).Scan(&prev.seq, &prev.hash)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			prev = link{0, domain.AuditGenesisHash}
		case err != nil:
			return fmt.Errorf("audit: read the tenant's last record: %w", err)
		}
	}
	if err := domain.ChainAudit(&rec, prev.seq, prev.hash); err != nil {
		return fmt.Errorf("audit: chain the record: %w", err)
	}
	if err := insert(ctx, tx, &rec, ev.TransactionID); err != nil {
		return err
	}
	if b.last != nil {
		b.last[ev.TenantID] = link{rec.Sequence, rec.Hash}
	}
	return nil
}

// Flush does nothing: every record is inserted by Apply.
func (*batch) Flush(context.Context, pgx.Tx) error { return nil }

func insert(ctx context.Context, tx pgx.Tx, rec *userstore.AuditRecord, xid uint64) error {
	_, err := tx.Exec(ctx, sqlInsert, rec.TenantID, rec.Sequence, rec.EventID, rec.Position, strconv.FormatUint(xid, 10),
		rec.OccurredAt, string(rec.Actor.Type), rec.Actor.ID, rec.Action, rec.TargetType, rec.TargetID,
		rec.RequestID, rec.Outcome, rec.PrevHash, rec.Hash)
	if err != nil {
		return fmt.Errorf("audit: insert the record: %w", err)
	}
	return nil
}
