package eventstore

// All SQL of the package. Every statement is schema-qualified, uses bind parameters only, casts each
// parameter explicitly and keeps no session state, so it runs the same in every pgx query exec mode,
// including QueryExecModeExec behind PgBouncer in transaction mode.

// sqlBeginRepeatableRead opens Append's own transaction. REPEATABLE READ makes the log's order
// causal: every event the appending transaction could have read was committed before its snapshot,
// hence has a smaller transaction id than the one the append is assigned afterwards.
const sqlBeginRepeatableRead = `BEGIN ISOLATION LEVEL REPEATABLE READ`

const sqlCommit = `COMMIT`

const sqlRollback = `ROLLBACK`

// sqlSetAppendLocals scopes the transaction to a tenant (row-level security) and makes its commit
// wait for the WAL flush, both transaction-local (is_local = true; never a session SET, which
// would leak through a pool or PgBouncer).
const sqlSetAppendLocals = `SELECT set_config('userstore.tenant_id', $1::text, true),
       set_config('synchronous_commit', 'on', true)`

// sqlSetTenant scopes the transaction to a tenant for a read.
const sqlSetTenant = `SELECT set_config('userstore.tenant_id', $1::text, true)`

// sqlAppend checks the expected version and inserts the events in one statement (one round trip).
//
// cur reads the stream's current version from the unique index (tenant_id, stream_id,
// stream_version) — a backward index scan. ok passes it on only if the condition holds (and the
// transaction is at least REPEATABLE READ, see sqlBeginRepeatableRead); otherwise nothing is
// inserted and the caller sees the actual version. Versions are current + ordinality: contiguous
// and never from a sequence. If a concurrent transaction inserts the same versions first, the unique
// index makes this statement wait for it and then fail with 23505 on events_stream_version_key (a
// version conflict), or 40001 under SERIALIZABLE. ORDER BY e.ord makes the identity (global
// position) follow the versions.
//
// $1 tenant, $2 stream id, $3 stream type, $4 expected kind, $5 expected version, $6 partition,
// $7..$11 the events' ids, types, schema versions, payloads and metadata as parallel arrays.
const sqlAppend = `
WITH cur AS (
    SELECT coalesce(max(ev.stream_version), 0)::bigint AS version
      FROM userstore.events AS ev
     WHERE ev.tenant_id = $1::uuid AND ev.stream_id = $2::uuid
), ok AS (
    SELECT cur.version
      FROM cur
     WHERE current_setting('transaction_isolation') IN ('repeatable read', 'serializable')
       AND CASE $4::text
               WHEN 'any' THEN true
               WHEN 'no_stream' THEN cur.version = 0
               WHEN 'stream_exists' THEN cur.version > 0
               WHEN 'exact' THEN cur.version = $5::bigint
               ELSE false
           END
), ins AS (
    INSERT INTO userstore.events
           (tenant_id, stream_type, stream_id, stream_version, partition,
            event_id, event_type, event_version, payload, metadata)
    SELECT $1::uuid, $3::text, $2::uuid, ok.version + e.ord, $6::smallint,
           e.event_id, e.event_type, e.event_version, e.payload, e.metadata
      FROM ok
     CROSS JOIN unnest($7::text[]::uuid[], $8::text[], $9::smallint[], $10::text[]::jsonb[], $11::text[]::jsonb[])
           WITH ORDINALITY AS e(event_id, event_type, event_version, payload, metadata, ord)
     ORDER BY e.ord
    RETURNING global_position, stream_version, transaction_id
)
SELECT (SELECT version FROM cur) AS current_version,
       current_setting('transaction_isolation') IN ('repeatable read', 'serializable') AS isolation_ok,
       coalesce((SELECT array_agg(ins.global_position ORDER BY ins.stream_version) FROM ins), '{}') AS positions,
       coalesce((SELECT max(ins.transaction_id) FROM ins)::text, '0') AS transaction_id_text`

// sqlStreamVersion reads a stream's current version (after a lost race, in a new transaction).
const sqlStreamVersion = `
SELECT coalesce(max(ev.stream_version), 0)::bigint
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid AND ev.stream_id = $2::uuid`

// eventColumns is the select list of a RecordedEvent. The text casts get names of their own: an
// unqualified ORDER BY transaction_id would otherwise bind to the output column transaction_id::text
// and sort the log as text ('1000' < '999'). The ORDER BY clauses below are qualified for the same
// reason.
const eventColumns = `ev.global_position, ev.transaction_id::text AS transaction_id_text, ev.tenant_id,
       ev.stream_type, ev.stream_id, ev.stream_version, ev.partition, ev.event_id, ev.event_type,
       ev.event_version, ev.payload::text AS payload_text, ev.metadata::text AS metadata_text, ev.recorded_at`

// sqlReadStream reads one stream from a version on; $4 NULL means no limit. Served by the unique
// index (tenant_id, stream_id, stream_version).
const sqlReadStream = `
SELECT ` + eventColumns + `
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid AND ev.stream_id = $2::uuid AND ev.stream_version >= $3::bigint
 ORDER BY ev.stream_version
 LIMIT $4::bigint`

// readAllSQL builds the read-all statement for the optional partition and tenant filters.
//
// Correctness (DESIGN §3, docs/adr/0002): transaction ids below pg_snapshot_xmin of the statement's
// snapshot belong to transactions that have all ended, and the snapshot sees every one of them that
// committed. So the rows below that horizon form a complete prefix of the log in (transaction_id,
// global_position) order: a transaction that commits later has a transaction id at or above the
// horizon and sorts after every row read here. Resuming after the last (transaction_id,
// global_position) read therefore skips nothing and repeats nothing. A cursor on global_position
// alone would skip (positions are taken at insert time, not at commit time).
//
// Plan: the row comparison and the horizon bound the range scan of events_log_order_idx (or the
// partition's / tenant's index, whose leading column is fixed by equality); LIMIT stops it.
// $1 cursor transaction id, $2 cursor position, $3 limit, then $4 partition and/or tenant.
func readAllSQL(partition, tenant bool) string {
	where := ""
	n := 4
	if partition {
		where += " AND ev.partition = $4::smallint"
		n++
	}
	if tenant {
		where += " AND ev.tenant_id = $" + string(rune('0'+n)) + "::uuid"
	}
	return `
SELECT ` + eventColumns + `
  FROM userstore.events AS ev
 WHERE (ev.transaction_id, ev.global_position) > ($1::text::xid8, $2::bigint)
   AND ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot())` + where + `
 ORDER BY ev.transaction_id, ev.global_position
 LIMIT $3::bigint`
}

var sqlReadAll = [2][2]string{
	{readAllSQL(false, false), readAllSQL(false, true)},
	{readAllSQL(true, false), readAllSQL(true, true)},
}

// sqlHorizon reads the horizon and, when a running transaction holds it back, that transaction's
// backend. The holder is the backend whose top-level transaction id is the snapshot's xmin;
// pg_stat_activity shows other roles' backends only to members of pg_read_all_stats.
const sqlHorizon = `
WITH snap AS (SELECT pg_current_snapshot() AS s)
SELECT pg_snapshot_xmin(snap.s)::text,
       h.pid, h.application_name, h.state, h.xact_start,
       extract(epoch FROM clock_timestamp() - h.xact_start)::float8,
       age(h.backend_xid)
  FROM snap
  LEFT JOIN LATERAL (
        SELECT a.pid, a.application_name, a.state, a.xact_start, a.backend_xid
          FROM pg_stat_activity AS a
         WHERE a.backend_xid = xid(pg_snapshot_xmin(snap.s))
         LIMIT 1
       ) AS h ON true`
