package domain

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// OutboxTypePrefix and OutboxTypeVersion frame public event types: "userstore." + domain event type +
// ".v1", e.g. "userstore.user.created.v1".
const (
	OutboxTypePrefix  = "userstore."
	OutboxTypeVersion = ".v1"
)

// OutboxType returns the public integration event type of a domain event type.
func OutboxType(eventType string) string {
	return OutboxTypePrefix + eventType + OutboxTypeVersion
}

// Outbox returns the public integration event of a recorded event: exactly one per domain event, with
// the domain event's id as its id (so consumers dedupe by it), the aggregate as its subject and a
// PII-minimized JSON payload. Payloads carry ids, statuses, kinds, roles, attribute keys and types, and
// the values of non-PII profile attributes — never an email, a login name, a display or entity name, an
// issuer's subject, a credential reference, a client key or a PII attribute's value:
//
//	public type (userstore.….v1)   payload fields
//	tenant.created                  tenant_id, slug, status
//	tenant.renamed                  tenant_id
//	tenant.suspended|reactivated|closed   tenant_id, status
//	user.created                    user_id, status
//	user.profile_updated            user_id
//	user.email_changed              user_id
//	user.disabled|enabled|deleted   user_id, status
//	account.opened                  account_id, user_id, kind, status
//	account.login_changed           account_id
//	account.locked|unlocked|closed  account_id, status
//	identity.linked                 identity_id, user_id, issuer
//	identity.unlinked               identity_id, user_id, issuer
//	application.registered          application_id, kind, status
//	application.updated             application_id, kind
//	application.disabled|enabled|deleted   application_id, status
//	binding.created|roles_changed   binding_id, application_id, user_id, roles
//	binding.removed                 binding_id, application_id, user_id
//	catalog.defined                 catalog_id, attributes [{key, type, required, pii}]
//	catalog.attribute_added         catalog_id, attribute {key, type, required, pii}
//	catalog.attribute_deprecated    catalog_id, key
//	profile.values_set              user_id, catalog_id, keys, values (non-PII keys only)
//	profile.values_cleared|cleared  user_id, catalog_id, keys
//	roster.member_added             user_id, role
//	roster.member_role_changed      user_id, role, previous_role
//	roster.member_removed           user_id, previous_role
//
// The tenant slug is an organization's public handle and the issuer an identity provider's public URL;
// neither is personal data. OccurredAt is on the event, not in the payload.
func Outbox(r Recorded) (userstore.OutboxEvent, error) {
	if r.Event == nil {
		return userstore.OutboxEvent{}, fmt.Errorf("%w: nil event", ErrUnknownEventType)
	}
	body, err := publicPayload(r.Stream, r.Event)
	if err != nil {
		return userstore.OutboxEvent{}, err
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return userstore.OutboxEvent{}, fmt.Errorf("outbox payload of %s: %w", r.Event.EventType(), err)
	}
	return userstore.OutboxEvent{
		ID:               r.EventID,
		TenantID:         r.Stream.TenantID,
		Type:             OutboxType(r.Event.EventType()),
		AggregateType:    string(r.Stream.Type),
		AggregateID:      r.Stream.ID,
		AggregateVersion: r.Version,
		Position:         r.Position,
		OccurredAt:       r.Event.OccurredAt().UTC(),
		Payload:          payload,
	}, nil
}

// Public payload shapes. Field order is the JSON order; omitempty only where a field is optional.
type (
	pubTenant struct {
		TenantID uuid.UUID              `json:"tenant_id"`
		Slug     string                 `json:"slug,omitempty"`
		Status   userstore.TenantStatus `json:"status,omitempty"`
	}
	pubUser struct {
		UserID uuid.UUID            `json:"user_id"`
		Status userstore.UserStatus `json:"status,omitempty"`
	}
	pubAccount struct {
		AccountID uuid.UUID               `json:"account_id"`
		UserID    *uuid.UUID              `json:"user_id,omitempty"`
		Kind      userstore.AccountKind   `json:"kind,omitempty"`
		Status    userstore.AccountStatus `json:"status,omitempty"`
	}
	pubIdentity struct {
		IdentityID uuid.UUID `json:"identity_id"`
		UserID     uuid.UUID `json:"user_id"`
		Issuer     string    `json:"issuer"`
	}
	pubApplication struct {
		ApplicationID uuid.UUID                   `json:"application_id"`
		Kind          userstore.ApplicationKind   `json:"kind,omitempty"`
		Status        userstore.ApplicationStatus `json:"status,omitempty"`
	}
	pubBinding struct {
		BindingID     uuid.UUID `json:"binding_id"`
		ApplicationID uuid.UUID `json:"application_id"`
		UserID        uuid.UUID `json:"user_id"`
		Roles         []string  `json:"roles,omitzero"`
	}
	pubAttribute struct {
		Key      string                  `json:"key"`
		Type     userstore.AttributeType `json:"type"`
		Required bool                    `json:"required"`
		PII      bool                    `json:"pii"`
	}
	pubCatalog struct {
		CatalogID  uuid.UUID      `json:"catalog_id"`
		Attributes []pubAttribute `json:"attributes,omitzero"`
		Attribute  *pubAttribute  `json:"attribute,omitempty"`
		Key        string         `json:"key,omitempty"`
	}
	pubProfile struct {
		UserID    uuid.UUID                  `json:"user_id"`
		CatalogID uuid.UUID                  `json:"catalog_id"`
		Keys      []string                   `json:"keys"`
		Values    map[string]userstore.Value `json:"values,omitzero"`
	}
	pubMember struct {
		UserID       uuid.UUID            `json:"user_id"`
		Role         userstore.MemberRole `json:"role,omitempty"`
		PreviousRole userstore.MemberRole `json:"previous_role,omitempty"`
	}
)

func pubAttr(a AttributeSpec) pubAttribute {
	return pubAttribute{Key: a.Key, Type: a.Type, Required: a.Required, PII: a.PII}
}

// publicPayload maps a domain event to its public payload; see Outbox for the table.
func publicPayload(ref StreamRef, ev Event) (any, error) {
	id := ref.ID
	switch e := ev.(type) {
	case TenantCreated:
		return pubTenant{TenantID: id, Slug: e.Slug, Status: userstore.TenantActive}, nil
	case TenantRenamed:
		return pubTenant{TenantID: id}, nil
	case TenantSuspended:
		return pubTenant{TenantID: id, Status: userstore.TenantSuspended}, nil
	case TenantReactivated:
		return pubTenant{TenantID: id, Status: userstore.TenantActive}, nil
	case TenantClosed:
		return pubTenant{TenantID: id, Status: userstore.TenantClosed}, nil

	case UserCreated:
		return pubUser{UserID: id, Status: userstore.UserActive}, nil
	case UserProfileUpdated, UserEmailChanged:
		return pubUser{UserID: id}, nil
	case UserDisabled:
		return pubUser{UserID: id, Status: userstore.UserDisabled}, nil
	case UserEnabled:
		return pubUser{UserID: id, Status: userstore.UserActive}, nil
	case UserDeleted:
		return pubUser{UserID: id, Status: userstore.UserDeleted}, nil

	case AccountOpened:
		return pubAccount{AccountID: id, UserID: &e.UserID, Kind: e.Kind, Status: userstore.AccountActive}, nil
	case AccountLoginChanged:
		return pubAccount{AccountID: id}, nil
	case AccountLocked:
		return pubAccount{AccountID: id, Status: userstore.AccountLocked}, nil
	case AccountUnlocked:
		return pubAccount{AccountID: id, Status: userstore.AccountActive}, nil
	case AccountClosed:
		return pubAccount{AccountID: id, Status: userstore.AccountClosed}, nil

	case IdentityLinked:
		return pubIdentity{IdentityID: id, UserID: e.UserID, Issuer: e.Issuer}, nil
	case IdentityUnlinked:
		return pubIdentity{IdentityID: id, UserID: e.UserID, Issuer: e.Issuer}, nil

	case ApplicationRegistered:
		return pubApplication{ApplicationID: id, Kind: e.Kind, Status: userstore.AppActive}, nil
	case ApplicationUpdated:
		return pubApplication{ApplicationID: id, Kind: e.Kind}, nil
	case ApplicationDisabled:
		return pubApplication{ApplicationID: id, Status: userstore.AppDisabled}, nil
	case ApplicationEnabled:
		return pubApplication{ApplicationID: id, Status: userstore.AppActive}, nil
	case ApplicationDeleted:
		return pubApplication{ApplicationID: id, Status: userstore.AppDeleted}, nil

	case BindingCreated:
		return pubBinding{BindingID: id, ApplicationID: e.ApplicationID, UserID: e.UserID, Roles: nonNil(e.Roles)}, nil
	case BindingRolesChanged:
		return pubBinding{BindingID: id, ApplicationID: e.ApplicationID, UserID: e.UserID, Roles: nonNil(e.Roles)}, nil
	case BindingRemoved:
		return pubBinding{BindingID: id, ApplicationID: e.ApplicationID, UserID: e.UserID}, nil

	case CatalogDefined:
		attrs := make([]pubAttribute, len(e.Attributes))
		for i, a := range e.Attributes {
			attrs[i] = pubAttr(a)
		}
		return pubCatalog{CatalogID: id, Attributes: attrs}, nil
	case CatalogAttributeAdded:
		a := pubAttr(e.Attribute)
		return pubCatalog{CatalogID: id, Attribute: &a}, nil
	case CatalogAttributeDeprecated:
		return pubCatalog{CatalogID: id, Key: e.Key}, nil

	case ProfileValuesSet:
		values := make(map[string]userstore.Value, len(e.Values))
		for k, v := range e.Values {
			if !slices.Contains(e.PIIKeys, k) {
				values[k] = v
			}
		}
		return pubProfile{UserID: e.UserID, CatalogID: e.CatalogID, Keys: slices.Sorted(maps.Keys(e.Values)), Values: values}, nil
	case ProfileValuesCleared:
		return pubProfile{UserID: e.UserID, CatalogID: e.CatalogID, Keys: nonNil(e.Keys)}, nil
	case ProfileCleared:
		return pubProfile{UserID: e.UserID, CatalogID: e.CatalogID, Keys: nonNil(e.Keys)}, nil

	case RosterMemberAdded:
		return pubMember{UserID: e.UserID, Role: e.Role}, nil
	case RosterMemberRoleChanged:
		return pubMember{UserID: e.UserID, Role: e.Role, PreviousRole: e.PreviousRole}, nil
	case RosterMemberRemoved:
		return pubMember{UserID: e.UserID, PreviousRole: e.Role}, nil
	}
	return nil, fmt.Errorf("%w: no public event for %q", ErrUnknownEventType, ev.EventType())
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
