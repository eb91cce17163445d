package pgstore

import "github.com/netkingdom/userstore/projections/readmodel"

// All SQL of the package (the event log's statements are eventstore's). Every statement is
// schema-qualified, binds parameters only, casts each one explicitly and keeps no session state — the
// tenant is set per transaction with set_config(…, true) — so it runs the same in every pgx query exec
// mode, QueryExecModeExec behind PgBouncer in transaction mode included. Every statement also filters
// by tenant_id itself (defence in depth: row-level security would hide other tenants' rows anyway).

// --- transactions ------------------------------------------------------------------------------------

// sqlBeginWrite opens a mutation's transaction; it is sent in one batch with sqlSetTxLocals and the
// operation's planned reads (docs/adr/0010). The snapshot is taken by sqlSetTxLocals, the batch's first
// statement after BEGIN, so every read of the batch sees the same committed state.
const sqlBeginWrite = `BEGIN ISOLATION LEVEL REPEATABLE READ`

// sqlSetTxLocals scopes a mutation's transaction to its tenant and makes its commit wait for the WAL
// flush; both are transaction-local (is_local = true), never a session SET.
const sqlSetTxLocals = `SELECT set_config('userstore.tenant_id', $1::text, true),
       set_config('synchronous_commit', 'on', true)`

// sqlBeginRead opens the short transaction of a query. A query's statements are sent in one pipelined
// round trip (BEGIN, set_config, the statements, COMMIT), and read one snapshot.
const sqlBeginRead = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`

const sqlSetTenant = `SELECT set_config('userstore.tenant_id', $1::text, true)`

// sqlSetTenantBySlug scopes a query to the tenant that holds a slug, resolved by the SECURITY DEFINER
// function (the app role cannot read userstore.tenant_slugs); an unknown slug scopes it to no tenant.
const sqlSetTenantBySlug = `SELECT set_config('userstore.tenant_id', coalesce(userstore.resolve_tenant_slug($1::text)::text, ''), true)`

const sqlCommit = `COMMIT`

const sqlRollback = `ROLLBACK`

// --- idempotency -------------------------------------------------------------------------------------

// sqlIdempotencyFind returns the committed record of a key in the transaction's snapshot. Records are
// written with their result in the transaction of their mutation, so a committed record always has one.
const sqlIdempotencyFind = `
SELECT k.operation, k.request_hash, coalesce(k.result::text, 'null')
  FROM userstore.idempotency_keys AS k
 WHERE k.tenant_id = $1::uuid AND k.key = $2::text`

// sqlIdempotencyInsert records a key with its result; it is the first write of the mutation's last
// batch (docs/adr/0010). A concurrent transaction that inserted the same key makes it wait; if that one
// commits, this fails with 23505 on idempotency_keys_pkey before any claim of this batch is tried, and
// the mutation is re-run and finds the winner's record.
const sqlIdempotencyInsert = `
INSERT INTO userstore.idempotency_keys (tenant_id, key, operation, request_hash, result)
VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::jsonb)`

// sqlIdempotencyReserve reserves a key (a row without a result) ahead of a claim that must be sent
// before the mutation's result is known; sqlIdempotencySave then records the result on it. Only
// mutations that send writes before their last batch need it (docs/adr/0010).
const sqlIdempotencyReserve = `
INSERT INTO userstore.idempotency_keys (tenant_id, key, operation, request_hash)
VALUES ($1::uuid, $2::text, $3::text, $4::text)`

// sqlIdempotencySave records the result on the transaction's reservation.
const sqlIdempotencySave = `
UPDATE userstore.idempotency_keys AS k
   SET result = $3::jsonb
 WHERE k.tenant_id = $1::uuid AND k.key = $2::text AND k.result IS NULL`

// --- claims ------------------------------------------------------------------------------------------

// sqlClaim returns the owner of a claim, taking it for $4/$5 when nobody holds it. A concurrent
// transaction that inserted the same claim makes the insert wait for it; if it commits, the insert
// fails with 23505 on claims_pkey: a duplicate, whatever our snapshot saw.
const sqlClaim = `
WITH cur AS (
    SELECT c.owner_type, c.owner_id
      FROM userstore.claims AS c
     WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text
), ins AS (
    INSERT INTO userstore.claims (tenant_id, kind, value, owner_type, owner_id)
    SELECT $1::uuid, $2::text, $3::text, $4::text, $5::uuid
     WHERE NOT EXISTS (SELECT 1 FROM cur)
    RETURNING owner_type, owner_id
)
SELECT cur.owner_type, cur.owner_id FROM cur
UNION ALL
SELECT ins.owner_type, ins.owner_id FROM ins`

// sqlRelease releases a claim its owner holds; a claim held by another stream is left alone.
const sqlRelease = `
DELETE FROM userstore.claims AS c
 WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text
   AND c.owner_type = $4::text AND c.owner_id = $5::uuid`

// sqlClaimSlug claims a tenant slug (platform-wide) for the transaction's tenant and returns its holder.
const sqlClaimSlug = `SELECT userstore.claim_tenant_slug($1::text, $2::uuid)`

const sqlReleaseSlug = `SELECT userstore.release_tenant_slug($1::text, $2::uuid)`

// --- guards (docs/adr/0004, docs/adr/0010) ---------------------------------------------------------

// Each guard statement returns the guarded read row's version (no row: the row does not exist); the
// unit of work compares it with the version the command decided on. Guards are queued and sent with the
// writes, so a guard costs no round trip of its own.

// sqlGuardTenant and sqlGuardCatalog share-lock the guarded read row. Under REPEATABLE READ a row another
// transaction changed after our snapshot fails with 40001; one changed concurrently makes us wait, then
// fail with 40001 if it committed. A transaction that changes the row after us waits for our commit and
// then proceeds: we serialize before it, which is valid because neither tenant commands nor attribute
// deprecations read what the guarded command writes.
const sqlGuardTenant = `
SELECT t.version FROM userstore.tenants AS t
 WHERE t.tenant_id = $1::uuid
   FOR SHARE`

const sqlGuardCatalog = `
SELECT c.version FROM userstore.catalogs AS c
 WHERE c.tenant_id = $1::uuid AND c.id = $2::uuid
   FOR SHARE`

// sqlLockTenant and sqlLockCatalog lock the read row of a tenant (catalog) the transaction is about to
// write, first in its batch, so that its transaction id is assigned only once the guards that share-lock
// the row have committed (docs/adr/0010). FOR NO KEY UPDATE is the lock the row's update takes anyway.
const sqlLockTenant = `
SELECT 1 FROM userstore.tenants AS t
 WHERE t.tenant_id = $1::uuid
   FOR NO KEY UPDATE`

const sqlLockCatalog = `
SELECT 1 FROM userstore.catalogs AS c
 WHERE c.tenant_id = $1::uuid AND c.id = $2::uuid
   FOR NO KEY UPDATE`

// sqlGuardUser and sqlGuardApplication write the guarded read row (guard_seq + 1). A lock is not enough
// here: DeleteUser (DeleteApplication) reads the dependents with its snapshot and then writes the user
// (application) row; PostgreSQL fails that write with 40001 only if a concurrent committed transaction
// modified the row, not if it merely locked it. With a real write the two transactions conflict in
// either order: one of them is re-run and sees the other. Under REPEATABLE READ the row written is the
// one of our snapshot (a later committed version fails the statement with 40001), so the version
// returned is the snapshot's.
const sqlGuardUser = `
UPDATE userstore.users AS u SET guard_seq = u.guard_seq + 1
 WHERE u.tenant_id = $1::uuid AND u.id = $2::uuid
RETURNING u.version`

const sqlGuardApplication = `
UPDATE userstore.applications AS a SET guard_seq = a.guard_seq + 1
 WHERE a.tenant_id = $1::uuid AND a.id = $2::uuid
RETURNING a.version`

// --- cascades ----------------------------------------------------------------------------------------

// sqlUserDependents lists what DeleteUser cascades to: open accounts, linked identities, bindings and
// the catalogs in which the user has values.
const sqlUserDependents = `
SELECT 'account', a.id FROM userstore.accounts AS a
 WHERE a.tenant_id = $1::uuid AND a.user_id = $2::uuid AND a.status <> 'closed'
UNION ALL
SELECT 'identity', i.id FROM userstore.external_identities AS i
 WHERE i.tenant_id = $1::uuid AND i.user_id = $2::uuid
UNION ALL
SELECT 'binding', b.id FROM userstore.bindings AS b
 WHERE b.tenant_id = $1::uuid AND b.user_id = $2::uuid
UNION ALL
SELECT 'catalog', p.catalog_id FROM userstore.profiles AS p
 WHERE p.tenant_id = $1::uuid AND p.user_id = $2::uuid AND p.profile_values <> '{}'::jsonb`

const sqlApplicationBindings = `
SELECT b.id FROM userstore.bindings AS b
 WHERE b.tenant_id = $1::uuid AND b.application_id = $2::uuid
 ORDER BY b.id`

// --- read model queries ---
//
// The read model's writes are readmodel.Writer's (projections/readmodel); the select lists below and
// their scan functions are readmodel's too.---------------------------------------------------------------------------
//
// Lists are keyset-paged by id: "id > $after ORDER BY id LIMIT n+1" on an index that leads with
// (tenant_id[, parent or filter]) and ends with the id, so a page costs an index range scan of n+1 rows
// whatever the depth. uuid.Nil (the smallest uuid, never an entity id) starts at the beginning. uuid
// order is byte order, the order of Go's bytes.Compare on the ids.

const tenantColumns = readmodel.TenantColumns

const sqlGetTenant = `SELECT ` + tenantColumns + ` FROM userstore.tenants AS t WHERE t.tenant_id = $1::uuid`

// sqlGetTenantBySlugInTenant reads the caller's own tenant if it holds the slug: with a tenant in the
// context, the query stays scoped to it and never reads another tenant's row.
const sqlGetTenantBySlugInTenant = `SELECT ` + tenantColumns + ` FROM userstore.tenants AS t
 WHERE t.tenant_id = $1::uuid AND t.tenant_id = userstore.resolve_tenant_slug($2::text)`

// sqlGetTenantScoped reads the tenant the transaction is scoped to (after sqlSetTenantBySlug).
const sqlGetTenantScoped = `SELECT ` + tenantColumns + ` FROM userstore.tenants AS t
 WHERE t.tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid`

const userColumns = readmodel.UserColumns

const sqlUserExists = `SELECT EXISTS (SELECT 1 FROM userstore.users AS u WHERE u.tenant_id = $1::uuid AND u.id = $2::uuid)`

const sqlGetUser = `SELECT ` + userColumns + ` FROM userstore.users AS u WHERE u.tenant_id = $1::uuid AND u.id = $2::uuid`

// sqlGetUserByClaim finds a user through the owner of an email claim (claims_pkey).
const sqlGetUserByClaim = `
SELECT ` + userColumns + `
  FROM userstore.claims AS c
  JOIN userstore.users AS u ON u.tenant_id = c.tenant_id AND u.id = c.owner_id
 WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text`

// sqlGetUserByIdentity finds the user of the identity that holds an external_identity claim.
const sqlGetUserByIdentity = `
SELECT ` + userColumns + `
  FROM userstore.claims AS c
  JOIN userstore.external_identities AS i ON i.tenant_id = c.tenant_id AND i.id = c.owner_id
  JOIN userstore.users AS u ON u.tenant_id = i.tenant_id AND u.id = i.user_id
 WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text`

// sqlListUsers lists active and disabled users (PK range scan, deleted ones filtered out);
// sqlListUsersByStatus one status (users_status_idx).
const sqlListUsers = `
SELECT ` + userColumns + ` FROM userstore.users AS u
 WHERE u.tenant_id = $1::uuid AND u.id > $2::uuid AND u.status <> 'deleted'
 ORDER BY u.id LIMIT $3::bigint`

const sqlListUsersByStatus = `
SELECT ` + userColumns + ` FROM userstore.users AS u
 WHERE u.tenant_id = $1::uuid AND u.status = $4::text AND u.id > $2::uuid
 ORDER BY u.id LIMIT $3::bigint`

const accountColumns = readmodel.AccountColumns

const sqlGetAccount = `SELECT ` + accountColumns + ` FROM userstore.accounts AS a WHERE a.tenant_id = $1::uuid AND a.id = $2::uuid`

const sqlGetAccountByClaim = `
SELECT ` + accountColumns + `
  FROM userstore.claims AS c
  JOIN userstore.accounts AS a ON a.tenant_id = c.tenant_id AND a.id = c.owner_id
 WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text`

// sqlListAccounts uses accounts_user_idx.
const sqlListAccounts = `
SELECT ` + accountColumns + ` FROM userstore.accounts AS a
 WHERE a.tenant_id = $1::uuid AND a.user_id = $4::uuid AND a.id > $2::uuid
 ORDER BY a.id LIMIT $3::bigint`

const identityColumns = readmodel.IdentityColumns

// sqlListIdentities uses external_identities_user_idx.
const sqlListIdentities = `
SELECT ` + identityColumns + ` FROM userstore.external_identities AS i
 WHERE i.tenant_id = $1::uuid AND i.user_id = $4::uuid AND i.id > $2::uuid
 ORDER BY i.id LIMIT $3::bigint`

const applicationColumns = readmodel.ApplicationColumns

const sqlApplicationExists = `SELECT EXISTS (SELECT 1 FROM userstore.applications AS a WHERE a.tenant_id = $1::uuid AND a.id = $2::uuid)`

const sqlGetApplication = `SELECT ` + applicationColumns + ` FROM userstore.applications AS a WHERE a.tenant_id = $1::uuid AND a.id = $2::uuid`

const sqlGetApplicationByClaim = `
SELECT ` + applicationColumns + `
  FROM userstore.claims AS c
  JOIN userstore.applications AS a ON a.tenant_id = c.tenant_id AND a.id = c.owner_id
 WHERE c.tenant_id = $1::uuid AND c.kind = $2::text AND c.value = $3::text`

const sqlListApplications = `
SELECT ` + applicationColumns + ` FROM userstore.applications AS a
 WHERE a.tenant_id = $1::uuid AND a.id > $2::uuid AND a.status <> 'deleted'
 ORDER BY a.id LIMIT $3::bigint`

const sqlListApplicationsByStatus = `
SELECT ` + applicationColumns + ` FROM userstore.applications AS a
 WHERE a.tenant_id = $1::uuid AND a.status = $4::text AND a.id > $2::uuid
 ORDER BY a.id LIMIT $3::bigint`

const bindingColumns = readmodel.BindingColumns

const sqlGetBinding = `SELECT ` + bindingColumns + ` FROM userstore.bindings AS b WHERE b.tenant_id = $1::uuid AND b.id = $2::uuid`

// sqlListBindingsByUser uses bindings_user_idx; sqlListBindingsByApplication bindings_application_idx.
const sqlListBindingsByUser = `
SELECT ` + bindingColumns + ` FROM userstore.bindings AS b
 WHERE b.tenant_id = $1::uuid AND b.user_id = $4::uuid AND b.id > $2::uuid
 ORDER BY b.id LIMIT $3::bigint`

const sqlListBindingsByApplication = `
SELECT ` + bindingColumns + ` FROM userstore.bindings AS b
 WHERE b.tenant_id = $1::uuid AND b.application_id = $4::uuid AND b.id > $2::uuid
 ORDER BY b.id LIMIT $3::bigint`

const catalogColumns = readmodel.CatalogColumns

const sqlCatalogExists = `SELECT EXISTS (SELECT 1 FROM userstore.catalogs AS c WHERE c.tenant_id = $1::uuid AND c.id = $2::uuid)`

const sqlGetCatalog = `SELECT ` + catalogColumns + ` FROM userstore.catalogs AS c WHERE c.tenant_id = $1::uuid AND c.id = $2::uuid`

const sqlListCatalogs = `
SELECT ` + catalogColumns + ` FROM userstore.catalogs AS c
 WHERE c.tenant_id = $1::uuid AND c.id > $2::uuid
 ORDER BY c.id LIMIT $3::bigint`

const sqlGetProfile = `
SELECT ` + readmodel.ProfileColumns + ` FROM userstore.profiles AS p
 WHERE p.tenant_id = $1::uuid AND p.user_id = $2::uuid AND p.catalog_id = $3::uuid`

const membershipColumns = readmodel.MembershipColumns

const sqlGetMembership = `SELECT ` + membershipColumns + ` FROM userstore.memberships AS m WHERE m.tenant_id = $1::uuid AND m.user_id = $2::uuid`

const sqlListMembers = `
SELECT ` + membershipColumns + ` FROM userstore.memberships AS m
 WHERE m.tenant_id = $1::uuid AND m.user_id > $2::uuid
 ORDER BY m.user_id LIMIT $3::bigint`

const sqlListMembersByRole = `
SELECT ` + membershipColumns + ` FROM userstore.memberships AS m
 WHERE m.tenant_id = $1::uuid AND m.role = $4::text AND m.user_id > $2::uuid
 ORDER BY m.user_id LIMIT $3::bigint`

// --- trail -------------------------------------------------------------------------------------------

// sqlSnapshotXmax is the first transaction id not yet assigned when the statement's snapshot was taken:
// every transaction begun before has a smaller one.
const sqlSnapshotXmax = `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`

// sqlHorizonPassed reports whether every transaction id below $1 has ended, i.e. the log's read
// horizon (eventstore) has reached $1.
const sqlHorizonPassed = `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8`

// --- readiness ---------------------------------------------------------------------------------------

// sqlReadyRole reads the facts about the session that readiness checks.
const sqlReadyRole = `
SELECT current_setting('server_version_num')::int,
       current_setting('synchronous_commit'),
       r.rolsuper, r.rolbypassrls
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = current_user`

// sqlReadyTables lists every table of schema userstore that has a tenant_id column, with its row-level
// security flags, whether the current role owns it (directly or through membership), whether it may
// read it, and whether a policy applies to it (PUBLIC, or a role it is a member of).
const sqlReadyTables = `
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER') AS owned,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS readable,
       EXISTS (SELECT 1 FROM pg_catalog.pg_policy AS p
                WHERE p.polrelid = c.oid
                  AND EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(roleid)
                               WHERE pr.roleid = 0 OR pg_catalog.pg_has_role(current_user, pr.roleid, 'MEMBER'))) AS has_policy
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = 'userstore' AND c.relkind IN ('r', 'p')
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)
 ORDER BY c.relname`
