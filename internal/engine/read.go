package engine

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/keyset"
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

// AuditFilters returns the fingerprint of an audit query's filters, for its cursors (keyset).
func AuditFilters(p *userstore.ListAuditParams) string {
	actor := ""
	if p.Actor != nil {
		actor = string(p.Actor.Type) + "/" + p.Actor.ID
	}
	timeKey := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	target := ""
	if p.TargetID != uuid.Nil {
		target = p.TargetID.String()
	}
	return keyset.Fingerprint(actor, p.TargetType, target, p.Action, timeKey(p.Since), timeKey(p.Until))
}

// AuditMatches reports whether an audit record passes an audit query's filters (all of them: AND;
// Since <= OccurredAt < Until).
func AuditMatches(p *userstore.ListAuditParams, r *userstore.AuditRecord) bool {
	switch {
	case p.Actor != nil && r.Actor != *p.Actor,
		p.TargetType != "" && r.TargetType != p.TargetType,
		p.TargetID != uuid.Nil && r.TargetID != p.TargetID,
		p.Action != "" && r.Action != p.Action,
		!p.Since.IsZero() && r.OccurredAt.Before(p.Since),
		!p.Until.IsZero() && !r.OccurredAt.Before(p.Until):
		return false
	}
	return true
}
