// Package outbox is the outbox relay (DESIGN §6): a projection of the event log that turns every event
// into its public integration event (domain.Outbox of the event decoded with internal/logcodec) and
// publishes it as a watermill message into a watermill-sql v4 topic table — the default sink.
//
// The messages of a batch are published by Flush, on the batch transaction itself (a watermill-sql
// Publisher whose database handle is that pgx.Tx), before the runtime advances the relay's checkpoint in
// the same transaction: the rows in the topic table and the checkpoint commit together or not at all,
// so every event is handed off exactly once, whatever happens to the process or its connection.
//
// A message is:
//
//	UUID      the event id (consumers dedupe by it)
//	Payload   the public event's JSON body (userstore.OutboxEvent.Payload)
//	Metadata  tenant_id, aggregate_type, aggregate_id, aggregate_version, type, position, occurred_at
//
// Order: a tenant's events all live in one partition of the log, and a partition is one batch at a time
// in the log's order, published in that order by one multi-row INSERT (per chunk, in order), so a
// tenant's — and so each stream's — messages are in the topic table in version order (by the table's
// offset within a transaction, and by transaction_id across batches).
//
// The topic table must exist (the publisher never creates it, as it runs on a transaction): migration
// 00006_outbox.sql creates the one of [DefaultTopic], userstore."watermill_userstore.events", with the
// columns of watermill-sql's DefaultPostgreSQLSchema. [SchemaAdapter] is that schema adapter with the
// table placed in the userstore schema; a watermill-sql Subscriber must use it too.
//
//	relay, err := outbox.New(nil)
//	runner, err := projections.New(projectorPool, projectorStore, []projections.Projection{relay}, nil)
//
// An event the domain cannot decode (or has no public form of) is parked as a dead letter of its
// tenant by the runtime, with the tenant's later events behind it, like any projection error of Apply.
package outbox
