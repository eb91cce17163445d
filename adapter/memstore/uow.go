package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
)

// entry is one event of the log.
type entry struct {
	position   int64
	stream     domain.StreamRef
	version    int64
	eventID    uuid.UUID
	event      domain.Encoded
	metadata   domain.Metadata
	recordedAt time.Time
}

type streamKey struct{ tenantID, id uuid.UUID }

// stream indexes one stream's events in the log.
type stream struct {
	typ       domain.StreamType
	positions []int64
}

type idemKey struct {
	tenantID uuid.UUID
	key      string
}

type profileKey struct{ userID, catalogID uuid.UUID }

// tenantData is one tenant's read model — the views of its aggregates' states — and its audit trail
// and outbox, derived from its events as they commit.
type tenantData struct {
	id         uuid.UUID
	tenant     *userstore.Tenant
	users      map[uuid.UUID]*userstore.User
	accounts   map[uuid.UUID]*userstore.Account
	identities map[uuid.UUID]*userstore.ExternalIdentity
	apps       map[uuid.UUID]*userstore.Application
	bindings   map[uuid.UUID]*userstore.Binding
	catalogs   map[uuid.UUID]*userstore.Catalog
	profiles   map[profileKey]*userstore.Profile
	members    map[uuid.UUID]*userstore.Membership
	audit      []userstore.AuditRecord
	outbox     []userstore.OutboxEvent
}

func newTenantData(id uuid.UUID) *tenantData {
	return &tenantData{
		id:         id,
		users:      map[uuid.UUID]*userstore.User{},
		accounts:   map[uuid.UUID]*userstore.Account{},
		identities: map[uuid.UUID]*userstore.ExternalIdentity{},
		apps:       map[uuid.UUID]*userstore.Application{},
		bindings:   map[uuid.UUID]*userstore.Binding{},
		catalogs:   map[uuid.UUID]*userstore.Catalog{},
		profiles:   map[profileKey]*userstore.Profile{},
		members:    map[uuid.UUID]*userstore.Membership{},
	}
}

// uow is a unit of work: it writes straight into the store, which its caller holds locked, and
// records how to undo each change; rollback undoes them in reverse order. Readers never see a unit of
// work in progress because they need the lock too.
type uow struct {
	s *Store
	// start is the log length when the unit of work began.
	start int
	undo  []func()
}

var _ engine.UnitOfWork = (*uow)(nil)

func (u *uow) rollback() {
	for i := len(u.undo) - 1; i >= 0; i-- {
		u.undo[i]()
	}
	u.undo = nil
}

// set sets m[k] = v, undoably.
func set[K comparable, V any](u *uow, m map[K]V, k K, v V) {
	old, had := m[k]
	m[k] = v
	u.undo = append(u.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

// del deletes m[k], undoably.
func del[K comparable, V any](u *uow, m map[K]V, k K) {
	old, had := m[k]
	if !had {
		return
	}
	delete(m, k)
	u.undo = append(u.undo, func() { m[k] = old })
}

// tenant returns the tenant's data, creating it (undoably) on the tenant's first write.
func (u *uow) tenant(id uuid.UUID) *tenantData {
	td, ok := u.s.tenants[id]
	if !ok {
		td = newTenantData(id)
		set(u, u.s.tenants, id, td)
	}
	return td
}

// Load implements engine.UnitOfWork.
func (u *uow) Load(ctx context.Context, tenantID, streamID uuid.UUID) (*engine.Stream, error) {
	st, ok := u.s.streams[streamKey{tenantID, streamID}]
	if !ok {
		return &engine.Stream{}, nil
	}
	events := make([]domain.Encoded, len(st.positions))
	for i, pos := range st.positions {
		events[i] = u.s.log[pos-1].event
	}
	return &engine.Stream{Type: st.typ, Version: int64(len(events)), Events: events}, nil
}

// Append implements engine.UnitOfWork: it appends the events to the log and sets the stream's read
// model from the write's state.
func (u *uow) Append(ctx context.Context, w *engine.Write) error {
	key := streamKey{w.Stream.TenantID, w.Stream.ID}
	st, ok := u.s.streams[key]
	if !ok {
		st = &stream{typ: w.Stream.Type}
		set(u, u.s.streams, key, st)
	}
	if st.typ != w.Stream.Type || int64(len(st.positions)) != w.ExpectedVersion {
		// The store's lock makes this impossible; it would be a bug in the engine.
		return fmt.Errorf("memstore: append to %s stream at version %d, expected %d", w.Stream.Type, len(st.positions), w.ExpectedVersion)
	}
	logLen, streamLen := len(u.s.log), len(st.positions)
	u.undo = append(u.undo, func() {
		u.s.log = u.s.log[:logLen]
		st.positions = st.positions[:streamLen]
	})
	recordedAt := u.s.now().UTC().Truncate(time.Microsecond)
	for _, ev := range w.Events {
		pos := int64(len(u.s.log)) + 1
		u.s.log = append(u.s.log, entry{
			position: pos, stream: w.Stream, version: ev.Version, eventID: ev.EventID,
			event: ev.Encoded, metadata: w.Metadata, recordedAt: recordedAt,
		})
		st.positions = append(st.positions, pos)
	}
	return u.apply(w)
}

// apply sets the read model of the write's stream from its state.
func (u *uow) apply(w *engine.Write) error {
	td := u.tenant(w.Stream.TenantID)
	id := w.Stream.ID
	switch s := w.State.(type) {
	case domain.TenantState:
		old := td.tenant
		td.tenant = s.View()
		u.undo = append(u.undo, func() { td.tenant = old })
	case domain.UserState:
		set(u, td.users, id, s.View())
	case domain.AccountState:
		set(u, td.accounts, id, s.View())
	case domain.IdentityState:
		if s.Found() {
			set(u, td.identities, id, s.View())
		} else {
			del(u, td.identities, id)
		}
	case domain.ApplicationState:
		set(u, td.apps, id, s.View())
	case domain.BindingState:
		if s.Found() {
			set(u, td.bindings, id, s.View())
		} else {
			del(u, td.bindings, id)
		}
	case domain.CatalogState:
		set(u, td.catalogs, id, s.View())
	case domain.ProfileState:
		set(u, td.profiles, profileKey{s.UserID, s.CatalogID}, s.View())
	case domain.RosterState:
		for _, ev := range w.Events {
			userID, _ := domain.RosterUser(ev.Event)
			if m, ok := s.Membership(userID); ok {
				set(u, td.members, userID, m)
			} else {
				del(u, td.members, userID)
			}
		}
	default:
		return fmt.Errorf("memstore: no read model for %T", w.State)
	}
	return nil
}

// Claim implements engine.UnitOfWork.
func (u *uow) Claim(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	if cur, ok := u.s.claims[c]; ok {
		if cur == owner {
			return nil
		}
		return engine.DuplicateOf(c)
	}
	set(u, u.s.claims, c, owner)
	return nil
}

// Release implements engine.UnitOfWork.
func (u *uow) Release(ctx context.Context, c domain.Claim, owner domain.StreamRef) error {
	if cur, ok := u.s.claims[c]; ok && cur == owner {
		del(u, u.s.claims, c)
	}
	return nil
}

// Guard implements engine.UnitOfWork: under the store's lock nothing can change concurrently.
func (u *uow) Guard(ctx context.Context, ref domain.StreamRef, version int64) error { return nil }

// UserDependents implements engine.UnitOfWork.
func (u *uow) UserDependents(ctx context.Context, tenantID, userID uuid.UUID) (*engine.UserDependents, error) {
	deps := &engine.UserDependents{}
	td, ok := u.s.tenants[tenantID]
	if !ok {
		return deps, nil
	}
	for id, a := range td.accounts {
		if a.UserID == userID && a.Status != userstore.AccountClosed {
			deps.Accounts = append(deps.Accounts, id)
		}
	}
	for id, i := range td.identities {
		if i.UserID == userID {
			deps.Identities = append(deps.Identities, id)
		}
	}
	for id, b := range td.bindings {
		if b.UserID == userID {
			deps.Bindings = append(deps.Bindings, id)
		}
	}
	for k, p := range td.profiles {
		if k.userID == userID && len(p.Values) > 0 {
			deps.Catalogs = append(deps.Catalogs, k.catalogID)
		}
	}
	for _, ids := range [][]uuid.UUID{deps.Accounts, deps.Identities, deps.Bindings, deps.Catalogs} {
		slices.SortFunc(ids, compareIDs)
	}
	return deps, nil
}

// ApplicationBindings implements engine.UnitOfWork.
func (u *uow) ApplicationBindings(ctx context.Context, tenantID, applicationID uuid.UUID) ([]uuid.UUID, error) {
	td, ok := u.s.tenants[tenantID]
	if !ok {
		return nil, nil
	}
	var ids []uuid.UUID
	for id, b := range td.bindings {
		if b.ApplicationID == applicationID {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareIDs)
	return ids, nil
}

// Idempotency implements engine.UnitOfWork.
func (u *uow) Idempotency(ctx context.Context, tenantID uuid.UUID, key string) (*engine.IdempotencyRecord, error) {
	rec, ok := u.s.idempotency[idemKey{tenantID, key}]
	if !ok {
		return nil, nil
	}
	cp := *rec
	cp.Result = bytes.Clone(rec.Result)
	return &cp, nil
}

// SaveIdempotency implements engine.UnitOfWork.
func (u *uow) SaveIdempotency(ctx context.Context, rec *engine.IdempotencyRecord) error {
	cp := *rec
	cp.Result = bytes.Clone(rec.Result)
	set(u, u.s.idempotency, idemKey{rec.TenantID, rec.Key}, &cp)
	return nil
}

// commit derives the audit records and outbox events of the unit of work's events — through the same
// domain functions a projector uses on the PostgreSQL log — and appends them to their tenants. It
// derives everything before changing anything, so a failure leaves the unit of work to roll back.
func (u *uow) commit() error {
	type derived struct {
		td     *tenantData
		audit  userstore.AuditRecord
		outbox userstore.OutboxEvent
	}
	type link struct {
		seq  int64
		hash string
	}
	out := make([]derived, 0, len(u.s.log)-u.start)
	last := map[*tenantData]link{}
	for i := u.start; i < len(u.s.log); i++ {
		e := &u.s.log[i]
		ev, err := domain.Decode(e.event)
		if err != nil {
			return fmt.Errorf("memstore: decode event at position %d: %w", e.position, err)
		}
		r := domain.Recorded{
			Stream: e.stream, Version: e.version, EventID: e.eventID, Position: e.position,
			Event: ev, Metadata: e.metadata,
		}
		td := u.s.tenants[e.stream.TenantID]
		prev, ok := last[td]
		if !ok {
			prev = link{0, domain.AuditGenesisHash}
			if n := len(td.audit); n > 0 {
				prev = link{td.audit[n-1].Sequence, td.audit[n-1].Hash}
			}
		}
		d := derived{td: td, audit: domain.Audit(r)}
		if err := domain.ChainAudit(&d.audit, prev.seq, prev.hash); err != nil {
			return err
		}
		if d.outbox, err = domain.Outbox(r); err != nil {
			return err
		}
		out = append(out, d)
		last[td] = link{d.audit.Sequence, d.audit.Hash}
	}
	for _, d := range out {
		d.td.audit = append(d.td.audit, d.audit)
		d.td.outbox = append(d.td.outbox, d.outbox)
	}
	u.undo = nil
	return nil
}

// compareIDs orders uuids by their bytes, which is also the order of their canonical strings.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
