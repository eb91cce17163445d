package rebuild

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// All SQL of the package. The fixed statements are constants; those on a table (live or shadow) are
// built from the table descriptions with every identifier quoted (pgx.Identifier). Every statement binds
// parameters only and casts each one explicitly. Session settings are transaction-local
// (set_config(…, true)), so nothing outlives a transaction on a pooled connection.

// sqlTryTargetLock takes a rebuild target's lock for the transaction that holds it for the whole run
// (see lockTarget), and switches idle_in_transaction_session_timeout off for that transaction only: it
// sits idle while the rebuild works.
const sqlTryTargetLock = `SELECT set_config('idle_in_transaction_session_timeout', '0', true),
       pg_try_advisory_xact_lock($1::int4, $2::int4)`

// sqlPing checks that the lock transaction's connection is still there.
const sqlPing = `SELECT 1`

// sqlSetLocals fixes what the text form of a row depends on (the checksums compare text) and bounds the
// wait for a lock, for the transaction only.
const sqlSetLocals = `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
       set_config('lock_timeout', $1::text, true)`

// sqlCurrentUser names the role a pool's sessions run as (the shadow tables are granted to the
// projector pool's role).
const sqlCurrentUser = `SELECT current_user::text`

// sqlSnapshot reads the transaction's snapshot (under REPEATABLE READ, the one every statement of the
// transaction reads), as text: "xmin:xmax:xip,…". A catch-up later asks which events it did not see.
const sqlSnapshot = `SELECT pg_current_snapshot()::text`

// sqlCountEvents counts the events the statement's snapshot sees (the copy's total, for progress).
const sqlCountEvents = `SELECT count(*) FROM userstore.events`

// streamColumns is the select list of the stream folds (see foldRows).
const streamColumns = `ev.tenant_id, ev.stream_id, ev.stream_type, ev.stream_version, ev.global_position,
       ev.event_type, ev.event_version, ev.payload::text`

// sqlAllStreams reads every event the snapshot sees, stream by stream in version order: the copy folds
// one stream at a time, so memory holds one stream. Plan: a full scan of events_stream_version_key
// (tenant_id, stream_id, stream_version), which is the order, or a sequential scan and a sort, whichever
// the planner finds cheaper. What a snapshot sees of a stream is a prefix of it: an append reads its
// stream's last event in its own snapshot, so that event committed before the append did.
const sqlAllStreams = `
SELECT ` + streamColumns + `
  FROM userstore.events AS ev
 ORDER BY ev.tenant_id, ev.stream_id, ev.stream_version`

// sqlStreams reads the whole of some streams ($1 tenants, $2 stream ids, parallel arrays; uuid arrays
// travel as text) as the statement's snapshot sees them, stream by stream in version order, each
// stream a lookup of events_stream_version_key.
const sqlStreams = `
SELECT ` + streamColumns + `
  FROM unnest($1::text[]::uuid[], $2::text[]::uuid[]) AS s(tenant_id, stream_id)
  JOIN userstore.events AS ev ON ev.tenant_id = s.tenant_id AND ev.stream_id = s.stream_id
 ORDER BY ev.tenant_id, ev.stream_id, ev.stream_version`

// sqlSince reads which stream each event belongs to that the statement's snapshot sees and the earlier
// snapshot $1 did not: the events committed in between. Every event $1 did not see has a transaction
// id at or above $1's xmin (the ones below had ended when $1 was taken), so the scan is the range
// transaction_id >= xmin of events_log_order_idx, filtered by pg_visible_in_snapshot. It does not
// depend on the log's horizon: a long transaction elsewhere in the cluster only makes the range longer
// (what it holds back is scanned again each time, not folded again).
const sqlSince = `
SELECT ev.tenant_id, ev.stream_id
  FROM userstore.events AS ev
 WHERE ev.transaction_id >= pg_snapshot_xmin($1::text::pg_snapshot)
   AND NOT pg_visible_in_snapshot(ev.transaction_id, $1::text::pg_snapshot)`

// --- shadow DDL ------------------------------------------------------------------------------------------

// sqlSchemaExists reports whether a schema exists.
const sqlSchemaExists = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text)`

// sqlForeignKeys describes the foreign keys of live tables ($1: their names, in schema userstore),
// column by column, so that a shadow table gets the same ones (LIKE does not copy foreign keys).
const sqlForeignKeys = `
SELECT cl.relname::text, c.conname::text,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
       rn.nspname::text, rc.relname::text,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
       c.confupdtype::text, c.confdeltype::text, c.confmatchtype::text, c.condeferrable, c.condeferred
  FROM pg_catalog.pg_constraint AS c
  JOIN pg_catalog.pg_class AS cl ON cl.oid = c.conrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = cl.relnamespace
  JOIN pg_catalog.pg_class AS rc ON rc.oid = c.confrelid
  JOIN pg_catalog.pg_namespace AS rn ON rn.oid = rc.relnamespace
 WHERE c.contype = 'f' AND n.nspname = 'userstore' AND cl.relname = ANY ($1::text[])
 ORDER BY cl.relname, c.conname`

// --- audit -------------------------------------------------------------------------------------------

// sqlShadowVersion picks the version of a run's shadow audit projection: one above every version the
// name has used, so that a run never meets an earlier run's dead letters or checkpoints.
const sqlShadowVersion = `
SELECT greatest(
         (SELECT coalesce(max(dl.projection_version), 0) FROM userstore.projection_dead_letters AS dl
           WHERE dl.projection = $1::text),
         (SELECT coalesce(max(cp.projection_version), 0) FROM userstore.projection_checkpoints AS cp
           WHERE cp.projection = $1::text)) + 1`

// sqlProcessed sums the events a projection version has processed (progress of the audit copy).
const sqlProcessed = `
SELECT coalesce(sum(cp.processed), 0)::int8 FROM userstore.projection_checkpoints AS cp
 WHERE cp.projection = $1::text AND cp.projection_version = $2::int4`

// sqlLockPartitions waits for a projection's 64 partition locks ($1: LockKey), in partition order, for
// the transaction: no batch of the projection runs while it holds them (a batch takes its partition's
// lock with pg_try_advisory_xact_lock and gives up when it is held). lock_timeout bounds the wait.
const sqlLockPartitions = `
SELECT count(*) FROM (
    SELECT pg_advisory_xact_lock($1::int4, p.partition)
      FROM generate_series(0, $2::int4 - 1) AS p(partition)
     ORDER BY p.partition) AS locked`

// sqlParked counts the parked dead letters of a projection version.
const sqlParked = `
SELECT count(*) FROM userstore.projection_dead_letters AS dl
 WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.status = 'parked'`

// sqlCheckpointsAhead counts the partitions in which the live projection ($1, $2) is ahead of the
// shadow ($3, $4): after the shadow caught up under the live projection's locks there must be none.
const sqlCheckpointsAhead = `
SELECT count(*)
  FROM userstore.projection_checkpoints AS l
  LEFT JOIN userstore.projection_checkpoints AS s
         ON s.projection = $3::text AND s.projection_version = $4::int4 AND s.partition = l.partition
 WHERE l.projection = $1::text AND l.projection_version = $2::int4
   AND (s.partition IS NULL
        OR (l.transaction_id, l.global_position) > (s.transaction_id, s.global_position))`

// sqlHandOverCheckpoints sets the live projection's checkpoints ($1, $2) to the shadow's ($3, $4), the
// cursors up to which the shadow's records — now the live table's — go. processed keeps the larger
// count.
const sqlHandOverCheckpoints = `
INSERT INTO userstore.projection_checkpoints AS cp
       (projection, projection_version, partition, transaction_id, global_position, processed)
SELECT $1::text, $2::int4, s.partition, s.transaction_id, s.global_position, s.processed
  FROM userstore.projection_checkpoints AS s
 WHERE s.projection = $3::text AND s.projection_version = $4::int4
ON CONFLICT ON CONSTRAINT projection_checkpoints_pkey DO UPDATE
   SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position,
       processed = greatest(cp.processed, EXCLUDED.processed), updated_at = clock_timestamp()`

// sqlResolveCovered resolves the live projection's parked dead letters whose events have a record in
// the live table now (the rebuild applied them): status retried, by "rebuild".
const sqlResolveCovered = `
UPDATE userstore.projection_dead_letters AS dl
   SET status = 'retried', resolved_at = clock_timestamp(), resolved_by = 'rebuild',
       next_attempt_at = NULL, updated_at = clock_timestamp()
 WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.status = 'parked'
   AND EXISTS (SELECT 1 FROM userstore.audit_records AS ar
                WHERE ar.tenant_id = dl.tenant_id AND ar.event_id = dl.event_id)`

// sqlDeleteCheckpoints deletes a projection's checkpoints, every version (cleanup of a shadow).
const sqlDeleteCheckpoints = `DELETE FROM userstore.projection_checkpoints WHERE projection = $1::text`

// sqlSkipParked marks a projection's parked dead letters as skipped, every version (cleanup of a
// shadow: the rows stay as history, out of the way of later runs).
const sqlSkipParked = `
UPDATE userstore.projection_dead_letters
   SET status = 'skipped', resolved_at = clock_timestamp(), resolved_by = 'rebuild-cleanup',
       next_attempt_at = NULL, updated_at = clock_timestamp()
 WHERE projection = $1::text AND status = 'parked'`

// --- tables ------------------------------------------------------------------------------------------

// ident quotes a schema-qualified name.
func ident(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// names returns "a, b, …" for the columns, each quoted.
func names(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = quote(c)
	}
	return strings.Join(out, ", ")
}

// list returns "p.a, p.b, …" for the columns, each quoted and prefixed with alias.
func list(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + quote(c)
	}
	return strings.Join(out, ", ")
}

// hashAgg is the checksum of a set of rows whose md5 digests are column h of the subquery: count and
// two 64-bit sums (the digest's halves) folded into one md5. Order-independent, O(1) memory, one pass.
const hashAgg = `count(*), md5(coalesce(sum(('x' || substr(r.h, 1, 16))::bit(64)::int8::numeric), 0)::text || '/' ||
              coalesce(sum(('x' || substr(r.h, 17, 16))::bit(64)::int8::numeric), 0)::text)`

// checksumSQL returns the row count and checksum of the columns of a whole table. The text form of a
// row depends on TimeZone and DateStyle, which sqlSetLocals fixes.
func checksumSQL(table string, cols []string) string {
	return `SELECT ` + hashAgg + ` FROM (SELECT md5(ROW(` + list("t", cols) + `)::text) AS h FROM ` + table + ` AS t) AS r`
}

// keyMatch returns "a.k1 = b.k1 AND a.k2 = b.k2".
func keyMatch(a, b string, key []string) string {
	out := make([]string, len(key))
	for i, k := range key {
		out[i] = a + "." + quote(k) + " = " + b + "." + quote(k)
	}
	return strings.Join(out, " AND ")
}

// deleteDifferingSQL deletes the rows of live that are not, column for column, a row of shadow: rows
// that should not exist and rows whose content differs (re-inserted by insertMissingSQL). Deleting
// before inserting frees unique keys a differing row may hold.
func deleteDifferingSQL(live, shadow string, key, cols []string) string {
	return `DELETE FROM ` + live + ` AS l
 WHERE NOT EXISTS (SELECT 1 FROM ` + shadow + ` AS s
                    WHERE ` + keyMatch("s", "l", key) + `
                      AND ROW(` + list("s", cols) + `) IS NOT DISTINCT FROM ROW(` + list("l", cols) + `))`
}

// insertMissingSQL inserts the rows of shadow whose key live lacks. Columns not listed take their
// defaults.
func insertMissingSQL(live, shadow string, key, cols []string) string {
	return `INSERT INTO ` + live + ` (` + names(cols) + `)
SELECT ` + list("s", cols) + ` FROM ` + shadow + ` AS s
 WHERE NOT EXISTS (SELECT 1 FROM ` + live + ` AS l WHERE ` + keyMatch("l", "s", key) + `)`
}

// The audit table's statements. A tenant's records are a gapless sequence 1..n, so what the live table
// holds of a tenant is a prefix of what the shadow holds once the shadow has caught up further.

// auditLiveRange is the CTE of each tenant's highest sequence in the live table.
func auditLiveRange(live string) string {
	return `WITH lr AS (SELECT l.tenant_id, max(l.sequence) AS hi FROM ` + live + ` AS l GROUP BY l.tenant_id)`
}

// auditRangeChecksumSQL returns the count and checksum of the shadow's records within the live
// table's range — per tenant the sequences up to the live table's highest — to compare with the live
// table's (checksumSQL).
func auditRangeChecksumSQL(live, shadow string, cols []string) string {
	return auditLiveRange(live) + `
SELECT ` + hashAgg + ` FROM (SELECT md5(ROW(` + list("s", cols) + `)::text) AS h
                    FROM ` + shadow + ` AS s JOIN lr ON lr.tenant_id = s.tenant_id AND s.sequence <= lr.hi) AS r`
}

// auditTailSQL appends to the live table the shadow's records beyond the live table's range: the
// records the live projection had not written yet. One statement, so the foreign key on the previous
// sequence is checked once every record of it is in.
func auditTailSQL(live, shadow string, cols []string) string {
	return auditLiveRange(live) + `
INSERT INTO ` + live + ` (` + names(cols) + `)
SELECT ` + list("s", cols) + ` FROM ` + shadow + ` AS s LEFT JOIN lr ON lr.tenant_id = s.tenant_id
 WHERE s.sequence > coalesce(lr.hi, 0)`
}

// auditDeleteDifferingSQL deletes every record of each tenant whose live records are not, record for
// record, the shadow's (a repair): the whole chain of such a tenant, since the foreign key on the
// previous sequence forbids cutting a chain in the middle. insertMissingSQL then inserts the shadow's
// chain of these tenants, and the tails of the others.
func auditDeleteDifferingSQL(live, shadow string, cols []string) string {
	return `DELETE FROM ` + live + ` AS l
 WHERE l.tenant_id IN (
        SELECT x.tenant_id FROM ` + live + ` AS x
         WHERE NOT EXISTS (SELECT 1 FROM ` + shadow + ` AS s
                            WHERE s.tenant_id = x.tenant_id AND s.sequence = x.sequence
                              AND ROW(` + list("s", cols) + `) IS NOT DISTINCT FROM ROW(` + list("x", cols) + `)))`
}
