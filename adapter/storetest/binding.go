package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func bindingCases() []testCase {
	return []testCase{
		{"RolesNormalizedToSortedSet", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			u := f.createUser(t)
			b, err := s.Bind(f.ctx, &userstore.BindParams{ApplicationID: a.ID, UserID: u.ID, Roles: []string{"writer", "admin", "writer", "billing:read"}})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, b.ID)
			require.Equal(t, f.tenant.ID, b.TenantID)
			require.Equal(t, a.ID, b.ApplicationID)
			require.Equal(t, u.ID, b.UserID)
			require.Equal(t, []string{"admin", "billing:read", "writer"}, b.Roles)
			require.Equal(t, int64(1), b.Version)
			got := f.getBinding(t, b.ID)
			require.Equal(t, []string{"admin", "billing:read", "writer"}, got.Roles)
		}},
		{"OnePerApplicationAndUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			a2 := f.registerApp(t)
			u := f.createUser(t)
			b := f.bind(t, a.ID, u.ID, "viewer")
			tr := f.snapshot(t)
			_, err := s.Bind(f.ctx, &userstore.BindParams{ApplicationID: a.ID, UserID: u.ID, Roles: []string{"admin"}})
			requireDuplicate(t, err, userstore.KindBinding)
			require.Equal(t, []string{"viewer"}, f.getBinding(t, b.ID).Roles)
			require.Len(t, f.bindingsOfUser(t, u.ID), 1)
			f.requireNoTrace(t, tr)
			f.bind(t, a2.ID, u.ID, "viewer")
			require.NoError(t, s.Unbind(f.ctx, &userstore.UnbindParams{ID: b.ID}))
			again := f.bind(t, a.ID, u.ID, "admin")
			require.NotEqual(t, b.ID, again.ID)
			require.Equal(t, []string{"admin"}, again.Roles)
		}},
		{"UnbindRemoves", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			u := f.createUser(t)
			b := f.bind(t, a.ID, u.ID)
			require.NoError(t, s.Unbind(f.ctx, &userstore.UnbindParams{ID: b.ID}))
			_, err := s.GetBinding(f.ctx, b.ID)
			requireNotFound(t, err)
			require.Empty(t, f.bindingsOfUser(t, u.ID))
			require.Empty(t, f.bindingsOfApp(t, a.ID))
			requireNotFound(t, s.Unbind(f.ctx, &userstore.UnbindParams{ID: b.ID}), "unbinding twice")
		}},
		{"RequireActiveUserAndApplication", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			app := f.registerApp(t)
			user := f.createUser(t)
			disabledUser := f.createUser(t)
			f.disableUser(t, disabledUser.ID)
			deletedUser := f.createUser(t)
			f.deleteUser(t, deletedUser.ID)
			disabledApp := f.registerApp(t)
			_, err := s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: disabledApp.ID})
			require.NoError(t, err)
			deletedApp := f.registerApp(t)
			_, err = s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: deletedApp.ID})
			require.NoError(t, err)
			foreignUser := g.createUser(t)
			foreignApp := g.registerApp(t)
			tr := f.snapshot(t)
			bind := func(appID, userID uuid.UUID) error {
				_, err := s.Bind(f.ctx, &userstore.BindParams{ApplicationID: appID, UserID: userID, Roles: []string{"viewer"}})
				return err
			}
			requirePrecondition(t, bind(app.ID, disabledUser.ID), userstore.ReasonUserInactive)
			requirePrecondition(t, bind(app.ID, deletedUser.ID), userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			requirePrecondition(t, bind(disabledApp.ID, user.ID), userstore.ReasonAppInactive)
			requirePrecondition(t, bind(deletedApp.ID, user.ID), userstore.ReasonAppDeleted, userstore.ReasonAppInactive)
			requireNotFound(t, bind(app.ID, foreignUser.ID), "a user of another tenant")
			requireNotFound(t, bind(foreignApp.ID, user.ID), "an application of another tenant")
			requireNotFound(t, bind(app.ID, userstore.NewID()), "a missing user")
			requireNotFound(t, bind(userstore.NewID(), user.ID), "a missing application")
			require.Empty(t, f.bindingsOfApp(t, app.ID))
			f.requireNoTrace(t, tr)
		}},
		{"ChangeRoles", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			b := f.bind(t, f.registerApp(t).ID, f.createUser(t).ID, "viewer")
			c, err := s.ChangeBindingRoles(f.ctx, &userstore.ChangeBindingRolesParams{ID: b.ID, Roles: []string{"editor", "admin", "editor"}})
			require.NoError(t, err)
			require.Equal(t, []string{"admin", "editor"}, c.Roles)
			require.Equal(t, int64(2), c.Version)
			require.Equal(t, b.ApplicationID, c.ApplicationID)
			require.Equal(t, b.UserID, c.UserID)
			got := f.getBinding(t, b.ID)
			require.Equal(t, []string{"admin", "editor"}, got.Roles)
			require.Equal(t, int64(2), got.Version)
		}},
		{"ListByUserAndByApplication", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a1 := f.registerApp(t)
			a2 := f.registerApp(t)
			u1 := f.createUser(t)
			u2 := f.createUser(t)
			b11 := f.bind(t, a1.ID, u1.ID)
			b12 := f.bind(t, a1.ID, u2.ID)
			b21 := f.bind(t, a2.ID, u1.ID)
			byUser := f.bindingsOfUser(t, u1.ID)
			require.Len(t, byUser, 2)
			require.Equal(t, b11.ID, byUser[0].ID)
			require.Equal(t, b21.ID, byUser[1].ID)
			byApp := f.bindingsOfApp(t, a1.ID)
			require.Len(t, byApp, 2)
			require.Equal(t, b11.ID, byApp[0].ID)
			require.Equal(t, b12.ID, byApp[1].ID)
			_, err := s.ListBindingsByUser(f.ctx, &userstore.ListBindingsParams{UserID: u1.ID, ApplicationID: a1.ID})
			requireInvalid(t, err, "")
			_, err = s.ListBindingsByApplication(f.ctx, &userstore.ListBindingsParams{})
			requireInvalid(t, err, "")
			_, err = s.ListBindingsByUser(f.ctx, &userstore.ListBindingsParams{})
			requireInvalid(t, err, "")
		}},
		{"RoleValidation", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			u := f.createUser(t)
			b := f.bind(t, a.ID, f.createUser(t).ID)
			tr := f.snapshot(t)
			tooMany := make([]string, userstore.MaxRoles+1)
			for i := range tooMany {
				tooMany[i] = fmt.Sprintf("role-%03d", i)
			}
			for _, roles := range [][]string{
				{""},
				{"has space"},
				{"bang!"},
				{"viewer", "ünïcode"},
				{strings.Repeat("r", 65)},
				{"bad\xff"},
				{"nul\x00"},
				tooMany,
			} {
				_, err := s.Bind(f.ctx, &userstore.BindParams{ApplicationID: a.ID, UserID: u.ID, Roles: roles})
				requireInvalid(t, err, "roles", "bind with roles %q", roles)
				_, err = s.ChangeBindingRoles(f.ctx, &userstore.ChangeBindingRolesParams{ID: b.ID, Roles: roles})
				requireInvalid(t, err, "roles", "change to roles %q", roles)
			}
			require.Empty(t, f.bindingsOfUser(t, u.ID))
			require.Equal(t, int64(1), f.getBinding(t, b.ID).Version)
			f.requireNoTrace(t, tr)
			full := f.bind(t, a.ID, u.ID, tooMany[:userstore.MaxRoles]...)
			require.Len(t, full.Roles, userstore.MaxRoles, "MaxRoles roles are fine")
			require.Len(t, f.bind(t, f.registerApp(t).ID, u.ID, strings.Repeat("r", 64)).Roles, 1)
		}},
	}
}
