package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/projections"
)

// Querier is what Read needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ReadLimitMax is the largest ReadParams.Limit.
const ReadLimitMax = 10_000

// ReadParams select a page of a tenant's audit records in sequence order.
type ReadParams struct {
	// TenantID is the tenant; required.
	TenantID uuid.UUID
	// AfterSequence is the sequence to read after (exclusive); 0 starts at the first record.
	AfterSequence int64
	// Limit caps the number of records, at most ReadLimitMax. Default: ReadLimitMax.
	Limit int
}

// Read returns a page of a tenant's audit records in sequence order, as the table holds them. The
// projector role reads every tenant; the app role only the one its transaction is scoped to with
// set_config('userstore.tenant_id', …, true) — q must then be that transaction.
func Read(ctx context.Context, q Querier, params *ReadParams) ([]userstore.AuditRecord, error) {
	if params == nil || params.TenantID == uuid.Nil {
		return nil, fmt.Errorf("%w: TenantID: must not be empty", projections.ErrValidation)
	}
	limit := params.Limit
	switch {
	case limit < 0 || limit > ReadLimitMax:
		return nil, fmt.Errorf("%w: Limit: must be between 0 and %d, got %d", projections.ErrValidation, ReadLimitMax, limit)
	case limit == 0:
		limit = ReadLimitMax
	}
	rows, err := q.Query(ctx, sqlRead, params.TenantID, params.AfterSequence, int64(limit))
	if err != nil {
		return nil, readError(err)
	}
	defer rows.Close()
	out := []userstore.AuditRecord{}
	for rows.Next() {
		var (
			r         userstore.AuditRecord
			actorType string
		)
		if err := rows.Scan(&r.TenantID, &r.Sequence, &r.EventID, &r.Position, &r.OccurredAt, &actorType,
			&r.Actor.ID, &r.Action, &r.TargetType, &r.TargetID, &r.RequestID, &r.Outcome, &r.PrevHash, &r.Hash); err != nil {
			return nil, readError(err)
		}
		r.Actor.Type = userstore.ActorType(actorType)
		r.OccurredAt = r.OccurredAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, readError(err)
	}
	return out, nil
}

// readError keeps a database error's message and detail out of Read's errors.
func readError(err error) error {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		return fmt.Errorf("audit: read records: %w", &projections.DatabaseError{Code: pgErr.SQLState()})
	}
	return fmt.Errorf("audit: read records: %w", err)
}

// sqlRead reads a page of a tenant's records in sequence order (audit_records_pkey).
const sqlRead = `
SELECT ar.tenant_id, ar.sequence, ar.event_id, ar.position, ar.occurred_at, ar.actor_type, ar.actor_id,
       ar.action, ar.target_type, ar.target_id, ar.request_id, ar.outcome, ar.prev_hash, ar.hash
  FROM userstore.audit_records AS ar
 WHERE ar.tenant_id = $1::uuid AND ar.sequence > $2::int8
 ORDER BY ar.sequence
 LIMIT $3::int8`
