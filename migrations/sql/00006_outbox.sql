-- +goose Up
-- The outbox relay (DESIGN §6; projections/outbox): the outbox projection publishes every event's public
-- integration event (domain.Outbox) as a watermill message into a watermill-sql topic table, inside its
-- batch transaction, so the rows and the relay's checkpoint commit together (an exactly-once handoff).
--
-- The table is the one watermill-sql v4's DefaultPostgreSQLSchema creates for the topic
-- "userstore.events" (its SchemaInitializingQueries, column for column), placed in the schema userstore:
-- the relay's publisher runs with AutoInitializeSchema off (it publishes on a transaction) and names the
-- table "userstore"."watermill_<topic>" (outbox.SchemaAdapter). Another topic needs a table of its own,
-- created the same way by a migration.
--
-- No tenant_id column (the tenant is in the message metadata), so no row-level security: the table is
-- the projector's and its consumers', never the app role's.

CREATE TABLE userstore."watermill_userstore.events" (
    "offset"         BIGSERIAL,
    "uuid"           VARCHAR(36) NOT NULL,
    "created_at"     TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload"        JSON                 DEFAULT NULL,
    "metadata"       JSON                 DEFAULT NULL,
    "transaction_id" xid8        NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);

COMMENT ON TABLE userstore."watermill_userstore.events" IS
    'watermill-sql v4 topic table of the outbox relay (topic userstore.events): public integration events.';

-- The relay inserts (its publisher) and reads (tests, operators); a watermill-sql subscriber running as
-- the projector role reads it too. The BIGSERIAL's sequence numbers the rows.
GRANT SELECT, INSERT ON userstore."watermill_userstore.events" TO userstore_projector;
GRANT USAGE, SELECT ON SEQUENCE userstore."watermill_userstore.events_offset_seq" TO userstore_projector;
