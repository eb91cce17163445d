package storetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// requireSameUser asserts that two results describe the same user state.
func requireSameUser(t *testing.T, want, got *userstore.User) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.TenantID, got.TenantID)
	require.Equal(t, want.DisplayName, got.DisplayName)
	require.Equal(t, want.Email, got.Email)
	require.Equal(t, want.Status, got.Status)
	require.Equal(t, want.Version, got.Version)
	require.True(t, sameTime(want.CreatedAt, got.CreatedAt), "CreatedAt %s != %s", want.CreatedAt, got.CreatedAt)
	require.True(t, sameTime(want.UpdatedAt, got.UpdatedAt), "UpdatedAt %s != %s", want.UpdatedAt, got.UpdatedAt)
}

func keyed(key string) userstore.Mutation { return userstore.Mutation{IdempotencyKey: key} }

func idempotencyCases() []testCase {
	return []testCase{
		{"CreateRetryReturnsOriginal", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			p := &userstore.CreateUserParams{Mutation: keyed("create-" + rnd()), DisplayName: "Ann", Email: newEmail()}
			first, err := s.CreateUser(f.ctx, p)
			require.NoError(t, err)
			records := len(recordsFor(f.audit(t), first.ID))
			events := len(eventsFor(f.outbox(t), first.ID))
			require.Positive(t, records)
			require.Positive(t, events)
			tr := f.snapshot(t)
			again := *p
			second, err := s.CreateUser(f.ctx, &again)
			require.NoError(t, err, "a retry with the same key and request succeeds")
			requireSameUser(t, first, second)
			require.Len(t, f.users(t, ""), 1, "no second user")
			require.Len(t, recordsFor(f.audit(t), first.ID), records, "exactly the original audit records")
			require.Len(t, eventsFor(f.outbox(t), first.ID), events, "exactly the original outbox events")
			f.requireNoTrace(t, tr)
		}},
		{"UpdateRetryReturnsOriginal", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			p := &userstore.UserParams{Mutation: keyed("disable-" + rnd()), ID: u.ID}
			first, err := s.DisableUser(f.ctx, p)
			require.NoError(t, err)
			require.Equal(t, int64(2), first.Version)
			tr := f.snapshot(t)
			second, err := s.DisableUser(f.ctx, &userstore.UserParams{Mutation: p.Mutation, ID: u.ID})
			require.NoError(t, err, "the retry returns the original result instead of refusing the transition")
			requireSameUser(t, first, second)
			require.Equal(t, int64(2), f.getUser(t, u.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"RetryReturnsOriginalAfterLaterChanges", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			p := &userstore.CreateUserParams{Mutation: keyed("create-" + rnd()), DisplayName: "Ann", Email: newEmail()}
			first, err := s.CreateUser(f.ctx, p)
			require.NoError(t, err)
			_, err = s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: first.ID, DisplayName: "Ann B."})
			require.NoError(t, err)
			tr := f.snapshot(t)
			second, err := s.CreateUser(f.ctx, p)
			require.NoError(t, err)
			requireSameUser(t, first, second)
			require.Equal(t, "Ann B.", f.getUser(t, first.ID).DisplayName, "the retry changed nothing")
			f.requireNoTrace(t, tr)
		}},
		{"VoidMutationRetrySucceeds", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			b := f.bind(t, f.registerApp(t).ID, f.createUser(t).ID)
			p := &userstore.UnbindParams{Mutation: keyed("unbind-" + rnd()), ID: b.ID}
			require.NoError(t, s.Unbind(f.ctx, p))
			tr := f.snapshot(t)
			require.NoError(t, s.Unbind(f.ctx, &userstore.UnbindParams{Mutation: p.Mutation, ID: b.ID}), "the retry returns the original (empty) result")
			f.requireNoTrace(t, tr)
		}},
		{"DifferentRequestConflicts", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			key := "create-" + rnd()
			first, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed(key), DisplayName: "Ann", Email: newEmail()})
			require.NoError(t, err)
			tr := f.snapshot(t)
			other := newEmail()
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed(key), DisplayName: "Ann", Email: other})
			require.ErrorIs(t, err, userstore.ErrIdempotencyConflict)
			_, err = s.GetUserByEmail(f.ctx, other)
			requireNotFound(t, err)
			_, err = s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{Mutation: keyed(key), ID: first.ID, DisplayName: "Bo"})
			require.ErrorIs(t, err, userstore.ErrIdempotencyConflict, "the key was used by another operation")
			_, err = s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Mutation: keyed(key), Name: "App", ClientKey: newClientKey(), Kind: userstore.AppWeb})
			require.ErrorIs(t, err, userstore.ErrIdempotencyConflict, "the key was used by another operation")
			got := f.getUser(t, first.ID)
			require.Equal(t, "Ann", got.DisplayName)
			require.Equal(t, int64(1), got.Version)
			require.Empty(t, f.apps(t, ""))
			require.Len(t, f.users(t, ""), 1)
			f.requireNoTrace(t, tr)
		}},
		{"KeysArePerTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			key := "create-" + rnd()
			a, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed(key), DisplayName: "Ann", Email: newEmail()})
			require.NoError(t, err)
			emailB := newEmail()
			b, err := s.CreateUser(g.ctx, &userstore.CreateUserParams{Mutation: keyed(key), DisplayName: "Bob", Email: emailB})
			require.NoError(t, err, "the same key in another tenant is independent")
			require.NotEqual(t, a.ID, b.ID)
			require.Equal(t, g.tenant.ID, b.TenantID)
			require.Equal(t, emailB, b.Email)
			c, err := s.CreateUser(g.ctx, &userstore.CreateUserParams{Mutation: keyed(key), DisplayName: "Bob", Email: emailB})
			require.NoError(t, err)
			require.Equal(t, b.ID, c.ID)
		}},
		{"ConcurrentRetriesReturnOneResult", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			ref := f.createUser(t)
			perCreate := len(recordsFor(f.audit(t), ref.ID))
			p := userstore.CreateUserParams{Mutation: keyed("create-" + rnd()), DisplayName: "Racer", Email: newEmail()}
			const n = 10
			results := make([]*userstore.User, n)
			errs := make([]error, n)
			parallel(t, n, func(i int) {
				q := p
				results[i], errs[i] = s.CreateUser(f.ctx, &q)
			})
			for i := range n {
				require.NoError(t, errs[i], "retry %d", i)
				requireSameUser(t, results[0], results[i])
			}
			require.Len(t, f.users(t, ""), 2)
			require.Len(t, recordsFor(f.audit(t), results[0].ID), perCreate, "one create's audit records")
		}},
		{"KeyTooLong", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed(strings.Repeat("k", userstore.MaxKeyLength+1)), DisplayName: "A", Email: newEmail()})
			requireInvalid(t, err, "idempotency_key")
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed("bad\xffkey"), DisplayName: "A", Email: newEmail()})
			requireInvalid(t, err, "idempotency_key")
			require.Empty(t, f.users(t, ""))
			f.requireNoTrace(t, tr)
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: keyed(strings.Repeat("k", userstore.MaxKeyLength)), DisplayName: "A", Email: newEmail()})
			require.NoError(t, err, "MaxKeyLength bytes are fine")
		}},
	}
}
