package pgstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/pgtest"
)

var errInjected = errors.New("injected failure after append")

type failKey struct{}

// failAfter returns a context whose mutation fails right after its n-th Append (1-based), inside its
// transaction: its events and read rows are written, its commit is not.
func failAfter(ctx context.Context, n int32) context.Context {
	c := &atomic.Int32{}
	c.Store(n)
	return context.WithValue(ctx, failKey{}, c)
}

// failingStore is a store on db whose mutations fail where failAfter says, with the audit projection
// run by its Sync.
func failingStore(t *testing.T, db *pgtest.Database) *projectedStore {
	t.Helper()
	return newProjectedStore(t, db, pgstore.WithAfterAppend(nil, func(ctx context.Context) error {
		if c, ok := ctx.Value(failKey{}).(*atomic.Int32); ok && c.Add(-1) == 0 {
			return errInjected
		}
		return nil
	}))
}

// digest returns, per table of schema userstore that has a tenant_id column (read from the catalog),
// an md5 of the tenant's rows in db there, read as the superuser: any change to any row shows.
func digest(t *testing.T, ctx context.Context, db *pgtest.Database, tenantID uuid.UUID) map[string]string {
	t.Helper()
	admin := db.Pool(t, pgtest.Admin)
	out := map[string]string{}
	for _, table := range tenantTables(t, ctx) {
		ident := pgx.Identifier{"userstore", table}.Sanitize()
		var sum string
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '')
			FROM `+ident+` AS x WHERE x.tenant_id = $1::uuid`, tenantID.String()).Scan(&sum))
		out[table] = sum
	}
	return out
}

// TestFailureAfterAppendLeavesNothing: a mutation that fails after its events were appended, before its
// commit, leaves no event, no claim, no idempotency record, no read-table change and — once the audit
// projection has caught up — no audit record; retried, it succeeds as if it had never run. It runs in a
// database of its own, where only its own projector writes audit records, and each case syncs before
// its first digest, so that no record of an earlier mutation appears between two digests.
func TestFailureAfterAppendLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	db := pgtest.NewDatabase(t, nil)
	s := failingStore(t, db)

	t.Run("CreateTenant", func(t *testing.T) {
		id := userstore.NewID()
		tctx := userstore.WithActor(userstore.WithTenant(ctx, id), userstore.Actor{Type: userstore.ActorSystem, ID: "t"})
		p := &userstore.CreateTenantParams{Mutation: userstore.Mutation{IdempotencyKey: "k"}, Slug: "t-" + id.String()[24:], Name: "T"}
		before := digest(t, ctx, db, id)
		_, err := s.CreateTenant(failAfter(tctx, 1), p)
		require.ErrorIs(t, err, errInjected)
		require.Equal(t, before, digest(t, ctx, db, id))
		_, err = s.GetTenantBySlug(ctx, p.Slug)
		require.ErrorIs(t, err, userstore.ErrNotFound, "the slug was not claimed")
		tn, err := s.CreateTenant(tctx, p)
		require.NoError(t, err, "the same request succeeds afterwards")
		require.Equal(t, id, tn.ID)
	})

	t.Run("CreateUser", func(t *testing.T) {
		tctx, tn := tenantCtx(t, s)
		p := &userstore.CreateUserParams{Mutation: userstore.Mutation{IdempotencyKey: "create-ann"}, ID: userstore.NewID(),
			DisplayName: "Ann", Email: "ann-" + uuid.NewString() + "@example.com"}
		require.NoError(t, s.Sync(ctx)) // the tenant's creation is projected before the digest
		before := digest(t, ctx, db, tn.ID)
		_, err := s.CreateUser(failAfter(tctx, 1), p)
		require.ErrorIs(t, err, errInjected)
		require.Equal(t, before, digest(t, ctx, db, tn.ID), "no event, claim, idempotency record or read row")
		_, err = s.GetUserByEmail(tctx, p.Email)
		require.ErrorIs(t, err, userstore.ErrNotFound)
		u, err := s.CreateUser(tctx, p)
		require.NoError(t, err, "the key was not left reserved; the email not left claimed")
		require.Equal(t, p.ID, u.ID)
	})

	t.Run("DeleteUserCascade", func(t *testing.T) {
		tctx, tn := tenantCtx(t, s)
		owner, err := s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "Owner", Email: "o-" + uuid.NewString() + "@example.com"})
		require.NoError(t, err)
		_, err = s.AddMember(tctx, &userstore.AddMemberParams{UserID: owner.ID, Role: userstore.RoleOwner})
		require.NoError(t, err)
		populate(t, tctx, s) // a user with an account, an identity, a binding, a profile and an owner membership
		users, err := s.ListUsers(tctx, &userstore.ListUsersParams{})
		require.NoError(t, err)
		var victim userstore.User
		for _, u := range users.Items {
			if u.ID != owner.ID {
				victim = u
			}
		}
		require.NoError(t, s.Sync(ctx)) // the audit projection has caught up: the tenant's records are in the digest
		auditBefore, err := s.ListAuditRecords(tctx, &userstore.ListAuditParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
		require.NoError(t, err)
		require.NotEmpty(t, auditBefore.Items)
		before := digest(t, ctx, db, tn.ID)
		// Appends: user.deleted, roster.member_removed, account.closed, identity.unlinked, …: fail in
		// the middle of the cascade.
		_, err = s.DeleteUser(failAfter(tctx, 4), &userstore.UserParams{ID: victim.ID})
		require.ErrorIs(t, err, errInjected)
		require.NoError(t, s.Sync(ctx)) // had an event of it committed, the projector would record it now
		require.Equal(t, before, digest(t, ctx, db, tn.ID), "no event, read row or audit record")
		got, err := s.GetUser(tctx, victim.ID)
		require.NoError(t, err)
		require.Equal(t, victim, *got)
		auditAfter, err := s.ListAuditRecords(tctx, &userstore.ListAuditParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
		require.NoError(t, err)
		require.Equal(t, auditBefore, auditAfter, "no audit record")

		deleted, err := s.DeleteUser(tctx, &userstore.UserParams{ID: victim.ID})
		require.NoError(t, err)
		require.Equal(t, userstore.UserDeleted, deleted.Status)
		_, err = s.GetUserByEmail(tctx, victim.Email)
		require.ErrorIs(t, err, userstore.ErrNotFound, "the email was released by the committed deletion")
	})

	t.Run("ErrorDoesNotCarryTheStream", func(t *testing.T) {
		// The injected error comes back as it is: the store neither retries nor wraps it into a
		// conflict.
		tctx, _ := tenantCtx(t, s)
		_, err := s.CreateUser(failAfter(tctx, 1), &userstore.CreateUserParams{DisplayName: "X", Email: "x-" + uuid.NewString() + "@example.com"})
		require.ErrorIs(t, err, errInjected)
		require.NotErrorIs(t, err, userstore.ErrConflict)
	})
}

// TestEventsCarryTheMutation: what a mutation appends is in the log with its metadata, so the audit
// trail can be rebuilt from it.
func TestEventsCarryTheMutation(t *testing.T) {
	t.Parallel()
	ctx := bounded(t, time.Minute)
	s := shared(t)
	tctx, tn := tenantCtx(t, s)
	tctx = userstore.WithRequestID(tctx, "req-42")
	u, err := s.CreateUser(tctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{IdempotencyKey: "key-1"}, DisplayName: "Ann", Email: "a-" + uuid.NewString() + "@example.com"})
	require.NoError(t, err)
	var (
		streamType, eventType, actorType, actorID, requestID, key, correlation, command string
		version                                                                         int64
	)
	require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `
		SELECT stream_type, event_type, stream_version, metadata->>'actor_type', metadata->>'actor_id',
		       metadata->>'request_id', metadata->>'idempotency_key', metadata->>'correlation_id',
		       metadata->>'command'
		  FROM userstore.events WHERE tenant_id = $1::uuid AND stream_id = $2::uuid`, tn.ID.String(), u.ID.String()).
		Scan(&streamType, &eventType, &version, &actorType, &actorID, &requestID, &key, &correlation, &command))
	require.Equal(t, string(domain.StreamUser), streamType)
	require.Equal(t, domain.EventUserCreated, eventType)
	require.Equal(t, int64(1), version)
	require.Equal(t, "service", actorType)
	require.Equal(t, "pgstore-test", actorID)
	require.Equal(t, "req-42", requestID)
	require.Equal(t, "key-1", key)
	require.Equal(t, "CreateUser", command)
	_, err = uuid.Parse(correlation)
	require.NoError(t, err)
}
