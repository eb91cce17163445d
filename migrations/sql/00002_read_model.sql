-- +goose Up
-- The durable store's tables beside the event log (DESIGN §4, §5, §7; docs/adr/0004):
--
--   * the inline read model — one table per area, each row the View() of an aggregate's state, written
--     in the transaction that appends the aggregate's events (adapter/pgstore);
--   * claims — the uniqueness claims (tenant_id, kind, value) → owner stream, taken and released in the
--     transaction of the events that imply them (domain.Claims);
--   * tenant_slugs — the one platform-wide claim, out of the app role's sight: it reaches it only through
--     three SECURITY DEFINER functions (claim, release, resolve one slug), so it cannot enumerate tenants;
--   * idempotency_keys — per (tenant, key): the operation, the request hash and the result.
--
-- Every table carries tenant_id and every index leads with it (tenant_slugs' primary key on the slug is
-- the one exception: slugs are unique across tenants). Row-level security is enabled and forced on every
-- table; the app role (userstore_app) sees and writes only the rows of the tenant its transaction set
-- with set_config('userstore.tenant_id', $1, true); the projector role (userstore_projector) reads all.
--
-- Constraint names are part of the contract: adapter/pgstore translates SQLSTATE 23505 by constraint name
-- (claims_pkey, tenant_slugs_pkey, tenant_slugs_tenant_key, idempotency_keys_pkey,
-- bindings_application_user_key), never by message text. Forward-only, like every migration here.

-- ---------------------------------------------------------------------------------------------------
-- Read model. Columns mirror the entity types of package userstore; versions are stream versions.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.tenants (
    tenant_id  uuid        NOT NULL,
    slug       text        NOT NULL,
    name       text        NOT NULL,
    status     text        NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'closed')),
    CONSTRAINT tenants_version_check CHECK (version >= 1)
);

CREATE TABLE userstore.users (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL,
    display_name text        NOT NULL,
    -- Empty once the user is deleted (the email claim is released).
    email        text        NOT NULL,
    status       text        NOT NULL,
    version      bigint      NOT NULL,
    -- Bumped by every command that depends on the user without writing its stream (OpenAccount,
    -- LinkIdentity, Bind, AddMember, Set/ClearProfileValues): the guard is a real write, so that it
    -- conflicts with a concurrent DeleteUser in either order (docs/adr/0004).
    guard_seq    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled', 'deleted')),
    CONSTRAINT users_version_check CHECK (version >= 1)
);

-- ListUsers with a status filter (keyset by id within the status).
CREATE INDEX users_status_idx ON userstore.users (tenant_id, status, id);

CREATE TABLE userstore.accounts (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    login_name     text        NOT NULL,
    kind           text        NOT NULL,
    status         text        NOT NULL,
    credential_ref text        NOT NULL,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT accounts_kind_check CHECK (kind IN ('password', 'passkey', 'service')),
    CONSTRAINT accounts_status_check CHECK (status IN ('active', 'locked', 'closed')),
    CONSTRAINT accounts_version_check CHECK (version >= 1)
);

-- ListAccountsByUser (keyset by id) and the open accounts DeleteUser closes.
CREATE INDEX accounts_user_idx ON userstore.accounts (tenant_id, user_id, id);

-- A row exists while the identity is linked; unlinking deletes it.
CREATE TABLE userstore.external_identities (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    issuer     text        NOT NULL,
    subject    text        NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT external_identities_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT external_identities_version_check CHECK (version >= 1)
);

-- ListIdentitiesByUser (keyset by id) and the identities DeleteUser unlinks.
CREATE INDEX external_identities_user_idx ON userstore.external_identities (tenant_id, user_id, id);

CREATE TABLE userstore.applications (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    -- Empty once the application is deleted (the client key claim is released).
    client_key text        NOT NULL,
    kind       text        NOT NULL,
    status     text        NOT NULL,
    version    bigint      NOT NULL,
    -- Bumped by Bind, which depends on the application without writing its stream (see users.guard_seq).
    guard_seq  bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT applications_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT applications_kind_check CHECK (kind IN ('web', 'native', 'service')),
    CONSTRAINT applications_status_check CHECK (status IN ('active', 'disabled', 'deleted')),
    CONSTRAINT applications_version_check CHECK (version >= 1)
);

-- ListApplications with a status filter (keyset by id within the status).
CREATE INDEX applications_status_idx ON userstore.applications (tenant_id, status, id);

-- A row exists while the binding does; unbinding deletes it.
CREATE TABLE userstore.bindings (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    application_id uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    -- A sorted set of role names.
    roles          text[]      NOT NULL,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT bindings_pkey PRIMARY KEY (tenant_id, id),
    -- The binding claim already makes (application, user) unique; this keeps the read model honest.
    CONSTRAINT bindings_application_user_key UNIQUE (tenant_id, application_id, user_id),
    CONSTRAINT bindings_version_check CHECK (version >= 1)
);

-- ListBindingsByUser (keyset by id) and the bindings DeleteUser removes.
CREATE INDEX bindings_user_idx ON userstore.bindings (tenant_id, user_id, id);
-- ListBindingsByApplication (keyset by id) and the bindings DeleteApplication removes.
CREATE INDEX bindings_application_idx ON userstore.bindings (tenant_id, application_id, id);

CREATE TABLE userstore.catalogs (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    -- The attributes in definition order: [{key, type, enum_values, required, pii, max_length,
    -- deprecated}].
    attributes jsonb       NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT catalogs_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT catalogs_attributes_check CHECK (jsonb_typeof(attributes) = 'array'),
    CONSTRAINT catalogs_version_check CHECK (version >= 1)
);

-- One row per (user, catalog) that has a history; a user without one has the empty profile at version 0.
CREATE TABLE userstore.profiles (
    tenant_id      uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    catalog_id     uuid        NOT NULL,
    -- Attribute key → {type, str|int|bool|date}.
    profile_values jsonb       NOT NULL,
    version        bigint      NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- Also serves the catalogs in which DeleteUser clears a user's values.
    CONSTRAINT profiles_pkey PRIMARY KEY (tenant_id, user_id, catalog_id),
    CONSTRAINT profiles_values_check CHECK (jsonb_typeof(profile_values) = 'object'),
    CONSTRAINT profiles_version_check CHECK (version >= 1)
);

-- One row per member; version is the roster version of the membership's last change.
CREATE TABLE userstore.memberships (
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member')),
    CONSTRAINT memberships_version_check CHECK (version >= 1)
);

-- ListMembers with a role filter (keyset by user id within the role).
CREATE INDEX memberships_role_idx ON userstore.memberships (tenant_id, role, user_id);

-- ---------------------------------------------------------------------------------------------------
-- Uniqueness claims (DESIGN §4): (tenant, kind, normalized value) → the stream that holds it. The value
-- may be personal data (an email key): the store never puts it into an error or a log, and translates a
-- violation of claims_pkey by its name only.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.claims (
    tenant_id  uuid NOT NULL,
    kind       text NOT NULL,
    value      text NOT NULL,
    owner_type text NOT NULL,
    owner_id   uuid NOT NULL,
    -- Serves the claim itself and the lookups by value (GetUserByEmail, GetAccountByLogin,
    -- FindUserByIdentity, GetApplicationByClientKey).
    CONSTRAINT claims_pkey PRIMARY KEY (tenant_id, kind, value)
);

-- The platform-wide tenant slug. The app role has no privilege on this table at all; the SECURITY
-- DEFINER functions below are its only way in, one slug at a time, so a compromised app role cannot
-- list the platform's tenants. A closed tenant keeps its slug.
CREATE TABLE userstore.tenant_slugs (
    slug      text NOT NULL,
    tenant_id uuid NOT NULL,
    CONSTRAINT tenant_slugs_pkey PRIMARY KEY (slug),
    -- One slug per tenant; also the tenant-leading index of the table.
    CONSTRAINT tenant_slugs_tenant_key UNIQUE (tenant_id)
);

-- ---------------------------------------------------------------------------------------------------
-- Idempotency keys (DESIGN §4). result is NULL only inside the transaction that reserved the key: the
-- reservation makes a concurrent request with the same key wait on the unique index and then fail with
-- 23505 on idempotency_keys_pkey, after which it is re-run and finds the committed record.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE userstore.idempotency_keys (
    tenant_id    uuid        NOT NULL,
    key          text        NOT NULL,
    operation    text        NOT NULL,
    request_hash text        NOT NULL,
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, key)
);

-- ---------------------------------------------------------------------------------------------------
-- The slug functions. SECURITY DEFINER with a fixed search_path (pg_catalog, then pg_temp last) and
-- schema-qualified names, so that no object of the caller's can stand in for ours.
-- ---------------------------------------------------------------------------------------------------

-- claim_tenant_slug takes a slug for the transaction's own tenant and returns the tenant that holds it
-- afterwards: p_tenant_id when the slug was free (or already its own), another tenant's id otherwise. A
-- concurrent claim of the same slug makes the insert wait and then fail with 23505 on tenant_slugs_pkey.
-- +goose StatementBegin
CREATE FUNCTION userstore.claim_tenant_slug(p_slug text, p_tenant_id uuid) RETURNS uuid
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    holder uuid;
BEGIN
    IF p_tenant_id IS NULL
       OR p_tenant_id IS DISTINCT FROM NULLIF(current_setting('userstore.tenant_id', true), '')::uuid THEN
        RAISE EXCEPTION 'a tenant slug can only be claimed for the tenant of the transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT s.tenant_id INTO holder FROM userstore.tenant_slugs AS s WHERE s.slug = p_slug;
    IF FOUND THEN
        RETURN holder;
    END IF;
    INSERT INTO userstore.tenant_slugs (slug, tenant_id) VALUES (p_slug, p_tenant_id);
    RETURN p_tenant_id;
END
$fn$;
-- +goose StatementEnd

-- release_tenant_slug releases a slug the transaction's own tenant holds; any other slug is left alone.
-- +goose StatementBegin
CREATE FUNCTION userstore.release_tenant_slug(p_slug text, p_tenant_id uuid) RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_tenant_id IS NULL
       OR p_tenant_id IS DISTINCT FROM NULLIF(current_setting('userstore.tenant_id', true), '')::uuid THEN
        RAISE EXCEPTION 'a tenant slug can only be released by the tenant of the transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM userstore.tenant_slugs AS s WHERE s.slug = p_slug AND s.tenant_id = p_tenant_id;
END
$fn$;
-- +goose StatementEnd

-- resolve_tenant_slug returns the tenant that holds one slug, or NULL. It needs no tenant: it is how a
-- caller finds its tenant.
-- +goose StatementBegin
CREATE FUNCTION userstore.resolve_tenant_slug(p_slug text) RETURNS uuid
    LANGUAGE sql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT s.tenant_id FROM userstore.tenant_slugs AS s WHERE s.slug = p_slug
$fn$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION userstore.claim_tenant_slug(text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION userstore.release_tenant_slug(text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION userstore.resolve_tenant_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION userstore.claim_tenant_slug(text, uuid) TO userstore_app;
GRANT EXECUTE ON FUNCTION userstore.release_tenant_slug(text, uuid) TO userstore_app;
GRANT EXECUTE ON FUNCTION userstore.resolve_tenant_slug(text) TO userstore_app;

-- ---------------------------------------------------------------------------------------------------
-- Row-level security (DESIGN §7), enabled and forced on every table. The app role's policy covers every
-- command (USING and WITH CHECK); the projector reads every tenant (no BYPASSRLS).
-- ---------------------------------------------------------------------------------------------------

ALTER TABLE userstore.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_app ON userstore.tenants FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY tenants_projector ON userstore.tenants FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_app ON userstore.users FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY users_projector ON userstore.users FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_app ON userstore.accounts FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY accounts_projector ON userstore.accounts FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.external_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.external_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY external_identities_app ON userstore.external_identities FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY external_identities_projector ON userstore.external_identities FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.applications ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.applications FORCE ROW LEVEL SECURITY;
CREATE POLICY applications_app ON userstore.applications FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY applications_projector ON userstore.applications FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.bindings ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.bindings FORCE ROW LEVEL SECURITY;
CREATE POLICY bindings_app ON userstore.bindings FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY bindings_projector ON userstore.bindings FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.catalogs ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.catalogs FORCE ROW LEVEL SECURITY;
CREATE POLICY catalogs_app ON userstore.catalogs FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY catalogs_projector ON userstore.catalogs FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY profiles_app ON userstore.profiles FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY profiles_projector ON userstore.profiles FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_app ON userstore.memberships FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY memberships_projector ON userstore.memberships FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.claims FORCE ROW LEVEL SECURITY;
CREATE POLICY claims_app ON userstore.claims FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY claims_projector ON userstore.claims FOR SELECT TO userstore_projector USING (true);

ALTER TABLE userstore.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_app ON userstore.idempotency_keys FOR ALL TO userstore_app
    USING (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('userstore.tenant_id', true), '')::uuid);
CREATE POLICY idempotency_keys_projector ON userstore.idempotency_keys FOR SELECT TO userstore_projector USING (true);

-- tenant_slugs: no policy for the app role (which has no privilege on it either). The slug functions run
-- as the role that runs this migration (their owner); FORCE subjects that role to RLS too, so it gets a
-- policy of its own. CURRENT_USER names that role at creation: reassigning the schema's ownership later
-- must recreate this policy.
ALTER TABLE userstore.tenant_slugs ENABLE ROW LEVEL SECURITY;
ALTER TABLE userstore.tenant_slugs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_slugs_definer ON userstore.tenant_slugs FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY tenant_slugs_projector ON userstore.tenant_slugs FOR SELECT TO userstore_projector USING (true);

-- ---------------------------------------------------------------------------------------------------
-- Privileges: exactly what the store's statements need. Rows that never disappear (tenants, users,
-- accounts, applications, catalogs, profiles) are never deleted; claims are never updated; an
-- idempotency record only gets its result once. SELECT … FOR SHARE (the tenant and catalog guards)
-- needs UPDATE on the table, which the upserts need anyway. The log stays SELECT/INSERT (00001).
-- ---------------------------------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON userstore.tenants, userstore.users, userstore.accounts,
    userstore.applications, userstore.catalogs, userstore.profiles TO userstore_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON userstore.external_identities, userstore.bindings,
    userstore.memberships TO userstore_app;
GRANT SELECT, INSERT, DELETE ON userstore.claims TO userstore_app;
GRANT SELECT, INSERT ON userstore.idempotency_keys TO userstore_app;
GRANT UPDATE (result) ON userstore.idempotency_keys TO userstore_app;

GRANT SELECT ON userstore.tenants, userstore.users, userstore.accounts, userstore.external_identities,
    userstore.applications, userstore.bindings, userstore.catalogs, userstore.profiles,
    userstore.memberships, userstore.claims, userstore.tenant_slugs, userstore.idempotency_keys
    TO userstore_projector;
