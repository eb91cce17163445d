package storetest

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func accountCases() []testCase {
	return []testCase{
		{"OpenForActiveUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			login := "Bob.Smith-" + rnd()
			a, err := s.OpenAccount(f.ctx, &userstore.OpenAccountParams{
				UserID: u.ID, LoginName: "  " + login + " ", Kind: userstore.AccountPasskey, CredentialRef: "vault:kv/passkeys/1",
			})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, a.ID)
			require.Equal(t, f.tenant.ID, a.TenantID)
			require.Equal(t, u.ID, a.UserID)
			require.Equal(t, login, a.LoginName, "the login name is trimmed and kept as given otherwise")
			require.Equal(t, userstore.AccountPasskey, a.Kind)
			require.Equal(t, userstore.AccountActive, a.Status)
			require.Equal(t, "vault:kv/passkeys/1", a.CredentialRef)
			require.Equal(t, int64(1), a.Version)
			got := f.getAccount(t, a.ID)
			require.Equal(t, a.LoginName, got.LoginName)
			require.Equal(t, a.Kind, got.Kind)
			require.Equal(t, a.CredentialRef, got.CredentialRef)
			byLogin, err := s.GetAccountByLogin(f.ctx, strings.ToUpper(login))
			require.NoError(t, err, "lookup by login normalizes case")
			require.Equal(t, a.ID, byLogin.ID)
		}},
		{"OpenWithExplicitID", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			id := userstore.NewID()
			a, err := s.OpenAccount(f.ctx, &userstore.OpenAccountParams{ID: id, UserID: u.ID, LoginName: newLogin(), Kind: userstore.AccountService, CredentialRef: "vault:x"})
			require.NoError(t, err)
			require.Equal(t, id, a.ID)
		}},
		{"LoginUniquePerTenantAfterNormalization", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			v := f.createUser(t)
			login := "carol-" + rnd()
			f.openAccountWith(t, u.ID, login)
			tr := f.snapshot(t)
			_, err := s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: v.ID, LoginName: " " + strings.ToUpper(login) + " ", Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
			requireDuplicate(t, err, userstore.KindLoginName, login)
			require.Empty(t, f.accountsOf(t, v.ID))
			f.requireNoTrace(t, tr)
			nfd := "jose\u0301-" + rnd()
			f.openAccountWith(t, u.ID, nfd)
			_, err = s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: v.ID, LoginName: strings.Replace(nfd, "e\u0301", "\u00e9", 1), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
			requireDuplicate(t, err, userstore.KindLoginName, nfd)
		}},
		{"SameLoginInAnotherTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			login := newLogin()
			a := f.openAccountWith(t, f.createUser(t).ID, login)
			b := g.openAccountWith(t, g.createUser(t).ID, login)
			got, err := s.GetAccountByLogin(f.ctx, login)
			require.NoError(t, err)
			require.Equal(t, a.ID, got.ID)
			got, err = s.GetAccountByLogin(g.ctx, login)
			require.NoError(t, err)
			require.Equal(t, b.ID, got.ID)
		}},
		{"RequireActiveUserOfSameTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			disabled := f.createUser(t)
			f.disableUser(t, disabled.ID)
			deleted := f.createUser(t)
			f.deleteUser(t, deleted.ID)
			foreign := g.createUser(t)
			tr := f.snapshot(t)
			open := func(userID uuid.UUID) error {
				_, err := s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: userID, LoginName: newLogin(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
				return err
			}
			requirePrecondition(t, open(disabled.ID), userstore.ReasonUserInactive)
			requirePrecondition(t, open(deleted.ID), userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			requireNotFound(t, open(foreign.ID), "a user of another tenant")
			requireNotFound(t, open(userstore.NewID()), "a missing user")
			require.Empty(t, f.accountsOf(t, disabled.ID))
			f.requireNoTrace(t, tr)
		}},
		{"LockUnlockClose", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.openAccount(t, f.createUser(t).ID)
			l, err := s.LockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.AccountLocked, l.Status)
			require.Equal(t, int64(2), l.Version)
			byLogin, err := s.GetAccountByLogin(f.ctx, a.LoginName)
			require.NoError(t, err, "a locked account is open and found by login")
			require.Equal(t, userstore.AccountLocked, byLogin.Status)
			un, err := s.UnlockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.AccountActive, un.Status)
			require.Equal(t, int64(3), un.Version)
			_, err = s.LockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			c, err := s.CloseAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err, "a locked account can be closed")
			require.Equal(t, userstore.AccountClosed, c.Status)
			require.Equal(t, int64(5), c.Version)
			require.Equal(t, userstore.AccountClosed, f.getAccount(t, a.ID).Status)
		}},
		{"RefusedTransitions", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.openAccount(t, f.createUser(t).ID)
			tr := f.snapshot(t)
			_, err := s.UnlockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState)
			require.Equal(t, int64(1), f.getAccount(t, a.ID).Version)
			f.requireNoTrace(t, tr)
			_, err = s.LockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			tr = f.snapshot(t)
			_, err = s.LockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState)
			require.Equal(t, int64(2), f.getAccount(t, a.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"ClosedIsTerminal", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.openAccount(t, f.createUser(t).ID)
			_, err := s.CloseAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			tr := f.snapshot(t)
			_, err = s.LockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAccountClosed)
			_, err = s.UnlockAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAccountClosed)
			_, err = s.CloseAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAccountClosed)
			_, err = s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: a.ID, LoginName: newLogin()})
			requirePrecondition(t, err, userstore.ReasonAccountClosed)
			got := f.getAccount(t, a.ID)
			require.Equal(t, userstore.AccountClosed, got.Status)
			require.Equal(t, int64(2), got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"CloseReleasesLogin", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			a := f.openAccount(t, u.ID)
			_, err := s.CloseAccount(f.ctx, &userstore.AccountParams{ID: a.ID})
			require.NoError(t, err)
			_, err = s.GetAccountByLogin(f.ctx, a.LoginName)
			requireNotFound(t, err, "a closed account is not found by login")
			b := f.openAccountWith(t, u.ID, strings.ToUpper(a.LoginName))
			got, err := s.GetAccountByLogin(f.ctx, a.LoginName)
			require.NoError(t, err)
			require.Equal(t, b.ID, got.ID)
		}},
		{"RenameLoginReleasesOldName", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			a := f.openAccount(t, u.ID)
			next := newLogin()
			r, err := s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: a.ID, LoginName: next})
			require.NoError(t, err)
			require.Equal(t, next, r.LoginName)
			require.Equal(t, int64(2), r.Version)
			_, err = s.GetAccountByLogin(f.ctx, a.LoginName)
			requireNotFound(t, err)
			got, err := s.GetAccountByLogin(f.ctx, next)
			require.NoError(t, err)
			require.Equal(t, a.ID, got.ID)
			f.openAccountWith(t, u.ID, a.LoginName)
		}},
		{"RenameLoginToTakenNameRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			a := f.openAccount(t, u.ID)
			b := f.openAccount(t, u.ID)
			tr := f.snapshot(t)
			_, err := s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: b.ID, LoginName: strings.ToUpper(a.LoginName)})
			requireDuplicate(t, err, userstore.KindLoginName, a.LoginName)
			got := f.getAccount(t, b.ID)
			require.Equal(t, b.LoginName, got.LoginName)
			require.Equal(t, int64(1), got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"ListByUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			v := f.createUser(t)
			a1 := f.openAccount(t, u.ID)
			f.openAccount(t, v.ID)
			a2 := f.openAccount(t, u.ID)
			_, err := s.CloseAccount(f.ctx, &userstore.AccountParams{ID: a2.ID})
			require.NoError(t, err)
			got := f.accountsOf(t, u.ID)
			require.Len(t, got, 2, "a user's accounts, closed ones included")
			require.Equal(t, a1.ID, got[0].ID)
			require.Equal(t, a2.ID, got[1].ID)
			require.Equal(t, userstore.AccountClosed, got[1].Status)
			for _, a := range got {
				require.Equal(t, u.ID, a.UserID)
			}
		}},
	}
}
