package projections

// All SQL of the runtime. Every statement is schema-qualified, uses bind parameters only, casts each
// parameter explicitly and keeps no session state (no SET, no session advisory lock, no prepared
// statement), so the runtime works with any pgx exec mode, including behind PgBouncer in transaction
// mode.

// sqlSetTxIdleTimeout bounds how long the transaction may sit idle (Config.TxIdleTimeout), for this
// transaction only: a hung runner loses its connection, transaction and locks after that long.
const sqlSetTxIdleTimeout = `SELECT set_config('idle_in_transaction_session_timeout', $1::text, true)`

// sqlTryLock takes the (projection, partition) lock for the batch transaction, or reports that another
// transaction holds it. Transaction-scoped: it ends with the transaction, also when the process dies
// (the server aborts the transaction when the connection goes), so nothing can leak into a pool.
const sqlTryLock = `SELECT pg_try_advisory_xact_lock($1::int4, $2::int4)`

// sqlLock waits for the (projection, partition) lock: an operator's Retry or Skip waits for the running
// batch of the tenant's partition to end.
const sqlLock = `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`

// sqlCheckpoint reads the checkpoint of (projection $1, version $2, partition $3), whether it exists,
// and how many of the partition's dead letters are parked and how many of them are due for an automatic
// retry. It runs as a statement of its own after sqlTryLock: at READ COMMITTED its snapshot is taken
// after the lock was granted, so it sees the checkpoint the previous holder committed (a holder's commit
// is visible before its locks are released).
const sqlCheckpoint = `
SELECT cp.projection IS NOT NULL,
       coalesce(cp.transaction_id, '0'::xid8)::text,
       coalesce(cp.global_position, 0),
       (SELECT count(*) FROM userstore.projection_dead_letters AS dl
         WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.partition = $3::int2
           AND dl.status = 'parked'),
       (SELECT count(*) FROM userstore.projection_dead_letters AS dl
         WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.partition = $3::int2
           AND dl.status = 'parked' AND dl.next_attempt_at <= clock_timestamp())
  FROM (SELECT 1) AS one
  LEFT JOIN userstore.projection_checkpoints AS cp
         ON cp.projection = $1::text AND cp.projection_version = $2::int4 AND cp.partition = $3::int2`

// sqlAdvance is the checkpoint's compare-and-set: it moves the cursor from the one the batch read
// ($4, $5) to the batch's last event ($6, $7) and fails (0 rows) when anything else moved it meanwhile.
const sqlAdvance = `
UPDATE userstore.projection_checkpoints
   SET transaction_id = $6::text::xid8, global_position = $7::int8,
       processed = processed + $8::int8, updated_at = clock_timestamp()
 WHERE projection = $1::text AND projection_version = $2::int4 AND partition = $3::int2
   AND transaction_id = $4::text::xid8 AND global_position = $5::int8`

// sqlCreateCheckpoint is the compare-and-set of a partition's first batch: it creates the checkpoint
// at the batch's last event, and fails (0 rows) when one was created meanwhile.
const sqlCreateCheckpoint = `
INSERT INTO userstore.projection_checkpoints
       (projection, projection_version, partition, transaction_id, global_position, processed)
VALUES ($1::text, $2::int4, $3::int2, $4::text::xid8, $5::int8, $6::int8)
ON CONFLICT ON CONSTRAINT projection_checkpoints_pkey DO NOTHING`

// sqlBlockedTenants returns which of the tenants $3 have parked events (projection_dead_letters_parked_idx).
const sqlBlockedTenants = `
SELECT DISTINCT dl.tenant_id
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.tenant_id = ANY($3::text[]::uuid[])
   AND dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.status = 'parked'`

// sqlPark parks events: one row per element of the parallel arrays $4.., in any order (the primary key
// orders them). An element's error is NULL for an event parked behind an earlier one of its tenant; its
// delay (milliseconds until the automatic retry) is NULL when there is none. next_attempt_at takes the
// server's clock, the clock that sqlCheckpoint and sqlDueTenants compare it with.
const sqlPark = `
INSERT INTO userstore.projection_dead_letters
       (tenant_id, projection, projection_version, partition, transaction_id, global_position,
        event_id, event_type, error, attempts, next_attempt_at)
SELECT d.tenant_id, $1::text, $2::int4, $3::int2, d.xid::xid8, d.pos, d.event_id, d.event_type, d.error,
       d.attempts, clock_timestamp() + d.delay_ms * interval '1 millisecond'
  FROM unnest($4::text[]::uuid[], $5::text[], $6::int8[], $7::text[]::uuid[], $8::text[], $9::text[], $10::int4[], $11::int8[])
       AS d(tenant_id, xid, pos, event_id, event_type, error, attempts, delay_ms)`

// sqlDueTenants returns up to $4 tenants of partition $3 whose first parked event is due for an
// automatic retry (projection_dead_letters_due_idx). Only a tenant's first parked event has a
// next_attempt_at.
const sqlDueTenants = `
SELECT dl.tenant_id
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.partition = $3::int2
   AND dl.status = 'parked' AND dl.next_attempt_at <= clock_timestamp()
 ORDER BY dl.next_attempt_at
 LIMIT $4::int8`

// sqlParked returns a tenant's parked events in the log's order, up to $5
// (projection_dead_letters_parked_idx).
const sqlParked = `
SELECT dl.event_id, dl.transaction_id::text, dl.global_position, dl.attempts
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.tenant_id = $1::uuid AND dl.projection = $2::text AND dl.projection_version = $3::int4
   AND dl.status = 'parked'
 ORDER BY dl.transaction_id, dl.global_position
 LIMIT $4::int8`

// sqlResolve marks parked events of a tenant as retried or skipped ($5), by $6. It returns how many it
// marked: the caller checks that every one was still parked.
const sqlResolve = `
UPDATE userstore.projection_dead_letters
   SET status = $5::text, resolved_at = clock_timestamp(), resolved_by = $6::text,
       next_attempt_at = NULL, updated_at = clock_timestamp()
 WHERE tenant_id = $1::uuid AND projection = $2::text AND projection_version = $3::int4
   AND event_id = ANY($4::text[]::uuid[]) AND status = 'parked'`

// sqlFail records a failed attempt of a tenant's first parked event: the error, the attempt, and when
// to retry it automatically ($6 milliseconds from now; NULL: not any more).
const sqlFail = `
UPDATE userstore.projection_dead_letters
   SET error = $5::text, attempts = attempts + 1,
       next_attempt_at = clock_timestamp() + $6::int8 * interval '1 millisecond', updated_at = clock_timestamp()
 WHERE tenant_id = $1::uuid AND projection = $2::text AND projection_version = $3::int4
   AND event_id = $4::uuid AND status = 'parked'`

// sqlDeadLetters lists dead letters, filtered by projection ($1, empty for all), tenant ($2, NULL for
// all) and status ($3, empty for all), in (projection, tenant, log) order, up to $4.
const sqlDeadLetters = `
SELECT dl.projection, dl.projection_version, dl.tenant_id, dl.partition, dl.transaction_id::text,
       dl.global_position, dl.event_id, dl.event_type, dl.status, coalesce(dl.error, ''), dl.attempts,
       dl.next_attempt_at, dl.created_at, dl.updated_at, dl.resolved_at, coalesce(dl.resolved_by, '')
  FROM userstore.projection_dead_letters AS dl
 WHERE ($1::text = '' OR dl.projection = $1::text)
   AND ($2::uuid IS NULL OR dl.tenant_id = $2::uuid)
   AND ($3::text = '' OR dl.status = $3::text)
 ORDER BY dl.projection, dl.projection_version, dl.tenant_id, dl.transaction_id, dl.global_position
 LIMIT $4::int8`

// sqlProbe returns the partitions (of $3) in which projection ($1, $2) has work: an event after its
// checkpoint below the horizon (the condition of eventstore's read-all, so whatever it finds a batch can
// read), or a dead letter due for an automatic retry. One statement per poll instead of one transaction
// per partition: each EXISTS is one probe of events_partition_order_idx (the partition fixed by
// equality, the row comparison and the horizon a range on the rest) or of the partial due index.
const sqlProbe = `
SELECT p.partition::int2
  FROM generate_series(0, $3::int4 - 1) AS p(partition)
  LEFT JOIN userstore.projection_checkpoints AS cp
         ON cp.projection = $1::text AND cp.projection_version = $2::int4 AND cp.partition = p.partition
 WHERE EXISTS (
        SELECT 1 FROM userstore.events AS ev
         WHERE ev.partition = p.partition
           AND (ev.transaction_id, ev.global_position)
               > (coalesce(cp.transaction_id, '0'::xid8), coalesce(cp.global_position, 0))
           AND ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))
    OR EXISTS (
        SELECT 1 FROM userstore.projection_dead_letters AS dl
         WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.partition = p.partition
           AND dl.status = 'parked' AND dl.next_attempt_at <= clock_timestamp())`

// sqlNextXid reads the first transaction id not yet assigned: every transaction that committed before
// the statement has a smaller one. CatchUp's target.
const sqlNextXid = `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`

// sqlCaughtUp reports whether projection ($1, $2) has processed every committed event of partition $3
// below transaction id $4.
const sqlCaughtUp = `
SELECT NOT EXISTS (
        SELECT 1 FROM userstore.events AS ev
         WHERE ev.partition = $3::int2 AND ev.transaction_id < $4::text::xid8
           AND (ev.transaction_id, ev.global_position) > (
                coalesce((SELECT cp.transaction_id FROM userstore.projection_checkpoints AS cp
                           WHERE cp.projection = $1::text AND cp.projection_version = $2::int4
                             AND cp.partition = $3::int2), '0'::xid8),
                coalesce((SELECT cp.global_position FROM userstore.projection_checkpoints AS cp
                           WHERE cp.projection = $1::text AND cp.projection_version = $2::int4
                             AND cp.partition = $3::int2), 0)))`

// sqlStatus reports, per partition (of $3), the checkpoint of projection ($1, $2), how many events of
// the partition follow it (committed, whether below the horizon or not), how old the first of them is,
// and how many dead letters are parked. Counting is O(lag) per partition: it is meant for metrics
// scrapes, not for hot paths.
const sqlStatus = `
SELECT p.partition::int2,
       coalesce(cp.transaction_id, '0'::xid8)::text,
       coalesce(cp.global_position, 0),
       coalesce(cp.processed, 0),
       cp.updated_at,
       behind.events,
       extract(epoch FROM clock_timestamp() - behind.oldest)::float8,
       (SELECT count(*) FROM userstore.projection_dead_letters AS dl
         WHERE dl.projection = $1::text AND dl.projection_version = $2::int4 AND dl.partition = p.partition
           AND dl.status = 'parked')
  FROM generate_series(0, $3::int4 - 1) AS p(partition)
  LEFT JOIN userstore.projection_checkpoints AS cp
         ON cp.projection = $1::text AND cp.projection_version = $2::int4 AND cp.partition = p.partition
 CROSS JOIN LATERAL (
        SELECT count(*) AS events,
               (SELECT ev.recorded_at FROM userstore.events AS ev
                 WHERE ev.partition = p.partition
                   AND (ev.transaction_id, ev.global_position)
                       > (coalesce(cp.transaction_id, '0'::xid8), coalesce(cp.global_position, 0))
                 ORDER BY ev.transaction_id, ev.global_position
                 LIMIT 1) AS oldest
          FROM userstore.events AS ev
         WHERE ev.partition = p.partition
           AND (ev.transaction_id, ev.global_position)
               > (coalesce(cp.transaction_id, '0'::xid8), coalesce(cp.global_position, 0))
       ) AS behind
 ORDER BY p.partition`

// Savepoint statements around each Apply. Sent without arguments, pgx uses the simple protocol, so
// "release and set again" is one round trip.
const (
	sqlSavepoint         = `SAVEPOINT projection_event`
	sqlSavepointNext     = `RELEASE SAVEPOINT projection_event; SAVEPOINT projection_event`
	sqlSavepointRollback = `ROLLBACK TO SAVEPOINT projection_event`
	sqlSavepointRelease  = `RELEASE SAVEPOINT projection_event`
)

// sqlDueNow makes a tenant's next parked event due for an automatic retry at once: a retry that applied
// its share of a long queue leaves the rest to the next batch.
const sqlDueNow = `
UPDATE userstore.projection_dead_letters
   SET next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
 WHERE tenant_id = $1::uuid AND projection = $2::text AND projection_version = $3::int4
   AND event_id = $4::uuid AND status = 'parked'`

// sqlParkedCount counts a tenant's parked events.
const sqlParkedCount = `
SELECT count(*)
  FROM userstore.projection_dead_letters AS dl
 WHERE dl.tenant_id = $1::uuid AND dl.projection = $2::text AND dl.projection_version = $3::int4
   AND dl.status = 'parked'`
