// Package workload writes small, varied histories through any userstore.Store, for the tests of what
// is derived from the log (the audit and outbox projections, later the replay tool): every tenant gets
// users, a profile update, an account, memberships and a cascading delete.
package workload

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// History writes the same varied history in each of n new tenants through s and returns the tenants.
// Tenant i acts as the service actor "svc-i" with request id "req-i". Per tenant: the tenant, three
// users, a profile update, an account, an owner and a member, and the deletion of the member (a cascade:
// user.deleted, roster.member_removed and account.closed in one mutation).
func History(t testing.TB, ctx context.Context, s userstore.Store, n int) []uuid.UUID {
	t.Helper()
	var out []uuid.UUID
	for i := range n {
		tenant := userstore.NewID()
		out = append(out, tenant)
		tag := tenant.String()[24:]
		tctx := userstore.WithRequestID(userstore.WithActor(userstore.WithTenant(ctx, tenant),
			userstore.Actor{Type: userstore.ActorService, ID: fmt.Sprintf("svc-%d", i)}), fmt.Sprintf("req-%d", i))
		_, err := s.CreateTenant(tctx, &userstore.CreateTenantParams{Slug: "t-" + tag, Name: "Tenant"})
		require.NoError(t, err)
		var users []*userstore.User
		for j := range 3 {
			u, err := s.CreateUser(tctx, &userstore.CreateUserParams{DisplayName: "User", Email: fmt.Sprintf("u%d-%s@example.com", j, tag)})
			require.NoError(t, err)
			users = append(users, u)
		}
		_, err = s.UpdateUserProfile(tctx, &userstore.UpdateUserProfileParams{ID: users[0].ID, DisplayName: "Renamed"})
		require.NoError(t, err)
		_, err = s.OpenAccount(tctx, &userstore.OpenAccountParams{UserID: users[1].ID, LoginName: "login-" + tag,
			Kind: userstore.AccountPassword, CredentialRef: "ref"})
		require.NoError(t, err)
		_, err = s.AddMember(tctx, &userstore.AddMemberParams{UserID: users[0].ID, Role: userstore.RoleOwner})
		require.NoError(t, err)
		_, err = s.AddMember(tctx, &userstore.AddMemberParams{UserID: users[1].ID, Role: userstore.RoleMember})
		require.NoError(t, err)
		_, err = s.DeleteUser(tctx, &userstore.UserParams{ID: users[1].ID})
		require.NoError(t, err)
	}
	return out
}
