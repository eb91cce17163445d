package domain_test

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

var (
	t0        = time.Date(2026, 6, 5, 12, 0, 0, 123456000, time.UTC)
	tenantID  = uuid.MustParse("01970000-0000-7000-8000-000000000001")
	userID    = uuid.MustParse("01970000-0000-7000-8000-000000000002")
	accountID = uuid.MustParse("01970000-0000-7000-8000-000000000003")
	linkID    = uuid.MustParse("01970000-0000-7000-8000-000000000004")
	appID     = uuid.MustParse("01970000-0000-7000-8000-000000000005")
	bindingID = uuid.MustParse("01970000-0000-7000-8000-000000000006")
	catalogID = uuid.MustParse("01970000-0000-7000-8000-000000000007")
)

// Personal data used by the samples; none of it may reach an outbox payload.
const (
	piiEmail       = "ann.example@example.org"
	piiEmail2      = "ann.other@example.org"
	piiLogin       = "ann.login"
	piiLogin2      = "ann.login2"
	piiDisplayName = "Ann Example"
	piiSubject     = "subject-248289761001"
	piiCredential  = "vault:kv/secret-ref"
	piiClientKey   = "client-key-xyz"
	piiNickname    = "Annie-the-nick"
	piiAppName     = "Ann's Secret App"
	piiTenantName  = "Tenant Name Inc"
	piiCatalogName = "Private Catalog Name"
)

// sample is one event of every built-in type, with the stream it belongs to.
type sample struct {
	ref domain.StreamRef
	ev  domain.Event
}

func samples() []sample {
	tenant := domain.TenantRef(tenantID)
	user := domain.Ref(tenantID, domain.StreamUser, userID)
	account := domain.Ref(tenantID, domain.StreamAccount, accountID)
	link := domain.Ref(tenantID, domain.StreamIdentity, linkID)
	app := domain.Ref(tenantID, domain.StreamApplication, appID)
	binding := domain.Ref(tenantID, domain.StreamBinding, bindingID)
	catalog := domain.Ref(tenantID, domain.StreamCatalog, catalogID)
	profile := domain.ProfileRef(tenantID, userID, catalogID)
	roster := domain.RosterRef(tenantID)
	nick := domain.AttributeSpec{Key: "nickname", Type: userstore.AttrString, PII: true}
	level := domain.AttributeSpec{Key: "level", Type: userstore.AttrEnum, EnumValues: []string{"gold", "silver"}, Required: true}
	return []sample{
		{tenant, domain.TenantCreated{TenantID: tenantID, Slug: "acme", Name: piiTenantName, At: t0}},
		{tenant, domain.TenantRenamed{Name: piiTenantName + " 2", At: t0}},
		{tenant, domain.TenantSuspended{Reason: "unpaid", At: t0}},
		{tenant, domain.TenantReactivated{At: t0}},
		{tenant, domain.TenantClosed{Reason: "bye", At: t0}},
		{user, domain.UserCreated{UserID: userID, TenantID: tenantID, DisplayName: piiDisplayName, Email: piiEmail, At: t0}},
		{user, domain.UserProfileUpdated{DisplayName: piiDisplayName + " 2", At: t0}},
		{user, domain.UserEmailChanged{Email: piiEmail2, PreviousEmail: piiEmail, At: t0}},
		{user, domain.UserDisabled{At: t0}},
		{user, domain.UserEnabled{At: t0}},
		{user, domain.UserDeleted{Email: piiEmail2, At: t0}},
		{account, domain.AccountOpened{AccountID: accountID, TenantID: tenantID, UserID: userID, LoginName: piiLogin, Kind: userstore.AccountPassword, CredentialRef: piiCredential, At: t0}},
		{account, domain.AccountLoginChanged{LoginName: piiLogin2, PreviousLoginName: piiLogin, At: t0}},
		{account, domain.AccountLocked{At: t0}},
		{account, domain.AccountUnlocked{At: t0}},
		{account, domain.AccountClosed{LoginName: piiLogin2, At: t0}},
		{link, domain.IdentityLinked{IdentityID: linkID, TenantID: tenantID, UserID: userID, Issuer: "https://idp.example.com", Subject: piiSubject, At: t0}},
		{link, domain.IdentityUnlinked{UserID: userID, Issuer: "https://idp.example.com", Subject: piiSubject, At: t0}},
		{app, domain.ApplicationRegistered{ApplicationID: appID, TenantID: tenantID, Name: piiAppName, ClientKey: piiClientKey, Kind: userstore.AppWeb, At: t0}},
		{app, domain.ApplicationUpdated{Name: piiAppName + " 2", Kind: userstore.AppNative, At: t0}},
		{app, domain.ApplicationDisabled{At: t0}},
		{app, domain.ApplicationEnabled{At: t0}},
		{app, domain.ApplicationDeleted{ClientKey: piiClientKey, At: t0}},
		{binding, domain.BindingCreated{BindingID: bindingID, TenantID: tenantID, ApplicationID: appID, UserID: userID, Roles: []string{"admin", "viewer"}, At: t0}},
		{binding, domain.BindingRolesChanged{ApplicationID: appID, UserID: userID, Roles: []string{"editor"}, At: t0}},
		{binding, domain.BindingRemoved{ApplicationID: appID, UserID: userID, At: t0}},
		{catalog, domain.CatalogDefined{CatalogID: catalogID, TenantID: tenantID, Name: piiCatalogName, Attributes: []domain.AttributeSpec{nick}, At: t0}},
		{catalog, domain.CatalogAttributeAdded{Attribute: level, At: t0}},
		{catalog, domain.CatalogAttributeDeprecated{Key: "nickname", At: t0}},
		{profile, domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{
			"nickname": userstore.StringValue(piiNickname), "level": userstore.EnumValue("gold"),
		}, PIIKeys: []string{"nickname"}, At: t0}},
		{profile, domain.ProfileValuesCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"nickname"}, At: t0}},
		{profile, domain.ProfileCleared{UserID: userID, CatalogID: catalogID, Keys: []string{"level"}, At: t0}},
		{roster, domain.RosterMemberAdded{UserID: userID, Role: userstore.RoleOwner, At: t0}},
		{roster, domain.RosterMemberRoleChanged{UserID: userID, Role: userstore.RoleAdmin, PreviousRole: userstore.RoleOwner, At: t0}},
		{roster, domain.RosterMemberRemoved{UserID: userID, Role: userstore.RoleAdmin, At: t0}},
	}
}

// piiValues are the strings no outbox payload may contain.
var piiValues = []string{
	piiEmail, piiEmail2, piiLogin, piiLogin2, piiDisplayName, piiSubject, piiCredential, piiClientKey,
	piiNickname, piiAppName, piiTenantName, piiCatalogName,
}
