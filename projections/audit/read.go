package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// ReadParams select a page of a tenant's audit records in sequence order. The filters are those of
// userstore.ListAuditParams and combine with AND; each is answered by an index of audit_records that
// leads with the tenant (see sqlRead).
type ReadParams struct {
	// TenantID is the tenant; required.
	TenantID uuid.UUID
	// AfterSequence is the sequence to read after (exclusive); 0 starts at the first record.
	AfterSequence int64
	// Limit caps the number of records, at most ReadLimitMax. Default: ReadLimitMax.
	Limit int

	// Actor keeps the records of one actor (type and id both match). Default: any.
	Actor *userstore.Actor
	// TargetType and TargetID keep the records of one target type, or of one target; TargetID needs
	// TargetType. Default: any.
	TargetType string
	TargetID   uuid.UUID
	// Action keeps the records of one action (event type). Default: any.
	Action string
	// Since and Until bound OccurredAt: Since <= occurred_at < Until. Zero: unbounded.
	Since time.Time
	Until time.Time
}

// Read returns a page of a tenant's audit records in sequence order, as the table holds them, filtered
// by params. The projector role reads every tenant; the app role only the one its transaction is scoped
// to with set_config('userstore.tenant_id', …, true) — q must then be that transaction. Database errors
// carry the SQLSTATE only (*projections.DatabaseError).
func Read(ctx context.Context, q Querier, params *ReadParams) ([]userstore.AuditRecord, error) {
	sql, args, err := readQuery(params)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, readError(err)
	}
	out, err := scanRecords(rows)
	if err != nil {
		return nil, readError(err)
	}
	return out, nil
}

// QueueRead is Read for a caller that sends its statements as one pipelined batch (a read transaction
// scoped to the tenant, say): it validates params and queues the query on b; when the batch's results
// are read, the page's records are appended to *out. Nothing is queued when params are invalid. Database
// errors surface from the batch as the driver reports them, for the caller to translate with the rest
// of its batch (and never to show as they are: their detail may quote values).
func QueueRead(b *pgx.Batch, params *ReadParams, out *[]userstore.AuditRecord) error {
	sql, args, err := readQuery(params)
	if err != nil {
		return err
	}
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		recs, err := scanRecords(rows)
		if err != nil {
			return err
		}
		*out = append(*out, recs...)
		return nil
	})
	return nil
}

// readQuery validates params and returns the query of the page with its arguments.
func readQuery(params *ReadParams) (string, []any, error) {
	if params == nil || params.TenantID == uuid.Nil {
		return "", nil, fmt.Errorf("%w: TenantID: must not be empty", projections.ErrValidation)
	}
	p := params
	limit := p.Limit
	switch {
	case limit < 0 || limit > ReadLimitMax:
		return "", nil, fmt.Errorf("%w: Limit: must be between 0 and %d, got %d", projections.ErrValidation, ReadLimitMax, limit)
	case limit == 0:
		limit = ReadLimitMax
	}
	switch {
	case p.AfterSequence < 0:
		return "", nil, fmt.Errorf("%w: AfterSequence: must not be negative", projections.ErrValidation)
	case p.TargetID != uuid.Nil && p.TargetType == "":
		return "", nil, fmt.Errorf("%w: TargetType: is required with TargetID", projections.ErrValidation)
	case !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since):
		return "", nil, fmt.Errorf("%w: Until: must not be before Since", projections.ErrValidation)
	}

	var sql strings.Builder
	sql.WriteString(sqlRead)
	args := []any{p.TenantID, p.AfterSequence}
	arg := func(v any, cast string) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)) + "::" + cast
	}
	if p.Actor != nil {
		sql.WriteString("\n   AND ar.actor_type = " + arg(string(p.Actor.Type), "text") + " AND ar.actor_id = " + arg(p.Actor.ID, "text"))
	}
	if p.TargetType != "" {
		sql.WriteString("\n   AND ar.target_type = " + arg(p.TargetType, "text"))
	}
	if p.TargetID != uuid.Nil {
		sql.WriteString(" AND ar.target_id = " + arg(p.TargetID, "uuid"))
	}
	if p.Action != "" {
		sql.WriteString("\n   AND ar.action = " + arg(p.Action, "text"))
	}
	if !p.Since.IsZero() {
		sql.WriteString("\n   AND ar.occurred_at >= " + arg(ceilMicro(p.Since), "timestamptz"))
	}
	if !p.Until.IsZero() {
		sql.WriteString("\n   AND ar.occurred_at < " + arg(ceilMicro(p.Until), "timestamptz"))
	}
	sql.WriteString("\n ORDER BY ar.sequence\n LIMIT " + arg(int64(limit), "int8"))
	return sql.String(), args, nil
}

// ceilMicro rounds t up to PostgreSQL's precision, the microsecond. OccurredAt is stored in
// microseconds, so occurred_at >= t exactly when occurred_at >= ceilMicro(t), and likewise for <; pgx
// would truncate t instead, and a bound between two microseconds would then move.
func ceilMicro(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// scanRecords reads and closes rows of sqlRead's columns.
func scanRecords(rows pgx.Rows) ([]userstore.AuditRecord, error) {
	defer rows.Close()
	out := []userstore.AuditRecord{}
	for rows.Next() {
		var (
			r         userstore.AuditRecord
			actorType string
		)
		if err := rows.Scan(&r.TenantID, &r.Sequence, &r.EventID, &r.Position, &r.OccurredAt, &actorType,
			&r.Actor.ID, &r.Action, &r.TargetType, &r.TargetID, &r.RequestID, &r.Outcome, &r.PrevHash, &r.Hash); err != nil {
			return nil, err
		}
		r.Actor.Type = userstore.ActorType(actorType)
		r.OccurredAt = r.OccurredAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
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

// sqlRead is the head of the page query: a tenant's records after a sequence. readQuery appends one
// condition per filter given (bind parameters only), then ORDER BY ar.sequence LIMIT n. Each filter has
// an index that leads with (tenant_id, <the filter's columns>) and ends with sequence
// (migrations/sql/00005_projections.sql), so the planner serves the page as a keyset range scan:
//
//   - no filter: audit_records_pkey (tenant_id, sequence), in order, stopping after LIMIT rows;
//   - Actor: audit_records_actor_idx (tenant_id, actor_type, actor_id, sequence), in order;
//   - Action: audit_records_action_idx (tenant_id, action, sequence), in order;
//   - TargetType and TargetID: audit_records_target_idx (tenant_id, target_type, target_id, sequence),
//     in order; TargetType alone scans the type's prefix of it and sorts (top-N) by sequence;
//   - Since/Until: audit_records_time_idx (tenant_id, occurred_at, sequence) over the range, sorted
//     (top-N) by sequence — unless the range holds most of the tenant's records, where walking the
//     primary key in order and filtering stops sooner, and the planner does that.
//
// Filters combined use the most selective index (or a bitmap AND of two) and check the rest. The app
// role's row-level security policy adds tenant_id = the transaction's userstore.tenant_id, the same
// tenant (equality on uuid is leakproof, so the policy does not keep the index from being used).
// TestReadUsesTheIndexes checks these plans with EXPLAIN.
const sqlRead = `
SELECT ar.tenant_id, ar.sequence, ar.event_id, ar.position, ar.occurred_at, ar.actor_type, ar.actor_id,
       ar.action, ar.target_type, ar.target_id, ar.request_id, ar.outcome, ar.prev_hash, ar.hash
  FROM userstore.audit_records AS ar
 WHERE ar.tenant_id = $1::uuid AND ar.sequence > $2::int8`
