package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Queries are the adapters' own (they read their read models); these helpers keep the rules every
// query shares in one place.

// ReadTenant returns the tenant of a query from ctx, or ErrTenantRequired.
func ReadTenant(ctx context.Context) (uuid.UUID, error) {
	id, ok := userstore.TenantFromContext(ctx)
	if !ok {
		return uuid.Nil, userstore.ErrTenantRequired
	}
	return id, nil
}

// PageLimit returns the page size of a list: DefaultLimit for 0, a validation error on "limit" below 0
// or above MaxLimit.
func PageLimit(o userstore.ListOpts) (int, error) {
	switch {
	case o.Limit == 0:
		return userstore.DefaultLimit, nil
	case o.Limit < 0 || o.Limit > userstore.MaxLimit:
		return 0, userstore.Invalid("limit", "must be 0 to 500")
	}
	return o.Limit, nil
}
