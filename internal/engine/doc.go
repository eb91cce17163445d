// Package engine runs the store's mutations, once for all adapters. It owns the order of every
// mutation — resolve the tenant and actor, validate and normalize the input, check the idempotency
// key, check the tenant, load the aggregates, decide with package domain, take and release the
// uniqueness claims, append the events — and does no I/O of its own: the adapter implements the
// UnitOfWork port over its storage and its transaction.
//
// An operation has two phases. Preparing it (Engine.CreateUser, …) needs no I/O: it returns
// ErrTenantRequired, ErrActorRequired or a *userstore.ValidationError before the adapter opens any
// transaction. Running it (Op.Run) happens inside the adapter's unit of work, which commits when Run
// succeeds and rolls back when it fails:
//
//	op, err := s.engine.CreateUser(ctx, params)
//	if err != nil {
//		return nil, err
//	}
//	// begin a transaction scoped to op.TenantID(); retry the whole Run on a serialization failure
//	user, err := op.Run(ctx, uow)
//	// commit, or roll back on error
//
// An adapter that pays per round trip implements Planner as well: Run then first hands it the
// operation's Plan — its idempotency key and the streams it loads before it decides — so that the
// adapter can read them all at once (pgstore: with BEGIN, in one round trip; docs/adr/0010).
//
// Versions are stream versions: an entity's Version is the number of events in its stream; a
// membership's is the roster version of its last change. Every event gets a new UUIDv7 id, and every
// time is UTC at microsecond precision.
package engine
