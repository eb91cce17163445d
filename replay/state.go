package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
)

// StateParams select an entity and a point in the log.
type StateParams struct {
	// Entity is the entity to reconstruct; required.
	Entity EntityRef
	// AtPosition folds the events at or before this global position. A stream's positions increase
	// with its versions, so this is a prefix of the stream. 0: no bound.
	AtPosition int64
	// AtTime folds the events recorded (events.recorded_at, the time of the insert) at or before this
	// time. Zero: no bound. At most one of AtPosition and AtTime.
	AtTime time.Time
	// Diff asks for the change of every event folded (StateResult.Steps).
	Diff bool
}

// StateResult is an entity as it was at a point of the log.
type StateResult struct {
	Entity EntityRef `json:"entity"`
	// StreamType and StreamID identify the stream folded.
	StreamType domain.StreamType `json:"stream_type"`
	StreamID   string            `json:"stream_id"`
	// Found reports whether the entity existed at that point (domain.Aggregate.Found: a tombstone such as
	// a deleted user exists; an unlinked identity, a removed binding or membership does not).
	Found bool `json:"found"`
	// Version is the stream version folded to (the roster's, for a membership); 0 when no event was.
	Version int64 `json:"version"`
	// Position and RecordedAt are those of the last event folded.
	Position   int64     `json:"position,omitempty"`
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	// View is the entity as the store returns it — *userstore.User, *userstore.Profile, … ([]
	// userstore.Membership for the roster) — or nil when it does not exist (a profile without values is
	// the empty profile, as the store returns it).
	View any `json:"view"`
	// Steps is the change of every event folded (with StateParams.Diff), in order; for a membership,
	// the roster events that concern its user.
	Steps []Step `json:"steps,omitempty"`
}

// Step is one event folded and what it changed in the entity's view.
type Step struct {
	Version    int64           `json:"version"`
	Position   int64           `json:"position"`
	RecordedAt time.Time       `json:"recorded_at"`
	EventType  string          `json:"event_type"`
	Actor      userstore.Actor `json:"actor"`
	RequestID  string          `json:"request_id,omitempty"`
	// Changes lists the view's fields that changed, sorted by field; nested fields are dotted
	// ("Values.city").
	Changes []Change `json:"changes"`
}

// Change is one field of a view before and after an event, as JSON (absent: nil).
type Change struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// State reconstructs an entity as it was at a position or a time of the log, by folding its stream with
// the aggregates' Evolve (domain.Evolve, what the store's deciders fold) and taking the state's View().
// The stream is read in batches of Config.BatchSize inside one REPEATABLE READ READ ONLY snapshot;
// every event visible in it counts (a stream's visible events are a prefix of the stream).
//
// An entity whose stream has no event at all is ErrNotFound; an entity that did not exist yet at the
// point is a result with Found false. An event that does not belong to the entity's stream type is an
// ErrValidation (the id names another kind of entity); one that does not decode matches ErrUndecodable.
func (r *Replayer) State(ctx context.Context, params *StateParams) (*StateResult, error) {
	if params == nil {
		return nil, invalid("StateParams", "must not be nil")
	}
	if err := params.Entity.validate(); err != nil {
		return nil, err
	}
	switch {
	case params.AtPosition < 0:
		return nil, invalid("AtPosition", "must not be negative")
	case params.AtPosition > 0 && !params.AtTime.IsZero():
		return nil, invalid("AtTime", "must not be set together with AtPosition")
	}
	e := params.Entity
	ref := e.Stream()
	state, err := domain.NewState(ref)
	if err != nil {
		return nil, invalid("Entity.Type", "has no stream")
	}
	res := &StateResult{Entity: e, StreamType: ref.Type, StreamID: ref.ID.String()}
	beyond := func(ev *eventstore.RecordedEvent) bool {
		return (params.AtPosition > 0 && ev.GlobalPosition > params.AtPosition) ||
			(!params.AtTime.IsZero() && ev.RecordedAt.After(params.AtTime))
	}
	prev := map[string]json.RawMessage{}
	err = r.readOnly(ctx, "state", func(tx pgx.Tx) error {
		for from := int64(1); ; {
			page, err := r.events.ReadStreamTx(ctx, tx, &eventstore.ReadStreamParams{
				TenantID: ref.TenantID, StreamID: ref.ID, FromVersion: from, Limit: r.cfg.BatchSize})
			if err != nil {
				return fromEventstore("read the stream", err)
			}
			if from == 1 && len(page.Events) == 0 {
				return fmt.Errorf("%w: no event of %s in the log", ErrNotFound, e)
			}
			for i := range page.Events {
				ev := &page.Events[i]
				if beyond(ev) {
					return nil
				}
				if ev.StreamType != string(ref.Type) {
					return invalid("Entity", "%s is a %s stream, not a %s stream", ref.ID, ev.StreamType, ref.Type)
				}
				rec, err := logcodec.Recorded(ev)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrUndecodable, err)
				}
				if st, ok := domain.EventStream(rec.Event.EventType()); !ok || st != ref.Type {
					return invalid("Entity", "the event at position %d is a %s, not an event of a %s stream",
						ev.GlobalPosition, rec.Event.EventType(), ref.Type)
				}
				state = domain.Evolve(state, rec.Event)
				res.Version, res.Position, res.RecordedAt = ev.StreamVersion, ev.GlobalPosition, ev.RecordedAt.UTC()
				if !params.Diff || !concerns(e, rec.Event) {
					continue
				}
				view, _ := viewOf(e, state)
				next, err := flatten(diffable(view), false)
				if err != nil {
					return err
				}
				res.Steps = append(res.Steps, Step{
					Version: ev.StreamVersion, Position: ev.GlobalPosition, RecordedAt: ev.RecordedAt.UTC(),
					EventType: rec.Event.EventType(), Actor: rec.Metadata.Actor, RequestID: rec.Metadata.RequestID,
					Changes: changes(prev, next),
				})
				prev = next
			}
			if len(page.Events) < r.cfg.BatchSize {
				return nil
			}
			from = page.Events[len(page.Events)-1].StreamVersion + 1
		}
	})
	if err != nil {
		return nil, err
	}
	res.View, res.Found = viewOf(e, state)
	return res, nil
}

// concerns reports whether an event of the entity's stream changes the entity: every event does, except
// the roster events of other users for a membership.
func concerns(e EntityRef, ev domain.Event) bool {
	if e.Type != EntityMembership {
		return true
	}
	u, ok := domain.RosterUser(ev)
	return ok && u == e.ID
}

// viewOf returns the entity's view of a state and whether the entity exists in it.
func viewOf(e EntityRef, s domain.Aggregate) (any, bool) {
	switch st := s.(type) {
	case domain.TenantState:
		return foundView(st.Found(), st.View())
	case domain.UserState:
		return foundView(st.Found(), st.View())
	case domain.AccountState:
		return foundView(st.Found(), st.View())
	case domain.IdentityState:
		return foundView(st.Found(), st.View())
	case domain.ApplicationState:
		return foundView(st.Found(), st.View())
	case domain.BindingState:
		return foundView(st.Found(), st.View())
	case domain.CatalogState:
		return foundView(st.Found(), st.View())
	case domain.ProfileState:
		if !st.Found() {
			// The store's answer for a user without values: the empty profile at version 0.
			return &userstore.Profile{TenantID: e.TenantID, UserID: e.ID, CatalogID: e.CatalogID,
				Values: map[string]userstore.Value{}}, false
		}
		return st.View(), true
	case domain.RosterState:
		if e.Type == EntityRoster {
			return st.Memberships(), st.Version > 0
		}
		if m, ok := st.Membership(e.ID); ok {
			return m, true
		}
	}
	return nil, false
}

func foundView[T any](found bool, v *T) (any, bool) {
	if !found {
		return nil, false
	}
	return v, true
}

// diffable returns the form of a view whose fields a diff compares: the roster by user id.
func diffable(view any) any {
	if ms, ok := view.([]userstore.Membership); ok {
		m := make(map[string]userstore.Membership, len(ms))
		for _, x := range ms {
			m[x.UserID.String()] = x
		}
		return m
	}
	return view
}

// flatten returns the fields of a view's JSON form, nested objects as dotted paths; arrays stay whole,
// nulls are absent. An empty nested object is a field of its own ({}) with keepEmpty, absent otherwise
// (diffs: a profile's first value is then one added field, not also a removed {}).
func flatten(view any, keepEmpty bool) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if view == nil {
		return out, nil
	}
	b, err := json.Marshal(view)
	if err != nil {
		return nil, fmt.Errorf("replay: encode a view: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("replay: decode a view: %w", err)
	}
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		if m, ok := v.(map[string]any); ok && (len(m) > 0 || prefix == "" || !keepEmpty) {
			for k, x := range m {
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				if err := walk(name, x); err != nil {
					return err
				}
			}
			return nil
		}
		if v == nil {
			return nil // JSON null: absent
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("replay: encode a field: %w", err)
		}
		out[prefix] = raw
		return nil
	}
	if err := walk("", v); err != nil {
		return nil, err
	}
	return out, nil
}

// changes lists the fields that differ between two flattened views, sorted by field.
func changes(before, after map[string]json.RawMessage) []Change {
	keys := slices.Sorted(maps.Keys(before))
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []Change{}
	for _, k := range keys {
		b, a := before[k], after[k]
		if bytes.Equal(b, a) {
			continue
		}
		out = append(out, Change{Field: k, Before: b, After: a})
	}
	return out
}
