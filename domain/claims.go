package domain

import (
	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// PlatformScope is the scope of platform-wide claims (the tenant slug): the nil tenant id.
var PlatformScope = uuid.Nil

// Claim is one uniqueness claim: a normalized value of a kind within a scope. Two streams can never
// hold the same claim at once; an adapter keeps claims as rows (scope, kind, value) → owner stream,
// unique on (scope, kind, value), written in the transaction of the events that imply them.
type Claim struct {
	// Scope is the tenant id, or PlatformScope for KindTenantSlug.
	Scope uuid.UUID
	// Kind is one of the userstore.Kind… constants.
	Kind string
	// Value is the normalized uniqueness key (EmailKey, LoginKey, IdentityKey, …). It may be personal
	// data: never put it into an error or a log.
	Value string
}

// ClaimOp says whether a change takes or releases a claim.
type ClaimOp int

// Claim operations.
const (
	ClaimTake ClaimOp = iota + 1
	ClaimRelease
)

func (op ClaimOp) String() string {
	switch op {
	case ClaimTake:
		return "take"
	case ClaimRelease:
		return "release"
	}
	return "unknown"
}

// ClaimChange is one claim an event takes or releases on behalf of its stream.
type ClaimChange struct {
	Op    ClaimOp
	Claim Claim
	// Owner is the stream that holds (or held) the claim.
	Owner StreamRef
}

// Claims returns the uniqueness claim changes an event of a stream implies, releases before takes. It is
// the single place of the uniqueness rules; every adapter applies its result in the transaction of the
// event (a take of a claim another stream holds is a *userstore.DuplicateError of the claim's kind):
//
//	event                    claims
//	tenant.created           take   tenant_slug (platform)       slug
//	user.created             take   email                        EmailKey(email)
//	user.email_changed       release/take email                  old/new key, nothing if equal
//	user.deleted             release email
//	account.opened           take   login_name                   LoginKey(login)
//	account.login_changed    release/take login_name             old/new key, nothing if equal
//	account.closed           release login_name
//	identity.linked          take   external_identity            IdentityKey(issuer, subject)
//	identity.unlinked        release external_identity
//	application.registered   take   client_key                   client key (exact)
//	application.deleted      release client_key
//	binding.created          take   binding                      BindingKey(application, user)
//	binding.removed          release binding
//	catalog.defined          take   catalog_name                 CatalogNameKey(name)
//
// Memberships (one per user) and catalog attribute keys are invariants inside the roster and the
// catalog aggregates, not claims. A closed tenant keeps its slug; catalogs are never deleted.
func Claims(stream StreamRef, ev Event) []ClaimChange {
	t := stream.TenantID
	take := func(scope uuid.UUID, kind, value string) ClaimChange {
		return ClaimChange{Op: ClaimTake, Claim: Claim{Scope: scope, Kind: kind, Value: value}, Owner: stream}
	}
	release := func(kind, value string) ClaimChange {
		return ClaimChange{Op: ClaimRelease, Claim: Claim{Scope: t, Kind: kind, Value: value}, Owner: stream}
	}
	replace := func(kind, oldKey, newKey string) []ClaimChange {
		if oldKey == newKey {
			return nil
		}
		return []ClaimChange{release(kind, oldKey), take(t, kind, newKey)}
	}
	switch e := ev.(type) {
	case TenantCreated:
		return []ClaimChange{take(PlatformScope, userstore.KindTenantSlug, e.Slug)}
	case UserCreated:
		return []ClaimChange{take(t, userstore.KindEmail, EmailKey(e.Email))}
	case UserEmailChanged:
		return replace(userstore.KindEmail, EmailKey(e.PreviousEmail), EmailKey(e.Email))
	case UserDeleted:
		return []ClaimChange{release(userstore.KindEmail, EmailKey(e.Email))}
	case AccountOpened:
		return []ClaimChange{take(t, userstore.KindLoginName, LoginKey(e.LoginName))}
	case AccountLoginChanged:
		return replace(userstore.KindLoginName, LoginKey(e.PreviousLoginName), LoginKey(e.LoginName))
	case AccountClosed:
		return []ClaimChange{release(userstore.KindLoginName, LoginKey(e.LoginName))}
	case IdentityLinked:
		return []ClaimChange{take(t, userstore.KindExternalIdentity, IdentityKey(e.Issuer, e.Subject))}
	case IdentityUnlinked:
		return []ClaimChange{release(userstore.KindExternalIdentity, IdentityKey(e.Issuer, e.Subject))}
	case ApplicationRegistered:
		return []ClaimChange{take(t, userstore.KindClientKey, e.ClientKey)}
	case ApplicationDeleted:
		return []ClaimChange{release(userstore.KindClientKey, e.ClientKey)}
	case BindingCreated:
		return []ClaimChange{take(t, userstore.KindBinding, BindingKey(e.ApplicationID, e.UserID))}
	case BindingRemoved:
		return []ClaimChange{release(userstore.KindBinding, BindingKey(e.ApplicationID, e.UserID))}
	case CatalogDefined:
		return []ClaimChange{take(t, userstore.KindCatalogName, CatalogNameKey(e.Name))}
	}
	return nil
}
