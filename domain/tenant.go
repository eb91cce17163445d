package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Tenant event types.
const (
	EventTenantCreated     = "tenant.created"
	EventTenantRenamed     = "tenant.renamed"
	EventTenantSuspended   = "tenant.suspended"
	EventTenantReactivated = "tenant.reactivated"
	EventTenantClosed      = "tenant.closed"
)

// TenantCreated starts a tenant's stream; it claims the slug platform-wide.
type TenantCreated struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Slug     string    `json:"slug"`
	Name     string    `json:"name"`
	At       time.Time `json:"at"`
}

// TenantRenamed changes the tenant's display name.
type TenantRenamed struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// TenantSuspended suspends an active tenant.
type TenantSuspended struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// TenantReactivated reactivates a suspended tenant.
type TenantReactivated struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// TenantClosed closes a tenant for good. The slug stays claimed: a closed tenant's slug is never reused.
type TenantClosed struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func (TenantCreated) EventType() string       { return EventTenantCreated }
func (e TenantCreated) OccurredAt() time.Time { return e.At }

func (TenantRenamed) EventType() string       { return EventTenantRenamed }
func (e TenantRenamed) OccurredAt() time.Time { return e.At }

func (TenantSuspended) EventType() string       { return EventTenantSuspended }
func (e TenantSuspended) OccurredAt() time.Time { return e.At }

func (TenantReactivated) EventType() string       { return EventTenantReactivated }
func (e TenantReactivated) OccurredAt() time.Time { return e.At }

func (TenantClosed) EventType() string       { return EventTenantClosed }
func (e TenantClosed) OccurredAt() time.Time { return e.At }

// TenantCommand is a command of the tenant aggregate.
type TenantCommand interface{ tenantCommand() }

// CreateTenant creates a tenant. Slug and Name are normalized (NormalizeSlug, NormalizeName).
type CreateTenant struct {
	ID   uuid.UUID
	Slug string
	Name string
	At   time.Time
}

// RenameTenant renames a tenant; allowed while suspended. Renaming to the current name changes nothing.
type RenameTenant struct {
	Name string
	At   time.Time
}

// SuspendTenant suspends an active tenant.
type SuspendTenant struct {
	Reason string
	At     time.Time
}

// ReactivateTenant reactivates a suspended tenant.
type ReactivateTenant struct {
	Reason string
	At     time.Time
}

// CloseTenant closes an active or suspended tenant.
type CloseTenant struct {
	Reason string
	At     time.Time
}

func (CreateTenant) tenantCommand()     {}
func (RenameTenant) tenantCommand()     {}
func (SuspendTenant) tenantCommand()    {}
func (ReactivateTenant) tenantCommand() {}
func (CloseTenant) tenantCommand()      {}

// TenantState is the tenant aggregate.
type TenantState struct {
	ID        uuid.UUID
	Slug      string
	Name      string
	Status    userstore.TenantStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StreamType implements Aggregate.
func (TenantState) StreamType() StreamType { return StreamTenant }

// Found implements Aggregate.
func (s TenantState) Found() bool { return s.Version > 0 }

// Decide decides a tenant command against the state.
func (s TenantState) Decide(cmd TenantCommand) ([]Event, error) {
	if c, ok := cmd.(CreateTenant); ok {
		if s.Found() {
			return nil, duplicate(userstore.KindEntityID)
		}
		return []Event{TenantCreated{TenantID: c.ID, Slug: c.Slug, Name: c.Name, At: c.At}}, nil
	}
	if !s.Found() {
		return nil, NotFound("tenant")
	}
	if s.Status == userstore.TenantClosed {
		return nil, precondition(userstore.ReasonTenantClosed, "the tenant is closed")
	}
	switch c := cmd.(type) {
	case RenameTenant:
		if c.Name == s.Name {
			return nil, nil
		}
		return []Event{TenantRenamed{Name: c.Name, At: c.At}}, nil
	case SuspendTenant:
		if s.Status != userstore.TenantActive {
			return nil, invalidState("only an active tenant can be suspended")
		}
		return []Event{TenantSuspended{Reason: c.Reason, At: c.At}}, nil
	case ReactivateTenant:
		if s.Status != userstore.TenantSuspended {
			return nil, invalidState("only a suspended tenant can be reactivated")
		}
		return []Event{TenantReactivated{Reason: c.Reason, At: c.At}}, nil
	case CloseTenant:
		return []Event{TenantClosed{Reason: c.Reason, At: c.At}}, nil
	}
	return nil, errUnknownCommand(cmd)
}

// Evolve applies one tenant event. Events of other aggregates leave the state unchanged but for its
// version; the engine never folds them into a tenant. A nil event changes nothing.
func (s TenantState) Evolve(ev Event) TenantState {
	if ev == nil {
		return s
	}
	s.Version++
	s.UpdatedAt = ev.OccurredAt()
	switch e := ev.(type) {
	case TenantCreated:
		s.ID, s.Slug, s.Name, s.Status, s.CreatedAt = e.TenantID, e.Slug, e.Name, userstore.TenantActive, e.At
	case TenantRenamed:
		s.Name = e.Name
	case TenantSuspended:
		s.Status = userstore.TenantSuspended
	case TenantReactivated:
		s.Status = userstore.TenantActive
	case TenantClosed:
		s.Status = userstore.TenantClosed
	}
	return s
}

// Admit says whether the tenant accepts a mutation of its entities (anything but the tenant's own
// rename, reactivate and close): a closed tenant accepts none (ReasonTenantClosed), a suspended one none
// of these (ReasonTenantInactive).
func (s TenantState) Admit() error {
	switch {
	case !s.Found():
		return NotFound("tenant")
	case s.Status == userstore.TenantClosed:
		return precondition(userstore.ReasonTenantClosed, "the tenant is closed")
	case s.Status != userstore.TenantActive:
		return precondition(userstore.ReasonTenantInactive, "the tenant is suspended")
	}
	return nil
}

// View returns the tenant entity.
func (s TenantState) View() *userstore.Tenant {
	return &userstore.Tenant{
		ID: s.ID, Slug: s.Slug, Name: s.Name, Status: s.Status, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
