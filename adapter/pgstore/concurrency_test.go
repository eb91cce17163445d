package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// race runs the functions at the same moment, each in its own goroutine, and waits for all of them.
func race(t *testing.T, fns ...func()) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn()
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("racing goroutines did not finish within a minute")
	}
}

// TestConcurrentCreatesOfOneEmail: 32 concurrent creations of the same email in one tenant make
// exactly one user (the others are duplicates of KindEmail); the same email in another tenant is free.
func TestConcurrentCreatesOfOneEmail(t *testing.T) {
	t.Parallel()
	s := shared(t)
	ctx, _ := tenantCtx(t, s)
	email := "racer-" + uuid.NewString()[:8] + "@example.com"
	const n = 32
	var ok, dup atomic.Int32
	errs := make([]error, n)
	fns := make([]func(), n)
	for i := range fns {
		fns[i] = func() {
			_, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: fmt.Sprintf("Racer %d", i), Email: email})
			var de *userstore.DuplicateError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &de) && de.Kind == userstore.KindEmail:
				dup.Add(1)
			default:
				errs[i] = err
			}
		}
	}
	race(t, fns...)
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(1), ok.Load(), "exactly one creation wins")
	require.Equal(t, int32(n-1), dup.Load(), "every other one is a duplicate email")
	page, err := s.ListUsers(ctx, &userstore.ListUsersParams{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	other, _ := tenantCtx(t, s)
	u, err := s.CreateUser(other, &userstore.CreateUserParams{DisplayName: "Elsewhere", Email: email})
	require.NoError(t, err, "the same email is free in another tenant")
	require.Equal(t, email, u.Email)
}

// TestDeleteUserRacesDependents races DeleteUser against every command that creates a dependent of the
// user (OpenAccount, LinkIdentity, Bind, SetProfileValues, AddMember), many times. Whatever the
// interleaving, a deleted user never keeps a live dependent: no open account, no identity, no binding,
// no profile value, no membership, no claim of a dependent. The guards of docs/adr/0004 make it so; a
// shared lock alone (FOR SHARE) lets an OpenAccount that commits before DeleteUser's write slip past
// DeleteUser's snapshot.
func TestDeleteUserRacesDependents(t *testing.T) {
	t.Parallel()
	s := shared(t)
	ctx, tn := tenantCtx(t, s)
	app, err := s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app-" + uuid.NewString(), Kind: userstore.AppWeb})
	require.NoError(t, err)
	cat, err := s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "Profile " + uuid.NewString(), Attributes: []userstore.Attribute{{Key: "nickname", Type: userstore.AttrString}}})
	require.NoError(t, err)
	owner, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Owner", Email: "owner-" + uuid.NewString() + "@example.com"})
	require.NoError(t, err)
	_, err = s.AddMember(ctx, &userstore.AddMemberParams{UserID: owner.ID, Role: userstore.RoleOwner})
	require.NoError(t, err)

	// tolerated are the refusals a dependent's creation may meet when the deletion won, and a conflict
	// that outlasted the store's re-runs.
	tolerated := func(err error) bool {
		var pe *userstore.PreconditionError
		return err == nil || errors.Is(err, userstore.ErrConflict) ||
			errors.As(err, &pe) && (pe.Reason == userstore.ReasonUserDeleted || pe.Reason == userstore.ReasonUserInactive)
	}
	const rounds = 50
	var survivors atomic.Int32 // dependents created before the deletion that the deletion then had to cascade to
	for round := range rounds {
		u, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Doomed", Email: fmt.Sprintf("doomed-%d-%s@example.com", round, uuid.NewString()[:8])})
		require.NoError(t, err)
		var (
			deleteErr error
			depErrs   [5]error
		)
		race(t,
			func() {
				for range 10 { // a deletion that outlasted its re-runs is tried again: it must win in the end
					if _, deleteErr = s.DeleteUser(ctx, &userstore.UserParams{ID: u.ID}); !errors.Is(deleteErr, userstore.ErrConflict) {
						return
					}
				}
			},
			func() {
				a, err := s.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: "login-" + uuid.NewString(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
				depErrs[0] = err
				if err == nil && a != nil {
					survivors.Add(1)
				}
			},
			func() {
				_, depErrs[1] = s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: "https://idp.example.com", Subject: "sub-" + uuid.NewString()})
			},
			func() {
				_, depErrs[2] = s.Bind(ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: u.ID, Roles: []string{"viewer"}})
			},
			func() {
				_, depErrs[3] = s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: cat.ID, Values: map[string]userstore.Value{"nickname": userstore.StringValue("n")}})
			},
			func() {
				_, depErrs[4] = s.AddMember(ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleMember})
			},
		)
		require.NoError(t, deleteErr, "round %d: the deletion succeeds", round)
		for i, err := range depErrs {
			require.True(t, tolerated(err), "round %d, dependent %d: unexpected error %v", round, i, err)
		}
		requireNoLiveDependents(t, ctx, s, tn.ID, u.ID, app.ID, cat.ID, round)
	}
	t.Logf("%d of %d rounds opened an account before the deletion, which closed it", survivors.Load(), rounds)
}

// requireNoLiveDependents asserts, through the store and in the raw tables, that a deleted user has
// nothing left.
func requireNoLiveDependents(t *testing.T, ctx context.Context, s *pgstore.Store, tenantID, userID, appID, catalogID uuid.UUID, round int) {
	t.Helper()
	got, err := s.GetUser(ctx, userID)
	require.NoError(t, err)
	require.Equal(t, userstore.UserDeleted, got.Status, "round %d", round)
	accounts, err := s.ListAccountsByUser(ctx, &userstore.ListAccountsParams{UserID: userID})
	require.NoError(t, err)
	for _, a := range accounts.Items {
		require.Equal(t, userstore.AccountClosed, a.Status, "round %d: an open account of a deleted user", round)
	}
	ids, err := s.ListIdentitiesByUser(ctx, &userstore.ListIdentitiesParams{UserID: userID})
	require.NoError(t, err)
	require.Empty(t, ids.Items, "round %d: an identity of a deleted user", round)
	bindings, err := s.ListBindingsByUser(ctx, &userstore.ListBindingsParams{UserID: userID})
	require.NoError(t, err)
	require.Empty(t, bindings.Items, "round %d: a binding of a deleted user", round)
	profile, err := s.GetProfile(ctx, userID, catalogID)
	require.NoError(t, err)
	require.Empty(t, profile.Values, "round %d: profile values of a deleted user", round)
	_, err = s.GetMembership(ctx, userID)
	require.ErrorIs(t, err, userstore.ErrNotFound, "round %d: a membership of a deleted user", round)

	// The raw tables agree, and no claim of the user or its dependents is left.
	var claims int
	require.NoError(t, pgtest.AdminPool(t).QueryRow(ctx, `
		SELECT count(*) FROM userstore.claims AS c
		 WHERE c.tenant_id = $1::uuid AND (c.owner_id = $2::uuid
		    OR c.owner_id IN (SELECT a.id FROM userstore.accounts AS a WHERE a.tenant_id = $1::uuid AND a.user_id = $2::uuid)
		    OR c.kind = 'binding' AND c.value = $3::text || ':' || $2::text
		    OR c.kind = 'external_identity' AND c.owner_id NOT IN (SELECT i.id FROM userstore.external_identities AS i WHERE i.tenant_id = $1::uuid))`,
		tenantID, userID, appID.String()).Scan(&claims))
	require.Zero(t, claims, "round %d: a claim of a deleted user or of its dependents", round)
}
