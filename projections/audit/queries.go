package audit

// The statements of the projection, on its table: userstore.audit_records, or the table of Config
// (table is a quoted, schema-qualified identifier).

// lastSQL reads the end of a tenant's chain: its record with the highest sequence (a backward scan of
// the primary key, audit_records_pkey). Run under the lock of the tenant's partition, so no other
// writer can extend the chain meanwhile.
func lastSQL(table string) string {
	return `
SELECT ar.sequence, ar.hash
  FROM ` + table + ` AS ar
 WHERE ar.tenant_id = $1::uuid
 ORDER BY ar.sequence DESC
 LIMIT 1`
}

// insertSQL appends one record. The primary key refuses a sequence taken twice, audit_records_event_key
// a second record of the same event, audit_records_prev_fkey a gap.
func insertSQL(table string) string {
	return `
INSERT INTO ` + table + `
       (tenant_id, sequence, event_id, position, transaction_id, occurred_at, actor_type, actor_id,
        action, target_type, target_id, request_id, outcome, prev_hash, hash)
VALUES ($1::uuid, $2::int8, $3::uuid, $4::int8, $5::text::xid8, $6::timestamptz, $7::text, $8::text,
        $9::text, $10::text, $11::uuid, $12::text, $13::text, $14::text, $15::text)`
}
