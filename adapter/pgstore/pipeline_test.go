package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// tripCounter counts the round trips of a pool's connections as the benchmark harness does: each
// query and each batch is one.
type tripCounter struct{ trips atomic.Int64 }

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestMutationRoundTrips pins the round trips of the command write path (docs/adr/0010): a mutation
// reads everything it decides on in the round trip that begins its transaction, sends its writes in a
// second, and commits in a third; a retry that finds its idempotency key recorded commits right after
// the first.
func TestMutationRoundTrips(t *testing.T) {
	t.Parallel()
	counter := &tripCounter{}
	cfg := pgtest.Default(t).PoolConfig(t, pgtest.App)
	cfg.ConnConfig.Tracer = counter
	s := newStore(t, pgtest.NewPool(t, cfg), nil)
	ctx, _ := tenantCtx(t, s)
	trips := func(name string, fn func() error) int64 {
		t.Helper()
		before := counter.trips.Load()
		require.NoError(t, fn(), name)
		return counter.trips.Load() - before
	}

	p := &userstore.CreateUserParams{Mutation: userstore.Mutation{IdempotencyKey: "k-" + uuid.NewString()},
		DisplayName: "Ann", Email: "ann-" + uuid.NewString() + "@example.com"}
	var u *userstore.User
	require.Equal(t, int64(3), trips("CreateUser", func() (err error) { u, err = s.CreateUser(ctx, p); return err }))
	require.Equal(t, int64(2), trips("CreateUser retried", func() error { _, err := s.CreateUser(ctx, p); return err }))
	require.Equal(t, int64(3), trips("UpdateUserProfile", func() error {
		_, err := s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Ann B."})
		return err
	}))
	require.Equal(t, int64(2), trips("UpdateUserProfile without a change", func() error {
		_, err := s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Ann B."})
		return err
	}))
	require.Equal(t, int64(3), trips("OpenAccount (a guarded user)", func() error {
		_, err := s.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: "ann-" + uuid.NewString(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
		return err
	}))
}

// TestConcurrentRetriesWithOneKey: 16 concurrent calls with one idempotency key and one request make
// one user — one event, one claim, one idempotency record — and all return the same result. The first
// write of each call's last batch is the key's record, so a loser waits on the key, not on the
// winner's email claim (which would make it a duplicate), and its re-run finds the record.
func TestConcurrentRetriesWithOneKey(t *testing.T) {
	t.Parallel()
	s := shared(t)
	_, tn := tenantCtx(t, s)
	ctx := userstore.WithActor(userstore.WithTenant(bounded(t, time.Minute), tn.ID), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-test"})
	for round := range 5 {
		key := fmt.Sprintf("same-%d-%s", round, uuid.NewString())
		email := "same-" + uuid.NewString() + "@example.com"
		const n = 16
		results := make([]*userstore.User, n)
		errs := make([]error, n)
		fns := make([]func(), n)
		for i := range fns {
			fns[i] = func() {
				results[i], errs[i] = s.CreateUser(ctx, &userstore.CreateUserParams{
					Mutation: userstore.Mutation{IdempotencyKey: key}, DisplayName: "Same", Email: email})
			}
		}
		race(t, fns...)
		for i := range n {
			require.NoError(t, errs[i], "round %d, call %d", round, i)
			require.Equal(t, results[0], results[i], "round %d, call %d: the same result", round, i)
		}
		var events, claims, records int
		require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `
			SELECT (SELECT count(*) FROM userstore.events WHERE tenant_id = $1::uuid AND stream_id = $2::uuid),
			       (SELECT count(*) FROM userstore.claims WHERE tenant_id = $1::uuid AND owner_id = $2::uuid),
			       (SELECT count(*) FROM userstore.idempotency_keys WHERE tenant_id = $1::uuid AND key = $3::text AND result IS NOT NULL)`,
			tn.ID, results[0].ID, key).Scan(&events, &claims, &records))
		require.Equal(t, [3]int{1, 1, 1}, [3]int{events, claims, records}, "round %d: one event, one claim, one record", round)
	}
}

// TestConcurrentCreateTenantWithOneKey covers the other path of the idempotency record: CreateTenant
// claims its slug (platform-wide) before its last batch, so its unit of work reserves the key in the
// same round trip, ahead of the claim. 8 concurrent calls with one key make one tenant and return the
// same result — none of them a duplicate slug.
func TestConcurrentCreateTenantWithOneKey(t *testing.T) {
	t.Parallel()
	s := shared(t)
	for round := range 5 {
		id := userstore.NewID()
		ctx := userstore.WithActor(userstore.WithTenant(bounded(t, time.Minute), id), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-test"})
		p := userstore.CreateTenantParams{Mutation: userstore.Mutation{IdempotencyKey: "create"}, Slug: "same-" + id.String()[24:], Name: "Same"}
		const n = 8
		results := make([]*userstore.Tenant, n)
		errs := make([]error, n)
		fns := make([]func(), n)
		for i := range fns {
			fns[i] = func() {
				q := p
				results[i], errs[i] = s.CreateTenant(ctx, &q)
			}
		}
		race(t, fns...)
		for i := range n {
			require.NoError(t, errs[i], "round %d, call %d", round, i)
			require.Equal(t, results[0], results[i], "round %d, call %d: the same result", round, i)
		}
		var events int
		require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `SELECT count(*) FROM userstore.events WHERE tenant_id = $1::uuid`, id).Scan(&events))
		require.Equal(t, 1, events, "round %d: one tenant.created", round)
	}
}

// TestSuspendTenantRacesEntityCommands races SuspendTenant against entity commands of the tenant, many
// times. The tenant guard (docs/adr/0004: a shared lock on the tenant's row, taken in the first round
// trip) makes each command either commit before the suspension — in the log too, whose order is
// (transaction id, position) — or fail on the suspended tenant. Without the guard a command whose
// snapshot saw the tenant active commits after the suspension, and the log shows a user created in a
// suspended tenant.
func TestSuspendTenantRacesEntityCommands(t *testing.T) {
	t.Parallel()
	s := shared(t)
	const rounds, creators = 30, 6
	for round := range rounds {
		_, tn := tenantCtx(t, s)
		ctx := userstore.WithActor(userstore.WithTenant(bounded(t, time.Minute), tn.ID), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-test"})
		u, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Old", Email: "old-" + uuid.NewString() + "@example.com"})
		require.NoError(t, err)
		var suspendErr error
		errs := make([]error, creators+1)
		fns := []func(){func() { _, suspendErr = s.SuspendTenant(ctx, &userstore.TenantStatusParams{Reason: "race"}) }}
		for i := range creators {
			fns = append(fns, func() {
				_, errs[i] = s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "New", Email: fmt.Sprintf("new-%d-%s@example.com", i, uuid.NewString())})
			})
		}
		fns = append(fns, func() {
			_, errs[creators] = s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Renamed"})
		})
		race(t, fns...)
		require.NoError(t, suspendErr, "round %d", round)
		var committed int
		for i, err := range errs {
			var pe *userstore.PreconditionError
			switch {
			case err == nil:
				committed++
			case errors.As(err, &pe) && pe.Reason == userstore.ReasonTenantInactive, errors.Is(err, userstore.ErrConflict):
			default:
				t.Fatalf("round %d, command %d: unexpected error %v", round, i, err)
			}
		}

		rows, err := pgtest.ProjectorPool(t).Query(ctx, `
			SELECT event_type FROM userstore.events WHERE tenant_id = $1::uuid ORDER BY transaction_id, global_position`, tn.ID)
		require.NoError(t, err)
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		suspended := false
		after := 0
		for _, typ := range types {
			switch {
			case typ == domain.EventTenantSuspended:
				suspended = true
			case suspended:
				after++
			}
		}
		require.True(t, suspended, "round %d", round)
		require.Zero(t, after, "round %d: %d events of the tenant after its suspension in the log: %v", round, after, types)
		require.Len(t, types, 3+committed, "round %d: tenant.created, the old user, the suspension and what committed", round)
	}
}

// TestDeprecateAttributeRacesProfileValues is TestSuspendTenantRacesEntityCommands for the other
// shared-lock guard: SetProfileValues guards the catalog whose attribute it sets, and
// DeprecateCatalogAttribute writes that catalog. In the log, no value of the attribute is set after the
// attribute's deprecation.
func TestDeprecateAttributeRacesProfileValues(t *testing.T) {
	t.Parallel()
	s := shared(t)
	const rounds, setters = 20, 5
	ctx, _ := tenantCtx(t, s)
	var users []uuid.UUID
	for i := range setters {
		u, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "User", Email: fmt.Sprintf("u-%d-%s@example.com", i, uuid.NewString())})
		require.NoError(t, err)
		users = append(users, u.ID)
	}
	for round := range rounds {
		cat, err := s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "Profile " + uuid.NewString(),
			Attributes: []userstore.Attribute{{Key: "nick", Type: userstore.AttrString}}})
		require.NoError(t, err)
		var deprecateErr error
		errs := make([]error, setters)
		fns := []func(){func() {
			_, deprecateErr = s.DeprecateCatalogAttribute(ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: cat.ID, Key: "nick"})
		}}
		for i, id := range users {
			fns = append(fns, func() {
				_, errs[i] = s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: id, CatalogID: cat.ID,
					Values: map[string]userstore.Value{"nick": userstore.StringValue(fmt.Sprintf("n%d", round))}})
			})
		}
		race(t, fns...)
		require.NoError(t, deprecateErr, "round %d", round)
		for i, err := range errs {
			var pe *userstore.PreconditionError
			if err != nil && !(errors.As(err, &pe) && pe.Reason == userstore.ReasonAttrDeprecated) && !errors.Is(err, userstore.ErrConflict) {
				t.Fatalf("round %d, setter %d: unexpected error %v", round, i, err)
			}
		}

		// The catalog's stream and the profiles of this catalog, in log order.
		profiles := make([]string, len(users))
		for i, id := range users {
			profiles[i] = domain.ProfileStreamID(id, cat.ID).String()
		}
		rows, err := pgtest.ProjectorPool(t).Query(ctx, `
			SELECT event_type FROM userstore.events
			 WHERE tenant_id = $1::uuid AND (stream_id = $2::uuid OR stream_id = ANY($3::text[]::uuid[]))
			 ORDER BY transaction_id, global_position`, cat.TenantID, cat.ID, profiles)
		require.NoError(t, err)
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		deprecated, after := false, 0
		for _, typ := range types {
			switch {
			case typ == domain.EventCatalogAttributeDeprecated:
				deprecated = true
			case deprecated && typ == domain.EventProfileValuesSet:
				after++
			}
		}
		require.True(t, deprecated, "round %d", round)
		require.Zero(t, after, "round %d: values set after the deprecation in the log: %v", round, types)
	}
}
