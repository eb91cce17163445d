-- +goose Up
-- The asynchronous projections (DESIGN §5, §6; docs/adr/0006-projector-runtime.md):
--
--   * projection_checkpoints — per (projection, version, partition) the log cursor (transaction_id,
--     global_position) up to which the projection has processed the partition. The projector advances it
--     with a compare-and-set in the transaction that applies the events, so the effects and the cursor
--     commit together (exactly once). No tenant: it is the projector's bookkeeping, granted to it alone.
--   * projection_dead_letters — events a projection could not apply, parked per (projection, tenant)
--     with the error, retried with backoff, and retried or skipped by an operator.
--   * audit_records — the audit projection: per tenant a gapless sequence and a hash chain
--     (hash = sha256(prev_hash || canonical record), domain.AuditHash).
--
-- Roles: userstore_projector writes all three (no BYPASSRLS: policies of its own); userstore_app may read
-- its tenant's audit records and nothing else here. Forward-only, like every migration here.

-- ---------------------------------------------------------------------------------------------------
-- Checkpoints
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.projection_checkpoints (
    projection         text        NOT NULL,
    -- A new version of a projection starts from the beginning of the log with checkpoints of its own
    -- (a rebuild into new tables), while the old version keeps running.
    projection_version integer     NOT NULL,
    partition          smallint    NOT NULL,
    -- The cursor of the last event processed (applied or parked); (0, 0) is before the first event.
    transaction_id     xid8        NOT NULL,
    global_position    bigint      NOT NULL,
    -- Events processed (applied or parked) since the checkpoint was created: a counter for metrics.
    processed          bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (projection, projection_version, partition),
    CONSTRAINT projection_checkpoints_partition_check CHECK (partition >= 0 AND partition < 64),
    CONSTRAINT projection_checkpoints_version_check CHECK (projection_version >= 1),
    CONSTRAINT projection_checkpoints_projection_check CHECK (projection ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    CONSTRAINT projection_checkpoints_position_check CHECK (global_position >= 0)
);

COMMENT ON TABLE userstore.projection_checkpoints IS
    'Log cursor per (projection, version, partition), advanced by compare-and-set in the batch transaction.';

-- ---------------------------------------------------------------------------------------------------
-- Dead letters
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.projection_dead_letters (
    tenant_id          uuid        NOT NULL,
    projection         text        NOT NULL,
    projection_version integer     NOT NULL,
    -- The tenant's partition of the log (eventstore.PartitionOf), for the projector's retry scan.
    partition          smallint    NOT NULL,
    -- The event: its cursor in the log's order, its id and type (the log holds the rest).
    transaction_id     xid8        NOT NULL,
    global_position    bigint      NOT NULL,
    event_id           uuid        NOT NULL,
    event_type         text        NOT NULL,
    -- parked: not applied (the first parked event of a tenant failed; every later one of the tenant
    -- waits behind it, to keep the tenant's order); retried: applied later, by the projector's automatic
    -- retry or an operator's Retry; skipped: never to be applied, by an operator's Skip.
    status             text        NOT NULL DEFAULT 'parked',
    -- Why the event failed: the projection's error, redacted (SQLSTATE and constraint of a database
    -- error, never its message or detail). NULL for an event parked behind an earlier one.
    error              text,
    -- Failed attempts to apply the event (the first one included).
    attempts           integer     NOT NULL DEFAULT 0,
    -- When the projector retries the tenant's first parked event on its own; NULL: not automatically
    -- (parked behind an earlier event, out of automatic attempts, or resolved).
    next_attempt_at    timestamptz,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- When and by whom (the operator's name, or 'projector' for an automatic retry) it was resolved.
    resolved_at        timestamptz,
    resolved_by        text,
    CONSTRAINT projection_dead_letters_pkey
        PRIMARY KEY (tenant_id, projection, projection_version, transaction_id, global_position),
    CONSTRAINT projection_dead_letters_event_key UNIQUE (tenant_id, projection, projection_version, event_id),
    CONSTRAINT projection_dead_letters_status_check CHECK (status IN ('parked', 'retried', 'skipped')),
    CONSTRAINT projection_dead_letters_partition_check CHECK (partition >= 0 AND partition < 64),
    CONSTRAINT projection_dead_letters_attempts_check CHECK (attempts >= 0),
    CONSTRAINT projection_dead_letters_resolved_check CHECK ((status = 'parked') = (resolved_at IS NULL)),
    CONSTRAINT projection_dead_letters_error_check CHECK (octet_length(error) <= 2048)
);

COMMENT ON TABLE userstore.projection_dead_letters IS
    'Events a projection could not apply, parked per (projection, tenant) in log order; retried or skipped.';

-- The batch's question "which of these tenants have parked events?" and a tenant's parked events in
-- log order (Retry, Skip). Partial: resolved rows are history and stay out of the hot index.
CREATE INDEX projection_dead_letters_parked_idx
    ON userstore.projection_dead_letters (tenant_id, projection, projection_version, transaction_id, global_position)
    WHERE status = 'parked';

-- The projector's scan of one partition for parked events that are due for an automatic retry. The one
-- index here that does not lead with tenant_id: the projector asks per partition, across tenants, and
-- the partial index holds only the few parked rows.
CREATE INDEX projection_dead_letters_due_idx
    ON userstore.projection_dead_letters (projection, projection_version, partition, next_attempt_at)
    WHERE status = 'parked';

-- ---------------------------------------------------------------------------------------------------
-- Audit records
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.audit_records (
    tenant_id      uuid        NOT NULL,
    -- 1, 2, 3, … per tenant without gaps, in the log's order of the tenant's events.
    sequence       bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    -- The event's global position and transaction id in the log.
    position       bigint      NOT NULL,
    transaction_id xid8        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_type     text        NOT NULL,
    actor_id       text        NOT NULL,
    action         text        NOT NULL,
    target_type    text        NOT NULL,
    target_id      uuid        NOT NULL,
    request_id     text        NOT NULL,
    outcome        text        NOT NULL,
    -- Lower-case hex SHA-256; prev_hash of sequence 1 is 64 zeros (domain.AuditGenesisHash).
    prev_hash      text        NOT NULL,
    hash           text        NOT NULL,
    -- When the projector wrote the record (not part of the hash): for lag measurements.
    projected_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The previous record's sequence, NULL for the first: with the foreign key below, the database
    -- itself refuses a gap in a tenant's sequence.
    prev_sequence  bigint      GENERATED ALWAYS AS (NULLIF(sequence - 1, 0)) STORED,
    CONSTRAINT audit_records_pkey PRIMARY KEY (tenant_id, sequence),
    -- One record per event: the projector's exactly-once guard in the table itself. Event ids are
    -- unique in the log, so this is as strict as a unique event_id, and the index leads with the tenant.
    CONSTRAINT audit_records_event_key UNIQUE (tenant_id, event_id),
    CONSTRAINT audit_records_prev_fkey FOREIGN KEY (tenant_id, prev_sequence)
        REFERENCES userstore.audit_records (tenant_id, sequence),
    CONSTRAINT audit_records_sequence_check CHECK (sequence >= 1),
    CONSTRAINT audit_records_hash_check CHECK (hash ~ '^[0-9a-f]{64}$' AND prev_hash ~ '^[0-9a-f]{64}$')
);

COMMENT ON TABLE userstore.audit_records IS
    'Audit trail per tenant: gapless sequence and hash chain, projected from the event log.';

-- ListAuditRecords filters (userstore.ListAuditParams), each in sequence order within the tenant.
CREATE INDEX audit_records_actor_idx ON userstore.audit_records (tenant_id, actor_type, actor_id, sequence);
CREATE INDEX audit_records_target_idx ON userstore.audit_records (tenant_id, target_type, target_id, sequence);
CREATE INDEX audit_records_action_idx ON userstore.audit_records (tenant_id, action, sequence);
CREATE INDEX audit_records_time_idx ON userstore.audit_records (tenant_id, occurred_at, sequence);

-- ---------------------------------------------------------------------------------------------------
-- Row-level security (DESIGN §7): enabled and forced on the tables that carry tenant_id.
-- ---------------------------------------------------------------------------------------------------

ALTER TABLE userstore.audit_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.audit_records FORCE ROW LEVEL SECURITY;
-- The app role reads its tenant's trail and never writes it.
CREATE POLICY audit_records_app_select ON userstore.audit_records FOR SELECT TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
-- The projector reads and appends every tenant's trail (no BYPASSRLS).
CREATE POLICY audit_records_projector_select ON userstore.audit_records FOR SELECT TO userstore_projector
    USING (true);
CREATE POLICY audit_records_projector_insert ON userstore.audit_records FOR INSERT TO userstore_projector
    WITH CHECK (true);

-- Dead letters are the projector's and its operators' (who run as the projector role): no app access.
ALTER TABLE userstore.projection_dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.projection_dead_letters FORCE ROW LEVEL SECURITY;
CREATE POLICY projection_dead_letters_projector ON userstore.projection_dead_letters FOR ALL TO userstore_projector
    USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------------------
-- Privileges. Audit records are append-only for every runtime role: nobody but the owner may change or
-- delete one (and the hash chain shows it if the owner does).
-- ---------------------------------------------------------------------------------------------------

GRANT SELECT ON userstore.audit_records TO userstore_app;
GRANT SELECT ON userstore.audit_records TO userstore_projector;
GRANT INSERT (tenant_id, sequence, event_id, position, transaction_id, occurred_at, actor_type, actor_id,
              action, target_type, target_id, request_id, outcome, prev_hash, hash)
    ON userstore.audit_records TO userstore_projector;
GRANT SELECT, INSERT, UPDATE ON userstore.projection_dead_letters TO userstore_projector;
GRANT SELECT, INSERT, UPDATE ON userstore.projection_checkpoints TO userstore_projector;
