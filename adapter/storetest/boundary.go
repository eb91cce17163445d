package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// byID is an operation addressed by an entity id.
type byID struct {
	name string
	do   func(id uuid.UUID) error
}

// requireInvisible asserts that every operation on id behaves exactly as on a missing id.
func requireInvisible(t *testing.T, id uuid.UUID, ops []byID) {
	t.Helper()
	for _, op := range ops {
		requireLooksMissing(t, op.do(id), id, op.do, op.name)
	}
}

// requireLooksMissingValue asserts that a lookup of another tenant's value fails exactly like a lookup of
// a value nobody has.
func requireLooksMissingValue(t *testing.T, value, fresh string, lookup func(string) error, what string) {
	t.Helper()
	err := lookup(value)
	requireNotFound(t, err, what)
	want := lookup(fresh)
	requireNotFound(t, want, what+" (missing value)")
	require.Equal(t, fmt.Sprintf("%T", want), fmt.Sprintf("%T", err), what)
	require.Equal(t, strings.ReplaceAll(want.Error(), fresh, "<v>"), strings.ReplaceAll(err.Error(), value, "<v>"), what)
}

// boundaryEnv is a tenant f with entities and another tenant g that must not see them.
type boundaryEnv struct {
	f, g   *fixture
	trF    trail
	trG    trail
	gUser  *userstore.User
	gApp   *userstore.Application
	gCat   *userstore.Catalog
	gOwner *userstore.User
}

func boundarySetup(t *testing.T, s userstore.Store) *boundaryEnv {
	t.Helper()
	f := setup(t, s)
	g := f.other(t)
	e := &boundaryEnv{f: f, g: g}
	e.gUser = g.createUser(t)
	e.gApp = g.registerApp(t)
	e.gCat = g.defineCatalog(t, stringAttr("nickname"))
	e.gOwner = g.createUser(t)
	g.addMember(t, e.gOwner.ID, userstore.RoleOwner)
	return e
}

// mark snapshots both tenants' trails.
func (e *boundaryEnv) mark(t *testing.T) {
	t.Helper()
	e.trF, e.trG = e.f.snapshot(t), e.g.snapshot(t)
}

// done asserts that neither tenant's trail changed since mark.
func (e *boundaryEnv) done(t *testing.T) {
	t.Helper()
	e.f.requireNoTrace(t, e.trF)
	e.g.requireNoTrace(t, e.trG)
}

func boundaryCases() []testCase {
	return []testCase{
		{"Users", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, g, gc := e.f, e.g, e.g.ctx
			u := f.createUser(t)
			e.mark(t)
			requireInvisible(t, u.ID, []byID{
				{"GetUser", func(id uuid.UUID) error { _, err := s.GetUser(gc, id); return err }},
				{"UpdateUserProfile", func(id uuid.UUID) error {
					_, err := s.UpdateUserProfile(gc, &userstore.UpdateUserProfileParams{ID: id, DisplayName: "X"})
					return err
				}},
				{"ChangeUserEmail", func(id uuid.UUID) error {
					_, err := s.ChangeUserEmail(gc, &userstore.ChangeUserEmailParams{ID: id, Email: "fixed@example.com"})
					return err
				}},
				{"DisableUser", func(id uuid.UUID) error { _, err := s.DisableUser(gc, &userstore.UserParams{ID: id}); return err }},
				{"EnableUser", func(id uuid.UUID) error { _, err := s.EnableUser(gc, &userstore.UserParams{ID: id}); return err }},
				{"DeleteUser", func(id uuid.UUID) error { _, err := s.DeleteUser(gc, &userstore.UserParams{ID: id}); return err }},
				{"OpenAccount", func(id uuid.UUID) error {
					_, err := s.OpenAccount(gc, &userstore.OpenAccountParams{UserID: id, LoginName: "fixed-login", Kind: userstore.AccountPassword, CredentialRef: "vault:x"})
					return err
				}},
				{"LinkIdentity", func(id uuid.UUID) error {
					_, err := s.LinkIdentity(gc, &userstore.LinkIdentityParams{UserID: id, Issuer: testIssuer, Subject: "fixed-subject"})
					return err
				}},
				{"Bind", func(id uuid.UUID) error {
					_, err := s.Bind(gc, &userstore.BindParams{ApplicationID: e.gApp.ID, UserID: id, Roles: []string{"viewer"}})
					return err
				}},
				{"AddMember", func(id uuid.UUID) error {
					_, err := s.AddMember(gc, &userstore.AddMemberParams{UserID: id, Role: userstore.RoleMember})
					return err
				}},
				{"GetProfile", func(id uuid.UUID) error { _, err := s.GetProfile(gc, id, e.gCat.ID); return err }},
				{"SetProfileValues", func(id uuid.UUID) error {
					_, err := s.SetProfileValues(gc, &userstore.SetProfileValuesParams{UserID: id, CatalogID: e.gCat.ID, Values: map[string]userstore.Value{"nickname": strV("x")}})
					return err
				}},
			})
			requireLooksMissingValue(t, u.Email, newEmail(), func(v string) error { _, err := s.GetUserByEmail(gc, v); return err }, "GetUserByEmail")
			for _, st := range []userstore.UserStatus{"", userstore.UserActive} {
				for _, x := range g.users(t, st) {
					require.NotEqual(t, u.ID, x.ID)
				}
			}
			page, err := s.ListAccountsByUser(gc, &userstore.ListAccountsParams{UserID: u.ID})
			requireNotFoundOrEmpty(t, page, err)
			got := f.getUser(t, u.ID)
			require.Equal(t, userstore.UserActive, got.Status)
			require.Equal(t, int64(1), got.Version)
			require.Equal(t, u.Email, got.Email)
			e.done(t)
			g.createUserWith(t, u.Email) // the same email is free in g
		}},
		{"Accounts", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, gc := e.f, e.g.ctx
			a := f.openAccount(t, f.createUser(t).ID)
			e.mark(t)
			requireInvisible(t, a.ID, []byID{
				{"GetAccount", func(id uuid.UUID) error { _, err := s.GetAccount(gc, id); return err }},
				{"RenameAccountLogin", func(id uuid.UUID) error {
					_, err := s.RenameAccountLogin(gc, &userstore.RenameAccountLoginParams{ID: id, LoginName: "fixed-login"})
					return err
				}},
				{"LockAccount", func(id uuid.UUID) error { _, err := s.LockAccount(gc, &userstore.AccountParams{ID: id}); return err }},
				{"UnlockAccount", func(id uuid.UUID) error { _, err := s.UnlockAccount(gc, &userstore.AccountParams{ID: id}); return err }},
				{"CloseAccount", func(id uuid.UUID) error { _, err := s.CloseAccount(gc, &userstore.AccountParams{ID: id}); return err }},
			})
			requireLooksMissingValue(t, a.LoginName, newLogin(), func(v string) error { _, err := s.GetAccountByLogin(gc, v); return err }, "GetAccountByLogin")
			page, err := s.ListAccountsByUser(gc, &userstore.ListAccountsParams{UserID: a.UserID})
			requireNotFoundOrEmpty(t, page, err)
			got := f.getAccount(t, a.ID)
			require.Equal(t, userstore.AccountActive, got.Status)
			require.Equal(t, int64(1), got.Version)
			e.done(t)
		}},
		{"Identities", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, gc := e.f, e.g.ctx
			u := f.createUser(t)
			ident := f.linkIdentity(t, u.ID)
			e.mark(t)
			requireInvisible(t, ident.ID, []byID{
				{"UnlinkIdentity", func(id uuid.UUID) error { return s.UnlinkIdentity(gc, &userstore.UnlinkIdentityParams{ID: id}) }},
			})
			requireLooksMissingValue(t, ident.Subject, "sub-"+rnd(), func(v string) error { _, err := s.FindUserByIdentity(gc, testIssuer, v); return err }, "FindUserByIdentity")
			page, err := s.ListIdentitiesByUser(gc, &userstore.ListIdentitiesParams{UserID: u.ID})
			requireNotFoundOrEmpty(t, page, err)
			found, err := s.FindUserByIdentity(f.ctx, ident.Issuer, ident.Subject)
			require.NoError(t, err)
			require.Equal(t, u.ID, found.ID)
			e.done(t)
		}},
		{"Applications", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, g, gc := e.f, e.g, e.g.ctx
			a := f.registerApp(t)
			e.mark(t)
			requireInvisible(t, a.ID, []byID{
				{"GetApplication", func(id uuid.UUID) error { _, err := s.GetApplication(gc, id); return err }},
				{"UpdateApplication", func(id uuid.UUID) error {
					_, err := s.UpdateApplication(gc, &userstore.UpdateApplicationParams{ID: id, Name: "X", Kind: userstore.AppWeb})
					return err
				}},
				{"DisableApplication", func(id uuid.UUID) error {
					_, err := s.DisableApplication(gc, &userstore.ApplicationParams{ID: id})
					return err
				}},
				{"EnableApplication", func(id uuid.UUID) error {
					_, err := s.EnableApplication(gc, &userstore.ApplicationParams{ID: id})
					return err
				}},
				{"DeleteApplication", func(id uuid.UUID) error {
					_, err := s.DeleteApplication(gc, &userstore.ApplicationParams{ID: id})
					return err
				}},
				{"Bind", func(id uuid.UUID) error {
					_, err := s.Bind(gc, &userstore.BindParams{ApplicationID: id, UserID: e.gUser.ID, Roles: []string{"viewer"}})
					return err
				}},
			})
			requireLooksMissingValue(t, a.ClientKey, newClientKey(), func(v string) error { _, err := s.GetApplicationByClientKey(gc, v); return err }, "GetApplicationByClientKey")
			for _, st := range []userstore.ApplicationStatus{"", userstore.AppActive} {
				for _, x := range g.apps(t, st) {
					require.NotEqual(t, a.ID, x.ID)
				}
			}
			page, err := s.ListBindingsByApplication(gc, &userstore.ListBindingsParams{ApplicationID: a.ID})
			requireNotFoundOrEmpty(t, page, err)
			got := f.getApp(t, a.ID)
			require.Equal(t, userstore.AppActive, got.Status)
			require.Equal(t, int64(1), got.Version)
			e.done(t)
		}},
		{"Bindings", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, gc := e.f, e.g.ctx
			u := f.createUser(t)
			b := f.bind(t, f.registerApp(t).ID, u.ID)
			e.mark(t)
			requireInvisible(t, b.ID, []byID{
				{"GetBinding", func(id uuid.UUID) error { _, err := s.GetBinding(gc, id); return err }},
				{"ChangeBindingRoles", func(id uuid.UUID) error {
					_, err := s.ChangeBindingRoles(gc, &userstore.ChangeBindingRolesParams{ID: id, Roles: []string{"admin"}})
					return err
				}},
				{"Unbind", func(id uuid.UUID) error { return s.Unbind(gc, &userstore.UnbindParams{ID: id}) }},
			})
			page, err := s.ListBindingsByUser(gc, &userstore.ListBindingsParams{UserID: u.ID})
			requireNotFoundOrEmpty(t, page, err)
			require.Equal(t, int64(1), f.getBinding(t, b.ID).Version)
			e.done(t)
		}},
		{"Catalogs", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, g, gc := e.f, e.g, e.g.ctx
			c := f.defineCatalog(t, stringAttr("nickname"), stringAttr("old"))
			e.mark(t)
			requireInvisible(t, c.ID, []byID{
				{"GetCatalog", func(id uuid.UUID) error { _, err := s.GetCatalog(gc, id); return err }},
				{"AddCatalogAttribute", func(id uuid.UUID) error {
					_, err := s.AddCatalogAttribute(gc, &userstore.AddCatalogAttributeParams{CatalogID: id, Attribute: stringAttr("extra")})
					return err
				}},
				{"DeprecateCatalogAttribute", func(id uuid.UUID) error {
					_, err := s.DeprecateCatalogAttribute(gc, &userstore.DeprecateCatalogAttributeParams{CatalogID: id, Key: "old"})
					return err
				}},
				{"GetProfile", func(id uuid.UUID) error { _, err := s.GetProfile(gc, e.gUser.ID, id); return err }},
				{"SetProfileValues", func(id uuid.UUID) error {
					_, err := s.SetProfileValues(gc, &userstore.SetProfileValuesParams{UserID: e.gUser.ID, CatalogID: id, Values: map[string]userstore.Value{"nickname": strV("x")}})
					return err
				}},
				{"ClearProfileValues", func(id uuid.UUID) error {
					_, err := s.ClearProfileValues(gc, &userstore.ClearProfileValuesParams{UserID: e.gUser.ID, CatalogID: id, Keys: []string{"nickname"}})
					return err
				}},
			})
			for _, x := range g.catalogs(t) {
				require.NotEqual(t, c.ID, x.ID)
			}
			require.Equal(t, int64(1), f.getCatalog(t, c.ID).Version)
			e.done(t)
			g.catalogNamed(t, c.Name) // the same name is free in g
		}},
		{"Profiles", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, gc := e.f, e.g.ctx
			u := f.createUser(t)
			c := f.defineCatalog(t, stringAttr("nickname"))
			f.setValues(t, u.ID, c.ID, map[string]userstore.Value{"nickname": strV("secret-" + rnd())})
			e.mark(t)
			_, err := s.GetProfile(gc, u.ID, c.ID)
			requireNotFound(t, err, "GetProfile")
			_, err = s.SetProfileValues(gc, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{"nickname": strV("x")}})
			requireNotFound(t, err, "SetProfileValues")
			_, err = s.ClearProfileValues(gc, &userstore.ClearProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Keys: []string{"nickname"}})
			requireNotFound(t, err, "ClearProfileValues")
			p := f.getProfile(t, u.ID, c.ID)
			require.Equal(t, int64(1), p.Version)
			require.Len(t, p.Values, 1)
			e.done(t)
		}},
		{"Members", func(t *testing.T, s userstore.Store) {
			e := boundarySetup(t, s)
			f, g, gc := e.f, e.g, e.g.ctx
			u := f.createUser(t)
			f.addMember(t, u.ID, userstore.RoleOwner)
			v := f.createUser(t)
			f.addMember(t, v.ID, userstore.RoleAdmin)
			e.mark(t)
			requireInvisible(t, u.ID, []byID{
				{"GetMembership", func(id uuid.UUID) error { _, err := s.GetMembership(gc, id); return err }},
				{"ChangeMemberRole", func(id uuid.UUID) error {
					_, err := s.ChangeMemberRole(gc, &userstore.ChangeMemberRoleParams{UserID: id, Role: userstore.RoleMember})
					return err
				}},
				{"RemoveMember", func(id uuid.UUID) error { return s.RemoveMember(gc, &userstore.RemoveMemberParams{UserID: id}) }},
			})
			for _, m := range g.members(t, "") {
				require.NotEqual(t, u.ID, m.UserID)
				require.NotEqual(t, v.ID, m.UserID)
			}
			require.Equal(t, userstore.RoleOwner, f.getMembership(t, u.ID).Role)
			e.done(t)
		}},
		{"TenantBySlugWithTenantInContext", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			requireLooksMissingValue(t, f.tenant.Slug, "t-"+rnd(), func(v string) error { _, err := s.GetTenantBySlug(g.ctx, v); return err }, "GetTenantBySlug")
			got, err := s.GetTenantBySlug(g.ctx, g.tenant.Slug)
			require.NoError(t, err)
			require.Equal(t, g.tenant.ID, got.ID)
		}},
		{"AuditAndOutboxArePerTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			w := f.world(t)
			g.world(t)
			own := map[uuid.UUID]bool{f.tenant.ID: true, w.user.ID: true, w.free.ID: true, w.disabled.ID: true, w.account.ID: true,
				w.locked.ID: true, w.identity.ID: true, w.app.ID: true, w.disabledApp.ID: true, w.binding.ID: true, w.catalog.ID: true}
			for _, r := range g.audit(t) {
				require.Equal(t, g.tenant.ID, r.TenantID)
				require.False(t, own[r.TargetID], "g's trail shows f's %s %s", r.TargetType, r.TargetID)
			}
			for _, ev := range g.outbox(t) {
				require.Equal(t, g.tenant.ID, ev.TenantID)
				require.False(t, own[ev.AggregateID], "g's outbox shows f's %s %s", ev.AggregateType, ev.AggregateID)
			}
			for _, r := range f.audit(t) {
				require.Equal(t, f.tenant.ID, r.TenantID)
			}
			for _, ev := range f.outbox(t) {
				require.Equal(t, f.tenant.ID, ev.TenantID)
			}
			_, err := s.ListAuditRecords(g.ctx, &userstore.ListAuditParams{TargetType: "user", TargetID: w.user.ID})
			require.NoError(t, err)
			require.Empty(t, g.auditWhere(t, userstore.ListAuditParams{Actor: &f.actor}), "f's actor did nothing in g")
		}},
	}
}
