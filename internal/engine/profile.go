package engine

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func profileCmd(c domain.ProfileCommand) func(domain.ProfileState) ([]domain.Event, error) {
	return func(s domain.ProfileState) ([]domain.Event, error) { return s.Decide(c) }
}

// SetProfileValues prepares SetProfileValues: 1..MaxValuesPerRequest values, all or nothing, checked
// against the catalog's attributes (the user and the catalog are guarded). ExpectedVersion is the
// profile's version (0 before its first value).
func (e *Engine) SetProfileValues(ctx context.Context, p *userstore.SetProfileValuesParams) (*Op[*userstore.Profile], error) {
	m, err := begin(e, ctx, "SetProfileValues", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("user_id", p.UserID), requireID("catalog_id", p.CatalogID)); err != nil {
		return nil, err
	}
	switch {
	case len(p.Values) == 0:
		return nil, userstore.Invalid("values", "must hold at least one value")
	case len(p.Values) > userstore.MaxValuesPerRequest:
		return nil, userstore.Invalid("values", "must hold at most 256 values")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Values)) {
		if err := domain.ValidateAttributeKey("values", k); err != nil {
			return nil, err
		}
		if !domain.ValidAttributeType(p.Values[k].Type) {
			return nil, userstore.Invalid("values."+k, "has an unknown type")
		}
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Profile, error) {
		cmd := domain.SetProfileValues{UserID: p.UserID, CatalogID: p.CatalogID, Values: p.Values, At: m.now}
		return x.profile(p.UserID, p.CatalogID, p.ExpectedVersion, func(status userstore.UserStatus, attrs []userstore.Attribute) domain.ProfileCommand {
			cmd.UserStatus, cmd.Attributes = status, attrs
			return cmd
		})
	}).profileReads(m, p.UserID, p.CatalogID), nil
}

// ClearProfileValues prepares ClearProfileValues: 1..MaxValuesPerRequest keys of the catalog; keys
// without a value are skipped; required attributes cannot be cleared.
func (e *Engine) ClearProfileValues(ctx context.Context, p *userstore.ClearProfileValuesParams) (*Op[*userstore.Profile], error) {
	m, err := begin(e, ctx, "ClearProfileValues", p)
	if err != nil {
		return nil, err
	}
	if err := first(requireID("user_id", p.UserID), requireID("catalog_id", p.CatalogID)); err != nil {
		return nil, err
	}
	switch {
	case len(p.Keys) == 0:
		return nil, userstore.Invalid("keys", "must hold at least one key")
	case len(p.Keys) > userstore.MaxValuesPerRequest:
		return nil, userstore.Invalid("keys", "must hold at most 256 keys")
	}
	for i, k := range p.Keys {
		if err := domain.ValidateAttributeKey("keys["+strconv.Itoa(i)+"]", k); err != nil {
			return nil, err
		}
	}
	if err := checkExpected(p.ExpectedVersion); err != nil {
		return nil, err
	}
	return op(e, m, p, gateEntity, func(x *txn) (*userstore.Profile, error) {
		cmd := domain.ClearProfileValues{UserID: p.UserID, CatalogID: p.CatalogID, Keys: p.Keys, At: m.now}
		return x.profile(p.UserID, p.CatalogID, p.ExpectedVersion, func(status userstore.UserStatus, attrs []userstore.Attribute) domain.ProfileCommand {
			cmd.UserStatus, cmd.Attributes = status, attrs
			return cmd
		})
	}).profileReads(m, p.UserID, p.CatalogID), nil
}

// profileReads declares the reads of x.profile: the user and the catalog, then the profile.
func (o *Op[R]) profileReads(m *mutation, userID, catalogID uuid.UUID) *Op[R] {
	return o.reads(m.ref(domain.StreamUser, userID), m.ref(domain.StreamCatalog, catalogID),
		domain.ProfileRef(m.tenantID, userID, catalogID))
}

// profile runs a command on the profile of (user, catalog): the user and the catalog must exist in the
// tenant and are guarded; their facts complete the command.
func (x *txn) profile(userID, catalogID uuid.UUID, expected int64, command func(userstore.UserStatus, []userstore.Attribute) domain.ProfileCommand) (*userstore.Profile, error) {
	status, err := x.userFacts(userID)
	if err != nil {
		return nil, err
	}
	catalogRef := x.ref(domain.StreamCatalog, catalogID)
	catalog, cv, err := mustFind[domain.CatalogState](x, catalogRef)
	if err != nil {
		return nil, err
	}
	if err := x.guard(catalogRef, cv); err != nil {
		return nil, err
	}
	ref := domain.ProfileRef(x.tenantID, userID, catalogID)
	s, v, err := load[domain.ProfileState](x, ref)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckVersion(domain.StreamProfile.Entity(), ref.ID, expected, v); err != nil {
		return nil, err
	}
	s.UserID, s.CatalogID = userID, catalogID // an empty profile's view names its user and catalog
	return viewOf(appendDecided(x, ref, v, s, profileCmd(command(status, catalog.Attributes))))
}
