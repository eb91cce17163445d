package storetest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

var zeroHash = strings.Repeat("0", 64)

// step is one successful mutation of the script: run performs it with the given request id and returns
// the id of the entity it targets (uuid.Nil: not checked).
type step struct {
	name string
	run  func(req string) (uuid.UUID, error)
}

// script returns a fresh tenant and, in order, one successful call of every mutation of the protocol.
func script(t *testing.T, s userstore.Store) (*fixture, []step) {
	t.Helper()
	f := &fixture{s: s, actor: userstore.Actor{Type: userstore.ActorUser, ID: "script-" + rnd()}}
	tid := userstore.NewID()
	f.ctx = userstore.WithActor(userstore.WithTenant(t.Context(), tid), f.actor)
	var (
		u, v   *userstore.User
		a      *userstore.Account
		ident  *userstore.ExternalIdentity
		app    *userstore.Application
		b      *userstore.Binding
		c      *userstore.Catalog
		err    error
		ctx    = f.ctx
		m      = func(req string) userstore.Mutation { return userstore.Mutation{RequestID: req} }
		result = func(id uuid.UUID, err error) (uuid.UUID, error) { return id, err }
	)
	steps := []step{
		{"CreateTenant", func(req string) (uuid.UUID, error) {
			f.tenant, err = s.CreateTenant(ctx, &userstore.CreateTenantParams{Mutation: m(req), Slug: "t-" + rnd(), Name: "Script"})
			return tid, err
		}},
		{"RenameTenant", func(req string) (uuid.UUID, error) {
			_, err := s.RenameTenant(ctx, &userstore.RenameTenantParams{Mutation: m(req), Name: "Script 2"})
			return tid, err
		}},
		{"SuspendTenant", func(req string) (uuid.UUID, error) {
			_, err := s.SuspendTenant(ctx, &userstore.TenantStatusParams{Mutation: m(req)})
			return tid, err
		}},
		{"ReactivateTenant", func(req string) (uuid.UUID, error) {
			_, err := s.ReactivateTenant(ctx, &userstore.TenantStatusParams{Mutation: m(req)})
			return tid, err
		}},
		{"CreateUser", func(req string) (uuid.UUID, error) {
			u, err = s.CreateUser(ctx, &userstore.CreateUserParams{Mutation: m(req), DisplayName: "Ann", Email: newEmail()})
			if err != nil {
				return uuid.Nil, err
			}
			v, err = s.CreateUser(ctx, &userstore.CreateUserParams{Mutation: m(req), DisplayName: "Owner", Email: newEmail()})
			return u.ID, err
		}},
		{"UpdateUserProfile", func(req string) (uuid.UUID, error) {
			_, err := s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{Mutation: m(req), ID: u.ID, DisplayName: "Ann B."})
			return u.ID, err
		}},
		{"ChangeUserEmail", func(req string) (uuid.UUID, error) {
			_, err := s.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{Mutation: m(req), ID: u.ID, Email: newEmail()})
			return u.ID, err
		}},
		{"DisableUser", func(req string) (uuid.UUID, error) {
			_, err := s.DisableUser(ctx, &userstore.UserParams{Mutation: m(req), ID: u.ID})
			return u.ID, err
		}},
		{"EnableUser", func(req string) (uuid.UUID, error) {
			_, err := s.EnableUser(ctx, &userstore.UserParams{Mutation: m(req), ID: u.ID})
			return u.ID, err
		}},
		{"OpenAccount", func(req string) (uuid.UUID, error) {
			a, err = s.OpenAccount(ctx, &userstore.OpenAccountParams{Mutation: m(req), UserID: u.ID, LoginName: newLogin(), Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
			if err != nil {
				return uuid.Nil, err
			}
			return a.ID, nil
		}},
		{"RenameAccountLogin", func(req string) (uuid.UUID, error) {
			_, err := s.RenameAccountLogin(ctx, &userstore.RenameAccountLoginParams{Mutation: m(req), ID: a.ID, LoginName: newLogin()})
			return a.ID, err
		}},
		{"LockAccount", func(req string) (uuid.UUID, error) {
			_, err := s.LockAccount(ctx, &userstore.AccountParams{Mutation: m(req), ID: a.ID})
			return a.ID, err
		}},
		{"UnlockAccount", func(req string) (uuid.UUID, error) {
			_, err := s.UnlockAccount(ctx, &userstore.AccountParams{Mutation: m(req), ID: a.ID})
			return a.ID, err
		}},
		{"CloseAccount", func(req string) (uuid.UUID, error) {
			_, err := s.CloseAccount(ctx, &userstore.AccountParams{Mutation: m(req), ID: a.ID})
			return a.ID, err
		}},
		{"LinkIdentity", func(req string) (uuid.UUID, error) {
			ident, err = s.LinkIdentity(ctx, &userstore.LinkIdentityParams{Mutation: m(req), UserID: u.ID, Issuer: testIssuer, Subject: "sub-" + rnd()})
			if err != nil {
				return uuid.Nil, err
			}
			return ident.ID, nil
		}},
		{"UnlinkIdentity", func(req string) (uuid.UUID, error) {
			return result(ident.ID, s.UnlinkIdentity(ctx, &userstore.UnlinkIdentityParams{Mutation: m(req), ID: ident.ID}))
		}},
		{"RegisterApplication", func(req string) (uuid.UUID, error) {
			app, err = s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Mutation: m(req), Name: "App", ClientKey: newClientKey(), Kind: userstore.AppWeb})
			if err != nil {
				return uuid.Nil, err
			}
			return app.ID, nil
		}},
		{"UpdateApplication", func(req string) (uuid.UUID, error) {
			_, err := s.UpdateApplication(ctx, &userstore.UpdateApplicationParams{Mutation: m(req), ID: app.ID, Name: "App 2", Kind: userstore.AppNative})
			return app.ID, err
		}},
		{"DisableApplication", func(req string) (uuid.UUID, error) {
			_, err := s.DisableApplication(ctx, &userstore.ApplicationParams{Mutation: m(req), ID: app.ID})
			return app.ID, err
		}},
		{"EnableApplication", func(req string) (uuid.UUID, error) {
			_, err := s.EnableApplication(ctx, &userstore.ApplicationParams{Mutation: m(req), ID: app.ID})
			return app.ID, err
		}},
		{"Bind", func(req string) (uuid.UUID, error) {
			b, err = s.Bind(ctx, &userstore.BindParams{Mutation: m(req), ApplicationID: app.ID, UserID: u.ID, Roles: []string{"viewer"}})
			if err != nil {
				return uuid.Nil, err
			}
			return b.ID, nil
		}},
		{"ChangeBindingRoles", func(req string) (uuid.UUID, error) {
			_, err := s.ChangeBindingRoles(ctx, &userstore.ChangeBindingRolesParams{Mutation: m(req), ID: b.ID, Roles: []string{"admin"}})
			return b.ID, err
		}},
		{"Unbind", func(req string) (uuid.UUID, error) {
			return result(b.ID, s.Unbind(ctx, &userstore.UnbindParams{Mutation: m(req), ID: b.ID}))
		}},
		{"DefineCatalog", func(req string) (uuid.UUID, error) {
			c, err = s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Mutation: m(req), Name: newCatalogName(), Attributes: []userstore.Attribute{stringAttr("nickname"), stringAttr("old")}})
			if err != nil {
				return uuid.Nil, err
			}
			return c.ID, nil
		}},
		{"AddCatalogAttribute", func(req string) (uuid.UUID, error) {
			_, err := s.AddCatalogAttribute(ctx, &userstore.AddCatalogAttributeParams{Mutation: m(req), CatalogID: c.ID, Attribute: stringAttr("added")})
			return c.ID, err
		}},
		{"DeprecateCatalogAttribute", func(req string) (uuid.UUID, error) {
			_, err := s.DeprecateCatalogAttribute(ctx, &userstore.DeprecateCatalogAttributeParams{Mutation: m(req), CatalogID: c.ID, Key: "old"})
			return c.ID, err
		}},
		{"SetProfileValues", func(req string) (uuid.UUID, error) {
			_, err := s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{Mutation: m(req), UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{"nickname": strV("Ace")}})
			return uuid.Nil, err
		}},
		{"ClearProfileValues", func(req string) (uuid.UUID, error) {
			_, err := s.ClearProfileValues(ctx, &userstore.ClearProfileValuesParams{Mutation: m(req), UserID: u.ID, CatalogID: c.ID, Keys: []string{"nickname"}})
			return uuid.Nil, err
		}},
		{"AddMember", func(req string) (uuid.UUID, error) {
			if _, err := s.AddMember(ctx, &userstore.AddMemberParams{Mutation: m(req), UserID: v.ID, Role: userstore.RoleOwner}); err != nil {
				return uuid.Nil, err
			}
			_, err := s.AddMember(ctx, &userstore.AddMemberParams{Mutation: m(req), UserID: u.ID, Role: userstore.RoleAdmin})
			return uuid.Nil, err
		}},
		{"ChangeMemberRole", func(req string) (uuid.UUID, error) {
			_, err := s.ChangeMemberRole(ctx, &userstore.ChangeMemberRoleParams{Mutation: m(req), UserID: u.ID, Role: userstore.RoleMember})
			return uuid.Nil, err
		}},
		{"RemoveMember", func(req string) (uuid.UUID, error) {
			return result(uuid.Nil, s.RemoveMember(ctx, &userstore.RemoveMemberParams{Mutation: m(req), UserID: u.ID}))
		}},
		{"DeleteApplication", func(req string) (uuid.UUID, error) {
			_, err := s.DeleteApplication(ctx, &userstore.ApplicationParams{Mutation: m(req), ID: app.ID})
			return app.ID, err
		}},
		{"DeleteUser", func(req string) (uuid.UUID, error) {
			_, err := s.DeleteUser(ctx, &userstore.UserParams{Mutation: m(req), ID: u.ID})
			return u.ID, err
		}},
		{"CloseTenant", func(req string) (uuid.UUID, error) {
			_, err := s.CloseTenant(ctx, &userstore.TenantStatusParams{Mutation: m(req)})
			return tid, err
		}},
	}
	return f, steps
}

func requireHex64(t *testing.T, h, what string) {
	t.Helper()
	require.Len(t, h, 64, what)
	require.Equal(t, strings.ToLower(h), h, "%s is lower-case hex", what)
	_, err := hex.DecodeString(h)
	require.NoError(t, err, "%s is hex", what)
}

// requireChain asserts the trail's sequence and hash chain.
func requireChain(t *testing.T, recs []userstore.AuditRecord) {
	t.Helper()
	hashes := map[string]bool{}
	events := map[uuid.UUID]bool{}
	for i, r := range recs {
		require.Equal(t, int64(i+1), r.Sequence, "sequence is gapless from 1")
		requireHex64(t, r.Hash, "Hash")
		requireHex64(t, r.PrevHash, "PrevHash")
		if i == 0 {
			require.Equal(t, zeroHash, r.PrevHash, "the first record's PrevHash is 64 zeros")
		} else {
			require.Equal(t, recs[i-1].Hash, r.PrevHash, "record %d chains to record %d", r.Sequence, recs[i-1].Sequence)
		}
		require.False(t, hashes[r.Hash], "hashes are unique")
		hashes[r.Hash] = true
		require.False(t, events[r.EventID], "one record per event")
		events[r.EventID] = true
	}
}

func filterRecords(recs []userstore.AuditRecord, keep func(userstore.AuditRecord) bool) []userstore.AuditRecord {
	var out []userstore.AuditRecord
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func seqs(recs []userstore.AuditRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Sequence
	}
	return out
}

// refusals performs refused mutations of every error class against a world; each must fail. Among them
// it registers one application successfully (to use its idempotency key), and returns its id.
func refusals(t *testing.T, f *fixture, w *world) uuid.UUID {
	t.Helper()
	s, ctx := f.s, f.ctx
	_, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "", Email: newEmail()})
	requireInvalid(t, err, "display_name")
	_, err = s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Dup", Email: w.user.Email})
	requireDuplicate(t, err, userstore.KindEmail)
	_, err = s.EnableUser(ctx, &userstore.UserParams{ID: w.user.ID})
	requirePrecondition(t, err)
	_, err = s.DisableUser(ctx, &userstore.UserParams{ID: userstore.NewID()})
	requireNotFound(t, err)
	_, err = s.UpdateUserProfile(ctx, &userstore.UpdateUserProfileParams{ID: w.user.ID, DisplayName: "X", ExpectedVersion: staleVersion})
	require.ErrorIs(t, err, userstore.ErrConflict)
	_, err = s.Bind(ctx, &userstore.BindParams{ApplicationID: w.disabledApp.ID, UserID: w.free.ID, Roles: []string{"viewer"}})
	requirePrecondition(t, err)
	_, err = s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: w.user.ID, CatalogID: w.catalog.ID, Values: map[string]userstore.Value{"level": strV("high")}})
	requireInvalid(t, err, "values.level")
	key := "k-" + rnd()
	app, err := s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Mutation: keyed(key), Name: "A", ClientKey: newClientKey(), Kind: userstore.AppWeb})
	require.NoError(t, err)
	tr := f.snapshot(t)
	_, err = s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Mutation: keyed(key), Name: "B", ClientKey: newClientKey(), Kind: userstore.AppWeb})
	require.ErrorIs(t, err, userstore.ErrIdempotencyConflict)
	f.requireNoTrace(t, tr)
	return app.ID
}

func auditCases() []testCase {
	return []testCase{
		{"EveryMutationRecorded", func(t *testing.T, s userstore.Store) {
			f, steps := script(t, s)
			seen := 0
			for _, st := range steps {
				req := "req-" + st.name + "-" + rnd()
				target, err := st.run(req)
				require.NoError(t, err, "script step %s", st.name)
				recs := f.audit(t)
				mine := recordsWithRequest(recs, req)
				require.NotEmpty(t, mine, "%s leaves at least one audit record with its request id", st.name)
				for _, r := range mine {
					require.Equal(t, f.tenant.ID, r.TenantID, st.name)
					require.NotEqual(t, uuid.Nil, r.EventID, st.name)
					require.NotEmpty(t, r.Action, st.name)
					require.NotEmpty(t, r.TargetType, st.name)
					require.NotEqual(t, uuid.Nil, r.TargetID, st.name)
					require.Equal(t, f.actor, r.Actor, st.name)
					require.Equal(t, userstore.OutcomeSuccess, r.Outcome, st.name)
					require.False(t, r.OccurredAt.IsZero(), st.name)
					require.Greater(t, r.Sequence, int64(seen), "%s: records follow the previous step's", st.name)
				}
				if target != uuid.Nil {
					require.NotEmpty(t, recordsFor(mine, target), "%s has a record targeting %s", st.name, target)
				}
				seen = len(recs)
			}
			requireChain(t, f.audit(t))
		}},
		{"RefusedMutationsLeaveNoRecord", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			before := f.audit(t)
			appID := refusals(t, f, w)
			after := f.audit(t)
			for _, r := range after[len(before):] {
				require.Equal(t, appID, r.TargetID, "only the one successful registration was recorded, not %s", r.Action)
			}
			require.Len(t, after, len(before)+len(recordsFor(after, appID)))
			for _, r := range after {
				require.Equal(t, userstore.OutcomeSuccess, r.Outcome)
			}
		}},
		{"SequenceGaplessFromOne", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			f.world(t)
			recs := f.audit(t)
			require.NotEmpty(t, recs)
			for i, r := range recs {
				require.Equal(t, int64(i+1), r.Sequence)
			}
			g := f.other(t)
			g.createUser(t)
			grecs := g.audit(t)
			require.Equal(t, int64(1), grecs[0].Sequence, "every tenant's trail starts at 1")
		}},
		{"HashChain", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			f.world(t)
			requireChain(t, f.audit(t))
			g := f.other(t)
			g.createUser(t)
			grecs := g.audit(t)
			require.Equal(t, zeroHash, grecs[0].PrevHash, "every tenant's chain starts from 64 zeros")
			requireChain(t, grecs)
		}},
		{"FilterByActor", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			svc := userstore.Actor{Type: userstore.ActorService, ID: "svc-" + rnd()}
			sameIDOtherType := userstore.Actor{Type: userstore.ActorUser, ID: svc.ID}
			f.createUser(t)
			u, err := s.CreateUser(f.withActor(svc), &userstore.CreateUserParams{DisplayName: "S", Email: newEmail()})
			require.NoError(t, err)
			_, err = s.UpdateUserProfile(f.withActor(svc), &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "S2"})
			require.NoError(t, err)
			_, err = s.UpdateUserProfile(f.withActor(sameIDOtherType), &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "S3"})
			require.NoError(t, err)
			all := f.audit(t)
			for _, a := range []userstore.Actor{svc, sameIDOtherType, f.actor} {
				want := filterRecords(all, func(r userstore.AuditRecord) bool { return r.Actor == a })
				require.NotEmpty(t, want)
				got := f.auditWhere(t, userstore.ListAuditParams{Actor: &a})
				require.Equal(t, seqs(want), seqs(got), "records of actor %+v", a)
			}
			nobody := userstore.Actor{Type: userstore.ActorService, ID: "nobody-" + rnd()}
			require.Empty(t, f.auditWhere(t, userstore.ListAuditParams{Actor: &nobody}))
		}},
		{"FilterByTarget", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			v := f.createUser(t)
			_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "U2"})
			require.NoError(t, err)
			f.disableUser(t, v.ID)
			all := f.audit(t)
			want := recordsFor(all, u.ID)
			require.Len(t, want, 2)
			got := f.auditWhere(t, userstore.ListAuditParams{TargetType: want[0].TargetType, TargetID: u.ID})
			require.Equal(t, seqs(want), seqs(got))
			byType := f.auditWhere(t, userstore.ListAuditParams{TargetType: want[0].TargetType})
			require.Equal(t, seqs(filterRecords(all, func(r userstore.AuditRecord) bool { return r.TargetType == want[0].TargetType })), seqs(byType))
			require.GreaterOrEqual(t, len(byType), 4)
			require.Empty(t, f.auditWhere(t, userstore.ListAuditParams{TargetType: want[0].TargetType, TargetID: userstore.NewID()}))
		}},
		{"TargetIDNeedsTargetType", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			_, err := s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{TargetID: u.ID})
			requireInvalid(t, err, "")
		}},
		{"FilterByAction", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.createUser(t)
			f.disableUser(t, u.ID)
			all := f.audit(t)
			created := recordsFor(all, u.ID)[0].Action
			want := filterRecords(all, func(r userstore.AuditRecord) bool { return r.Action == created })
			require.Len(t, want, 2, "two users created")
			got := f.auditWhere(t, userstore.ListAuditParams{Action: created})
			require.Equal(t, seqs(want), seqs(got))
			require.Empty(t, f.auditWhere(t, userstore.ListAuditParams{Action: "no.such.action"}))
			a := f.actor
			both := f.auditWhere(t, userstore.ListAuditParams{Action: created, Actor: &a, TargetType: want[0].TargetType, TargetID: u.ID})
			require.Equal(t, []int64{want[0].Sequence}, seqs(both), "filters combine with AND")
		}},
		{"FilterByTimeRange", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for range 6 {
				f.createUser(t)
			}
			all := f.audit(t)
			require.GreaterOrEqual(t, len(all), 7)
			mid := all[len(all)/2].OccurredAt
			end := all[len(all)-2].OccurredAt
			check := func(since, until time.Time) {
				t.Helper()
				want := filterRecords(all, func(r userstore.AuditRecord) bool {
					return (since.IsZero() || !r.OccurredAt.Before(since)) && (until.IsZero() || r.OccurredAt.Before(until))
				})
				got := f.auditWhere(t, userstore.ListAuditParams{Since: since, Until: until})
				require.Equal(t, seqs(want), seqs(got), "Since %s Until %s", since, until)
			}
			check(mid, time.Time{})
			check(time.Time{}, mid)
			check(mid, end)
			check(all[0].OccurredAt, time.Time{})
			check(time.Time{}, all[len(all)-1].OccurredAt.Add(time.Second))
			require.Empty(t, f.auditWhere(t, userstore.ListAuditParams{Since: time.Now().Add(time.Hour)}))
			require.Empty(t, f.auditWhere(t, userstore.ListAuditParams{Until: all[0].OccurredAt}))
		}},
		{"ConcurrentMutationsKeepChainGapless", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			const n = 20
			before := len(f.audit(t))
			errs := make([]error, n)
			ids := make([]uuid.UUID, n)
			parallel(t, n, func(i int) {
				u, err := s.CreateUser(userstore.WithRequestID(f.ctx, fmt.Sprintf("racer-%d", i)), &userstore.CreateUserParams{DisplayName: "Racer", Email: newEmail()})
				errs[i] = err
				if err == nil {
					ids[i] = u.ID
				}
			})
			for _, err := range errs {
				require.NoError(t, err)
			}
			recs := f.audit(t)
			requireChain(t, recs)
			require.Len(t, recs, before+n, "one record per created user")
			for _, id := range ids {
				require.Len(t, recordsFor(recs, id), 1)
			}
		}},
	}
}
