package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// want is what a decision should produce: events, or an error described by one of the fields.
type want struct {
	events   []domain.Event
	notFound bool
	reason   string // a *PreconditionError with this reason
	kind     string // a *DuplicateError of this kind
	field    string // a *ValidationError on this field
	conflict int64  // a *VersionConflictError with this actual version (when non-zero)
}

func (w want) check(t *testing.T, got []domain.Event, err error) {
	t.Helper()
	switch {
	case w.notFound:
		require.ErrorIs(t, err, userstore.ErrNotFound)
	case w.reason != "":
		var pe *userstore.PreconditionError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, w.reason, pe.Reason)
	case w.kind != "":
		var de *userstore.DuplicateError
		require.ErrorAs(t, err, &de)
		require.Equal(t, w.kind, de.Kind)
	case w.field != "":
		requireField(t, err, w.field)
	case w.conflict != 0:
		var ve *userstore.VersionConflictError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, w.conflict, ve.Actual)
	default:
		require.NoError(t, err)
		require.Equal(t, w.events, got)
	}
}

// decideCase is one table row: the stream's history, a command and what deciding it must give.
type decideCase[C any] struct {
	name  string
	given []domain.Event
	cmd   C
	want  want
}

// runDecide folds each case's history from the initial state of ref, decides the command and checks
// the outcome; it also checks that deciding did not change the state.
func runDecide[S interface {
	domain.Aggregate
	Evolve(domain.Event) S
	Decide(C) ([]domain.Event, error)
}, C any](t *testing.T, ref domain.StreamRef, cases []decideCase[C]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			agg, err := domain.Fold(ref, c.given)
			require.NoError(t, err)
			s := agg.(S)
			got, err := s.Decide(c.cmd)
			c.want.check(t, got, err)
			again, _ := domain.Fold(ref, c.given)
			require.Equal(t, again, agg, "Decide does not change the state")
		})
	}
}

var (
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func events(evs ...domain.Event) []domain.Event { return evs }

func TestTenantDecide(t *testing.T) {
	created := domain.TenantCreated{TenantID: tenantID, Slug: "acme", Name: "Acme", At: t0}
	suspended := domain.TenantSuspended{At: t1}
	closed := domain.TenantClosed{At: t1}
	runDecide[domain.TenantState](t, domain.TenantRef(tenantID), []decideCase[domain.TenantCommand]{
		{"create", nil, domain.CreateTenant{ID: tenantID, Slug: "acme", Name: "Acme", At: t0}, want{events: events(created)}},
		{"create twice", events(created), domain.CreateTenant{ID: tenantID, Slug: "acme", Name: "Acme", At: t0}, want{kind: userstore.KindEntityID}},
		{"rename", events(created), domain.RenameTenant{Name: "Acme 2", At: t1}, want{events: events(domain.TenantRenamed{Name: "Acme 2", At: t1})}},
		{"rename to the same name", events(created), domain.RenameTenant{Name: "Acme", At: t1}, want{}},
		{"rename missing", nil, domain.RenameTenant{Name: "x", At: t1}, want{notFound: true}},
		{"rename suspended", events(created, suspended), domain.RenameTenant{Name: "x", At: t2}, want{events: events(domain.TenantRenamed{Name: "x", At: t2})}},
		{"rename closed", events(created, closed), domain.RenameTenant{Name: "x", At: t2}, want{reason: userstore.ReasonTenantClosed}},
		{"suspend", events(created), domain.SuspendTenant{Reason: "r", At: t1}, want{events: events(domain.TenantSuspended{Reason: "r", At: t1})}},
		{"suspend suspended", events(created, suspended), domain.SuspendTenant{At: t2}, want{reason: userstore.ReasonInvalidState}},
		{"reactivate", events(created, suspended), domain.ReactivateTenant{At: t2}, want{events: events(domain.TenantReactivated{At: t2})}},
		{"reactivate active", events(created), domain.ReactivateTenant{At: t1}, want{reason: userstore.ReasonInvalidState}},
		{"close suspended", events(created, suspended), domain.CloseTenant{At: t2}, want{events: events(domain.TenantClosed{At: t2})}},
		{"close closed", events(created, closed), domain.CloseTenant{At: t2}, want{reason: userstore.ReasonTenantClosed}},
	})
}

func TestTenantAdmit(t *testing.T) {
	var s domain.TenantState
	require.ErrorIs(t, s.Admit(), userstore.ErrNotFound)
	s = s.Evolve(domain.TenantCreated{TenantID: tenantID, Slug: "acme", Name: "Acme", At: t0})
	require.NoError(t, s.Admit())
	suspended := s.Evolve(domain.TenantSuspended{At: t1})
	want{reason: userstore.ReasonTenantInactive}.check(t, nil, suspended.Admit())
	closed := s.Evolve(domain.TenantClosed{At: t1})
	want{reason: userstore.ReasonTenantClosed}.check(t, nil, closed.Admit())
	v := closed.View()
	require.Equal(t, userstore.Tenant{ID: tenantID, Slug: "acme", Name: "Acme", Status: userstore.TenantClosed, Version: 2, CreatedAt: t0, UpdatedAt: t1}, *v)
}

func TestUserDecide(t *testing.T) {
	created := domain.UserCreated{UserID: userID, TenantID: tenantID, DisplayName: "Ann", Email: "Ann@x.io", At: t0}
	disabled := domain.UserDisabled{At: t1}
	deleted := domain.UserDeleted{Email: "Ann@x.io", At: t1}
	runDecide[domain.UserState](t, domain.Ref(tenantID, domain.StreamUser, userID), []decideCase[domain.UserCommand]{
		{"create", nil, domain.CreateUser{ID: userID, TenantID: tenantID, DisplayName: "Ann", Email: "Ann@x.io", At: t0}, want{events: events(created)}},
		{"create existing", events(created), domain.CreateUser{ID: userID, TenantID: tenantID, DisplayName: "Ann", Email: "a@x.io", At: t0}, want{kind: userstore.KindEntityID}},
		{"update profile", events(created), domain.UpdateUserProfile{DisplayName: "Anne", At: t1}, want{events: events(domain.UserProfileUpdated{DisplayName: "Anne", At: t1})}},
		{"update profile, same name", events(created), domain.UpdateUserProfile{DisplayName: "Ann", At: t1}, want{}},
		{"update missing", nil, domain.UpdateUserProfile{DisplayName: "Anne", At: t1}, want{notFound: true}},
		{"change email", events(created), domain.ChangeUserEmail{Email: "b@x.io", At: t1}, want{events: events(domain.UserEmailChanged{Email: "b@x.io", PreviousEmail: "Ann@x.io", At: t1})}},
		{"change email, same", events(created), domain.ChangeUserEmail{Email: "Ann@x.io", At: t1}, want{}},
		{"change email, case only", events(created), domain.ChangeUserEmail{Email: "ann@x.io", At: t1}, want{events: events(domain.UserEmailChanged{Email: "ann@x.io", PreviousEmail: "Ann@x.io", At: t1})}},
		{"change email of disabled", events(created, disabled), domain.ChangeUserEmail{Email: "b@x.io", At: t2}, want{events: events(domain.UserEmailChanged{Email: "b@x.io", PreviousEmail: "Ann@x.io", At: t2})}},
		{"disable", events(created), domain.DisableUser{At: t1}, want{events: events(disabled)}},
		{"disable disabled", events(created, disabled), domain.DisableUser{At: t2}, want{reason: userstore.ReasonInvalidState}},
		{"enable", events(created, disabled), domain.EnableUser{At: t2}, want{events: events(domain.UserEnabled{At: t2})}},
		{"enable active", events(created), domain.EnableUser{At: t1}, want{reason: userstore.ReasonInvalidState}},
		{"delete", events(created), domain.DeleteUser{At: t1}, want{events: events(deleted)}},
		{"delete disabled", events(created, disabled), domain.DeleteUser{At: t2}, want{events: events(domain.UserDeleted{Email: "Ann@x.io", At: t2})}},
		{"delete deleted", events(created, deleted), domain.DeleteUser{At: t2}, want{reason: userstore.ReasonUserDeleted}},
		{"update deleted", events(created, deleted), domain.UpdateUserProfile{DisplayName: "x", At: t2}, want{reason: userstore.ReasonUserDeleted}},
		{"enable deleted", events(created, deleted), domain.EnableUser{At: t2}, want{reason: userstore.ReasonUserDeleted}},
	})

	s, _ := domain.Fold(domain.Ref(tenantID, domain.StreamUser, userID), events(created, deleted))
	v := s.(domain.UserState).View()
	require.Equal(t, userstore.UserDeleted, v.Status)
	require.Empty(t, v.Email, "a tombstone has no email")
	require.Equal(t, int64(2), v.Version)
}

func TestAccountDecide(t *testing.T) {
	open := domain.OpenAccount{ID: accountID, TenantID: tenantID, UserID: userID, UserStatus: userstore.UserActive, LoginName: "ann", Kind: userstore.AccountPassword, CredentialRef: "vault:x", At: t0}
	opened := domain.AccountOpened{AccountID: accountID, TenantID: tenantID, UserID: userID, LoginName: "ann", Kind: userstore.AccountPassword, CredentialRef: "vault:x", At: t0}
	locked := domain.AccountLocked{At: t1}
	closed := domain.AccountClosed{LoginName: "ann", At: t1}
	withStatus := func(st userstore.UserStatus) domain.OpenAccount { c := open; c.UserStatus = st; return c }
	runDecide[domain.AccountState](t, domain.Ref(tenantID, domain.StreamAccount, accountID), []decideCase[domain.AccountCommand]{
		{"open", nil, open, want{events: events(opened)}},
		{"open for disabled user", nil, withStatus(userstore.UserDisabled), want{reason: userstore.ReasonUserInactive}},
		{"open for deleted user", nil, withStatus(userstore.UserDeleted), want{reason: userstore.ReasonUserDeleted}},
		{"open for missing user", nil, withStatus(""), want{notFound: true}},
		{"open existing", events(opened), open, want{kind: userstore.KindEntityID}},
		{"rename", events(opened), domain.RenameAccountLogin{LoginName: "anne", At: t1}, want{events: events(domain.AccountLoginChanged{LoginName: "anne", PreviousLoginName: "ann", At: t1})}},
		{"rename same", events(opened), domain.RenameAccountLogin{LoginName: "ann", At: t1}, want{}},
		{"rename locked", events(opened, locked), domain.RenameAccountLogin{LoginName: "b", At: t2}, want{events: events(domain.AccountLoginChanged{LoginName: "b", PreviousLoginName: "ann", At: t2})}},
		{"rename closed", events(opened, closed), domain.RenameAccountLogin{LoginName: "b", At: t2}, want{reason: userstore.ReasonAccountClosed}},
		{"lock", events(opened), domain.LockAccount{At: t1}, want{events: events(locked)}},
		{"lock locked", events(opened, locked), domain.LockAccount{At: t2}, want{reason: userstore.ReasonInvalidState}},
		{"unlock", events(opened, locked), domain.UnlockAccount{At: t2}, want{events: events(domain.AccountUnlocked{At: t2})}},
		{"unlock active", events(opened), domain.UnlockAccount{At: t1}, want{reason: userstore.ReasonInvalidState}},
		{"close locked", events(opened, locked), domain.CloseAccount{At: t2}, want{events: events(domain.AccountClosed{LoginName: "ann", At: t2})}},
		{"close closed", events(opened, closed), domain.CloseAccount{At: t2}, want{reason: userstore.ReasonAccountClosed}},
		{"lock missing", nil, domain.LockAccount{At: t1}, want{notFound: true}},
	})
}

func TestIdentityDecide(t *testing.T) {
	link := domain.LinkIdentity{ID: linkID, TenantID: tenantID, UserID: userID, UserStatus: userstore.UserActive, Issuer: "https://i.io", Subject: "s", At: t0}
	linked := domain.IdentityLinked{IdentityID: linkID, TenantID: tenantID, UserID: userID, Issuer: "https://i.io", Subject: "s", At: t0}
	unlinked := domain.IdentityUnlinked{UserID: userID, Issuer: "https://i.io", Subject: "s", At: t1}
	disabledUser := link
	disabledUser.UserStatus = userstore.UserDisabled
	runDecide[domain.IdentityState](t, domain.Ref(tenantID, domain.StreamIdentity, linkID), []decideCase[domain.IdentityCommand]{
		{"link", nil, link, want{events: events(linked)}},
		{"link disabled user", nil, disabledUser, want{reason: userstore.ReasonUserInactive}},
		{"link existing", events(linked), link, want{kind: userstore.KindEntityID}},
		{"link unlinked id again", events(linked, unlinked), link, want{kind: userstore.KindEntityID}},
		{"unlink", events(linked), domain.UnlinkIdentity{At: t1}, want{events: events(unlinked)}},
		{"unlink twice", events(linked, unlinked), domain.UnlinkIdentity{At: t2}, want{notFound: true}},
	})
}

func TestApplicationDecide(t *testing.T) {
	registered := domain.ApplicationRegistered{ApplicationID: appID, TenantID: tenantID, Name: "App", ClientKey: "app", Kind: userstore.AppWeb, At: t0}
	disabled := domain.ApplicationDisabled{At: t1}
	deleted := domain.ApplicationDeleted{ClientKey: "app", At: t1}
	runDecide[domain.ApplicationState](t, domain.Ref(tenantID, domain.StreamApplication, appID), []decideCase[domain.ApplicationCommand]{
		{"register", nil, domain.RegisterApplication{ID: appID, TenantID: tenantID, Name: "App", ClientKey: "app", Kind: userstore.AppWeb, At: t0}, want{events: events(registered)}},
		{"update", events(registered), domain.UpdateApplication{Name: "App", Kind: userstore.AppNative, At: t1}, want{events: events(domain.ApplicationUpdated{Name: "App", Kind: userstore.AppNative, At: t1})}},
		{"update same", events(registered), domain.UpdateApplication{Name: "App", Kind: userstore.AppWeb, At: t1}, want{}},
		{"disable", events(registered), domain.DisableApplication{At: t1}, want{events: events(disabled)}},
		{"disable disabled", events(registered, disabled), domain.DisableApplication{At: t2}, want{reason: userstore.ReasonInvalidState}},
		{"enable active", events(registered), domain.EnableApplication{At: t1}, want{reason: userstore.ReasonInvalidState}},
		{"delete", events(registered, disabled), domain.DeleteApplication{At: t2}, want{events: events(domain.ApplicationDeleted{ClientKey: "app", At: t2})}},
		{"update deleted", events(registered, deleted), domain.UpdateApplication{Name: "x", Kind: userstore.AppWeb, At: t2}, want{reason: userstore.ReasonAppDeleted}},
		{"delete deleted", events(registered, deleted), domain.DeleteApplication{At: t2}, want{reason: userstore.ReasonAppDeleted}},
	})
}

func TestBindingDecide(t *testing.T) {
	bind := domain.Bind{ID: bindingID, TenantID: tenantID, ApplicationID: appID, ApplicationStatus: userstore.AppActive, UserID: userID, UserStatus: userstore.UserActive, Roles: []string{"viewer", "admin", "viewer"}, At: t0}
	created := domain.BindingCreated{BindingID: bindingID, TenantID: tenantID, ApplicationID: appID, UserID: userID, Roles: []string{"admin", "viewer"}, At: t0}
	removed := domain.BindingRemoved{ApplicationID: appID, UserID: userID, At: t1}
	with := func(us userstore.UserStatus, as userstore.ApplicationStatus) domain.Bind {
		c := bind
		c.UserStatus, c.ApplicationStatus = us, as
		return c
	}
	runDecide[domain.BindingState](t, domain.Ref(tenantID, domain.StreamBinding, bindingID), []decideCase[domain.BindingCommand]{
		{"bind: roles become a sorted set", nil, bind, want{events: events(created)}},
		{"bind disabled user", nil, with(userstore.UserDisabled, userstore.AppActive), want{reason: userstore.ReasonUserInactive}},
		{"bind disabled app", nil, with(userstore.UserActive, userstore.AppDisabled), want{reason: userstore.ReasonAppInactive}},
		{"bind deleted app", nil, with(userstore.UserActive, userstore.AppDeleted), want{reason: userstore.ReasonAppDeleted}},
		{"bind missing app", nil, with(userstore.UserActive, ""), want{notFound: true}},
		{"change roles", events(created), domain.ChangeBindingRoles{Roles: []string{"editor"}, At: t1}, want{events: events(domain.BindingRolesChanged{ApplicationID: appID, UserID: userID, Roles: []string{"editor"}, At: t1})}},
		{"change roles to the same set", events(created), domain.ChangeBindingRoles{Roles: []string{"viewer", "admin"}, At: t1}, want{}},
		{"unbind", events(created), domain.Unbind{At: t1}, want{events: events(removed)}},
		{"unbind removed", events(created, removed), domain.Unbind{At: t2}, want{notFound: true}},
		{"change removed", events(created, removed), domain.ChangeBindingRoles{At: t2}, want{notFound: true}},
	})
}

func TestCatalogDecide(t *testing.T) {
	nick := userstore.Attribute{Key: "nickname", Type: userstore.AttrString}
	defined := domain.CatalogDefined{CatalogID: catalogID, TenantID: tenantID, Name: "Profile", Attributes: []domain.AttributeSpec{domain.SpecOf(nick)}, At: t0}
	deprecated := domain.CatalogAttributeDeprecated{Key: "nickname", At: t1}
	level := userstore.Attribute{Key: "level", Type: userstore.AttrInt, Required: true}
	runDecide[domain.CatalogState](t, domain.Ref(tenantID, domain.StreamCatalog, catalogID), []decideCase[domain.CatalogCommand]{
		{"define", nil, domain.DefineCatalog{ID: catalogID, TenantID: tenantID, Name: "Profile", Attributes: []userstore.Attribute{nick}, At: t0}, want{events: events(defined)}},
		{"define with a repeated key", nil, domain.DefineCatalog{ID: catalogID, Name: "P", Attributes: []userstore.Attribute{nick, level, nick}, At: t0}, want{field: "attributes[2].key"}},
		{"add", events(defined), domain.AddCatalogAttribute{Attribute: level, At: t1}, want{events: events(domain.CatalogAttributeAdded{Attribute: domain.SpecOf(level), At: t1})}},
		{"add existing key", events(defined), domain.AddCatalogAttribute{Attribute: nick, At: t1}, want{kind: userstore.KindCatalogAttribute}},
		{"add deprecated key", events(defined, deprecated), domain.AddCatalogAttribute{Attribute: nick, At: t2}, want{kind: userstore.KindCatalogAttribute}},
		{"deprecate", events(defined), domain.DeprecateCatalogAttribute{Key: "nickname", At: t1}, want{events: events(deprecated)}},
		{"deprecate twice", events(defined, deprecated), domain.DeprecateCatalogAttribute{Key: "nickname", At: t2}, want{reason: userstore.ReasonInvalidState}},
		{"deprecate unknown key", events(defined), domain.DeprecateCatalogAttribute{Key: "nope", At: t1}, want{notFound: true}},
		{"add to missing", nil, domain.AddCatalogAttribute{Attribute: level, At: t1}, want{notFound: true}},
	})
}

func TestCatalogEvolveDoesNotAlias(t *testing.T) {
	ref := domain.Ref(tenantID, domain.StreamCatalog, catalogID)
	a, err := domain.Fold(ref, events(domain.CatalogDefined{CatalogID: catalogID, Name: "P", Attributes: []domain.AttributeSpec{{Key: "a", Type: userstore.AttrString}}, At: t0}))
	require.NoError(t, err)
	before := a.(domain.CatalogState)
	after := before.Evolve(domain.CatalogAttributeDeprecated{Key: "a", At: t1})
	require.False(t, before.Attributes[0].Deprecated, "Evolve copies before it changes an attribute")
	require.True(t, after.Attributes[0].Deprecated)
	added := before.Evolve(domain.CatalogAttributeAdded{Attribute: domain.AttributeSpec{Key: "b", Type: userstore.AttrInt}, At: t1})
	require.Len(t, before.Attributes, 1)
	require.Len(t, added.Attributes, 2)
	v := after.View()
	v.Attributes[0].Key = "changed"
	require.Equal(t, "a", after.Attributes[0].Key, "the view shares nothing with the state")
}

func TestProfileDecide(t *testing.T) {
	attrs := []userstore.Attribute{
		{Key: "nickname", Type: userstore.AttrString, PII: true, MaxLength: 10},
		{Key: "level", Type: userstore.AttrEnum, EnumValues: []string{"gold", "silver"}, Required: true},
		{Key: "born", Type: userstore.AttrDate},
		{Key: "old", Type: userstore.AttrInt, Deprecated: true},
		{Key: "legacy", Type: userstore.AttrBool, Required: true, Deprecated: true},
	}
	set := func(values map[string]userstore.Value) domain.SetProfileValues {
		return domain.SetProfileValues{UserID: userID, CatalogID: catalogID, UserStatus: userstore.UserActive, Attributes: attrs, Values: values, At: t1}
	}
	clear := func(keys ...string) domain.ClearProfileValues {
		return domain.ClearProfileValues{UserID: userID, CatalogID: catalogID, UserStatus: userstore.UserActive, Attributes: attrs, Keys: keys, At: t1}
	}
	gold := userstore.EnumValue("gold")
	initial := domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{"level": gold, "nickname": userstore.StringValue("an"), "old": userstore.IntValue(1)}, At: t0}
	deletedUser := set(map[string]userstore.Value{"level": gold})
	deletedUser.UserStatus = userstore.UserDeleted
	runDecide[domain.ProfileState](t, domain.ProfileRef(tenantID, userID, catalogID), []decideCase[domain.ProfileCommand]{
		{"first set", nil, set(map[string]userstore.Value{"level": gold, "nickname": userstore.StringValue("an")}), want{events: events(
			domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{"level": gold, "nickname": userstore.StringValue("an")}, PIIKeys: []string{"nickname"}, At: t1})}},
		{"first set without the required attribute", nil, set(map[string]userstore.Value{"nickname": userstore.StringValue("an")}), want{field: "values.level"}},
		{"unknown key", events(initial), set(map[string]userstore.Value{"nope": gold}), want{field: "values.nope"}},
		{"bad key", events(initial), set(map[string]userstore.Value{"No Key": gold}), want{field: "values"}},
		{"type mismatch", events(initial), set(map[string]userstore.Value{"born": userstore.StringValue("2024-01-01")}), want{field: "values.born"}},
		{"bad date", events(initial), set(map[string]userstore.Value{"born": {Type: userstore.AttrDate, Date: "2023-02-29"}}), want{field: "values.born"}},
		{"enum value not allowed", events(initial), set(map[string]userstore.Value{"level": userstore.EnumValue("bronze")}), want{field: "values.level"}},
		{"string too long", events(initial), set(map[string]userstore.Value{"nickname": userstore.StringValue("12345678901")}), want{field: "values.nickname"}},
		{"deprecated attribute", events(initial), set(map[string]userstore.Value{"old": userstore.IntValue(2)}), want{reason: userstore.ReasonAttrDeprecated}},
		{"same values", events(initial), set(map[string]userstore.Value{"level": gold, "nickname": userstore.StringValue("an")}), want{}},
		{"only changes are recorded", events(initial), set(map[string]userstore.Value{"level": gold, "born": {Type: userstore.AttrDate, Date: "2000-02-29"}}), want{events: events(
			domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{"born": {Type: userstore.AttrDate, Date: "2000-02-29"}}, At: t1})}},
		{"set for a deleted user", events(initial), deletedUser, want{reason: userstore.ReasonUserDeleted}},
		{"clear", events(initial), clear("nickname", "born"), want{events: events(domain.ProfileValuesCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"nickname"}, At: t1})}},
		{"clear a deprecated attribute", events(initial), clear("old"), want{events: events(domain.ProfileValuesCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"old"}, At: t1})}},
		{"clear absent values", events(initial), clear("born"), want{}},
		{"clear a required attribute", events(initial), clear("born", "level"), want{field: "keys[1]"}},
		{"clear an unknown key", events(initial), clear("nope"), want{field: "keys[0]"}},
		{"clear all (cascade)", events(initial), domain.ClearProfile{UserID: userID, CatalogID: catalogID, At: t1}, want{events: events(domain.ProfileCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"level", "nickname", "old"}, At: t1})}},
		{"clear an empty profile (cascade)", nil, domain.ClearProfile{UserID: userID, CatalogID: catalogID, At: t1}, want{}},
	})
}

func TestProfileEvolveDoesNotAlias(t *testing.T) {
	ref := domain.ProfileRef(tenantID, userID, catalogID)
	a, err := domain.Fold(ref, events(domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{"a": userstore.IntValue(1)}, At: t0}))
	require.NoError(t, err)
	before := a.(domain.ProfileState)
	after := before.Evolve(domain.ProfileValuesCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"a"}, At: t1})
	require.Len(t, before.Values, 1)
	require.Empty(t, after.Values)
	cleared := before.Evolve(domain.ProfileCleared{UserID: userID, CatalogID: catalogID, At: t1})
	require.Len(t, before.Values, 1)
	v := cleared.View()
	require.NotNil(t, v.Values)
	require.Empty(t, v.Values)
	require.Equal(t, int64(2), v.Version)
	require.Equal(t, tenantID, v.TenantID)
}

func TestRosterDecide(t *testing.T) {
	other := uuid.MustParse("01970000-0000-7000-8000-0000000000aa")
	owner := domain.RosterMemberAdded{UserID: userID, Role: userstore.RoleOwner, At: t0}
	admin := domain.RosterMemberAdded{UserID: other, Role: userstore.RoleAdmin, At: t0}
	secondOwner := domain.RosterMemberRoleChanged{UserID: other, Role: userstore.RoleOwner, PreviousRole: userstore.RoleAdmin, At: t1}
	runDecide[domain.RosterState](t, domain.RosterRef(tenantID), []decideCase[domain.RosterCommand]{
		{"add", nil, domain.AddMember{UserID: userID, UserStatus: userstore.UserActive, Role: userstore.RoleOwner, At: t0}, want{events: events(owner)}},
		{"add twice", events(owner), domain.AddMember{UserID: userID, UserStatus: userstore.UserActive, Role: userstore.RoleMember, At: t1}, want{kind: userstore.KindMembership}},
		{"add disabled user", nil, domain.AddMember{UserID: userID, UserStatus: userstore.UserDisabled, Role: userstore.RoleOwner, At: t0}, want{reason: userstore.ReasonUserInactive}},
		{"demote the last owner", events(owner, admin), domain.ChangeMemberRole{UserID: userID, Role: userstore.RoleAdmin, At: t1}, want{reason: userstore.ReasonLastOwner}},
		{"remove the last owner", events(owner, admin), domain.RemoveMember{UserID: userID, At: t1}, want{reason: userstore.ReasonLastOwner}},
		{"demote one of two owners", events(owner, admin, secondOwner), domain.ChangeMemberRole{UserID: userID, Role: userstore.RoleMember, At: t2}, want{events: events(
			domain.RosterMemberRoleChanged{UserID: userID, Role: userstore.RoleMember, PreviousRole: userstore.RoleOwner, At: t2})}},
		{"remove a non-owner", events(owner, admin), domain.RemoveMember{UserID: other, At: t1}, want{events: events(domain.RosterMemberRemoved{UserID: other, Role: userstore.RoleAdmin, At: t1})}},
		{"same role", events(owner), domain.ChangeMemberRole{UserID: userID, Role: userstore.RoleOwner, At: t1}, want{}},
		{"not a member", events(owner), domain.ChangeMemberRole{UserID: other, Role: userstore.RoleOwner, At: t1}, want{reason: userstore.ReasonNotAMember}},
		{"remove a non-member", events(owner), domain.RemoveMember{UserID: other, At: t1}, want{reason: userstore.ReasonNotAMember}},
		// The membership's version is the roster version of its last change: the admin was added at 2.
		{"expected membership version", events(owner, admin), domain.ChangeMemberRole{UserID: other, Role: userstore.RoleMember, ExpectedVersion: 2, At: t1}, want{events: events(
			domain.RosterMemberRoleChanged{UserID: other, Role: userstore.RoleMember, PreviousRole: userstore.RoleAdmin, At: t1})}},
		{"stale membership version", events(owner, admin, secondOwner), domain.RemoveMember{UserID: userID, ExpectedVersion: 2, At: t2}, want{conflict: 1}},
	})
}

func TestRosterViews(t *testing.T) {
	other := uuid.MustParse("01970000-0000-7000-8000-0000000000aa")
	s, err := domain.Fold(domain.RosterRef(tenantID), events(
		domain.RosterMemberAdded{UserID: other, Role: userstore.RoleAdmin, At: t0},
		domain.RosterMemberAdded{UserID: userID, Role: userstore.RoleOwner, At: t0},
		domain.RosterMemberRoleChanged{UserID: other, Role: userstore.RoleMember, PreviousRole: userstore.RoleAdmin, At: t1},
	))
	require.NoError(t, err)
	r := s.(domain.RosterState)
	require.Equal(t, 1, r.Owners())
	m, ok := r.Membership(other)
	require.True(t, ok)
	require.Equal(t, userstore.Membership{TenantID: tenantID, UserID: other, Role: userstore.RoleMember, Version: 3, CreatedAt: t0, UpdatedAt: t1}, *m)
	all := r.Memberships()
	require.Len(t, all, 2)
	require.Equal(t, userID, all[0].UserID, "in user id order")
	require.Equal(t, int64(2), all[0].Version)

	before := r
	after := r.Evolve(domain.RosterMemberRemoved{UserID: other, Role: userstore.RoleMember, At: t2})
	require.Len(t, before.Members, 2, "Evolve copies the map")
	require.Len(t, after.Members, 1)
}

func TestUnknownCommandsAreErrors(t *testing.T) {
	// Deciders are total: a command of another aggregate (impossible through the typed interfaces
	// except with a nil) is an error, never a panic.
	_, err := domain.UserState{Version: 1, Status: userstore.UserActive}.Decide(nil)
	require.Error(t, err)
	_, err = domain.RosterState{}.Decide(nil)
	require.Error(t, err)
	require.False(t, errors.Is(err, userstore.ErrNotFound))
}
