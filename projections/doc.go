// Package projections is the projector runtime of userstore (DESIGN §5, docs/adr/0006): it keeps
// asynchronous projections of the event log — the audit trail (package projections/audit), later the
// outbox relay and heavy read models — up to date, exactly once, on any number of processes.
//
// # Projections
//
// A [Projection] has a name, a version and an Apply that turns one event into rows of its tables inside
// a transaction the runtime gives it. A projection that caches within a batch, or acts once per batch (an
// outbox relay publishing in the batch transaction), also implements [Batcher].
//
// # Partitions, batches, checkpoints
//
// The log's partition column (eventstore.PartitionOf: one partition holds all of a tenant's events) is
// the unit of work: each (projection, partition) has a checkpoint, the log cursor (transaction id,
// global position) up to which it is processed. One batch is one short READ COMMITTED transaction:
//
//	pg_try_advisory_xact_lock(projection, partition)   — held elsewhere: leave the partition to it
//	read the checkpoint
//	read the partition's next events after it, below the log's horizon (eventstore.Store.ReadAllTx)
//	apply each event (each in a savepoint)
//	compare-and-set the checkpoint to the last event read
//	COMMIT
//
// The projected rows and the checkpoint commit together, so every event is applied exactly once however
// a process or its connection dies. The lock is transaction-scoped: it cannot leak into a pool, and it
// is gone the moment a dead process's transaction aborts. Several [Runner]s on one database — in one
// process or many — share the partitions without a leader, a lease table or session state.
//
// # Polling
//
// [Runner.Run] polls: one statement per projection finds the partitions with work, Config.Workers
// goroutines process them. The wait between polls adapts (Config.PollIntervalMin doubling up to
// Config.PollIntervalMax while nothing is found); [Runner.Notify] cuts it short after a local commit.
// The write path sends no NOTIFY. [Runner.CatchUp] processes every event committed before the call and
// returns: tests and demos wait with it.
//
// # Dead letters
//
// An event whose Apply fails is parked in userstore.projection_dead_letters for its (projection,
// tenant), with its error (redacted: a database error is its SQLSTATE and constraint), and every later
// event of that tenant parks behind it, so a tenant's events are applied in order; other tenants' events
// flow on and the checkpoint advances. Parked events are retried automatically with backoff
// (Config.RetryBackoffMin doubling up to Config.RetryBackoffMax, Config.RetryAttempts attempts), then
// wait for an operator: [Runner.DeadLetters] lists them, [Runner.Retry] applies a tenant's parked events
// now, [Runner.Skip] records that one is never to be applied and retries the rest. A transient error (a
// lost connection, a cancelled context, a serialization failure) parks nothing: the whole batch is
// rolled back and tried again.
//
// # Lag
//
// [Runner.Status] reports per projection and partition the checkpoint, the events behind, the age of the
// oldest unprocessed event and the parked dead letters: the projector's metrics.
//
// # Roles
//
// The runtime connects as the projector role (userstore_projector), which reads every tenant's events
// and writes the projections' tables and the runtime's own (migrations/sql/00005_projections.sql). No
// statement keeps session state, so it works through PgBouncer in transaction mode.
package projections
