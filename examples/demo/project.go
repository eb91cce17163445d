package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgerr"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// project runs the projector in-process, as the projector role, the way cmd/projector runs it: the
// audit projection (audit_records, hash-chained) and the outbox relay (the watermill topic table), and
// catches them up with everything committed so far.
func project(ctx context.Context, p *pools, r *report) error {
	events, err := eventstore.New(p.projector, nil)
	if err != nil {
		return fmt.Errorf("open the event store: %w", err)
	}
	relay, err := outbox.New(nil)
	if err != nil {
		return fmt.Errorf("create the outbox relay: %w", err)
	}
	runner, err := projections.New(p.projector, events, []projections.Projection{audit.New(nil), relay}, nil)
	if err != nil {
		return fmt.Errorf("create the projector: %w", err)
	}
	start := time.Now()
	if err := runner.CatchUp(ctx); err != nil {
		return fmt.Errorf("catch the projector up (as %s): %w", envProjector, err)
	}
	r.section("projector (userstore_projector, in-process): audit + outbox caught up in %s",
		time.Since(start).Round(time.Millisecond))
	return nil
}

// sqlCounts counts the tenant's rows: its events in the log, its read rows, its audit records and its
// outbox messages (whose tenant is in the message metadata). The projector role reads every tenant.
const sqlCounts = `
SELECT (SELECT count(*) FROM userstore.events WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.tenants WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.users WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.accounts WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.external_identities WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.applications WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.bindings WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.catalogs WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.profiles WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.memberships WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore.audit_records WHERE tenant_id = $1::uuid),
       (SELECT count(*) FROM userstore."watermill_userstore.events" WHERE metadata->>'tenant_id' = $1::text)`

// counts prints how many rows of each kind the tenant has now.
func counts(ctx context.Context, p *pools, d *demo, r *report) error {
	var n [12]int64
	dest := make([]any, len(n))
	for i := range n {
		dest[i] = &n[i]
	}
	if err := p.projector.QueryRow(ctx, sqlCounts, d.tenant.ID.String()).Scan(dest...); err != nil {
		return fmt.Errorf("count the tenant's rows: %s", pgerr.Describe(err))
	}
	r.section("counts for the tenant")
	r.step("events in the log", "%d", n[0])
	r.step("read rows", "tenants %d, users %d, accounts %d, external_identities %d, applications %d,", n[1], n[2], n[3], n[4], n[5])
	r.step("", "bindings %d, catalogs %d, profiles %d, memberships %d", n[6], n[7], n[8], n[9])
	r.step("audit records", "%d", n[10])
	r.step("outbox messages", "%d", n[11])
	return nil
}

// trailHead and trailTail: how many records of a long trail are shown from its start and its end.
const trailHead, trailTail = 10, 3

// trail reads the tenant's whole audit trail through the store (ListAuditRecords, as the app role: its
// row-level security shows it this tenant's records only), verifies its hash chain and prints a slice.
func trail(d *demo, r *report) error {
	var recs []userstore.AuditRecord
	for cursor := ""; ; {
		page, err := d.store.ListAuditRecords(d.ctx, &userstore.ListAuditParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: userstore.MaxLimit}})
		if err != nil {
			return fmt.Errorf("list the audit trail: %w", err)
		}
		recs = append(recs, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	r.section("audit trail (ListAuditRecords as userstore_app)")
	t := r.table("seq", "action", "target", "actor", "hash")
	for i, rec := range recs {
		if len(recs) > trailHead+trailTail && i == trailHead {
			t.row("…", fmt.Sprintf("(%d more)", len(recs)-trailHead-trailTail), "", "", "")
		}
		if len(recs) > trailHead+trailTail && i >= trailHead && i < len(recs)-trailTail {
			continue
		}
		t.row(fmt.Sprint(rec.Sequence), rec.Action, rec.TargetType+" "+d.name(rec.TargetID),
			string(rec.Actor.Type)+"/"+rec.Actor.ID, rec.Hash[:12])
	}
	t.flush()
	if i, err := domain.VerifyAuditChain(recs); err != nil {
		return fmt.Errorf("the audit chain is broken at record %d: %w", i+1, err)
	}
	if len(recs) == 0 {
		return errors.New("the tenant has no audit record: the audit projection did not run")
	}
	r.line("chain verified: %d records", len(recs))
	return nil
}

// sqlMessages reads the tenant's messages from the outbox relay's watermill topic table, in the order
// they were published (by transaction, then offset).
const sqlMessages = `
SELECT m.metadata->>'type', m.metadata->>'aggregate_type', m.metadata->>'aggregate_id',
       m.metadata->>'aggregate_version', m.uuid
  FROM userstore."watermill_userstore.events" AS m
 WHERE m.metadata->>'tenant_id' = $1::text
 ORDER BY m.transaction_id, m."offset"`

// messages prints the tenant's outbox messages as the relay published them.
func messages(ctx context.Context, p *pools, d *demo, r *report) error {
	rows, err := p.projector.Query(ctx, sqlMessages, d.tenant.ID.String())
	if err != nil {
		return fmt.Errorf("read the outbox messages: %s", pgerr.Describe(err))
	}
	type message struct{ typ, aggType, aggID, version, uuid string }
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (message, error) {
		var m message
		err := row.Scan(&m.typ, &m.aggType, &m.aggID, &m.version, &m.uuid)
		return m, err
	})
	if err != nil {
		return fmt.Errorf("read the outbox messages: %s", pgerr.Describe(err))
	}
	r.section("outbox messages (userstore.\"watermill_userstore.events\", metadata tenant_id = the tenant)")
	t := r.table("type", "aggregate", "version", "uuid")
	for _, m := range msgs {
		aggID, err := uuid.Parse(m.aggID)
		if err != nil {
			return fmt.Errorf("outbox message %s: aggregate_id is not a UUID", m.uuid)
		}
		t.row(m.typ, m.aggType+" "+d.name(aggID), m.version, m.uuid)
	}
	t.flush()
	return nil
}
