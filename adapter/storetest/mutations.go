package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// world is a tenant populated with one entity of every kind, in states that make each mutation of the
// mutations table valid when run alone in an active tenant.
type world struct {
	user        *userstore.User // active member (role member) with an account, an identity, a binding and a profile
	disabled    *userstore.User // disabled
	free        *userstore.User // active, no membership, no binding, no profile
	account     *userstore.Account
	locked      *userstore.Account
	identity    *userstore.ExternalIdentity
	app         *userstore.Application
	disabledApp *userstore.Application
	binding     *userstore.Binding
	catalog     *userstore.Catalog // attributes nickname (string), level (int)
}

func (f *fixture) world(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.user = f.createUser(t)
	w.disabled = f.createUser(t)
	w.disabled = f.disableUser(t, w.disabled.ID)
	w.free = f.createUser(t)
	w.account = f.openAccount(t, w.user.ID)
	w.locked = f.openAccount(t, w.user.ID)
	var err error
	w.locked, err = f.s.LockAccount(f.ctx, &userstore.AccountParams{ID: w.locked.ID})
	require.NoError(t, err, "lock account")
	w.identity = f.linkIdentity(t, w.user.ID)
	w.app = f.registerApp(t)
	w.disabledApp = f.registerApp(t)
	w.disabledApp, err = f.s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: w.disabledApp.ID})
	require.NoError(t, err, "disable application")
	w.binding = f.bind(t, w.app.ID, w.user.ID, "viewer")
	w.catalog = f.defineCatalog(t, stringAttr("nickname"), userstore.Attribute{Key: "level", Type: userstore.AttrInt})
	f.setValues(t, w.user.ID, w.catalog.ID, map[string]userstore.Value{"nickname": userstore.StringValue("nick")})
	f.addMember(t, w.user.ID, userstore.RoleMember)
	return w
}

// mutCall is one invocation of a mutation of the table: valid says whether to build a valid request
// (valid in the world's state) or one with invalid input.
type mutCall struct {
	ctx   context.Context
	s     userstore.Store
	w     *world
	m     userstore.Mutation
	valid bool
}

// ev returns the ExpectedVersion of a call: 0 when valid, -1 (invalid) otherwise.
func (c mutCall) ev() int64 {
	if c.valid {
		return 0
	}
	return -1
}

// str returns s when the call is valid and "" otherwise.
func (c mutCall) str(s string) string {
	if c.valid {
		return s
	}
	return ""
}

type mutKind int

const (
	kindCreateTenant mutKind = iota // CreateTenant
	kindTenant                      // rename, suspend, reactivate, close: the tenant's own mutations
	kindEntity                      // every other mutation
)

type mutation struct {
	name string
	kind mutKind
	do   func(c mutCall) error
}

// mutations lists every mutation of the protocol.
func mutations() []mutation {
	return []mutation{
		{"CreateTenant", kindCreateTenant, func(c mutCall) error {
			_, err := c.s.CreateTenant(c.ctx, &userstore.CreateTenantParams{Mutation: c.m, Slug: c.str("t-" + rnd()), Name: c.str("Tenant")})
			return err
		}},
		{"RenameTenant", kindTenant, func(c mutCall) error {
			_, err := c.s.RenameTenant(c.ctx, &userstore.RenameTenantParams{Mutation: c.m, Name: c.str("Renamed " + rnd()), ExpectedVersion: c.ev()})
			return err
		}},
		{"SuspendTenant", kindTenant, func(c mutCall) error {
			_, err := c.s.SuspendTenant(c.ctx, &userstore.TenantStatusParams{Mutation: c.m, ExpectedVersion: c.ev()})
			return err
		}},
		{"ReactivateTenant", kindTenant, func(c mutCall) error {
			_, err := c.s.ReactivateTenant(c.ctx, &userstore.TenantStatusParams{Mutation: c.m, ExpectedVersion: c.ev()})
			return err
		}},
		{"CloseTenant", kindTenant, func(c mutCall) error {
			_, err := c.s.CloseTenant(c.ctx, &userstore.TenantStatusParams{Mutation: c.m, ExpectedVersion: c.ev()})
			return err
		}},
		{"CreateUser", kindEntity, func(c mutCall) error {
			_, err := c.s.CreateUser(c.ctx, &userstore.CreateUserParams{Mutation: c.m, DisplayName: c.str("New User"), Email: c.str(newEmail())})
			return err
		}},
		{"UpdateUserProfile", kindEntity, func(c mutCall) error {
			p := &userstore.UpdateUserProfileParams{Mutation: c.m, DisplayName: c.str("Renamed User"), ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.user.ID
			}
			_, err := c.s.UpdateUserProfile(c.ctx, p)
			return err
		}},
		{"ChangeUserEmail", kindEntity, func(c mutCall) error {
			p := &userstore.ChangeUserEmailParams{Mutation: c.m, Email: c.str(newEmail()), ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.user.ID
			}
			_, err := c.s.ChangeUserEmail(c.ctx, p)
			return err
		}},
		{"DisableUser", kindEntity, func(c mutCall) error {
			p := &userstore.UserParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.user.ID
			}
			_, err := c.s.DisableUser(c.ctx, p)
			return err
		}},
		{"EnableUser", kindEntity, func(c mutCall) error {
			p := &userstore.UserParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.disabled.ID
			}
			_, err := c.s.EnableUser(c.ctx, p)
			return err
		}},
		{"DeleteUser", kindEntity, func(c mutCall) error {
			p := &userstore.UserParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.free.ID
			}
			_, err := c.s.DeleteUser(c.ctx, p)
			return err
		}},
		{"OpenAccount", kindEntity, func(c mutCall) error {
			p := &userstore.OpenAccountParams{Mutation: c.m, LoginName: c.str(newLogin())}
			if c.valid {
				p.UserID, p.Kind, p.CredentialRef = c.w.user.ID, userstore.AccountPassword, "vault:kv/x"
			}
			_, err := c.s.OpenAccount(c.ctx, p)
			return err
		}},
		{"RenameAccountLogin", kindEntity, func(c mutCall) error {
			p := &userstore.RenameAccountLoginParams{Mutation: c.m, LoginName: c.str(newLogin()), ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.account.ID
			}
			_, err := c.s.RenameAccountLogin(c.ctx, p)
			return err
		}},
		{"LockAccount", kindEntity, func(c mutCall) error {
			p := &userstore.AccountParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.account.ID
			}
			_, err := c.s.LockAccount(c.ctx, p)
			return err
		}},
		{"UnlockAccount", kindEntity, func(c mutCall) error {
			p := &userstore.AccountParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.locked.ID
			}
			_, err := c.s.UnlockAccount(c.ctx, p)
			return err
		}},
		{"CloseAccount", kindEntity, func(c mutCall) error {
			p := &userstore.AccountParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.account.ID
			}
			_, err := c.s.CloseAccount(c.ctx, p)
			return err
		}},
		{"LinkIdentity", kindEntity, func(c mutCall) error {
			p := &userstore.LinkIdentityParams{Mutation: c.m, Issuer: c.str(testIssuer), Subject: c.str("sub-" + rnd())}
			if c.valid {
				p.UserID = c.w.user.ID
			}
			_, err := c.s.LinkIdentity(c.ctx, p)
			return err
		}},
		{"UnlinkIdentity", kindEntity, func(c mutCall) error {
			p := &userstore.UnlinkIdentityParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.identity.ID
			}
			return c.s.UnlinkIdentity(c.ctx, p)
		}},
		{"RegisterApplication", kindEntity, func(c mutCall) error {
			p := &userstore.RegisterApplicationParams{Mutation: c.m, Name: c.str("New App"), ClientKey: c.str(newClientKey())}
			if c.valid {
				p.Kind = userstore.AppService
			}
			_, err := c.s.RegisterApplication(c.ctx, p)
			return err
		}},
		{"UpdateApplication", kindEntity, func(c mutCall) error {
			p := &userstore.UpdateApplicationParams{Mutation: c.m, Name: c.str("Renamed App"), ExpectedVersion: c.ev()}
			if c.valid {
				p.ID, p.Kind = c.w.app.ID, userstore.AppNative
			}
			_, err := c.s.UpdateApplication(c.ctx, p)
			return err
		}},
		{"DisableApplication", kindEntity, func(c mutCall) error {
			p := &userstore.ApplicationParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.app.ID
			}
			_, err := c.s.DisableApplication(c.ctx, p)
			return err
		}},
		{"EnableApplication", kindEntity, func(c mutCall) error {
			p := &userstore.ApplicationParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.disabledApp.ID
			}
			_, err := c.s.EnableApplication(c.ctx, p)
			return err
		}},
		{"DeleteApplication", kindEntity, func(c mutCall) error {
			p := &userstore.ApplicationParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.app.ID
			}
			_, err := c.s.DeleteApplication(c.ctx, p)
			return err
		}},
		{"Bind", kindEntity, func(c mutCall) error {
			p := &userstore.BindParams{Mutation: c.m}
			if c.valid {
				p.ApplicationID, p.UserID, p.Roles = c.w.app.ID, c.w.free.ID, []string{"viewer"}
			} else {
				p.Roles = []string{"NOT A ROLE!"}
			}
			_, err := c.s.Bind(c.ctx, p)
			return err
		}},
		{"ChangeBindingRoles", kindEntity, func(c mutCall) error {
			p := &userstore.ChangeBindingRolesParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID, p.Roles = c.w.binding.ID, []string{"editor"}
			} else {
				p.Roles = []string{"NOT A ROLE!"}
			}
			_, err := c.s.ChangeBindingRoles(c.ctx, p)
			return err
		}},
		{"Unbind", kindEntity, func(c mutCall) error {
			p := &userstore.UnbindParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.ID = c.w.binding.ID
			}
			return c.s.Unbind(c.ctx, p)
		}},
		{"DefineCatalog", kindEntity, func(c mutCall) error {
			p := &userstore.DefineCatalogParams{Mutation: c.m, Name: c.str(newCatalogName())}
			if c.valid {
				p.Attributes = []userstore.Attribute{stringAttr("a")}
			} else {
				p.Attributes = []userstore.Attribute{{Key: "1-not-a-key", Type: "float"}}
			}
			_, err := c.s.DefineCatalog(c.ctx, p)
			return err
		}},
		{"AddCatalogAttribute", kindEntity, func(c mutCall) error {
			p := &userstore.AddCatalogAttributeParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.CatalogID, p.Attribute = c.w.catalog.ID, stringAttr("x"+rnd())
			} else {
				p.Attribute = userstore.Attribute{Key: "1-not-a-key", Type: "float"}
			}
			_, err := c.s.AddCatalogAttribute(c.ctx, p)
			return err
		}},
		{"DeprecateCatalogAttribute", kindEntity, func(c mutCall) error {
			p := &userstore.DeprecateCatalogAttributeParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.CatalogID, p.Key = c.w.catalog.ID, "level"
			}
			_, err := c.s.DeprecateCatalogAttribute(c.ctx, p)
			return err
		}},
		{"SetProfileValues", kindEntity, func(c mutCall) error {
			p := &userstore.SetProfileValuesParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.UserID, p.CatalogID, p.Values = c.w.free.ID, c.w.catalog.ID, map[string]userstore.Value{"nickname": strV("n")}
			} else {
				p.Values = map[string]userstore.Value{"nickname": {Type: "float"}}
			}
			_, err := c.s.SetProfileValues(c.ctx, p)
			return err
		}},
		{"ClearProfileValues", kindEntity, func(c mutCall) error {
			p := &userstore.ClearProfileValuesParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.UserID, p.CatalogID, p.Keys = c.w.user.ID, c.w.catalog.ID, []string{"nickname"}
			}
			_, err := c.s.ClearProfileValues(c.ctx, p)
			return err
		}},
		{"AddMember", kindEntity, func(c mutCall) error {
			p := &userstore.AddMemberParams{Mutation: c.m, Role: "not-a-role"}
			if c.valid {
				p.UserID, p.Role = c.w.free.ID, userstore.RoleMember
			}
			_, err := c.s.AddMember(c.ctx, p)
			return err
		}},
		{"ChangeMemberRole", kindEntity, func(c mutCall) error {
			p := &userstore.ChangeMemberRoleParams{Mutation: c.m, Role: "not-a-role", ExpectedVersion: c.ev()}
			if c.valid {
				p.UserID, p.Role = c.w.user.ID, userstore.RoleAdmin
			}
			_, err := c.s.ChangeMemberRole(c.ctx, p)
			return err
		}},
		{"RemoveMember", kindEntity, func(c mutCall) error {
			p := &userstore.RemoveMemberParams{Mutation: c.m, ExpectedVersion: c.ev()}
			if c.valid {
				p.UserID = c.w.user.ID
			}
			return c.s.RemoveMember(c.ctx, p)
		}},
	}
}

// read is one read of the protocol that needs a tenant.
type read struct {
	name string
	do   func(ctx context.Context, s userstore.Store, w *world) error
}

func reads() []read {
	lo := userstore.ListOpts{Limit: 10}
	return []read{
		{"GetTenant", func(ctx context.Context, s userstore.Store, w *world) error { _, err := s.GetTenant(ctx); return err }},
		{"GetUser", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetUser(ctx, w.user.ID)
			return err
		}},
		{"GetUserByEmail", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetUserByEmail(ctx, w.user.Email)
			return err
		}},
		{"ListUsers", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListUsers(ctx, &userstore.ListUsersParams{ListOpts: lo})
			return err
		}},
		{"GetAccount", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetAccount(ctx, w.account.ID)
			return err
		}},
		{"GetAccountByLogin", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetAccountByLogin(ctx, w.account.LoginName)
			return err
		}},
		{"ListAccountsByUser", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListAccountsByUser(ctx, &userstore.ListAccountsParams{ListOpts: lo, UserID: w.user.ID})
			return err
		}},
		{"FindUserByIdentity", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.FindUserByIdentity(ctx, w.identity.Issuer, w.identity.Subject)
			return err
		}},
		{"ListIdentitiesByUser", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListIdentitiesByUser(ctx, &userstore.ListIdentitiesParams{ListOpts: lo, UserID: w.user.ID})
			return err
		}},
		{"GetApplication", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetApplication(ctx, w.app.ID)
			return err
		}},
		{"GetApplicationByClientKey", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetApplicationByClientKey(ctx, w.app.ClientKey)
			return err
		}},
		{"ListApplications", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListApplications(ctx, &userstore.ListApplicationsParams{ListOpts: lo})
			return err
		}},
		{"GetBinding", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetBinding(ctx, w.binding.ID)
			return err
		}},
		{"ListBindingsByUser", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListBindingsByUser(ctx, &userstore.ListBindingsParams{ListOpts: lo, UserID: w.user.ID})
			return err
		}},
		{"ListBindingsByApplication", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListBindingsByApplication(ctx, &userstore.ListBindingsParams{ListOpts: lo, ApplicationID: w.app.ID})
			return err
		}},
		{"GetCatalog", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetCatalog(ctx, w.catalog.ID)
			return err
		}},
		{"ListCatalogs", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListCatalogs(ctx, &userstore.ListCatalogsParams{ListOpts: lo})
			return err
		}},
		{"GetProfile", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetProfile(ctx, w.user.ID, w.catalog.ID)
			return err
		}},
		{"GetMembership", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.GetMembership(ctx, w.user.ID)
			return err
		}},
		{"ListMembers", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListMembers(ctx, &userstore.ListMembersParams{ListOpts: lo})
			return err
		}},
		{"ListAuditRecords", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ListAuditRecords(ctx, &userstore.ListAuditParams{ListOpts: lo})
			return err
		}},
		{"ReadOutbox", func(ctx context.Context, s userstore.Store, w *world) error {
			_, err := s.ReadOutbox(ctx, &userstore.ReadOutboxParams{ListOpts: lo})
			return err
		}},
	}
}
