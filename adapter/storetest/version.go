package storetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

const staleVersion = 99

func versionCases() []testCase {
	return []testCase{
		{"StartAtOneAndIncrementByOne", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			ctx := f.ctx
			require.Equal(t, int64(1), f.tenant.Version)
			tn, err := s.RenameTenant(ctx, &userstore.RenameTenantParams{Name: "N2"})
			require.NoError(t, err)
			require.Equal(t, int64(2), tn.Version)

			u := f.createUser(t)
			require.Equal(t, int64(1), u.Version)
			u, err = s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "X"})
			require.NoError(t, err)
			require.Equal(t, int64(2), u.Version)
			u, err = s.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{ID: u.ID, Email: newEmail()})
			require.NoError(t, err)
			require.Equal(t, int64(3), u.Version)
			u, err = s.DisableUser(ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, int64(4), u.Version)
			u, err = s.EnableUser(ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, int64(5), u.Version)
			require.Equal(t, int64(5), f.getUser(t, u.ID).Version)

			a := f.openAccount(t, u.ID)
			require.Equal(t, int64(1), a.Version)
			a, err = s.LockAccount(ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, int64(2), a.Version)
			a, err = s.UnlockAccount(ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, int64(3), a.Version)
			a, err = s.RenameAccountLogin(ctx, &userstore.RenameAccountLoginParams{ID: a.ID, LoginName: newLogin()})
			require.NoError(t, err)
			require.Equal(t, int64(4), a.Version)
			require.Equal(t, int64(4), f.getAccount(t, a.ID).Version)

			require.Equal(t, int64(1), f.linkIdentity(t, u.ID).Version)

			app := f.registerApp(t)
			require.Equal(t, int64(1), app.Version)
			app, err = s.UpdateApplication(ctx, &userstore.UpdateApplicationParams{ID: app.ID, Name: "A2", Kind: userstore.AppService})
			require.NoError(t, err)
			require.Equal(t, int64(2), app.Version)
			app, err = s.DisableApplication(ctx, &userstore.ApplicationParams{ID: app.ID})
			require.NoError(t, err)
			require.Equal(t, int64(3), app.Version)
			app, err = s.EnableApplication(ctx, &userstore.ApplicationParams{ID: app.ID})
			require.NoError(t, err)
			require.Equal(t, int64(4), app.Version)
			require.Equal(t, int64(4), f.getApp(t, app.ID).Version)

			b := f.bind(t, app.ID, u.ID)
			require.Equal(t, int64(1), b.Version)
			b, err = s.ChangeBindingRoles(ctx, &userstore.ChangeBindingRolesParams{ID: b.ID, Roles: []string{"x"}})
			require.NoError(t, err)
			require.Equal(t, int64(2), b.Version)

			c := f.defineCatalog(t, stringAttr("a"))
			require.Equal(t, int64(1), c.Version)
			c, err = s.AddCatalogAttribute(ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: stringAttr("b")})
			require.NoError(t, err)
			require.Equal(t, int64(2), c.Version)
			c, err = s.DeprecateCatalogAttribute(ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: c.ID, Key: "b"})
			require.NoError(t, err)
			require.Equal(t, int64(3), c.Version)
			require.Equal(t, int64(3), f.getCatalog(t, c.ID).Version)

			require.Equal(t, int64(0), f.getProfile(t, u.ID, c.ID).Version)
			p := f.setValues(t, u.ID, c.ID, map[string]userstore.Value{"a": strV("1")})
			require.Equal(t, int64(1), p.Version)
			p = f.setValues(t, u.ID, c.ID, map[string]userstore.Value{"a": strV("2")})
			require.Equal(t, int64(2), p.Version)
			p, err = s.ClearProfileValues(ctx, &userstore.ClearProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Keys: []string{"a"}})
			require.NoError(t, err)
			require.Equal(t, int64(3), p.Version)
			require.Equal(t, int64(3), f.getProfile(t, u.ID, c.ID).Version)
		}},
		{"StaleExpectedVersionRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			tn := f.getTenant(t)
			profile := f.getProfile(t, w.user.ID, w.catalog.ID)
			ms := f.getMembership(t, w.user.ID)
			type stale struct {
				name   string
				id     uuid.UUID // the entity's id; uuid.Nil: not checked
				actual int64     // the entity's current version; -1: not checked
				do     func() error
			}
			ev := int64(staleVersion)
			cases := []stale{
				{"RenameTenant", tn.ID, tn.Version, func() error {
					_, err := s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "X", ExpectedVersion: ev})
					return err
				}},
				{"SuspendTenant", tn.ID, tn.Version, func() error {
					_, err := s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{ExpectedVersion: ev})
					return err
				}},
				{"UpdateUserProfile", w.user.ID, w.user.Version, func() error {
					_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: w.user.ID, DisplayName: "X", ExpectedVersion: ev})
					return err
				}},
				{"ChangeUserEmail", w.user.ID, w.user.Version, func() error {
					_, err := s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: w.user.ID, Email: newEmail(), ExpectedVersion: ev})
					return err
				}},
				{"DisableUser", w.user.ID, w.user.Version, func() error {
					_, err := s.DisableUser(f.ctx, &userstore.UserParams{ID: w.user.ID, ExpectedVersion: ev})
					return err
				}},
				{"EnableUser", w.disabled.ID, w.disabled.Version, func() error {
					_, err := s.EnableUser(f.ctx, &userstore.UserParams{ID: w.disabled.ID, ExpectedVersion: ev})
					return err
				}},
				{"DeleteUser", w.free.ID, w.free.Version, func() error {
					_, err := s.DeleteUser(f.ctx, &userstore.UserParams{ID: w.free.ID, ExpectedVersion: ev})
					return err
				}},
				{"RenameAccountLogin", w.account.ID, w.account.Version, func() error {
					_, err := s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: w.account.ID, LoginName: newLogin(), ExpectedVersion: ev})
					return err
				}},
				{"LockAccount", w.account.ID, w.account.Version, func() error {
					_, err := s.LockAccount(f.ctx, &userstore.AccountParams{ID: w.account.ID, ExpectedVersion: ev})
					return err
				}},
				{"UnlockAccount", w.locked.ID, w.locked.Version, func() error {
					_, err := s.UnlockAccount(f.ctx, &userstore.AccountParams{ID: w.locked.ID, ExpectedVersion: ev})
					return err
				}},
				{"CloseAccount", w.account.ID, w.account.Version, func() error {
					_, err := s.CloseAccount(f.ctx, &userstore.AccountParams{ID: w.account.ID, ExpectedVersion: ev})
					return err
				}},
				{"UnlinkIdentity", w.identity.ID, w.identity.Version, func() error {
					return s.UnlinkIdentity(f.ctx, &userstore.UnlinkIdentityParams{ID: w.identity.ID, ExpectedVersion: ev})
				}},
				{"UpdateApplication", w.app.ID, w.app.Version, func() error {
					_, err := s.UpdateApplication(f.ctx, &userstore.UpdateApplicationParams{ID: w.app.ID, Name: "X", Kind: userstore.AppWeb, ExpectedVersion: ev})
					return err
				}},
				{"DisableApplication", w.app.ID, w.app.Version, func() error {
					_, err := s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: w.app.ID, ExpectedVersion: ev})
					return err
				}},
				{"EnableApplication", w.disabledApp.ID, w.disabledApp.Version, func() error {
					_, err := s.EnableApplication(f.ctx, &userstore.ApplicationParams{ID: w.disabledApp.ID, ExpectedVersion: ev})
					return err
				}},
				{"DeleteApplication", w.app.ID, w.app.Version, func() error {
					_, err := s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: w.app.ID, ExpectedVersion: ev})
					return err
				}},
				{"ChangeBindingRoles", w.binding.ID, w.binding.Version, func() error {
					_, err := s.ChangeBindingRoles(f.ctx, &userstore.ChangeBindingRolesParams{ID: w.binding.ID, Roles: []string{"x"}, ExpectedVersion: ev})
					return err
				}},
				{"Unbind", w.binding.ID, w.binding.Version, func() error {
					return s.Unbind(f.ctx, &userstore.UnbindParams{ID: w.binding.ID, ExpectedVersion: ev})
				}},
				{"AddCatalogAttribute", w.catalog.ID, w.catalog.Version, func() error {
					_, err := s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: w.catalog.ID, Attribute: stringAttr("zz"), ExpectedVersion: ev})
					return err
				}},
				{"DeprecateCatalogAttribute", w.catalog.ID, w.catalog.Version, func() error {
					_, err := s.DeprecateCatalogAttribute(f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: w.catalog.ID, Key: "level", ExpectedVersion: ev})
					return err
				}},
				{"SetProfileValues", uuid.Nil, profile.Version, func() error {
					_, err := s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: w.user.ID, CatalogID: w.catalog.ID, Values: map[string]userstore.Value{"nickname": strV("x")}, ExpectedVersion: ev})
					return err
				}},
				{"ClearProfileValues", uuid.Nil, profile.Version, func() error {
					_, err := s.ClearProfileValues(f.ctx, &userstore.ClearProfileValuesParams{UserID: w.user.ID, CatalogID: w.catalog.ID, Keys: []string{"nickname"}, ExpectedVersion: ev})
					return err
				}},
				{"ChangeMemberRole", uuid.Nil, -1, func() error {
					_, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: w.user.ID, Role: userstore.RoleAdmin, ExpectedVersion: ev})
					return err
				}},
				{"RemoveMember", uuid.Nil, -1, func() error {
					return s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: w.user.ID, ExpectedVersion: ev})
				}},
				{"CloseTenant", tn.ID, tn.Version, func() error {
					_, err := s.CloseTenant(f.ctx, &userstore.TenantStatusParams{ExpectedVersion: ev})
					return err
				}},
			}
			tr := f.snapshot(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					err := c.do()
					require.ErrorIs(t, err, userstore.ErrConflict)
					var ve *userstore.VersionConflictError
					require.ErrorAs(t, err, &ve)
					require.Equal(t, int64(staleVersion), ve.Expected, "VersionConflictError.Expected")
					require.NotEmpty(t, ve.Entity, "VersionConflictError.Entity")
					if c.actual >= 0 {
						require.Equal(t, c.actual, ve.Actual, "VersionConflictError.Actual")
					}
					if c.id != uuid.Nil {
						require.Equal(t, c.id, ve.ID, "VersionConflictError.ID")
					}
				})
			}
			f.requireNoTrace(t, tr)
			require.Equal(t, tn.Version, f.getTenant(t).Version)
			require.Equal(t, userstore.TenantActive, f.getTenant(t).Status)
			require.Equal(t, w.user.Version, f.getUser(t, w.user.ID).Version)
			require.Equal(t, w.free.Version, f.getUser(t, w.free.ID).Version)
			require.Equal(t, w.account.Version, f.getAccount(t, w.account.ID).Version)
			require.Equal(t, w.app.Version, f.getApp(t, w.app.ID).Version)
			require.Equal(t, w.binding.Version, f.getBinding(t, w.binding.ID).Version)
			require.Equal(t, w.catalog.Version, f.getCatalog(t, w.catalog.ID).Version)
			require.Equal(t, profile.Version, f.getProfile(t, w.user.ID, w.catalog.ID).Version)
			require.Equal(t, ms.Version, f.getMembership(t, w.user.ID).Version)
			require.Len(t, f.identitiesOf(t, w.user.ID), 1)
		}},
		{"UserEntityNameInConflict", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "X", ExpectedVersion: 3})
			var ve *userstore.VersionConflictError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "user", ve.Entity)
			require.Equal(t, u.ID, ve.ID)
			require.Equal(t, int64(3), ve.Expected)
			require.Equal(t, int64(1), ve.Actual)
		}},
		{"MatchingExpectedVersionAccepted", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			got, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "X", ExpectedVersion: 1})
			require.NoError(t, err)
			require.Equal(t, int64(2), got.Version)
			tr := f.snapshot(t)
			_, err = s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Y", ExpectedVersion: 1})
			requireConflict(t, err, 2)
			require.Equal(t, "X", f.getUser(t, u.ID).DisplayName)
			f.requireNoTrace(t, tr)
			tn, err := s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "T2", ExpectedVersion: 1})
			require.NoError(t, err)
			require.Equal(t, int64(2), tn.Version)
			c := f.defineCatalog(t, stringAttr("a"))
			p, err := s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{"a": strV("1")}})
			require.NoError(t, err)
			p, err = s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{"a": strV("2")}, ExpectedVersion: p.Version})
			require.NoError(t, err)
			require.Equal(t, int64(2), p.Version)
		}},
		{"NegativeExpectedVersionRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			tr := f.snapshot(t)
			for _, m := range mutations() {
				if m.name == "CreateTenant" {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					err := m.do(mutCall{ctx: f.ctx, s: s, w: w, valid: false})
					require.ErrorIs(t, err, userstore.ErrValidation)
				})
			}
			_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: w.user.ID, DisplayName: "X", ExpectedVersion: -1})
			requireInvalid(t, err, "expected_version")
			_, err = s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "X", ExpectedVersion: -1})
			requireInvalid(t, err, "expected_version")
			_, err = s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: w.user.ID, CatalogID: w.catalog.ID, Values: map[string]userstore.Value{"nickname": strV("x")}, ExpectedVersion: -2})
			requireInvalid(t, err, "expected_version")
			f.requireNoTrace(t, tr)
			require.Equal(t, w.user.Version, f.getUser(t, w.user.ID).Version)
		}},
		{"ConcurrentUpdatesWithSameExpectedVersion", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			const n = 20
			var ok, conflicts atomic.Int32
			errs := make([]error, n)
			parallel(t, n, func(i int) {
				_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: fmt.Sprintf("Writer %d", i), ExpectedVersion: 1})
				var ve *userstore.VersionConflictError
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &ve) && ve.Actual == 2:
					conflicts.Add(1)
				default:
					errs[i] = err
				}
			})
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, int32(1), ok.Load(), "exactly one writer wins")
			require.Equal(t, int32(n-1), conflicts.Load(), "every other writer sees a conflict with actual version 2")
			require.Equal(t, int64(2), f.getUser(t, u.ID).Version)
			require.Len(t, recordsFor(f.audit(t), u.ID), 2, "one record for the create, one for the winning update")
		}},
	}
}
