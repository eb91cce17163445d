package storetest

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func identityCases() []testCase {
	return []testCase{
		{"LinkAndFind", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			subject := "Sub|" + rnd()
			id, err := s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: testIssuer, Subject: subject})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, id.ID)
			require.Equal(t, f.tenant.ID, id.TenantID)
			require.Equal(t, u.ID, id.UserID)
			require.Equal(t, testIssuer, id.Issuer)
			require.Equal(t, subject, id.Subject)
			require.Equal(t, int64(1), id.Version)
			found, err := s.FindUserByIdentity(f.ctx, testIssuer, subject)
			require.NoError(t, err)
			require.Equal(t, u.ID, found.ID)
			list := f.identitiesOf(t, u.ID)
			require.Len(t, list, 1)
			require.Equal(t, id.ID, list[0].ID)
			require.Equal(t, subject, list[0].Subject)
		}},
		{"IssuerSubjectUniquePerTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			u := f.createUser(t)
			v := f.createUser(t)
			subject := "subject-" + rnd()
			f.linkIdentityWith(t, u.ID, testIssuer, subject)
			tr := f.snapshot(t)
			_, err := s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: v.ID, Issuer: testIssuer, Subject: subject})
			requireDuplicate(t, err, userstore.KindExternalIdentity, subject)
			_, err = s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: testIssuer, Subject: subject})
			requireDuplicate(t, err, userstore.KindExternalIdentity, subject)
			require.Empty(t, f.identitiesOf(t, v.ID))
			f.requireNoTrace(t, tr)
			// another issuer, an exactly different subject, another tenant: all fine
			f.linkIdentityWith(t, v.ID, "https://other-idp.example.org", subject)
			f.linkIdentityWith(t, v.ID, testIssuer, strings.ToUpper(subject))
			g.linkIdentityWith(t, g.createUser(t).ID, testIssuer, subject)
			found, err := s.FindUserByIdentity(f.ctx, testIssuer, subject)
			require.NoError(t, err)
			require.Equal(t, u.ID, found.ID)
			found, err = s.FindUserByIdentity(f.ctx, testIssuer, strings.ToUpper(subject))
			require.NoError(t, err)
			require.Equal(t, v.ID, found.ID, "subjects are compared exactly")
		}},
		{"UnlinkReleasesPair", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			id := f.linkIdentity(t, u.ID)
			require.NoError(t, s.UnlinkIdentity(f.ctx, &userstore.UnlinkIdentityParams{ID: id.ID}))
			_, err := s.FindUserByIdentity(f.ctx, id.Issuer, id.Subject)
			requireNotFound(t, err)
			require.Empty(t, f.identitiesOf(t, u.ID))
			err = s.UnlinkIdentity(f.ctx, &userstore.UnlinkIdentityParams{ID: id.ID})
			requireNotFound(t, err, "unlinking twice")
			v := f.createUser(t)
			again := f.linkIdentityWith(t, v.ID, id.Issuer, id.Subject)
			require.NotEqual(t, id.ID, again.ID)
			found, err := s.FindUserByIdentity(f.ctx, id.Issuer, id.Subject)
			require.NoError(t, err)
			require.Equal(t, v.ID, found.ID)
		}},
		{"RequireActiveUserOfSameTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			disabled := f.createUser(t)
			f.disableUser(t, disabled.ID)
			foreign := g.createUser(t)
			tr := f.snapshot(t)
			link := func(userID uuid.UUID) error {
				_, err := s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: userID, Issuer: testIssuer, Subject: "sub-" + rnd()})
				return err
			}
			requirePrecondition(t, link(disabled.ID), userstore.ReasonUserInactive)
			requireNotFound(t, link(foreign.ID), "a user of another tenant")
			requireNotFound(t, link(userstore.NewID()), "a missing user")
			f.requireNoTrace(t, tr)
		}},
		{"IssuerMustBeAbsoluteHTTPURL", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			tr := f.snapshot(t)
			for _, issuer := range []string{
				"",
				"/realms/relative",
				"idp.example.com",
				"https://",
				"https:///path-only",
				"javascript:alert(1)",
				"ftp://idp.example.com",
				"https://idp.example.com/\x00",
				"https://idp.example.com/\xff",
				"https://idp.example.com/" + strings.Repeat("a", userstore.MaxURLLength),
			} {
				_, err := s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: issuer, Subject: "sub-" + rnd()})
				requireInvalid(t, err, "issuer", "issuer %q", issuer)
			}
			require.Empty(t, f.identitiesOf(t, u.ID))
			f.requireNoTrace(t, tr)
			f.linkIdentityWith(t, u.ID, "http://localhost:8080/realms/dev", "sub-"+rnd())
		}},
	}
}
