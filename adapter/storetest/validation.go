package storetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// badText returns the values every bounded free-text field refuses: empty, one character over maxChars
// characters, invalid UTF-8 and an embedded NUL.
func badText(maxChars int) map[string]string {
	return map[string]string{
		"empty":         "",
		"too long":      strings.Repeat("é", maxChars+1),
		"invalid utf-8": "bad\xffvalue",
		"nul byte":      "nul\x00value",
	}
}

func validationCases() []testCase {
	return []testCase{
		{"TenantSlug", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for _, slug := range []string{"", "ab", "a_b_c", "has space", "acme!", "ünïcode", "bad\xffslug", "nul\x00slug", strings.Repeat("a", 64)} {
				ctx := userstore.WithTenant(f.ctx, userstore.NewID())
				_, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: slug, Name: "Acme"})
				requireInvalid(t, err, "slug", "slug %q", slug)
				_, err = s.GetTenant(ctx)
				requireNotFound(t, err, "no tenant was created for slug %q", slug)
			}
			for _, slug := range []string{"a" + rnd()[:2], "b" + (rnd() + rnd() + rnd() + rnd())[:62]} {
				_, err := s.CreateTenant(userstore.WithTenant(f.ctx, userstore.NewID()), &userstore.CreateTenantParams{Slug: slug, Name: "Acme"})
				if err != nil {
					// a short random slug may be taken by an earlier run on a shared store
					requireDuplicate(t, err, userstore.KindTenantSlug)
				}
			}
		}},
		{"TenantName", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			for what, name := range badText(userstore.MaxNameLength) {
				ctx := userstore.WithTenant(f.ctx, userstore.NewID())
				_, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + rnd(), Name: name})
				requireInvalid(t, err, "name", "create: %s", what)
				_, err = s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: name})
				requireInvalid(t, err, "name", "rename: %s", what)
			}
			require.Equal(t, f.tenant.Name, f.getTenant(t).Name)
			require.Equal(t, f.tenant.Version, f.getTenant(t).Version)
			f.requireNoTrace(t, tr)
			tn, err := s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: strings.Repeat("é", userstore.MaxNameLength)})
			require.NoError(t, err, "MaxNameLength characters (of two bytes each) are fine")
			require.Equal(t, strings.Repeat("é", userstore.MaxNameLength), tn.Name)
		}},
		{"TenantStatusReason", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			for _, reason := range []string{strings.Repeat("r", userstore.MaxNameLength+1), "bad\xffreason", "nul\x00reason"} {
				_, err := s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{Reason: reason})
				requireInvalid(t, err, "reason")
				_, err = s.CloseTenant(f.ctx, &userstore.TenantStatusParams{Reason: reason})
				requireInvalid(t, err, "reason")
			}
			got := f.getTenant(t)
			require.Equal(t, userstore.TenantActive, got.Status)
			require.Equal(t, f.tenant.Version, got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"UserDisplayName", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			for what, name := range badText(userstore.MaxNameLength) {
				_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: name, Email: newEmail()})
				requireInvalid(t, err, "display_name", "create: %s", what)
				_, err = s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: name})
				requireInvalid(t, err, "display_name", "update: %s", what)
			}
			require.Len(t, f.users(t, ""), 1)
			require.Equal(t, int64(1), f.getUser(t, u.ID).Version)
			f.requireNoTrace(t, tr)
			got, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: strings.Repeat("é", userstore.MaxNameLength)})
			require.NoError(t, err, "MaxNameLength characters are fine")
			require.Equal(t, strings.Repeat("é", userstore.MaxNameLength), got.DisplayName)
		}},
		{"UserEmail", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			for _, email := range []string{
				"", "   ", "no-at-sign", "a b@example.com", "alice@exa mple.com", "@example.com", "alice@",
				"bad\xff@example.com", "nul\x00@example.com", strings.Repeat("a", userstore.MaxEmailLength) + "@example.com",
			} {
				_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "A", Email: email})
				requireInvalid(t, err, "email", "create with %q", email)
				_, err = s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: u.ID, Email: email})
				requireInvalid(t, err, "email", "change to %q", email)
			}
			require.Len(t, f.users(t, ""), 1)
			got := f.getUser(t, u.ID)
			require.Equal(t, u.Email, got.Email)
			require.Equal(t, int64(1), got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"AccountFields", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			a := f.openAccount(t, u.ID)
			tr := f.snapshot(t)
			open := func(login string, kind userstore.AccountKind, ref string) error {
				_, err := s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: u.ID, LoginName: login, Kind: kind, CredentialRef: ref})
				return err
			}
			for what, login := range badText(userstore.MaxLoginNameLength) {
				requireInvalid(t, open(login, userstore.AccountPassword, "vault:x"), "login_name", "open: %s", what)
				_, err := s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: a.ID, LoginName: login})
				requireInvalid(t, err, "login_name", "rename: %s", what)
			}
			for _, kind := range []userstore.AccountKind{"", "magic"} {
				requireInvalid(t, open(newLogin(), kind, "vault:x"), "kind", "kind %q", kind)
			}
			for _, ref := range []string{strings.Repeat("r", userstore.MaxCredentialRef+1), "bad\xffref", "nul\x00ref"} {
				requireInvalid(t, open(newLogin(), userstore.AccountPassword, ref), "credential_ref")
			}
			require.Len(t, f.accountsOf(t, u.ID), 1)
			require.Equal(t, int64(1), f.getAccount(t, a.ID).Version)
			f.requireNoTrace(t, tr)
			long := strings.Repeat("é", userstore.MaxLoginNameLength)
			require.NoError(t, open(long, userstore.AccountPassword, strings.Repeat("r", userstore.MaxCredentialRef)), "limits are inclusive")
		}},
		{"IdentitySubject", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			for _, subject := range []string{"", strings.Repeat("s", userstore.MaxSubjectLength+1), "bad\xffsubject", "nul\x00subject"} {
				_, err := s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: testIssuer, Subject: subject})
				requireInvalid(t, err, "subject", "subject %q", subject)
			}
			require.Empty(t, f.identitiesOf(t, u.ID))
			f.requireNoTrace(t, tr)
			f.linkIdentityWith(t, u.ID, testIssuer, strings.Repeat("s", userstore.MaxSubjectLength))
		}},
		{"ApplicationFields", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			tr := f.snapshot(t)
			register := func(name, key string, kind userstore.ApplicationKind) error {
				_, err := s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Name: name, ClientKey: key, Kind: kind})
				return err
			}
			for what, name := range badText(userstore.MaxNameLength) {
				requireInvalid(t, register(name, newClientKey(), userstore.AppWeb), "name", "register: %s", what)
				_, err := s.UpdateApplication(f.ctx, &userstore.UpdateApplicationParams{ID: a.ID, Name: name, Kind: userstore.AppWeb})
				requireInvalid(t, err, "name", "update: %s", what)
			}
			for _, key := range []string{"", "has space", "slash/key", "ключ", "bad\xffkey", "nul\x00key", strings.Repeat("k", userstore.MaxKeyLength+1)} {
				requireInvalid(t, register("App", key, userstore.AppWeb), "client_key", "client key %q", key)
			}
			for _, kind := range []userstore.ApplicationKind{"", "desktop"} {
				requireInvalid(t, register("App", newClientKey(), kind), "kind", "kind %q", kind)
				_, err := s.UpdateApplication(f.ctx, &userstore.UpdateApplicationParams{ID: a.ID, Name: "App", Kind: kind})
				requireInvalid(t, err, "kind", "update kind %q", kind)
			}
			require.Len(t, f.apps(t, ""), 1)
			require.Equal(t, int64(1), f.getApp(t, a.ID).Version)
			f.requireNoTrace(t, tr)
			require.NoError(t, register("App", "Az09._~-"+rnd(), userstore.AppService))
			require.NoError(t, register("App", strings.Repeat("k", userstore.MaxKeyLength), userstore.AppService))
		}},
		{"CatalogName", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			for what, name := range badText(userstore.MaxNameLength) {
				_, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: name, Attributes: []userstore.Attribute{stringAttr("a")}})
				requireInvalid(t, err, "name", what)
			}
			require.Empty(t, f.catalogs(t))
			f.requireNoTrace(t, tr)
		}},
		{"UnknownStatusFilters", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			_, err := s.ListUsers(f.ctx, &userstore.ListUsersParams{Status: "zombie"})
			requireInvalid(t, err, "status")
			_, err = s.ListApplications(f.ctx, &userstore.ListApplicationsParams{Status: "gone"})
			requireInvalid(t, err, "status")
			_, err = s.ListMembers(f.ctx, &userstore.ListMembersParams{Role: "god"})
			requireInvalid(t, err, "role")
		}},
		{"RequestID", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			long := strings.Repeat("q", userstore.MaxKeyLength+1)
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{RequestID: long}, DisplayName: "A", Email: newEmail()})
			requireInvalid(t, err, "request_id")
			_, err = s.CreateUser(userstore.WithRequestID(f.ctx, long), &userstore.CreateUserParams{DisplayName: "A", Email: newEmail()})
			requireInvalid(t, err, "request_id")
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{RequestID: "bad\xffid"}, DisplayName: "A", Email: newEmail()})
			requireInvalid(t, err, "request_id")
			require.Empty(t, f.users(t, ""))
			f.requireNoTrace(t, tr)
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{RequestID: strings.Repeat("q", userstore.MaxKeyLength)}, DisplayName: "A", Email: newEmail()})
			require.NoError(t, err, "MaxKeyLength bytes are fine")
		}},
		{"ErrorsNeverCarryValues", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			secret := "Sekr1t-" + rnd()
			_, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "A", Email: secret})
			requireInvalid(t, err, "email")
			requireNoLeak(t, err, secret)
			_, err = s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: strings.Repeat(secret, 30), Email: newEmail()})
			requireInvalid(t, err, "display_name")
			requireNoLeak(t, err, secret)
			_, err = s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: f.createUser(t).ID, Issuer: "javascript:" + secret, Subject: "x"})
			requireInvalid(t, err, "issuer")
			requireNoLeak(t, err, secret)
		}},
	}
}
