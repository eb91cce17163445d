package storetest

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func userIDs(us []userstore.User) []uuid.UUID {
	ids := make([]uuid.UUID, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

func userCases() []testCase {
	return []testCase{
		{"CreateKeepsEmailAsGivenTrimmed", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			local := "Alice-" + rnd()
			u, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "Alice Example", Email: "  " + local + "@Example.COM \t"})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, u.ID)
			require.Equal(t, f.tenant.ID, u.TenantID)
			require.Equal(t, "Alice Example", u.DisplayName)
			require.Equal(t, local+"@Example.COM", u.Email, "the email is trimmed and kept as given otherwise")
			require.Equal(t, userstore.UserActive, u.Status)
			require.Equal(t, int64(1), u.Version)
			require.False(t, u.CreatedAt.IsZero())
			got := f.getUser(t, u.ID)
			require.Equal(t, u.Email, got.Email)
			require.Equal(t, u.DisplayName, got.DisplayName)
			require.Equal(t, u.Status, got.Status)
			require.Equal(t, u.Version, got.Version)
			require.True(t, sameTime(u.CreatedAt, got.CreatedAt))
		}},
		{"CreateWithExplicitID", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			id := userstore.NewID()
			u, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{ID: id, DisplayName: "Bob", Email: newEmail()})
			require.NoError(t, err)
			require.Equal(t, id, u.ID)
			require.Equal(t, id, f.getUser(t, id).ID)
		}},
		{"DuplicateIDRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			email := newEmail()
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{ID: u.ID, DisplayName: "Twin", Email: email})
			require.Error(t, err)
			if errors.Is(err, userstore.ErrDuplicate) {
				requireDuplicate(t, err, userstore.KindEntityID)
			} else {
				requirePrecondition(t, err, userstore.ReasonAlreadyExists)
			}
			got := f.getUser(t, u.ID)
			require.Equal(t, u.Email, got.Email)
			require.Equal(t, int64(1), got.Version)
			_, err = s.GetUserByEmail(f.ctx, email)
			requireNotFound(t, err, "the refused user's email was not claimed")
			f.requireNoTrace(t, tr)
		}},
		{"EmailUniquePerTenantAfterNormalization", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			local := "alice-" + rnd()
			u := f.createUserWith(t, local+"@example.com")
			tr := f.snapshot(t)
			variant := " " + strings.ToUpper(local[:1]) + local[1:] + "@Example.COM "
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "Alice Again", Email: variant})
			requireDuplicate(t, err, userstore.KindEmail, local)
			require.Equal(t, []uuid.UUID{u.ID}, userIDs(f.users(t, "")))
			f.requireNoTrace(t, tr)
		}},
		{"EmailUniqueAfterNFC", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			nfd := "e\u0301lise@x.io"
			nfc := "\u00e9lise@x.io"
			u := f.createUserWith(t, nfd)
			require.Equal(t, nfc, u.Email, "the email is stored NFC-normalized")
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "Élise", Email: nfc})
			requireDuplicate(t, err, userstore.KindEmail, nfc, nfd, "lise@x.io")
			got, err := s.GetUserByEmail(f.ctx, "E\u0301LISE@X.IO")
			require.NoError(t, err, "lookup by email normalizes NFC and case")
			require.Equal(t, u.ID, got.ID)
		}},
		{"SameEmailInAnotherTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			email := newEmail()
			a := f.createUserWith(t, email)
			b := g.createUserWith(t, strings.ToUpper(email))
			require.NotEqual(t, a.ID, b.ID)
			got, err := s.GetUserByEmail(f.ctx, email)
			require.NoError(t, err)
			require.Equal(t, a.ID, got.ID)
			got, err = s.GetUserByEmail(g.ctx, email)
			require.NoError(t, err)
			require.Equal(t, b.ID, got.ID)
		}},
		{"GetUserByEmailNormalizesInput", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			got, err := s.GetUserByEmail(f.ctx, "  "+strings.ToUpper(u.Email)+" ")
			require.NoError(t, err)
			require.Equal(t, u.ID, got.ID)
			_, err = s.GetUserByEmail(f.ctx, newEmail())
			requireNotFound(t, err)
		}},
		{"UpdateProfileBumpsVersion", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			got, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "New Name"})
			require.NoError(t, err)
			require.Equal(t, "New Name", got.DisplayName)
			require.Equal(t, int64(2), got.Version)
			require.Equal(t, u.Email, got.Email)
			require.False(t, got.UpdatedAt.Before(u.UpdatedAt))
			require.Equal(t, "New Name", f.getUser(t, u.ID).DisplayName)
		}},
		{"ChangeEmailReleasesOldEmail", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			old := u.Email
			next := newEmail()
			got, err := s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: u.ID, Email: next})
			require.NoError(t, err)
			require.Equal(t, next, got.Email)
			require.Equal(t, int64(2), got.Version)
			_, err = s.GetUserByEmail(f.ctx, old)
			requireNotFound(t, err, "the old email no longer finds the user")
			found, err := s.GetUserByEmail(f.ctx, next)
			require.NoError(t, err)
			require.Equal(t, u.ID, found.ID)
			v := f.createUserWith(t, strings.ToUpper(old))
			require.NotEqual(t, u.ID, v.ID, "the released email can be taken again")
		}},
		{"ChangeEmailToTakenEmailRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			b := f.createUser(t)
			tr := f.snapshot(t)
			_, err := s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: b.ID, Email: " " + strings.ToUpper(a.Email)})
			requireDuplicate(t, err, userstore.KindEmail, a.Email)
			got := f.getUser(t, b.ID)
			require.Equal(t, b.Email, got.Email)
			require.Equal(t, int64(1), got.Version)
			found, err := s.GetUserByEmail(f.ctx, b.Email)
			require.NoError(t, err, "the refused change kept b's email")
			require.Equal(t, b.ID, found.ID)
			f.requireNoTrace(t, tr)
		}},
		{"DisableAndEnable", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			d, err := s.DisableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.UserDisabled, d.Status)
			require.Equal(t, int64(2), d.Version)
			require.Equal(t, userstore.UserDisabled, f.getUser(t, u.ID).Status)
			e, err := s.EnableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.UserActive, e.Status)
			require.Equal(t, int64(3), e.Version)
			require.Equal(t, userstore.UserActive, f.getUser(t, u.ID).Status)
		}},
		{"RefusedTransitions", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			_, err := s.EnableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState)
			require.Equal(t, int64(1), f.getUser(t, u.ID).Version)
			f.requireNoTrace(t, tr)
			f.disableUser(t, u.ID)
			tr = f.snapshot(t)
			_, err = s.DisableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState, userstore.ReasonUserInactive)
			require.Equal(t, int64(2), f.getUser(t, u.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"DeleteLeavesTombstone", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			d, err := s.DeleteUser(f.ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, u.ID, d.ID)
			require.Equal(t, userstore.UserDeleted, d.Status)
			require.Empty(t, d.Email)
			require.Equal(t, int64(2), d.Version)
			got := f.getUser(t, u.ID)
			require.Equal(t, userstore.UserDeleted, got.Status)
			require.Empty(t, got.Email, "a tombstone has no email")
			_, err = s.GetUserByEmail(f.ctx, u.Email)
			requireNotFound(t, err)
		}},
		{"DeleteDisabledUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.disableUser(t, u.ID)
			d, err := s.DeleteUser(f.ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.UserDeleted, d.Status)
			require.Equal(t, int64(3), d.Version)
		}},
		{"DeletedUserRefusesMutations", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.deleteUser(t, u.ID)
			app := f.registerApp(t)
			tr := f.snapshot(t)
			_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Ghost"})
			requirePrecondition(t, err, userstore.ReasonUserDeleted)
			_, err = s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: u.ID, Email: newEmail()})
			requirePrecondition(t, err, userstore.ReasonUserDeleted)
			_, err = s.DisableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			requirePrecondition(t, err, userstore.ReasonUserDeleted)
			_, err = s.EnableUser(f.ctx, &userstore.UserParams{ID: u.ID})
			requirePrecondition(t, err, userstore.ReasonUserDeleted)
			_, err = s.DeleteUser(f.ctx, &userstore.UserParams{ID: u.ID})
			requirePrecondition(t, err, userstore.ReasonUserDeleted)
			_, err = s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: newLogin(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
			requirePrecondition(t, err, userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			_, err = s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: testIssuer, Subject: "sub-" + rnd()})
			requirePrecondition(t, err, userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			_, err = s.Bind(f.ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: u.ID, Roles: []string{"viewer"}})
			requirePrecondition(t, err, userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			_, err = s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleMember})
			requirePrecondition(t, err, userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			got := f.getUser(t, u.ID)
			require.Equal(t, userstore.UserDeleted, got.Status)
			require.Equal(t, int64(2), got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"DeleteReleasesEmail", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.deleteUser(t, u.ID)
			v := f.createUserWith(t, u.Email)
			require.NotEqual(t, u.ID, v.ID)
			found, err := s.GetUserByEmail(f.ctx, u.Email)
			require.NoError(t, err)
			require.Equal(t, v.ID, found.ID)
		}},
		{"ListExcludesDeletedByDefault", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			b := f.createUser(t)
			c := f.createUser(t)
			f.disableUser(t, b.ID)
			f.deleteUser(t, c.ID)
			require.Equal(t, []uuid.UUID{a.ID, b.ID}, userIDs(f.users(t, "")), "default: active and disabled, in id order")
			require.Equal(t, []uuid.UUID{a.ID}, userIDs(f.users(t, userstore.UserActive)))
			require.Equal(t, []uuid.UUID{b.ID}, userIDs(f.users(t, userstore.UserDisabled)))
			deleted := f.users(t, userstore.UserDeleted)
			require.Equal(t, []uuid.UUID{c.ID}, userIDs(deleted))
			require.Empty(t, deleted[0].Email)
		}},
		{"DeleteCascades", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			owner := f.createUser(t)
			f.addMember(t, owner.ID, userstore.RoleOwner)
			u := f.createUser(t)
			f.addMember(t, u.ID, userstore.RoleOwner) // not the last owner: owner stays
			acc1 := f.openAccount(t, u.ID)
			acc2 := f.openAccount(t, u.ID)
			_, err := s.LockAccount(f.ctx, &userstore.AccountParams{ID: acc2.ID})
			require.NoError(t, err)
			ident := f.linkIdentity(t, u.ID)
			app := f.registerApp(t)
			b := f.bind(t, app.ID, u.ID, "admin")
			keep := f.bind(t, app.ID, owner.ID, "admin")
			cat := f.defineCatalog(t, stringAttr("nickname"))
			f.setValues(t, u.ID, cat.ID, map[string]userstore.Value{"nickname": userstore.StringValue("ace")})
			before := len(f.audit(t))

			d, err := s.DeleteUser(f.ctx, &userstore.UserParams{ID: u.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.UserDeleted, d.Status)

			// email released
			_, err = s.GetUserByEmail(f.ctx, u.Email)
			requireNotFound(t, err)
			// accounts closed, logins released
			for _, a := range []*userstore.Account{acc1, acc2} {
				require.Equal(t, userstore.AccountClosed, f.getAccount(t, a.ID).Status)
				_, err = s.GetAccountByLogin(f.ctx, a.LoginName)
				requireNotFound(t, err, "login of a closed account")
			}
			// identities unlinked
			_, err = s.FindUserByIdentity(f.ctx, ident.Issuer, ident.Subject)
			requireNotFound(t, err)
			require.Empty(t, f.identitiesOf(t, u.ID))
			// bindings removed
			_, err = s.GetBinding(f.ctx, b.ID)
			requireNotFound(t, err)
			require.Empty(t, f.bindingsOfUser(t, u.ID))
			appBindings := f.bindingsOfApp(t, app.ID)
			require.Len(t, appBindings, 1)
			require.Equal(t, keep.ID, appBindings[0].ID)
			// membership removed
			_, err = s.GetMembership(f.ctx, u.ID)
			requireNotFound(t, err)
			for _, m := range f.members(t, "") {
				require.NotEqual(t, u.ID, m.UserID)
			}
			// profile cleared
			p := f.getProfile(t, u.ID, cat.ID)
			require.Empty(t, p.Values)
			// every cascaded change is audited
			recs := f.audit(t)[before:]
			for _, id := range []uuid.UUID{u.ID, acc1.ID, acc2.ID, ident.ID, b.ID} {
				require.NotEmpty(t, recordsFor(recs, id), "the cascade leaves an audit record for %s", id)
			}
			// released values can be taken again
			v := f.createUserWith(t, u.Email)
			f.openAccountWith(t, v.ID, acc1.LoginName)
			f.openAccountWith(t, v.ID, acc2.LoginName)
			f.linkIdentityWith(t, v.ID, ident.Issuer, ident.Subject)
			f.addMember(t, v.ID, userstore.RoleMember)
			f.bind(t, app.ID, v.ID)
		}},
		{"DeleteLastOwnerRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			owner := f.createUser(t)
			f.addMember(t, owner.ID, userstore.RoleOwner)
			acc := f.openAccount(t, owner.ID)
			app := f.registerApp(t)
			b := f.bind(t, app.ID, owner.ID)
			tr := f.snapshot(t)
			_, err := s.DeleteUser(f.ctx, &userstore.UserParams{ID: owner.ID})
			requirePrecondition(t, err, userstore.ReasonLastOwner)
			got := f.getUser(t, owner.ID)
			require.Equal(t, userstore.UserActive, got.Status)
			require.Equal(t, owner.Email, got.Email)
			require.Equal(t, owner.Version, got.Version)
			found, err := s.GetUserByEmail(f.ctx, owner.Email)
			require.NoError(t, err)
			require.Equal(t, owner.ID, found.ID)
			require.Equal(t, userstore.AccountActive, f.getAccount(t, acc.ID).Status)
			require.Equal(t, b.Version, f.getBinding(t, b.ID).Version)
			require.Equal(t, userstore.RoleOwner, f.getMembership(t, owner.ID).Role)
			f.requireNoTrace(t, tr)
			// with a second owner, the first can be deleted
			second := f.createUser(t)
			f.addMember(t, second.ID, userstore.RoleOwner)
			f.deleteUser(t, owner.ID)
			owners := f.members(t, userstore.RoleOwner)
			require.Len(t, owners, 1)
			require.Equal(t, second.ID, owners[0].UserID)
		}},
		{"ConcurrentCreatesWithSameEmail", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			email := newEmail()
			const n = 20
			var ok, dup atomic.Int32
			errs := make([]error, n)
			parallel(t, n, func(i int) {
				_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "Racer", Email: email})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, userstore.ErrDuplicate):
					dup.Add(1)
				default:
					errs[i] = err
				}
			})
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, int32(1), ok.Load(), "exactly one create wins")
			require.Equal(t, int32(n-1), dup.Load())
			require.Len(t, f.users(t, ""), 1)
		}},
	}
}
