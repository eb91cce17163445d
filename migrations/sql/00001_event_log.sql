-- +goose Up
-- The event log (DESIGN §3, docs/adr/0002): one append-only table for every tenant and every stream.
-- Forward-only: there is no Down migration; the log is never dropped by a migration.
--
-- Roles (created by the provider, see migrations/doc.go): userstore_app (the library's runtime role)
-- and userstore_projector (reads every tenant). The role that runs this migration owns the objects.

CREATE TABLE userstore.events (
    -- Unique and increasing, NOT dense: a rolled-back append leaves a gap. Order and cursor use
    -- (transaction_id, global_position), never global_position alone.
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id       uuid        NOT NULL,
    stream_type     text        NOT NULL,
    stream_id       uuid        NOT NULL,
    stream_version  bigint      NOT NULL,
    partition       smallint    NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    event_version   smallint    NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    -- For humans and as-of queries, never for ordering.
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),

    CONSTRAINT events_pkey PRIMARY KEY (global_position),
    -- The optimistic-concurrency guard: eventstore maps a violation of this constraint, by name, to
    -- a version conflict. It also serves ReadStream (tenant, stream, version range).
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_check CHECK (stream_version >= 1),
    CONSTRAINT events_partition_check CHECK (partition >= 0 AND partition < 64),
    CONSTRAINT events_stream_type_check CHECK (stream_type ~ '^[a-z0-9_.-]{1,64}$'),
    CONSTRAINT events_event_type_check CHECK (octet_length(event_type) BETWEEN 1 AND 128),
    CONSTRAINT events_event_version_check CHECK (event_version >= 1),
    CONSTRAINT events_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

COMMENT ON TABLE userstore.events IS
    'Append-only event log (userstore eventstore). Ordered by (transaction_id, global_position).';

-- ReadAll / Follow over the whole log (projector role). Readers filter
-- transaction_id < pg_snapshot_xmin(pg_current_snapshot()) and resume after a cursor with the row
-- comparison (transaction_id, global_position) > ($xid, $pos): both are range conditions on this index.
CREATE INDEX events_log_order_idx ON userstore.events (transaction_id, global_position);

-- ReadAll / Follow of one partition (the projector's unit of scale-out).
CREATE INDEX events_partition_order_idx ON userstore.events (partition, transaction_id, global_position);

-- ReadAll / Follow of one tenant (app role under RLS, replay of a tenant).
CREATE INDEX events_tenant_order_idx ON userstore.events (tenant_id, transaction_id, global_position);

-- Append-only, enforced for every role including the owner: a statement-level trigger rejects UPDATE,
-- DELETE and TRUNCATE before any row is touched (even when no row would match).
-- +goose StatementBegin
CREATE FUNCTION userstore.events_reject_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $fn$
BEGIN
    RAISE EXCEPTION 'userstore.events is append-only: % is not allowed', tg_op
        USING ERRCODE = 'restrict_violation';
END
$fn$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION userstore.events_reject_change() FROM PUBLIC;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON userstore.events
    FOR EACH STATEMENT EXECUTE FUNCTION userstore.events_reject_change();

-- Tenant isolation (DESIGN §7). FORCE applies the policies to the table owner too (it has none, so it
-- sees no row). The tenant is set per transaction with set_config('userstore.tenant_id', $1, true).
ALTER TABLE userstore.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.events FORCE ROW LEVEL SECURITY;

CREATE POLICY events_app_select ON userstore.events
    FOR SELECT TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);

CREATE POLICY events_app_insert ON userstore.events
    FOR INSERT TO userstore_app
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);

-- The projector follows the whole log: it reads every tenant, without BYPASSRLS.
CREATE POLICY events_projector_select ON userstore.events
    FOR SELECT TO userstore_projector
    USING (true);

-- Privileges: the app role may only read and append; the projector may only read. The app role's
-- INSERT excludes transaction_id and recorded_at: they always take their defaults, so no role but the
-- owner can forge a transaction id (and with it a place in the log's order) or a timestamp.
-- global_position is GENERATED ALWAYS.
GRANT USAGE ON SCHEMA userstore TO userstore_app, userstore_projector;
GRANT SELECT ON userstore.events TO userstore_app;
GRANT INSERT (tenant_id, stream_type, stream_id, stream_version, partition,
              event_id, event_type, event_version, payload, metadata)
    ON userstore.events TO userstore_app;
GRANT SELECT ON userstore.events TO userstore_projector;
-- Both may read the schema version (readiness: refuse to serve against an unexpected schema).
GRANT SELECT ON userstore.goose_db_version TO userstore_app, userstore_projector;
