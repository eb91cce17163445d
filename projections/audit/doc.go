// Package audit is the audit projection (DESIGN §6): it turns every event of the log into a record of
// userstore.audit_records — per tenant a gapless sequence 1, 2, 3, … in the log's order and a hash chain,
// hash = sha256(prev_hash ‖ canonical record) — queryable by actor, target, action and time.
//
// A record is exactly what domain.Audit and domain.ChainAudit derive from the event (decoded with
// internal/logcodec), the functions the durable store uses to derive its trail on the fly and the
// replay tool uses to recompute it, so the table, the store and a replay agree record for record;
// domain.VerifyAuditChain checks a tenant's chain.
//
// The projection runs in the runtime of package projections. Because a tenant's events all live in one
// partition of the log and a partition is processed by one transaction at a time (its advisory lock),
// the tenant's chain has one writer at a time; the table's constraints back that up: one record per
// event, one per sequence, and no gap (a foreign key to the previous sequence).
//
//	runner, err := projections.New(projectorPool, projectorStore, []projections.Projection{audit.New(nil)}, nil)
//
// [Read] reads a tenant's records back in sequence order.
package audit
