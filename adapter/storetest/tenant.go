package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func tenantCases() []testCase {
	return []testCase{
		{"CreateNormalizesSlug", func(t *testing.T, s userstore.Store) {
			id := userstore.NewID()
			suffix := rnd()
			ctx := userstore.WithActor(userstore.WithTenant(t.Context(), id), userstore.Actor{Type: userstore.ActorSystem, ID: "setup"})
			tn, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "  T-" + strings.ToUpper(suffix) + " ", Name: "Acme"})
			require.NoError(t, err)
			require.Equal(t, id, tn.ID)
			require.Equal(t, "t-"+suffix, tn.Slug)
			require.Equal(t, "Acme", tn.Name)
			require.Equal(t, userstore.TenantActive, tn.Status)
			require.Equal(t, int64(1), tn.Version)
			require.False(t, tn.CreatedAt.IsZero())
			require.False(t, tn.UpdatedAt.Before(tn.CreatedAt))
			got, err := s.GetTenant(ctx)
			require.NoError(t, err)
			require.Equal(t, tn.ID, got.ID)
			require.Equal(t, tn.Slug, got.Slug)
			require.Equal(t, tn.Version, got.Version)
			require.True(t, sameTime(tn.CreatedAt, got.CreatedAt))
		}},
		{"CreateWithTenantIDInParams", func(t *testing.T, s userstore.Store) {
			id := userstore.NewID()
			ctx := userstore.WithActor(t.Context(), userstore.Actor{Type: userstore.ActorSystem, ID: "setup"})
			tn, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Mutation: userstore.Mutation{TenantID: id}, Slug: "t-" + rnd(), Name: "Acme"})
			require.NoError(t, err)
			require.Equal(t, id, tn.ID)
			got, err := s.GetTenant(userstore.WithTenant(t.Context(), id))
			require.NoError(t, err)
			require.Equal(t, tn.Slug, got.Slug)
		}},
		{"SlugUniqueGloballyAfterNormalization", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			id := userstore.NewID()
			ctx := userstore.WithActor(userstore.WithTenant(t.Context(), id), f.actor)
			upper := " " + strings.ToUpper(f.tenant.Slug) + " "
			_, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: upper, Name: "Copycat"})
			requireDuplicate(t, err, userstore.KindTenantSlug, f.tenant.Slug)
			_, err = s.GetTenant(userstore.WithTenant(t.Context(), id))
			requireNotFound(t, err, "the refused tenant was not created")
			got, err := s.GetTenantBySlug(t.Context(), f.tenant.Slug)
			require.NoError(t, err)
			require.Equal(t, f.tenant.ID, got.ID)
		}},
		{"DuplicateTenantIDRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			slug := "t-" + rnd()
			_, err := s.CreateTenant(f.ctx, &userstore.CreateTenantParams{Slug: slug, Name: "Again"})
			require.Error(t, err)
			if errors.Is(err, userstore.ErrDuplicate) {
				requireDuplicate(t, err, userstore.KindEntityID)
			} else {
				requirePrecondition(t, err, userstore.ReasonAlreadyExists)
			}
			got := f.getTenant(t)
			require.Equal(t, f.tenant.Slug, got.Slug)
			require.Equal(t, f.tenant.Version, got.Version)
			_, err = s.GetTenantBySlug(t.Context(), slug)
			requireNotFound(t, err, "the refused slug was not claimed")
			f.requireNoTrace(t, tr)
		}},
		{"GetTenantBySlugNeedsNoTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			got, err := s.GetTenantBySlug(t.Context(), f.tenant.Slug)
			require.NoError(t, err)
			require.Equal(t, f.tenant.ID, got.ID)
			got, err = s.GetTenantBySlug(t.Context(), " "+strings.ToUpper(f.tenant.Slug)+" ")
			require.NoError(t, err, "the slug is looked up after normalization")
			require.Equal(t, f.tenant.ID, got.ID)
			got, err = s.GetTenantBySlug(f.ctx, f.tenant.Slug)
			require.NoError(t, err, "the context's own tenant is found")
			require.Equal(t, f.tenant.ID, got.ID)
			_, err = s.GetTenantBySlug(t.Context(), "t-"+rnd())
			requireNotFound(t, err)
		}},
		{"RenameBumpsVersion", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tn, err := s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "Renamed Inc."})
			require.NoError(t, err)
			require.Equal(t, "Renamed Inc.", tn.Name)
			require.Equal(t, f.tenant.Slug, tn.Slug, "renaming keeps the slug")
			require.Equal(t, int64(2), tn.Version)
			require.False(t, tn.UpdatedAt.Before(f.tenant.UpdatedAt))
			got := f.getTenant(t)
			require.Equal(t, "Renamed Inc.", got.Name)
			require.Equal(t, int64(2), got.Version)
		}},
		{"SuspendAndReactivate", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tn, err := s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{Reason: "unpaid invoice"})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantSuspended, tn.Status)
			require.Equal(t, int64(2), tn.Version)
			require.Equal(t, userstore.TenantSuspended, f.getTenant(t).Status)
			tn, err = s.ReactivateTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantActive, tn.Status)
			require.Equal(t, int64(3), tn.Version)
			require.Equal(t, userstore.TenantActive, f.getTenant(t).Status)
		}},
		{"RefusedTransitions", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			_, err := s.ReactivateTenant(f.ctx, &userstore.TenantStatusParams{})
			requirePrecondition(t, err, userstore.ReasonInvalidState)
			f.requireNoTrace(t, tr)
			_, err = s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			tr = f.snapshot(t)
			_, err = s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			requirePrecondition(t, err, userstore.ReasonInvalidState, userstore.ReasonTenantInactive)
			require.Equal(t, int64(2), f.getTenant(t).Version)
			f.requireNoTrace(t, tr)
		}},
		{"SuspendedTenantRefusesEntityMutations", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			_, err := s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			tr := f.snapshot(t)
			for _, m := range mutations() {
				if m.kind != kindEntity {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					err := m.do(mutCall{ctx: f.ctx, s: s, w: w, valid: true})
					requirePrecondition(t, err, userstore.ReasonTenantInactive)
				})
			}
			f.requireNoTrace(t, tr)
			for _, r := range reads() {
				require.NoError(t, r.do(f.ctx, s, w), "%s works in a suspended tenant", r.name)
			}
			require.Equal(t, w.user.Version, f.getUser(t, w.user.ID).Version)
		}},
		{"SuspendedTenantAllowsRenameReactivateClose", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			_, err := s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			tn, err := s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "Still Here"})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantSuspended, tn.Status)
			require.Equal(t, "Still Here", tn.Name)
			tn, err = s.ReactivateTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantActive, tn.Status)
			_, err = s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			tn, err = s.CloseTenant(f.ctx, &userstore.TenantStatusParams{Reason: "contract ended"})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantClosed, tn.Status)
			require.Equal(t, int64(6), tn.Version)
		}},
		{"CloseIsTerminal", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tn, err := s.CloseTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			require.Equal(t, userstore.TenantClosed, tn.Status)
			require.Equal(t, int64(2), tn.Version)
			tr := f.snapshot(t)
			_, err = s.ReactivateTenant(f.ctx, &userstore.TenantStatusParams{})
			requirePrecondition(t, err, userstore.ReasonTenantClosed, userstore.ReasonInvalidState)
			_, err = s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			requirePrecondition(t, err, userstore.ReasonTenantClosed, userstore.ReasonInvalidState)
			_, err = s.CloseTenant(f.ctx, &userstore.TenantStatusParams{})
			requirePrecondition(t, err, userstore.ReasonTenantClosed, userstore.ReasonInvalidState)
			_, err = s.RenameTenant(f.ctx, &userstore.RenameTenantParams{Name: "Zombie"})
			requirePrecondition(t, err, userstore.ReasonTenantClosed, userstore.ReasonInvalidState)
			got := f.getTenant(t)
			require.Equal(t, userstore.TenantClosed, got.Status)
			require.Equal(t, int64(2), got.Version)
			require.Equal(t, f.tenant.Name, got.Name)
			f.requireNoTrace(t, tr)
		}},
		{"ClosedTenantRefusesEveryMutation", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			_, err := s.CloseTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			tr := f.snapshot(t)
			for _, m := range mutations() {
				if m.kind == kindCreateTenant {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					err := m.do(mutCall{ctx: f.ctx, s: s, w: w, valid: true})
					if m.kind == kindTenant {
						requirePrecondition(t, err, userstore.ReasonTenantClosed, userstore.ReasonInvalidState)
					} else {
						requirePrecondition(t, err, userstore.ReasonTenantClosed)
					}
				})
			}
			f.requireNoTrace(t, tr)
			for _, r := range reads() {
				require.NoError(t, r.do(f.ctx, s, w), "%s works in a closed tenant", r.name)
			}
		}},
		{"ListTenantsFindsOwn", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			_, err := s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: userstore.ListOpts{Limit: 1}})
			if errors.Is(err, userstore.ErrUnsupported) {
				t.Skip("ListTenants is unsupported by this store")
			}
			require.NoError(t, err)
			all := collect(t, 7, func(o userstore.ListOpts) (*userstore.Page[userstore.Tenant], error) {
				return s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: o})
			})
			seen := map[string]int{}
			for _, tn := range all {
				seen[tn.ID.String()]++
			}
			require.Equal(t, 1, seen[f.tenant.ID.String()], "the case's tenant is listed exactly once")
			require.Equal(t, 1, seen[g.tenant.ID.String()], "the other tenant is listed exactly once")
			for id, n := range seen {
				require.Equal(t, 1, n, "tenant %s listed %d times", id, n)
			}
		}},
		{"ListTenantsStatusFilter", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			_, err := s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: userstore.ListOpts{Limit: 1}})
			if errors.Is(err, userstore.ErrUnsupported) {
				t.Skip("ListTenants is unsupported by this store")
			}
			require.NoError(t, err)
			_, err = s.SuspendTenant(f.ctx, &userstore.TenantStatusParams{})
			require.NoError(t, err)
			suspended := collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Tenant], error) {
				return s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: o, Status: userstore.TenantSuspended})
			})
			found := false
			for _, tn := range suspended {
				require.Equal(t, userstore.TenantSuspended, tn.Status)
				require.NotEqual(t, g.tenant.ID, tn.ID)
				found = found || tn.ID == f.tenant.ID
			}
			require.True(t, found, "the suspended tenant is listed under its status")
			_, err = s.ListTenants(t.Context(), &userstore.ListTenantsParams{Status: "frozen"})
			requireInvalid(t, err, "status")
		}},
	}
}
