package domain

import (
	"fmt"
)

// NewState returns the state of a stream before its first event: the zero state of its aggregate, with
// the tenant set for the roster and the profile, whose events do not carry it.
func NewState(ref StreamRef) (Aggregate, error) {
	switch ref.Type {
	case StreamTenant:
		return TenantState{}, nil
	case StreamUser:
		return UserState{}, nil
	case StreamAccount:
		return AccountState{}, nil
	case StreamIdentity:
		return IdentityState{}, nil
	case StreamApplication:
		return ApplicationState{}, nil
	case StreamBinding:
		return BindingState{}, nil
	case StreamCatalog:
		return CatalogState{}, nil
	case StreamProfile:
		return ProfileState{TenantID: ref.TenantID}, nil
	case StreamRoster:
		return RosterState{TenantID: ref.TenantID}, nil
	}
	return nil, fmt.Errorf("domain: unknown stream type %q", ref.Type)
}

// Fold returns the state of a stream after its events, in order: the aggregate's read model as of the
// last one. Every event must belong to the stream's type. Replays fold a prefix of a stream to get its
// state as of a version.
func Fold(ref StreamRef, events []Event) (Aggregate, error) {
	s, err := NewState(ref)
	if err != nil {
		return nil, err
	}
	for i, ev := range events {
		if ev == nil {
			return nil, fmt.Errorf("domain: fold %s stream: event %d is nil", ref.Type, i+1)
		}
		if st, ok := EventStream(ev.EventType()); !ok || st != ref.Type {
			return nil, fmt.Errorf("domain: fold %s stream: event %d is a %s", ref.Type, i+1, ev.EventType())
		}
		s = Evolve(s, ev)
	}
	return s, nil
}

// Evolve applies one event to a state of any aggregate; it is the untyped form of the aggregates'
// Evolve methods.
func Evolve(s Aggregate, ev Event) Aggregate {
	switch st := s.(type) {
	case TenantState:
		return st.Evolve(ev)
	case UserState:
		return st.Evolve(ev)
	case AccountState:
		return st.Evolve(ev)
	case IdentityState:
		return st.Evolve(ev)
	case ApplicationState:
		return st.Evolve(ev)
	case BindingState:
		return st.Evolve(ev)
	case CatalogState:
		return st.Evolve(ev)
	case ProfileState:
		return st.Evolve(ev)
	case RosterState:
		return st.Evolve(ev)
	}
	return s
}
