package replay

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore/domain"
)

// EntityType names the kind of entity State reconstructs: a stream type, or a membership (one user's
// entry in the tenant's roster stream).
type EntityType string

// Entity types.
const (
	EntityTenant      EntityType = "tenant"
	EntityUser        EntityType = "user"
	EntityAccount     EntityType = "account"
	EntityIdentity    EntityType = "identity"
	EntityApplication EntityType = "application"
	EntityBinding     EntityType = "binding"
	EntityCatalog     EntityType = "catalog"
	// EntityProfile is one user's values in one catalog (ID is the user, CatalogID the catalog).
	EntityProfile EntityType = "profile"
	// EntityMembership is one user's membership (ID is the user), folded from the roster stream.
	EntityMembership EntityType = "membership"
	// EntityRoster is the tenant's whole membership roster (ID is the tenant, or empty).
	EntityRoster EntityType = "roster"
)

// EntityTypes lists every entity type.
var EntityTypes = []EntityType{
	EntityTenant, EntityUser, EntityAccount, EntityIdentity, EntityApplication, EntityBinding,
	EntityCatalog, EntityProfile, EntityMembership, EntityRoster,
}

// EntityRef identifies an entity of a tenant.
type EntityRef struct {
	TenantID uuid.UUID  `json:"tenant_id"`
	Type     EntityType `json:"type"`
	// ID is the entity's id: the tenant id for a tenant and the roster, the user id for a profile and
	// a membership.
	ID uuid.UUID `json:"id"`
	// CatalogID is the catalog of a profile.
	CatalogID uuid.UUID `json:"catalog_id,omitzero"`
}

// ParseEntity parses an entity of tenant in the form TYPE:ID — "user:0196…", "membership:<user id>",
// "profile:<user id>/<catalog id>", "tenant" or "roster" (the tenant's own, with or without its id).
// An error never quotes the input.
func ParseEntity(tenant uuid.UUID, s string) (EntityRef, error) {
	ref := EntityRef{TenantID: tenant}
	if tenant == uuid.Nil {
		return ref, invalid("TenantID", "must not be empty")
	}
	typ, id, hasID := strings.Cut(s, ":")
	ref.Type = EntityType(typ)
	switch ref.Type {
	case EntityTenant, EntityRoster:
		ref.ID = tenant
		if hasID {
			v, err := uuid.Parse(id)
			if err != nil {
				return ref, invalid("entity", "the id of a %s must be a UUID", typ)
			}
			if v != tenant {
				return ref, invalid("entity", "a %s's id must be the tenant's", typ)
			}
		}
		return ref, nil
	case EntityProfile:
		user, catalog, ok := strings.Cut(id, "/")
		u, err1 := uuid.Parse(user)
		c, err2 := uuid.Parse(catalog)
		if !hasID || !ok || err1 != nil || err2 != nil {
			return ref, invalid("entity", "a profile is profile:<user id>/<catalog id>")
		}
		ref.ID, ref.CatalogID = u, c
		return ref, nil
	case EntityUser, EntityAccount, EntityIdentity, EntityApplication, EntityBinding, EntityCatalog, EntityMembership:
		v, err := uuid.Parse(id)
		if !hasID || err != nil || v == uuid.Nil {
			return ref, invalid("entity", "must be %s:<uuid>", typ)
		}
		ref.ID = v
		return ref, nil
	}
	return ref, invalid("entity", "the type must be one of %s", joinTypes())
}

func joinTypes() string {
	s := make([]string, len(EntityTypes))
	for i, t := range EntityTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// String renders the entity as ParseEntity reads it.
func (e EntityRef) String() string {
	switch e.Type {
	case EntityProfile:
		return fmt.Sprintf("profile:%s/%s", e.ID, e.CatalogID)
	case EntityRoster:
		return "roster:" + e.TenantID.String()
	}
	return string(e.Type) + ":" + e.ID.String()
}

// Stream returns the ref of the entity's stream.
func (e EntityRef) Stream() domain.StreamRef {
	switch e.Type {
	case EntityProfile:
		return domain.ProfileRef(e.TenantID, e.ID, e.CatalogID)
	case EntityMembership, EntityRoster:
		return domain.RosterRef(e.TenantID)
	case EntityTenant:
		return domain.TenantRef(e.TenantID)
	}
	return domain.Ref(e.TenantID, domain.StreamType(e.Type), e.ID)
}

func (e EntityRef) validate() error {
	switch {
	case e.TenantID == uuid.Nil:
		return invalid("Entity.TenantID", "must not be empty")
	case e.ID == uuid.Nil && e.Type != EntityRoster && e.Type != EntityTenant:
		return invalid("Entity.ID", "must not be empty")
	case e.Type == EntityProfile && e.CatalogID == uuid.Nil:
		return invalid("Entity.CatalogID", "must not be empty for a profile")
	}
	for _, t := range EntityTypes {
		if t == e.Type {
			return nil
		}
	}
	return invalid("Entity.Type", "must be one of %s", joinTypes())
}
