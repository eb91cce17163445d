package engine

import (
	"context"
	"strconv"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func catalogCmd(c domain.CatalogCommand) func(domain.CatalogState) ([]domain.Event, error) {
	return func(s domain.CatalogState) ([]domain.Event, error) { return s.Decide(c) }
}

// DefineCatalog prepares DefineCatalog: at most MaxAttributes attributes with distinct keys.
func (e *Engine) DefineCatalog(ctx context.Context, p *userstore.DefineCatalogParams) (*Op[*userstore.Catalog], error) {
	m, err := begin(e, ctx, "DefineCatalog", p)
	if err != nil {
		return nil, err
	}
	name, err := domain.NormalizeCatalogName(p.Name)
	if err != nil {
		return nil, err
	}
	if len(p.Attributes) > userstore.MaxAttributes {
		return nil, userstore.Invalid("attributes", "must hold at most 256 attributes")
	}
	attrs := make([]userstore.Attribute, len(p.Attributes))
	seen := make(map[string]bool, len(p.Attributes))
	for i, a := range p.Attributes {
		field := "attributes[" + strconv.Itoa(i) + "]"
		if attrs[i], err = domain.NormalizeAttribute(field, a); err != nil {
			return nil, err
		}
		if seen[a.Key] {
			return nil, userstore.Invalid(field+".key", "repeats the key of another attribute")
		}
		seen[a.Key] = true
	}
	cmd := domain.DefineCatalog{ID: e.idOr(p.ID), TenantID: m.tenantID, Name: name, Attributes: attrs, At: m.now}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Catalog, error) {
		return viewOf(create(x, x.ref(domain.StreamCatalog, cmd.ID), catalogCmd(cmd)))
	}).reads(m.ref(domain.StreamCatalog, cmd.ID)), nil
}

// AddCatalogAttribute prepares AddCatalogAttribute: an existing key, deprecated or not, is a duplicate
// of KindCatalogAttribute.
func (e *Engine) AddCatalogAttribute(ctx context.Context, p *userstore.AddCatalogAttributeParams) (*Op[*userstore.Catalog], error) {
	m, err := begin(e, ctx, "AddCatalogAttribute", p)
	if err != nil {
		return nil, err
	}
	if err := requireID("catalog_id", p.CatalogID); err != nil {
		return nil, err
	}
	attr, err := domain.NormalizeAttribute("attribute", p.Attribute)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return e.catalogOp(m, p, p.CatalogID, p.ExpectedVersion, domain.AddCatalogAttribute{Attribute: attr, At: m.now}), nil
}

// DeprecateCatalogAttribute prepares DeprecateCatalogAttribute: an unknown key is ErrNotFound, an
// already deprecated one ReasonInvalidState.
func (e *Engine) DeprecateCatalogAttribute(ctx context.Context, p *userstore.DeprecateCatalogAttributeParams) (*Op[*userstore.Catalog], error) {
	m, err := begin(e, ctx, "DeprecateCatalogAttribute", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("catalog_id", p.CatalogID), domain.ValidateAttributeKey("key", p.Key), checkExpected(p.ExpectedVersion)); err != nil {
		return nil, err
	}
	return e.catalogOp(m, p, p.CatalogID, p.ExpectedVersion, domain.DeprecateCatalogAttribute{Key: p.Key, At: m.now}), nil
}

func (e *Engine) catalogOp(m *mutation, p any, id uuid.UUID, expected int64, cmd domain.CatalogCommand) *Op[*userstore.Catalog] {
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Catalog, error) {
		return viewOf(update(x, x.ref(domain.StreamCatalog, id), expected, catalogCmd(cmd)))
	}).reads(m.ref(domain.StreamCatalog, id))
}
