package storetest

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func appIDs(as []userstore.Application) []uuid.UUID {
	ids := make([]uuid.UUID, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

func applicationCases() []testCase {
	return []testCase{
		{"RegisterAndUpdate", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			key := "Portal_" + rnd() + ".web~1"
			a, err := s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Name: "Portal", ClientKey: key, Kind: userstore.AppWeb})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, a.ID)
			require.Equal(t, f.tenant.ID, a.TenantID)
			require.Equal(t, "Portal", a.Name)
			require.Equal(t, key, a.ClientKey)
			require.Equal(t, userstore.AppWeb, a.Kind)
			require.Equal(t, userstore.AppActive, a.Status)
			require.Equal(t, int64(1), a.Version)
			u, err := s.UpdateApplication(f.ctx, &userstore.UpdateApplicationParams{ID: a.ID, Name: "Portal 2", Kind: userstore.AppNative})
			require.NoError(t, err)
			require.Equal(t, "Portal 2", u.Name)
			require.Equal(t, userstore.AppNative, u.Kind)
			require.Equal(t, key, u.ClientKey)
			require.Equal(t, int64(2), u.Version)
			got := f.getApp(t, a.ID)
			require.Equal(t, "Portal 2", got.Name)
			require.Equal(t, userstore.AppNative, got.Kind)
			byKey, err := s.GetApplicationByClientKey(f.ctx, key)
			require.NoError(t, err)
			require.Equal(t, a.ID, byKey.ID)
		}},
		{"ClientKeyUniquePerTenantExact", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			key := "client-" + rnd()
			a := f.registerAppWith(t, key)
			tr := f.snapshot(t)
			_, err := s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Name: "Dup", ClientKey: key, Kind: userstore.AppService})
			requireDuplicate(t, err, userstore.KindClientKey, key)
			require.Len(t, f.apps(t, ""), 1)
			f.requireNoTrace(t, tr)
			upper := f.registerAppWith(t, strings.ToUpper(key))
			require.NotEqual(t, a.ID, upper.ID, "client keys are compared exactly")
			byKey, err := s.GetApplicationByClientKey(f.ctx, key)
			require.NoError(t, err)
			require.Equal(t, a.ID, byKey.ID)
			byKey, err = s.GetApplicationByClientKey(f.ctx, strings.ToUpper(key))
			require.NoError(t, err)
			require.Equal(t, upper.ID, byKey.ID)
			g.registerAppWith(t, key)
		}},
		{"DisableAndEnable", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			u := f.createUser(t)
			d, err := s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.AppDisabled, d.Status)
			require.Equal(t, int64(2), d.Version)
			tr := f.snapshot(t)
			_, err = s.Bind(f.ctx, &userstore.BindParams{ApplicationID: a.ID, UserID: u.ID, Roles: []string{"viewer"}})
			requirePrecondition(t, err, userstore.ReasonAppInactive)
			_, err = s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState, userstore.ReasonAppInactive)
			f.requireNoTrace(t, tr)
			e, err := s.EnableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.AppActive, e.Status)
			require.Equal(t, int64(3), e.Version)
			tr = f.snapshot(t)
			_, err = s.EnableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonInvalidState)
			f.requireNoTrace(t, tr)
			f.bind(t, a.ID, u.ID)
		}},
		{"DeleteReleasesClientKeyAndRemovesBindings", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			other := f.registerApp(t)
			u := f.createUser(t)
			v := f.createUser(t)
			b1 := f.bind(t, a.ID, u.ID)
			b2 := f.bind(t, a.ID, v.ID)
			keep := f.bind(t, other.ID, u.ID)
			before := len(f.audit(t))
			d, err := s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			require.NoError(t, err)
			require.Equal(t, userstore.AppDeleted, d.Status)
			require.Empty(t, d.ClientKey)
			require.Equal(t, int64(2), d.Version)
			got := f.getApp(t, a.ID)
			require.Equal(t, userstore.AppDeleted, got.Status)
			require.Empty(t, got.ClientKey, "a deleted application has no client key")
			_, err = s.GetApplicationByClientKey(f.ctx, a.ClientKey)
			requireNotFound(t, err)
			for _, b := range []*userstore.Binding{b1, b2} {
				_, err = s.GetBinding(f.ctx, b.ID)
				requireNotFound(t, err, "binding of a deleted application")
			}
			require.Empty(t, f.bindingsOfApp(t, a.ID))
			ub := f.bindingsOfUser(t, u.ID)
			require.Len(t, ub, 1)
			require.Equal(t, keep.ID, ub[0].ID)
			recs := f.audit(t)[before:]
			for _, id := range []uuid.UUID{a.ID, b1.ID, b2.ID} {
				require.NotEmpty(t, recordsFor(recs, id), "the delete leaves an audit record for %s", id)
			}
			again := f.registerAppWith(t, a.ClientKey)
			require.NotEqual(t, a.ID, again.ID)
			byKey, err := s.GetApplicationByClientKey(f.ctx, a.ClientKey)
			require.NoError(t, err)
			require.Equal(t, again.ID, byKey.ID)
		}},
		{"DeletedRefusesMutations", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			u := f.createUser(t)
			_, err := s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			require.NoError(t, err)
			tr := f.snapshot(t)
			_, err = s.UpdateApplication(f.ctx, &userstore.UpdateApplicationParams{ID: a.ID, Name: "Ghost", Kind: userstore.AppWeb})
			requirePrecondition(t, err, userstore.ReasonAppDeleted)
			_, err = s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAppDeleted)
			_, err = s.EnableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAppDeleted)
			_, err = s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			requirePrecondition(t, err, userstore.ReasonAppDeleted)
			_, err = s.Bind(f.ctx, &userstore.BindParams{ApplicationID: a.ID, UserID: u.ID, Roles: []string{"viewer"}})
			requirePrecondition(t, err, userstore.ReasonAppDeleted, userstore.ReasonAppInactive)
			got := f.getApp(t, a.ID)
			require.Equal(t, userstore.AppDeleted, got.Status)
			require.Equal(t, int64(2), got.Version)
			f.requireNoTrace(t, tr)
		}},
		{"ListExcludesDeletedByDefault", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			b := f.registerApp(t)
			c := f.registerApp(t)
			_, err := s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: b.ID})
			require.NoError(t, err)
			_, err = s.DeleteApplication(f.ctx, &userstore.ApplicationParams{ID: c.ID})
			require.NoError(t, err)
			require.Equal(t, []uuid.UUID{a.ID, b.ID}, appIDs(f.apps(t, "")), "default: active and disabled, in id order")
			require.Equal(t, []uuid.UUID{a.ID}, appIDs(f.apps(t, userstore.AppActive)))
			require.Equal(t, []uuid.UUID{b.ID}, appIDs(f.apps(t, userstore.AppDisabled)))
			require.Equal(t, []uuid.UUID{c.ID}, appIDs(f.apps(t, userstore.AppDeleted)))
		}},
	}
}
