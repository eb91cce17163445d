package audit

import (
	"cmp"
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
type Projection struct {
	// sqlLast and sqlInsert are the statements on the projection's table (see Config).
	sqlLast, sqlInsert string
}

var (
	_ projections.Projection   = (*Projection)(nil)
	_ projections.Batcher      = (*Projection)(nil)
	_ projections.BatchApplier = (*batch)(nil)
)

// Table defaults: the audit projection writes userstore.audit_records.
const (
	SchemaDefault = "userstore"
	TableDefault  = "audit_records"
)

// Config configures the audit projection. The zero value (and a nil *Config) is valid: the projection
// writes userstore.audit_records.
type Config struct {
	// Schema and Table name the table the records go to instead of userstore.audit_records: a table of
	// the same definition (columns, constraints), such as the shadow table a rebuild projects into
	// (projections/rebuild). Default: SchemaDefault and TableDefault.
	//
	// The projection's Name and Version stay those of the live projection, which key its checkpoints,
	// dead letters and partition locks: a projection that writes another table must run under a name
	// (or version) of its own — wrap it and override Name and Version, as projections/rebuild does — or
	// it would share the live projection's checkpoints.
	Schema string
	Table  string
}

// New returns the audit projection; cfg may be nil.
func New(cfg *Config) *Projection {
	schema, table := SchemaDefault, TableDefault
	if cfg != nil {
		schema, table = cmp.Or(cfg.Schema, schema), cmp.Or(cfg.Table, table)
	}
	ident := pgx.Identifier{schema, table}.Sanitize()
	return &Projection{sqlLast: lastSQL(ident), sqlInsert: insertSQL(ident)}
}

// defaultProjection holds the statements on userstore.audit_records.
var defaultProjection = New(nil)

// statements returns the projection with its statements: a zero Projection writes the default table.
func (p *Projection) statements() *Projection {
	if p == nil || p.sqlInsert == "" {
		return defaultProjection
	}
	return p
}

// Name returns "audit".
func (*Projection) Name() string { return Name }

// Version returns the version of the audit records' encoding and table (1).
func (*Projection) Version() int { return Version }

// Apply appends the audit record of one event to its tenant's chain. The runtime applies events through
// StartBatch's applier, which caches each tenant's last record within the batch; Apply reads it every
// time.
func (p *Projection) Apply(ctx context.Context, tx pgx.Tx, ev *eventstore.RecordedEvent) error {
	return (&batch{p: p}).Apply(ctx, tx, ev)
}

// StartBatch returns the applier of one batch transaction: it remembers the last (sequence, hash) of
// each tenant it chained in the batch, so that a tenant's chain costs one read per batch.
func (p *Projection) StartBatch(context.Context, pgx.Tx, *projections.BatchInfo) (projections.BatchApplier, error) {
	return &batch{p: p, last: map[uuid.UUID]link{}}, nil
}

// link is the end of a tenant's chain.
type link struct {
	seq  int64
	hash string
}

// batch applies the events of one batch transaction. Its cache is valid only inside that transaction,
// and only holds what committed statements of it wrote: it is updated after the insert succeeded.
type batch struct {
	p    *Projection
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
		err := tx.QueryRow(ctx, b.p.statements().sqlLast, ev.TenantID).Scan(&prev.seq, &prev.hash)
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
	if err := insert(ctx, tx, b.p.statements().sqlInsert, &rec, ev.TransactionID); err != nil {
		return err
	}
	if b.last != nil {
		b.last[ev.TenantID] = link{rec.Sequence, rec.Hash}
	}
	return nil
}

// Flush does nothing: every record is inserted by Apply.
func (*batch) Flush(context.Context, pgx.Tx) error { return nil }

func insert(ctx context.Context, tx pgx.Tx, sql string, rec *userstore.AuditRecord, xid uint64) error {
	_, err := tx.Exec(ctx, sql, rec.TenantID, rec.Sequence, rec.EventID, rec.Position, strconv.FormatUint(xid, 10),
		rec.OccurredAt, string(rec.Actor.Type), rec.Actor.ID, rec.Action, rec.TargetType, rec.TargetID,
		rec.RequestID, rec.Outcome, rec.PrevHash, rec.Hash)
	if err != nil {
		return fmt.Errorf("audit: insert the record: %w", err)
	}
	return nil
}
