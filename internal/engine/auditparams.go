package engine

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// ValidateAuditParams checks an audit query's filters, the same way for every adapter, before any read:
// a target id needs its type; Until must not be before Since; the text filters are tokens (no NUL, no
// control characters, valid UTF-8: a database would refuse them with an error of its own); and the time
// bounds lie within the years 1 to 9999 (PostgreSQL's timestamps and RFC 3339 hold no other).
func ValidateAuditParams(p *userstore.ListAuditParams) error {
	if p.TargetID != uuid.Nil && p.TargetType == "" {
		return userstore.Invalid("target_type", "is required with target_id")
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since) {
		return userstore.Invalid("until", "must not be before since")
	}
	tokens := []struct{ field, value string }{{"action", p.Action}, {"target_type", p.TargetType}}
	if p.Actor != nil {
		tokens = append(tokens, struct{ field, value string }{"actor.type", string(p.Actor.Type)},
			struct{ field, value string }{"actor.id", p.Actor.ID})
	}
	for _, tok := range tokens {
		if err := domain.ValidateToken(tok.field, tok.value); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		field string
		t     time.Time
	}{{"since", p.Since}, {"until", p.Until}} {
		if y := b.t.UTC().Year(); !b.t.IsZero() && (y < 1 || y > 9999) {
			return userstore.Invalid(b.field, "must lie within the years 1 to 9999")
		}
	}
	return nil
}
