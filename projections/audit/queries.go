package audit

// sqlLast reads the end of a tenant's chain: its record with the highest sequence (a backward scan of
// audit_records_pkey). Run under the lock of the tenant's partition, so no other writer can extend the
// chain meanwhile.
const sqlLast = `
SELECT ar.sequence, ar.hash
  FROM userstore.audit_records AS ar
 WHERE ar.tenant_id = $1::uuid
 ORDER BY ar.sequence DESC
 LIMIT 1`

// sqlInsert appends one record. audit_records_pkey refuses a sequence taken twice,
// audit_records_event_key a second record of the same event, audit_records_prev_fkey a gap.
const sqlInsert = `
INSERT INTO userstore.audit_records
       (tenant_id, sequence, event_id, position, transaction_id, occurred_at, actor_type, actor_id,
        action, target_type, target_id, request_id, outcome, prev_hash, hash)
VALUES ($1::uuid, $2::int8, $3::uuid, $4::int8, $5::text::xid8, $6::timestamptz, $7::text, $8::text,
        $9::text, $10::text, $11::uuid, $12::text, $13::text, $14::text, $15::text)`
