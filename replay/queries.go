package replay

import (
	"strings"
)

// All SQL of the package (the log's reads are eventstore's, the audit table's read is projections/
// audit's). Every statement is schema-qualified, binds parameters only, casts each one explicitly and
// reads only: each runs inside the operation's REPEATABLE READ READ ONLY transaction, whose snapshot —
// and whose horizon pg_snapshot_xmin(pg_current_snapshot()) — stays the same for all of them.

// sqlTenantCounts counts a tenant's events below the snapshot's horizon (the complete prefix of the log
// that the audit trail is built from) and above it (committed by transactions that began after the
// oldest one still running: their place in the log's order is not final yet). Both are range scans of
// events_tenant_order_idx (tenant_id, transaction_id, global_position).
const sqlTenantCounts = `
SELECT count(*) FILTER (WHERE ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot())),
       count(*) FILTER (WHERE ev.transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid`

// sqlCountAllBelowHorizon counts every event below the horizon (for the progress of --all).
const sqlCountAllBelowHorizon = `
SELECT count(*) FROM userstore.events AS ev
 WHERE ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot())`

// sqlCountVisible and sqlCountVisibleTenant count every event the snapshot sees, of all tenants or of
// one (for the progress of verify-projections).
const (
	sqlCountVisible       = `SELECT count(*) FROM userstore.events AS ev`
	sqlCountVisibleTenant = `SELECT count(*) FROM userstore.events AS ev WHERE ev.tenant_id = $1::uuid`
)

// sqlSkipped reads the events that an operator skipped in a projection for a tenant: they are not in
// the projection's table and never will be (projection_dead_letters_pkey leads with the tenant).
const sqlSkipped = `
SELECT dl.event_id, dl.global_position, dl.transaction_id::text, dl.event_type, coalesce(dl.resolved_by, ''),
       coalesce(dl.resolved_at, dl.updated_at)
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.tenant_id = $1::uuid AND dl.projection = $2::text AND dl.projection_version = $3::int4
   AND dl.status = 'skipped'
 ORDER BY dl.transaction_id, dl.global_position`

// sqlFirstParked reads a tenant's first parked event in a projection, if any. While an event is parked,
// every later event of the tenant is parked behind it (docs/adr/0006): the tenant's applied events are
// exactly those before it.
const sqlFirstParked = `
SELECT dl.transaction_id::text, dl.global_position
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.tenant_id = $1::uuid AND dl.projection = $2::text AND dl.projection_version = $3::int4
   AND dl.status = 'parked'
 ORDER BY dl.transaction_id, dl.global_position
 LIMIT 1`

// sqlCheckpoint reads a projection's checkpoint of one partition: the cursor of the last event it
// processed (applied, parked or skipped) there. It commits with the rows it covers, so the snapshot sees
// both or neither.
const sqlCheckpoint = `
SELECT cp.transaction_id::text, cp.global_position
  FROM userstore.projection_checkpoints AS cp
 WHERE cp.projection = $1::text AND cp.projection_version = $2::int4 AND cp.partition = $3::int2`

// nextTenantSQL returns the statement that finds the smallest tenant id after $1 (from $1 on, when first)
// among the tables given: one index probe per table (each has an index that leads with tenant_id), so
// walking every tenant costs O(tables) probes per tenant, never a scan of the log.
func nextTenantSQL(first bool, tables ...string) string {
	op := ">"
	if first {
		op = ">="
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = "(SELECT x.tenant_id FROM " + t + " AS x WHERE x.tenant_id " + op +
			" $1::uuid ORDER BY x.tenant_id LIMIT 1)"
	}
	// least() ignores NULLs: NULL only when every table is past the last tenant.
	return "SELECT least(" + strings.Join(parts, ",\n       ") + ")"
}

// chainTables hold the tenants whose chain verify-chain checks: those with events or audit records.
var chainTables = []string{"userstore.events", "userstore.audit_records"}

// eventColumns is the select list of a stored event (as eventstore reads it).
const eventColumns = `ev.global_position, ev.transaction_id::text AS transaction_id_text, ev.tenant_id,
       ev.stream_type, ev.stream_id, ev.stream_version, ev.partition, ev.event_id, ev.event_type,
       ev.event_version, ev.payload::text AS payload_text, ev.metadata::text AS metadata_text, ev.recorded_at`

// sqlTenantLog is the query of a cursor over a tenant's events below the snapshot's horizon, in the
// log's order: the range of events_tenant_order_idx (tenant_id, transaction_id, global_position), read
// in order. Correctness is eventstore's ReadAll's (docs/adr/0002): transaction ids below
// pg_snapshot_xmin belong to transactions that have all ended and the snapshot sees every one of them
// that committed, so these rows are a complete prefix of the tenant's log — and in a REPEATABLE READ
// transaction the horizon is that of the transaction's one snapshot, the same for every statement.
const sqlTenantLog = `
SELECT ` + eventColumns + `
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid AND ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY ev.transaction_id, ev.global_position`

// sqlTenantStreams is the query of a cursor over a tenant's visible events in stream order, (stream_id,
// stream_version): the range of events_stream_version_key (tenant_id, stream_id, stream_version), read
// in order. Every stream's visible events are a prefix of the stream (its version n+1 was appended by a
// transaction that saw version n committed), so each stream folds to the state that the read tables show
// in the same snapshot. No horizon here: the read tables were written in the events' own transactions,
// so what the snapshot sees of both is consistent.
const sqlTenantStreams = `
SELECT ` + eventColumns + `
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid
 ORDER BY ev.stream_id, ev.stream_version`
