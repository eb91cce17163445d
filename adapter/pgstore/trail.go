package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
	"github.com/netkingdom/userstore/internal/logcodec"
)

// The audit trail and the outbox come from the log (DESIGN §6), never from rows written beside it.
// Until the projector (cmd/projector) maintains them, they are derived on each call from the tenant's
// events below the log's read horizon — every event of a transaction that ended before every
// transaction still running — in the log's order, (transaction id, global position). The horizon makes
// what a call returns a prefix of what every later call returns, so sequences, hashes and cursors are
// stable; the price is a lag: a mutation's records appear once every transaction older than it has
// ended (Sync waits for that).

// Sync implements storetest.Syncer: it returns once the audit records and outbox events of every
// mutation that returned before the call are readable — once every transaction that had begun when
// Sync was called has ended. It polls (with a short, growing wait, bounded by ctx) and sends no NOTIFY.
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

// ListAuditRecords implements userstore.AuditStore: the tenant's records in sequence order, filtered.
//
// Interim implementation: it reads and chains (domain.Audit, domain.ChainAudit) every event of the
// tenant from the start on every call — O(events of the tenant) per call — and applies the filters
// after chaining; the cursor is the last sequence returned. The projector's audit_records table (a
// later issue) replaces this with an indexed read.
func (s *Store) ListAuditRecords(ctx context.Context, p *userstore.ListAuditParams) (*userstore.Page[userstore.AuditRecord], error) {
	tenantID, err := engine.ReadTenant(ctx)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &userstore.ListAuditParams{}
	}
	if p.TargetID != uuid.Nil && p.TargetType == "" {
		return nil, userstore.Invalid("target_type", "is required with target_id")
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since) {
		return nil, userstore.Invalid("until", "must not be before since")
	}
	limit, err := engine.PageLimit(p.ListOpts)
	if err != nil {
		return nil, err
	}
	filters := engine.AuditFilters(p)
	after, err := keyset.DecodeInt(p.Cursor, "audit", filters)
	if err != nil {
		return nil, err
	}

	page := &userstore.Page[userstore.AuditRecord]{Items: []userstore.AuditRecord{}}
	seq, prevHash := int64(0), domain.AuditGenesisHash
	var cursor eventstore.Cursor
	for {
		res, err := s.events.ReadAll(ctx, &eventstore.ReadAllParams{After: cursor, TenantID: tenantID, Limit: eventstore.ReadLimitMax})
		if err != nil {
			return nil, translate("list audit records", err, phaseWork)
		}
		for i := range res.Events {
			r, err := logcodec.Recorded(&res.Events[i])
			if err != nil {
				return nil, err
			}
			rec := domain.Audit(r)
			if err := domain.ChainAudit(&rec, seq, prevHash); err != nil {
				return nil, err
			}
			seq, prevHash = rec.Sequence, rec.Hash
			if rec.Sequence <= after || !engine.AuditMatches(p, &rec) {
				continue
			}
			if len(page.Items) == limit {
				page.NextCursor = keyset.Encode("audit", filters, strconv.FormatInt(page.Items[limit-1].Sequence, 10))
				return page, nil
			}
			page.Items = append(page.Items, rec)
		}
		if len(res.Events) < eventstore.ReadLimitMax {
			return page, nil
		}
		cursor = res.Next
	}
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
