package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections/audit"
)

// The audit trail and the outbox come from the log (DESIGN §6), never from rows written beside it:
//
//   - The audit trail is the projector's: the audit projection (projections/audit, run by cmd/projector
//     or any projections.Runner as the projector role) writes each event's record into
//     userstore.audit_records, chained per tenant, and ListAuditRecords reads that table — as the app
//     role, which may read its own tenant's records there and nothing else. A mutation's records appear
//     once the projector has processed its events: the trail lags the log by the projector's lag.
//   - The outbox is still derived on each call from the tenant's events below the log's read horizon —
//     every event of a transaction that ended before every transaction still running — in the log's
//     order, (transaction id, global position). The horizon makes what a call returns a prefix of what
//     every later call returns, so cursors are stable; the price is a lag: a mutation's events appear
//     once every transaction older than it has ended (Sync waits for that).

// Sync implements storetest.Syncer for the outbox: it returns once the outbox events of every mutation
// that returned before the call are readable — once every transaction that had begun when Sync was
// called has ended. It polls (with a short, growing wait, bounded by ctx) and sends no NOTIFY.
//
// Sync does not wait for the audit trail: the app role cannot run the projector. A mutation's audit
// records appear once the projector has processed its events; a test or tool that runs a projector
// itself waits for them with projections.Runner.CatchUp after Sync.
func (s *Store) Sync(ctx context.Context) error {
	var target string
	if err := s.pool.QueryRow(ctx, sqlSnapshotXmax).Scan(&target); err != nil {
		return translate("sync", err, phaseWork)
	}
	delay := time.Millisecond
	for {
		var passed bool
		if err := s.pool.QueryRow(ctx, sqlHorizonPassed, target).Scan(&passed); err != nil {
			return translate("sync", err, phaseWork)
		}
		if passed {
			return nil
		}
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("pgstore: sync: %w", err)
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// auditList is the list name of audit cursors (keyset): the cursor carries the last sequence returned.
const auditList = "audit"

// ListAuditRecords implements userstore.AuditStore: the tenant's records of userstore.audit_records in
// sequence order, filtered (AND; Since <= OccurredAt < Until), as far as the projector has written them.
// Each filter is one keyset range scan of its index of audit_records (projections/audit holds the
// query: audit.QueueRead), in the short read-only transaction scoped to the caller's tenant that every
// query runs in; the cursor is the last sequence returned. A call sees a prefix of the tenant's trail —
// the projector appends a tenant's records in sequence order, each batch after the previous one
// committed — so a cursor stays valid while the trail grows.
func (s *Store) ListAuditRecords(ctx context.Context, p *userstore.ListAuditParams) (*userstore.Page[userstore.AuditRecord], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListAuditParams{}
	}
	if err := engine.ValidateAuditParams(p); err != nil {
		return nil, err
	}
	limit, err := engine.PageLimit(p.ListOpts)
	if err != nil {
		return nil, err
	}
	filters := engine.AuditFilters(p)
	after, err := keyset.DecodeInt(p.Cursor, auditList, filters)
	if err != nil {
		return nil, err
	}
	params := &audit.ReadParams{
		TenantID: tenantID, AfterSequence: after, Limit: limit + 1, // one more: does another page follow?
		Actor: p.Actor, TargetType: p.TargetType, TargetID: p.TargetID, Action: p.Action, Since: p.Since, Until: p.Until,
	}
	items := []userstore.AuditRecord{}
	var queueErr error
	err = s.read(ctx, "list audit records", tenantID, func(b *pgx.Batch) { queueErr = audit.QueueRead(b, params, &items) })
	if queueErr != nil {
		// The parameters were validated above: this is a bug, not the caller's.
		return nil, fmt.Errorf("pgstore: list audit records: %w", queueErr)
	}
	if err != nil {
		return nil, err
	}
	page := &userstore.Page[userstore.AuditRecord]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = keyset.Encode(auditList, filters, strconv.FormatInt(items[limit-1].Sequence, 10))
	}
	return page, nil
}

// ReadOutbox implements userstore.OutboxStore: the public event (domain.Outbox) of each of the tenant's
// events after the cursor, in the log's order (transaction id, global position), below the read
// horizon — so that a consumer that keeps the cursor never skips an event that commits late. The cursor
// encodes that log position; NextCursor is always the position to resume from.
//
// OutboxEvent.Position is the event's global position in the log. It orders the events of one stream
// and of transactions that did not overlap; events of concurrent transactions are delivered in commit
// (transaction id) order, in which positions need not increase.
func (s *Store) ReadOutbox(ctx context.Context, p *userstore.ReadOutboxParams) (*userstore.Page[userstore.OutboxEvent], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ReadOutboxParams{}
	}
	limit, err := engine.PageLimit(p.ListOpts)
	if err != nil {
		return nil, err
	}
	after, err := decodeOutboxCursor(p.Cursor)
	if err != nil {
		return nil, err
	}
	res, err := s.events.ReadAll(ctx, &eventstore.ReadAllParams{After: after, TenantID: tenantID, Limit: limit})
	if err != nil {
		return nil, translate("read outbox", err, phaseWork)
	}
	page := &userstore.Page[userstore.OutboxEvent]{Items: make([]userstore.OutboxEvent, 0, len(res.Events)), NextCursor: p.Cursor}
	for i := range res.Events {
		r, err := logcodec.Recorded(&res.Events[i])
		if err != nil {
			return nil, err
		}
		ev, err := domain.Outbox(r)
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, ev)
	}
	if len(res.Events) > 0 {
		page.NextCursor = encodeOutboxCursor(res.Next)
	}
	return page, nil
}
