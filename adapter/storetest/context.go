package storetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func healthCases() []testCase {
	return []testCase{
		{"ReadyOnHealthyStore", func(t *testing.T, s userstore.Store) {
			r, err := s.Ready(t.Context())
			require.NoError(t, err)
			require.NotNil(t, r)
			require.True(t, r.Ready, "a healthy store is ready: %+v", r.Checks)
			for _, c := range r.Checks {
				require.NotEmpty(t, c.Name, "every check has a name")
				if c.OK {
					require.Empty(t, c.Reason, "an OK check has no reason: %s", c.Name)
				} else {
					require.True(t, c.Warning, "a failed non-warning check makes the store unready: %s", c.Name)
					require.NotEmpty(t, c.Reason, "a failed check says why: %s", c.Name)
				}
			}
		}},
		{"SchemaVersionIsCurrent", func(t *testing.T, s userstore.Store) {
			v, err := s.SchemaVersion(t.Context())
			require.NoError(t, err)
			require.NotNil(t, v)
			require.Equal(t, v.Expected, v.Current, "a serving store runs the schema its code expects")
			require.Empty(t, v.Pending, "no pending migrations")
		}},
	}
}

func contextCases() []testCase {
	return []testCase{
		{"MutationsRequireTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			tr := f.snapshot(t)
			noTenant := userstore.WithActor(t.Context(), f.actor)
			for _, m := range mutations() {
				t.Run(m.name, func(t *testing.T) {
					for _, valid := range []bool{true, false} {
						err := m.do(mutCall{ctx: noTenant, s: s, w: w, valid: valid})
						require.ErrorIs(t, err, userstore.ErrTenantRequired, "valid input: %v", valid)
					}
				})
			}
			f.requireNoTrace(t, tr)
		}},
		{"MutationsRequireActor", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			tr := f.snapshot(t)
			noActor := userstore.WithRequestID(userstore.WithTenant(t.Context(), f.tenant.ID), "req-"+rnd())
			for _, m := range mutations() {
				t.Run(m.name, func(t *testing.T) {
					for _, valid := range []bool{true, false} {
						err := m.do(mutCall{ctx: noActor, s: s, w: w, valid: valid})
						require.ErrorIs(t, err, userstore.ErrActorRequired, "valid input: %v", valid)
					}
				})
			}
			f.requireNoTrace(t, tr)
			require.Equal(t, f.tenant.Version, f.getTenant(t).Version, "tenant unchanged")
		}},
		{"TenantCheckedBeforeActor", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			for _, m := range mutations() {
				t.Run(m.name, func(t *testing.T) {
					err := m.do(mutCall{ctx: t.Context(), s: s, w: w, valid: false})
					require.ErrorIs(t, err, userstore.ErrTenantRequired, "neither tenant nor actor")
				})
			}
		}},
		{"ReadsRequireTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			for _, r := range reads() {
				t.Run(r.name, func(t *testing.T) {
					err := r.do(t.Context(), s, w)
					require.ErrorIs(t, err, userstore.ErrTenantRequired, "without a tenant")
					err = r.do(userstore.WithActor(t.Context(), f.actor), s, w)
					require.ErrorIs(t, err, userstore.ErrTenantRequired, "with an actor but no tenant")
					require.NoError(t, r.do(f.ctx, s, w), "with the tenant")
				})
			}
		}},
		{"TenantInParamsMustMatchContext", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			w := f.world(t)
			trF, trG := f.snapshot(t), g.snapshot(t)
			for _, m := range mutations() {
				t.Run(m.name, func(t *testing.T) {
					ctx, mut := f.ctx, userstore.Mutation{TenantID: g.tenant.ID}
					if m.kind == kindCreateTenant {
						ctx, mut = userstore.WithTenant(f.ctx, userstore.NewID()), userstore.Mutation{TenantID: userstore.NewID()}
					}
					err := m.do(mutCall{ctx: ctx, s: s, w: w, m: mut, valid: true})
					requireInvalid(t, err, "tenant_id", "tenant in params differs from the context's")
				})
			}
			f.requireNoTrace(t, trF)
			g.requireNoTrace(t, trG)
			require.Equal(t, f.tenant.Version, f.getTenant(t).Version)
			require.Equal(t, g.tenant.Version, g.getTenant(t).Version)
		}},
		{"TenantInParamsEqualToContextIsAccepted", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{TenantID: f.tenant.ID}, DisplayName: "Ann", Email: newEmail()})
			require.NoError(t, err)
			require.Equal(t, f.tenant.ID, u.TenantID)
		}},
		{"TenantAndActorFromParams", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			actor := userstore.Actor{Type: userstore.ActorUser, ID: "params-actor-" + rnd()}
			req := "req-params-" + rnd()
			u, err := s.CreateUser(t.Context(), &userstore.CreateUserParams{
				Mutation:    userstore.Mutation{TenantID: f.tenant.ID, Actor: actor, RequestID: req},
				DisplayName: "Ann", Email: newEmail(),
			})
			require.NoError(t, err)
			require.Equal(t, f.tenant.ID, u.TenantID)
			got := f.getUser(t, u.ID)
			require.Equal(t, u.ID, got.ID)
			recs := recordsFor(f.audit(t), u.ID)
			require.NotEmpty(t, recs)
			for _, r := range recs {
				require.Equal(t, actor, r.Actor)
				require.Equal(t, req, r.RequestID)
			}
		}},
		{"ActorInParamsOverridesContext", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			actor := userstore.Actor{Type: userstore.ActorSystem, ID: "job-" + rnd()}
			u, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{Actor: actor}, DisplayName: "Ann", Email: newEmail()})
			require.NoError(t, err)
			recs := recordsFor(f.audit(t), u.ID)
			require.NotEmpty(t, recs)
			for _, r := range recs {
				require.Equal(t, actor, r.Actor)
			}
		}},
		{"RequestIDFromContextOrParams", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			ctx := userstore.WithRequestID(f.ctx, "req-ctx-"+rnd())
			ctxReq, _ := userstore.RequestIDFromContext(ctx)
			u1, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "A", Email: newEmail()})
			require.NoError(t, err)
			paramsReq := "req-param-" + rnd()
			u2, err := s.CreateUser(ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{RequestID: paramsReq}, DisplayName: "B", Email: newEmail()})
			require.NoError(t, err)
			recs := f.audit(t)
			for _, r := range recordsFor(recs, u1.ID) {
				require.Equal(t, ctxReq, r.RequestID)
			}
			for _, r := range recordsFor(recs, u2.ID) {
				require.Equal(t, paramsReq, r.RequestID)
			}
			require.NotEmpty(t, recordsFor(recs, u1.ID))
			require.NotEmpty(t, recordsFor(recs, u2.ID))
		}},
		{"InvalidActorRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tr := f.snapshot(t)
			for _, a := range []userstore.Actor{
				{Type: "robot", ID: "r2d2"},
				{Type: "", ID: "nobody"},
				{Type: userstore.ActorService, ID: strings.Repeat("s", userstore.MaxKeyLength+1)},
				{Type: userstore.ActorService, ID: "bad\xffid"},
			} {
				_, err := s.CreateUser(userstore.WithActor(f.ctx, a), &userstore.CreateUserParams{DisplayName: "A", Email: newEmail()})
				require.Error(t, err, "actor %+v", a)
				require.True(t, isOneOf(err, userstore.ErrValidation, userstore.ErrActorRequired), "actor %+v: %v", a, err)
				if isOneOf(err, userstore.ErrValidation) && a.Type != "" {
					requireInvalid(t, err, "actor")
				}
			}
			require.Empty(t, f.users(t, ""))
			f.requireNoTrace(t, tr)
		}},
		{"UnknownTenantIsNotFound", func(t *testing.T, s userstore.Store) {
			ctx := userstore.WithTenant(t.Context(), userstore.NewID())
			_, err := s.GetTenant(ctx)
			requireNotFound(t, err)
			_, err = s.GetUser(ctx, userstore.NewID())
			requireNotFound(t, err)
		}},
	}
}
