package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// Config configures an Engine. A nil *Config is valid.
type Config struct {
	// Now returns the current time; the engine keeps it in UTC at microsecond precision, the precision
	// PostgreSQL keeps. Default: time.Now.
	Now func() time.Time
	// NewID returns new entity and event ids. Default: userstore.NewID (UUIDv7).
	NewID func() uuid.UUID
}

// Engine prepares and runs the store's mutations. It is safe for concurrent use when Config.Now and
// Config.NewID are.
type Engine struct {
	now   func() time.Time
	newID func() uuid.UUID
}

// New returns an engine.
func New(cfg *Config) *Engine {
	e := &Engine{now: time.Now, newID: userstore.NewID}
	if cfg != nil {
		if cfg.Now != nil {
			e.now = cfg.Now
		}
		if cfg.NewID != nil {
			e.newID = cfg.NewID
		}
	}
	return e
}

// Op is a prepared mutation: its context is resolved and its input validated and normalized, without
// any I/O. Run it in a unit of work; if the adapter must retry the transaction, it runs the same Op
// again in a new one (the new entity's id, the time and the correlation id stay the same).
type Op[R any] struct {
	name     string
	tenantID uuid.UUID
	meta     domain.Metadata
	hash     string
	gate     gate
	run      func(x *txn) (R, error)
	e        *Engine
	// loads are the streams the operation loads before it decides, in order: its Plan.
	loads []uuid.UUID
}

// gate says how an Op checks its tenant before running.
type gate int

const (
	// gateEntity: the tenant must exist and accept entity mutations (active); it is guarded.
	gateEntity gate = iota
	// gateNone: CreateTenant and the tenant's own commands, which decide on the tenant themselves.
	gateNone
)

// Name returns the operation's name, e.g. "CreateUser".
func (o *Op[R]) Name() string { return o.name }

// TenantID returns the tenant the operation runs in (for CreateTenant, the new tenant). An adapter
// scopes its transaction to it (PostgreSQL: set_config('userstore.tenant_id', …, true)).
func (o *Op[R]) TenantID() uuid.UUID { return o.tenantID }

// RequestHash returns the hash of the operation's request, as recorded with its idempotency key; empty
// when the operation has no key.
func (o *Op[R]) RequestHash() string { return o.hash }

// Run runs the operation in a unit of work and returns its result. It checks the idempotency key
// first (a used key with the same request returns the recorded result and changes nothing; with
// another request, ErrIdempotencyConflict), then the tenant, then decides and appends. On error the
// adapter must roll the unit of work back.
func (o *Op[R]) Run(ctx context.Context, uow UnitOfWork) (R, error) {
	var zero R
	key := o.meta.IdempotencyKey
	if p, ok := uow.(Planner); ok {
		if err := p.Plan(ctx, &Plan{TenantID: o.tenantID, IdempotencyKey: key, Streams: o.loads}); err != nil {
			return zero, err
		}
	}
	if key != "" {
		rec, err := uow.Idempotency(ctx, o.tenantID, key)
		if err != nil {
			return zero, err
		}
		if rec != nil {
			if rec.Operation != o.name || rec.RequestHash != o.hash {
				return zero, userstore.ErrIdempotencyConflict
			}
			var res R
			if err := json.Unmarshal(rec.Result, &res); err != nil {
				return zero, fmt.Errorf("engine: decode the recorded result of %s: %w", o.name, err)
			}
			return res, nil
		}
	}
	x := &txn{ctx: ctx, uow: uow, e: o.e, tenantID: o.tenantID, meta: o.meta}
	if o.gate == gateEntity {
		if err := x.admit(); err != nil {
			return zero, err
		}
	}
	res, err := o.run(x)
	if err != nil {
		return zero, err
	}
	if key != "" {
		result, err := json.Marshal(res)
		if err != nil {
			return zero, fmt.Errorf("engine: encode the result of %s: %w", o.name, err)
		}
		err = uow.SaveIdempotency(ctx, &IdempotencyRecord{
			TenantID: o.tenantID, Key: key, Operation: o.name, RequestHash: o.hash, Result: result,
		})
		if err != nil {
			return zero, err
		}
	}
	return res, nil
}

// mutation is the resolved context of a mutation.
type mutation struct {
	tenantID uuid.UUID
	meta     domain.Metadata
	now      time.Time
}

// params is what every mutation's params have: the embedded userstore.Mutation.
type params[T any] interface {
	*T
	Mut() *userstore.Mutation
}

// begin resolves a mutation's tenant, actor and request id from p's Mutation and ctx, in the order the
// protocol promises: no tenant → ErrTenantRequired; no actor → ErrActorRequired; then the tenant of the
// params must agree with the context's, and the actor, request id and idempotency key must be valid.
// Nil params are a validation error after those checks.
func begin[T any, P params[T]](e *Engine, ctx context.Context, name string, p P) (*mutation, error) {
	var m userstore.Mutation
	if p != nil {
		m = *p.Mut()
	}
	ctxTenant, _ := userstore.TenantFromContext(ctx)
	tenantID := m.TenantID
	if tenantID == uuid.Nil {
		tenantID = ctxTenant
	}
	if tenantID == uuid.Nil {
		return nil, userstore.ErrTenantRequired
	}
	actor := m.Actor
	if actor.IsZero() {
		actor, _ = userstore.ActorFromContext(ctx)
	}
	if actor.IsZero() {
		return nil, userstore.ErrActorRequired
	}
	if m.TenantID != uuid.Nil && ctxTenant != uuid.Nil && m.TenantID != ctxTenant {
		return nil, userstore.Invalid(domain.FieldTenantID, "differs from the context's tenant")
	}
	if err := domain.ValidateActor(actor); err != nil {
		return nil, err
	}
	requestID := m.RequestID
	if requestID == "" {
		requestID, _ = userstore.RequestIDFromContext(ctx)
	}
	if err := domain.ValidateToken(domain.FieldRequestID, requestID); err != nil {
		return nil, err
	}
	if err := domain.ValidateToken(domain.FieldIdempotencyKey, m.IdempotencyKey); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, userstore.Invalid("params", "are required")
	}
	return &mutation{
		tenantID: tenantID,
		now:      e.now().UTC().Truncate(time.Microsecond),
		meta: domain.Metadata{
			Actor:          actor,
			RequestID:      requestID,
			IdempotencyKey: m.IdempotencyKey,
			Command:        name,
			CorrelationID:  e.newID(),
		},
	}, nil
}

// op returns the prepared operation of a resolved mutation; p are its params as the caller gave them,
// hashed when the mutation carries an idempotency key.
func op[R any](e *Engine, m *mutation, p any, g gate, run func(x *txn) (R, error)) *Op[R] {
	o := &Op[R]{name: m.meta.Command, tenantID: m.tenantID, meta: m.meta, gate: g, run: run, e: e}
	if m.meta.IdempotencyKey != "" {
		o.hash = RequestHash(o.name, o.tenantID, m.meta.Actor, p)
	}
	if g == gateEntity {
		o.loads = []uuid.UUID{domain.TenantRef(m.tenantID).ID}
	}
	return o
}

// reads adds streams the operation loads, after its gate, in the order it loads them, to its Plan.
// Every operation declares the streams it loads before it decides: adapters that implement Planner
// then read them in one round trip (TestPlanCoversTheReads keeps the declarations honest).
func (o *Op[R]) reads(refs ...domain.StreamRef) *Op[R] {
	for _, ref := range refs {
		o.loads = append(o.loads, ref.ID)
	}
	return o
}

// ref returns the ref of a stream in the mutation's tenant.
func (m *mutation) ref(t domain.StreamType, id uuid.UUID) domain.StreamRef {
	return domain.Ref(m.tenantID, t, id)
}

// txn is one run of an Op in a unit of work.
type txn struct {
	ctx      context.Context
	uow      UnitOfWork
	e        *Engine
	tenantID uuid.UUID
	meta     domain.Metadata
	// cause is the id of the first event the run appended: the causation of the events after it.
	cause uuid.UUID
}

// admit checks that the tenant exists and accepts entity mutations, and guards it.
func (x *txn) admit() error {
	ref := domain.TenantRef(x.tenantID)
	t, v, err := load[domain.TenantState](x, ref)
	if err != nil {
		return err
	}
	if err := t.Admit(); err != nil {
		return err
	}
	return x.uow.Guard(x.ctx, ref, v)
}

// ref returns the ref of a stream in the run's tenant.
func (x *txn) ref(t domain.StreamType, id uuid.UUID) domain.StreamRef {
	return domain.Ref(x.tenantID, t, id)
}

// aggregate is the constraint of the typed helpers: a domain state that evolves into itself.
type aggregate[S any] interface {
	domain.Aggregate
	Evolve(domain.Event) S
}

// load folds a stream into its state and returns it with the stream's version. A stream that does not
// exist, or has another type, is the initial state at version 0.
func load[S domain.Aggregate](x *txn, ref domain.StreamRef) (S, int64, error) {
	var zero S
	st, err := x.uow.Load(x.ctx, ref.TenantID, ref.ID)
	if err != nil {
		return zero, 0, err
	}
	var events []domain.Event
	var version int64
	if st != nil && st.Version > 0 && st.Type == ref.Type {
		if int64(len(st.Events)) != st.Version {
			return zero, 0, fmt.Errorf("engine: %s stream has %d events at version %d", ref.Type, len(st.Events), st.Version)
		}
		events = make([]domain.Event, len(st.Events))
		for i, enc := range st.Events {
			if events[i], err = domain.Decode(enc); err != nil {
				return zero, 0, fmt.Errorf("engine: %s stream event %d: %w", ref.Type, i+1, err)
			}
		}
		version = st.Version
	}
	agg, err := domain.Fold(ref, events)
	if err != nil {
		return zero, 0, err
	}
	s, ok := agg.(S)
	if !ok {
		return zero, 0, fmt.Errorf("engine: %s stream folds into %T, not %T", ref.Type, agg, zero)
	}
	return s, version, nil
}

// mustFind loads a stream whose entity must be found (ErrNotFound otherwise).
func mustFind[S domain.Aggregate](x *txn, ref domain.StreamRef) (S, int64, error) {
	s, v, err := load[S](x, ref)
	if err == nil && !s.Found() {
		err = domain.NotFound(ref.Type.Entity())
	}
	return s, v, err
}

// create decides the creation of a new stream: an id already used by any stream of the tenant is a
// duplicate of KindEntityID.
func create[S aggregate[S]](x *txn, ref domain.StreamRef, decide func(S) ([]domain.Event, error)) (S, error) {
	var zero S
	st, err := x.uow.Load(x.ctx, ref.TenantID, ref.ID)
	if err != nil {
		return zero, err
	}
	if st != nil && st.Version > 0 {
		return zero, &userstore.DuplicateError{Kind: userstore.KindEntityID}
	}
	agg, err := domain.NewState(ref)
	if err != nil {
		return zero, err
	}
	s, ok := agg.(S)
	if !ok {
		return zero, fmt.Errorf("engine: a new %s stream is a %T, not %T", ref.Type, agg, zero)
	}
	events, err := decide(s)
	if err != nil {
		return zero, err
	}
	return appendTo(x, ref, 0, s, events)
}

// update decides a command on an existing entity: not found → ErrNotFound; a non-zero expected version
// other than the stream's → *VersionConflictError; then the decider.
func update[S aggregate[S]](x *txn, ref domain.StreamRef, expected int64, decide func(S) ([]domain.Event, error)) (S, error) {
	var zero S
	s, v, err := mustFind[S](x, ref)
	if err != nil {
		return zero, err
	}
	if err := domain.CheckVersion(ref.Type.Entity(), ref.ID, expected, v); err != nil {
		return zero, err
	}
	return appendDecided(x, ref, v, s, decide)
}

// appendDecided decides a command on a loaded state at a version and appends what it decides.
func appendDecided[S aggregate[S]](x *txn, ref domain.StreamRef, version int64, s S, decide func(S) ([]domain.Event, error)) (S, error) {
	events, err := decide(s)
	if err != nil {
		return s, err
	}
	return appendTo(x, ref, version, s, events)
}

// appendTo applies the claims of the events, folds them into s and appends them with the new state.
// No events: nothing happens and s is returned as it is.
func appendTo[S aggregate[S]](x *txn, ref domain.StreamRef, version int64, s S, events []domain.Event) (S, error) {
	if len(events) == 0 {
		return s, nil
	}
	w := &Write{Stream: ref, ExpectedVersion: version, Metadata: x.meta, Events: make([]PendingEvent, len(events))}
	w.Metadata.CausationID = x.cause
	for i, ev := range events {
		enc, err := domain.Encode(ev)
		if err != nil {
			return s, err
		}
		for _, c := range domain.Claims(ref, ev) {
			if c.Op == domain.ClaimTake {
				err = x.uow.Claim(x.ctx, c.Claim, c.Owner)
			} else {
				err = x.uow.Release(x.ctx, c.Claim, c.Owner)
			}
			if err != nil {
				return s, err
			}
		}
		s = s.Evolve(ev)
		w.Events[i] = PendingEvent{EventID: x.e.newID(), Version: version + int64(i) + 1, Event: ev, Encoded: enc}
	}
	w.State = s
	if err := x.uow.Append(x.ctx, w); err != nil {
		return s, err
	}
	if x.cause == uuid.Nil {
		x.cause = w.Events[0].EventID
	}
	return s, nil
}

// viewOf returns the view of a decided state, or the error that prevented it.
func viewOf[V any, S interface{ View() *V }](s S, err error) (*V, error) {
	if err != nil {
		return nil, err
	}
	return s.View(), nil
}

// guard guards a stream at a version (see UnitOfWork.Guard).
func (x *txn) guard(ref domain.StreamRef, version int64) error {
	return x.uow.Guard(x.ctx, ref, version)
}

// Validation helpers shared by the operations.

func requireID(field string, id uuid.UUID) error {
	if id == uuid.Nil {
		return userstore.Invalid(field, "is required")
	}
	return nil
}

func checkExpected(v int64) error {
	if v < 0 {
		return userstore.Invalid("expected_version", "must not be negative")
	}
	return nil
}

// first returns the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
