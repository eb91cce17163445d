// Package migrations holds the versioned SQL of userstore's schema, embedded in the binary, and
// applies it with goose (docs/adr/0001-migrations-goose.md). Every object lives in the PostgreSQL
// schema "userstore"; goose records the applied versions in userstore.goose_db_version.
//
// [Up] applies the pending migrations. It is safe to run from several processes at once: an
// advisory lock serializes the runs and each version is applied exactly once. [Status] reports the
// current, expected (compiled-in) and pending versions without writing anything, so a readiness check
// can refuse to serve against a schema that is older or newer than the build expects.
//
// # Roles
//
// The roles belong to the provider; the migrations need these to exist (they may be NOLOGIN group
// roles that the provider's login roles are members of):
//
//   - the role that runs Up (e.g. userstore_owner) owns the schema and its objects; it needs CREATE
//     on the database unless the schema already exists;
//   - userstore_app, the library's runtime role: owns nothing, NOSUPERUSER, NOBYPASSRLS; gets
//     SELECT and INSERT on the event log, nothing more, and what the store needs on its read tables,
//     claims and idempotency keys (00002), all scoped to one tenant by row-level security; it may
//     read its tenant's audit records and nothing of the projector's bookkeeping (00005);
//   - userstore_projector: reads every tenant (RLS policies, not BYPASSRLS); writes the projector's
//     checkpoints and dead letters and inserts audit records (00005), never updates or deletes them.
//
// Migrations are forward-only: there are no down migrations.
package migrations
