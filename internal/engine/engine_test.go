package engine_test

import (
	"bytes"
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/internal/engine"
)

// fakeUOW is a minimal in-memory unit of work that records what the engine asks of it. Its read model
// is the fold of its streams, computed on demand.
type fakeUOW struct {
	streams map[[2]uuid.UUID]*engine.Stream
	claims  map[domain.Claim]domain.StreamRef
	idem    map[string]*engine.IdempotencyRecord
	writes  []*engine.Write
	guards  []domain.StreamRef
}

func newFake() *fakeUOW {
	return &fakeUOW{
		streams: map[[2]uuid.UUID]*engine.Stream{},
		claims:  map[domain.Claim]domain.StreamRef{},
		idem:    map[string]*engine.IdempotencyRecord{},
	}
}

// clone returns an independent copy (to run the same Op twice from the same starting point).
func (f *fakeUOW) clone() *fakeUOW {
	c := newFake()
	for k, s := range f.streams {
		cp := *s
		cp.Events = slices.Clone(s.Events)
		c.streams[k] = &cp
	}
	maps.Copy(c.claims, f.claims)
	maps.Copy(c.idem, f.idem)
	return c
}

func (f *fakeUOW) Load(_ context.Context, tenantID, streamID uuid.UUID) (*engine.Stream, error) {
	s, ok := f.streams[[2]uuid.UUID{tenantID, streamID}]
	if !ok {
		return &engine.Stream{}, nil
	}
	cp := *s
	return &cp, nil
}

func (f *fakeUOW) Append(_ context.Context, w *engine.Write) error {
	k := [2]uuid.UUID{w.Stream.TenantID, w.Stream.ID}
	s, ok := f.streams[k]
	if !ok {
		s = &engine.Stream{Type: w.Stream.Type}
		f.streams[k] = s
	}
	if s.Version != w.ExpectedVersion {
		return userstore.ErrConflict
	}
	for _, ev := range w.Events {
		s.Events = append(s.Events, ev.Encoded)
		s.Version++
	}
	f.writes = append(f.writes, w)
	return nil
}

func (f *fakeUOW) Claim(_ context.Context, c domain.Claim, owner domain.StreamRef) error {
	if cur, ok := f.claims[c]; ok && cur != owner {
		return engine.DuplicateOf(c)
	}
	f.claims[c] = owner
	return nil
}

func (f *fakeUOW) Release(_ context.Context, c domain.Claim, owner domain.StreamRef) error {
	if f.claims[c] == owner {
		delete(f.claims, c)
	}
	return nil
}

func (f *fakeUOW) Guard(_ context.Context, ref domain.StreamRef, _ int64) error {
	f.guards = append(f.guards, ref)
	return nil
}

// states folds every stream of a type in a tenant.
func (f *fakeUOW) states(t domain.StreamType) []domain.Aggregate {
	var out []domain.Aggregate
	for k, s := range f.streams {
		if s.Type != t {
			continue
		}
		evs := make([]domain.Event, len(s.Events))
		for i, enc := range s.Events {
			evs[i], _ = domain.Decode(enc)
		}
		st, _ := domain.Fold(domain.Ref(k[0], t, k[1]), evs)
		out = append(out, st)
	}
	return out
}

func (f *fakeUOW) UserDependents(_ context.Context, _, userID uuid.UUID) (*engine.UserDependents, error) {
	d := &engine.UserDependents{}
	for _, s := range f.states(domain.StreamAccount) {
		if a := s.(domain.AccountState); a.UserID == userID && a.Open() {
			d.Accounts = append(d.Accounts, a.ID)
		}
	}
	for _, s := range f.states(domain.StreamBinding) {
		if b := s.(domain.BindingState); b.UserID == userID && b.Found() {
			d.Bindings = append(d.Bindings, b.ID)
		}
	}
	for _, s := range f.states(domain.StreamProfile) {
		if p := s.(domain.ProfileState); p.UserID == userID && len(p.Values) > 0 {
			d.Catalogs = append(d.Catalogs, p.CatalogID)
		}
	}
	return d, nil
}

func (f *fakeUOW) ApplicationBindings(_ context.Context, _, appID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	for _, s := range f.states(domain.StreamBinding) {
		if b := s.(domain.BindingState); b.ApplicationID == appID && b.Found() {
			ids = append(ids, b.ID)
		}
	}
	return ids, nil
}

func (f *fakeUOW) Idempotency(_ context.Context, tenantID uuid.UUID, key string) (*engine.IdempotencyRecord, error) {
	return f.idem[tenantID.String()+key], nil
}

func (f *fakeUOW) SaveIdempotency(_ context.Context, rec *engine.IdempotencyRecord) error {
	f.idem[rec.TenantID.String()+rec.Key] = rec
	return nil
}

// seqIDs returns a deterministic id source.
func seqIDs() func() uuid.UUID {
	n := 0
	return func() uuid.UUID {
		n++
		var id uuid.UUID
		id[6], id[8] = 0x70, 0x80
		id[14], id[15] = byte(n>>8), byte(n)
		return id
	}
}

var (
	tenantID = uuid.MustParse("01970000-0000-7000-8000-000000000001")
	actor    = userstore.Actor{Type: userstore.ActorService, ID: "engine-test"}
	clock    = time.Date(2026, 6, 5, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
)

type harness struct {
	e   *engine.Engine
	uow *fakeUOW
	ctx context.Context
}

func setup(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		e:   engine.New(&engine.Config{Now: func() time.Time { return clock }, NewID: seqIDs()}),
		uow: newFake(),
		ctx: userstore.WithRequestID(userstore.WithActor(userstore.WithTenant(t.Context(), tenantID), actor), "req-1"),
	}
	op, err := h.e.CreateTenant(h.ctx, &userstore.CreateTenantParams{Slug: "acme", Name: "Acme"})
	require.NoError(t, err)
	_, err = op.Run(h.ctx, h.uow)
	require.NoError(t, err)
	return h
}

// run prepares and runs an operation in the harness's unit of work.
func run[P, R any](t *testing.T, h *harness, prepare func(context.Context, P) (*engine.Op[R], error), p P) (R, error) {
	t.Helper()
	op, err := prepare(h.ctx, p)
	if err != nil {
		var zero R
		return zero, err
	}
	return op.Run(h.ctx, h.uow)
}

func must[R any](t *testing.T) func(R, error) R {
	return func(r R, err error) R {
		t.Helper()
		require.NoError(t, err)
		return r
	}
}

// prepareMethods returns every operation of the engine as a function of (ctx, params) for reflection
// over all of them.
func prepareMethods(t *testing.T, e *engine.Engine) map[string]func(ctx context.Context, nilParams bool) error {
	t.Helper()
	out := map[string]func(context.Context, bool) error{}
	v := reflect.ValueOf(e)
	for i := range v.NumMethod() {
		m := v.Type().Method(i)
		ft := m.Type
		if ft.NumIn() != 3 || ft.In(1) != reflect.TypeFor[context.Context]() || ft.NumOut() != 2 {
			continue
		}
		pt := ft.In(2)
		method := v.Method(i)
		out[m.Name] = func(ctx context.Context, nilParams bool) error {
			p := reflect.New(pt.Elem())
			if nilParams {
				p = reflect.Zero(pt)
			}
			res := method.Call([]reflect.Value{reflect.ValueOf(ctx), p})
			err, _ := res[1].Interface().(error)
			if err == nil && res[0].IsNil() {
				t.Fatalf("%s: no op and no error", m.Name)
			}
			return err
		}
	}
	var want []string
	st := reflect.TypeFor[userstore.Store]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Type.NumIn() == 2 && m.Type.In(1).Kind() == reflect.Pointer {
			if _, ok := m.Type.In(1).Elem().FieldByName("Mutation"); ok {
				want = append(want, m.Name)
			}
		}
	}
	require.ElementsMatch(t, want, slices.Collect(maps.Keys(out)), "one operation per mutation of the protocol")
	return out
}

func TestPrepareChecksTenantThenActorThenInput(t *testing.T) {
	e := engine.New(nil)
	ops := prepareMethods(t, e)
	noTenant := userstore.WithActor(t.Context(), actor)
	noActor := userstore.WithTenant(t.Context(), tenantID)
	both := userstore.WithActor(noActor, actor)
	for name, prepare := range ops {
		for _, nilParams := range []bool{false, true} {
			require.ErrorIs(t, prepare(t.Context(), nilParams), userstore.ErrTenantRequired, name)
			require.ErrorIs(t, prepare(noTenant, nilParams), userstore.ErrTenantRequired, name)
			require.ErrorIs(t, prepare(noActor, nilParams), userstore.ErrActorRequired, name)
		}
		var ve *userstore.ValidationError
		require.ErrorAs(t, prepare(both, true), &ve, name)
		require.Equal(t, "params", ve.Field)
		switch name {
		case "SuspendTenant", "ReactivateTenant", "CloseTenant":
			// Their params are all optional: the tenant comes from the context.
			require.NoError(t, prepare(both, false), name)
		default:
			require.ErrorIs(t, prepare(both, false), userstore.ErrValidation, name)
		}
	}
}

func TestPrepareResolvesTheMutation(t *testing.T) {
	e := engine.New(nil)
	ctx := userstore.WithActor(userstore.WithTenant(t.Context(), tenantID), actor)
	other := uuid.MustParse("01970000-0000-7000-8000-0000000000ff")

	_, err := e.CreateUser(ctx, &userstore.CreateUserParams{Mutation: userstore.Mutation{TenantID: other}, DisplayName: "A", Email: "a@x.io"})
	var ve *userstore.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "tenant_id", ve.Field)

	op, err := e.CreateUser(userstore.WithActor(t.Context(), actor), &userstore.CreateUserParams{Mutation: userstore.Mutation{TenantID: other}, DisplayName: "A", Email: "a@x.io"})
	require.NoError(t, err)
	require.Equal(t, other, op.TenantID(), "the tenant may come from the params alone")
	require.Equal(t, "CreateUser", op.Name())

	for _, c := range []struct {
		m     userstore.Mutation
		field string
	}{
		{userstore.Mutation{Actor: userstore.Actor{Type: "robot", ID: "x"}}, "actor.type"},
		{userstore.Mutation{RequestID: "bad\nid"}, "request_id"},
		{userstore.Mutation{IdempotencyKey: strings.Repeat("k", 256)}, "idempotency_key"},
	} {
		_, err := e.CreateUser(ctx, &userstore.CreateUserParams{Mutation: c.m, DisplayName: "A", Email: "a@x.io"})
		require.ErrorAs(t, err, &ve)
		require.Equal(t, c.field, ve.Field)
	}
}

func TestRunWritesEventsClaimsAndState(t *testing.T) {
	h := setup(t)
	u := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: " Ann ", Email: "Ann@X.io"}))
	require.Equal(t, "Ann", u.DisplayName)
	require.Equal(t, "Ann@X.io", u.Email)
	require.Equal(t, int64(1), u.Version)
	require.Equal(t, clock.UTC().Truncate(time.Microsecond), u.CreatedAt, "UTC, microseconds")
	require.Equal(t, time.UTC, u.CreatedAt.Location())

	w := h.uow.writes[len(h.uow.writes)-1]
	require.Equal(t, domain.Ref(tenantID, domain.StreamUser, u.ID), w.Stream)
	require.Equal(t, int64(0), w.ExpectedVersion)
	require.Len(t, w.Events, 1)
	require.Equal(t, int64(1), w.Events[0].Version)
	require.Equal(t, "user.created", w.Events[0].Type)
	require.Equal(t, actor, w.Metadata.Actor)
	require.Equal(t, "req-1", w.Metadata.RequestID)
	require.Equal(t, "CreateUser", w.Metadata.Command)
	require.NotEqual(t, uuid.Nil, w.Metadata.CorrelationID)
	require.Equal(t, uuid.Nil, w.Metadata.CausationID)
	require.Equal(t, u, w.State.(domain.UserState).View())
	require.Equal(t, domain.Ref(tenantID, domain.StreamUser, u.ID), h.uow.claims[domain.Claim{Scope: tenantID, Kind: userstore.KindEmail, Value: "ann@x.io"}])
	require.Contains(t, h.uow.guards, domain.TenantRef(tenantID), "the tenant is guarded")

	_, err := run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: "B", Email: "ANN@x.IO"})
	var de *userstore.DuplicateError
	require.ErrorAs(t, err, &de)
	require.Equal(t, userstore.KindEmail, de.Kind)

	_, err = run(t, h, h.e.CreateUser, &userstore.CreateUserParams{ID: u.ID, DisplayName: "B", Email: "b@x.io"})
	require.ErrorAs(t, err, &de)
	require.Equal(t, userstore.KindEntityID, de.Kind)

	// An id of another stream type is taken too.
	_, err = run(t, h, h.e.RegisterApplication, &userstore.RegisterApplicationParams{ID: u.ID, Name: "App", ClientKey: "app", Kind: userstore.AppWeb})
	require.ErrorAs(t, err, &de)
	require.Equal(t, userstore.KindEntityID, de.Kind)
	_, err = run(t, h, h.e.DisableApplication, &userstore.ApplicationParams{ID: u.ID})
	require.ErrorIs(t, err, userstore.ErrNotFound, "a user is not an application")

	// No-op updates write nothing.
	n := len(h.uow.writes)
	same := must[*userstore.User](t)(run(t, h, h.e.UpdateUserProfile, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "Ann"}))
	require.Equal(t, u, same)
	require.Len(t, h.uow.writes, n)

	_, err = run(t, h, h.e.DisableUser, &userstore.UserParams{ID: u.ID, ExpectedVersion: 7})
	var vc *userstore.VersionConflictError
	require.ErrorAs(t, err, &vc)
	require.Equal(t, userstore.VersionConflictError{Entity: "user", ID: u.ID, Expected: 7, Actual: 1}, *vc)
}

func TestOpIsRerunnable(t *testing.T) {
	h := setup(t)
	op, err := h.e.CreateUser(h.ctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann@x.io"})
	require.NoError(t, err)
	a, b := h.uow.clone(), h.uow.clone()
	ua, err := op.Run(h.ctx, a)
	require.NoError(t, err)
	ub, err := op.Run(h.ctx, b)
	require.NoError(t, err)
	require.Equal(t, ua, ub, "a re-run decides the same entity: same id, same times")
	require.Equal(t, a.writes[len(a.writes)-1].Metadata.CorrelationID, b.writes[len(b.writes)-1].Metadata.CorrelationID)
}

func TestGuards(t *testing.T) {
	h := setup(t)
	u := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann@x.io"}))
	app := must[*userstore.Application](t)(run(t, h, h.e.RegisterApplication, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb}))
	cat := must[*userstore.Catalog](t)(run(t, h, h.e.DefineCatalog, &userstore.DefineCatalogParams{Name: "P", Attributes: []userstore.Attribute{{Key: "a", Type: userstore.AttrInt}}}))
	userRef := domain.Ref(tenantID, domain.StreamUser, u.ID)
	appRef := domain.Ref(tenantID, domain.StreamApplication, app.ID)
	catRef := domain.Ref(tenantID, domain.StreamCatalog, cat.ID)
	tenantRef := domain.TenantRef(tenantID)

	for _, c := range []struct {
		name string
		do   func() error
		want []domain.StreamRef
	}{
		{"OpenAccount", func() error {
			_, err := run(t, h, h.e.OpenAccount, &userstore.OpenAccountParams{UserID: u.ID, LoginName: "ann", Kind: userstore.AccountPassword})
			return err
		}, []domain.StreamRef{tenantRef, userRef}},
		{"LinkIdentity", func() error {
			_, err := run(t, h, h.e.LinkIdentity, &userstore.LinkIdentityParams{UserID: u.ID, Issuer: "https://i.io", Subject: "s"})
			return err
		}, []domain.StreamRef{tenantRef, userRef}},
		{"Bind", func() error {
			_, err := run(t, h, h.e.Bind, &userstore.BindParams{UserID: u.ID, ApplicationID: app.ID})
			return err
		}, []domain.StreamRef{tenantRef, userRef, appRef}},
		{"AddMember", func() error {
			_, err := run(t, h, h.e.AddMember, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleOwner})
			return err
		}, []domain.StreamRef{tenantRef, userRef}},
		{"SetProfileValues", func() error {
			_, err := run(t, h, h.e.SetProfileValues, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: cat.ID, Values: map[string]userstore.Value{"a": userstore.IntValue(1)}})
			return err
		}, []domain.StreamRef{tenantRef, userRef, catRef}},
		{"RenameTenant", func() error {
			_, err := run(t, h, h.e.RenameTenant, &userstore.RenameTenantParams{Name: "Acme 2"})
			return err
		}, nil},
	} {
		h.uow.guards = nil
		require.NoError(t, c.do(), c.name)
		require.Equal(t, c.want, h.uow.guards, c.name)
	}
}

func TestDeleteUserCascadesInOneRun(t *testing.T) {
	h := setup(t)
	u := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann@x.io"}))
	other := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &userstore.CreateUserParams{DisplayName: "Bob", Email: "bob@x.io"}))
	acc := must[*userstore.Account](t)(run(t, h, h.e.OpenAccount, &userstore.OpenAccountParams{UserID: u.ID, LoginName: "ann", Kind: userstore.AccountPassword}))
	app := must[*userstore.Application](t)(run(t, h, h.e.RegisterApplication, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb}))
	b := must[*userstore.Binding](t)(run(t, h, h.e.Bind, &userstore.BindParams{UserID: u.ID, ApplicationID: app.ID, Roles: []string{"r"}}))
	cat := must[*userstore.Catalog](t)(run(t, h, h.e.DefineCatalog, &userstore.DefineCatalogParams{Name: "P", Attributes: []userstore.Attribute{{Key: "a", Type: userstore.AttrInt}}}))
	must[*userstore.Profile](t)(run(t, h, h.e.SetProfileValues, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: cat.ID, Values: map[string]userstore.Value{"a": userstore.IntValue(1)}}))
	must[*userstore.Membership](t)(run(t, h, h.e.AddMember, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleOwner}))

	// The last owner cannot go: Run fails, so the adapter rolls back whatever it wrote.
	snapshot := h.uow.clone()
	_, err := run(t, h, h.e.DeleteUser, &userstore.UserParams{ID: u.ID})
	var pe *userstore.PreconditionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, userstore.ReasonLastOwner, pe.Reason)
	h.uow = snapshot // the fake does not roll back by itself

	must[*userstore.Membership](t)(run(t, h, h.e.AddMember, &userstore.AddMemberParams{UserID: other.ID, Role: userstore.RoleOwner}))
	h.uow.writes = nil
	d := must[*userstore.User](t)(run(t, h, h.e.DeleteUser, &userstore.UserParams{ID: u.ID}))
	require.Equal(t, userstore.UserDeleted, d.Status)

	var got []string
	for _, w := range h.uow.writes {
		got = append(got, w.Events[0].Type)
	}
	require.Equal(t, []string{"user.deleted", "roster.member_removed", "account.closed", "binding.removed", "profile.cleared"}, got)
	first := h.uow.writes[0]
	require.Equal(t, uuid.Nil, first.Metadata.CausationID)
	for _, w := range h.uow.writes[1:] {
		require.Equal(t, first.Events[0].EventID, w.Metadata.CausationID, "cascade events are caused by user.deleted")
		require.Equal(t, first.Metadata.CorrelationID, w.Metadata.CorrelationID)
	}
	require.Equal(t, acc.ID, h.uow.writes[2].Stream.ID)
	require.Equal(t, b.ID, h.uow.writes[3].Stream.ID)
	_, held := h.uow.claims[domain.Claim{Scope: tenantID, Kind: userstore.KindLoginName, Value: "ann"}]
	require.False(t, held, "the login is released")
	_, held = h.uow.claims[domain.Claim{Scope: tenantID, Kind: userstore.KindEmail, Value: "ann@x.io"}]
	require.False(t, held, "the email is released")
}

func TestIdempotency(t *testing.T) {
	h := setup(t)
	p := &userstore.CreateUserParams{Mutation: userstore.Mutation{IdempotencyKey: "k1"}, DisplayName: "Ann", Email: "ann@x.io"}
	u1 := must[*userstore.User](t)(run(t, h, h.e.CreateUser, p))
	n := len(h.uow.writes)
	rec := h.uow.idem[tenantID.String()+"k1"]
	require.NotNil(t, rec)
	require.Equal(t, "CreateUser", rec.Operation)

	// A retry with another request id is the same request.
	retry := *p
	retry.RequestID = "another-request"
	u2 := must[*userstore.User](t)(run(t, h, h.e.CreateUser, &retry))
	require.Equal(t, u1, u2)
	require.Len(t, h.uow.writes, n, "no second change")

	other := *p
	other.Email = "other@x.io"
	_, err := run(t, h, h.e.CreateUser, &other)
	require.ErrorIs(t, err, userstore.ErrIdempotencyConflict)

	_, err = run(t, h, h.e.DisableUser, &userstore.UserParams{Mutation: userstore.Mutation{IdempotencyKey: "k1"}, ID: u1.ID})
	require.ErrorIs(t, err, userstore.ErrIdempotencyConflict, "the key is per tenant, not per operation")

	// Operations without a result replay too.
	id := must[*userstore.ExternalIdentity](t)(run(t, h, h.e.LinkIdentity, &userstore.LinkIdentityParams{UserID: u1.ID, Issuer: "https://i.io", Subject: "s"}))
	unlink := &userstore.UnlinkIdentityParams{Mutation: userstore.Mutation{IdempotencyKey: "k2"}, ID: id.ID}
	must[struct{}](t)(run(t, h, h.e.UnlinkIdentity, unlink))
	must[struct{}](t)(run(t, h, h.e.UnlinkIdentity, unlink))
}

func TestRequestHash(t *testing.T) {
	h := func(p any) string { return engine.RequestHash("Bind", tenantID, actor, p) }
	base := &userstore.BindParams{ApplicationID: tenantID, UserID: tenantID, Roles: []string{"a"}}
	withReq := *base
	withReq.Mutation = userstore.Mutation{RequestID: "r", IdempotencyKey: "k", TenantID: tenantID, Actor: actor}
	require.Equal(t, h(base), h(&withReq), "the Mutation is not hashed: its resolved tenant and actor are")

	noRoles, emptyRoles := *base, *base
	noRoles.Roles, emptyRoles.Roles = nil, []string{}
	require.Equal(t, h(&noRoles), h(&emptyRoles), "empty and nil are both absent")

	other := *base
	other.Roles = []string{"b"}
	require.NotEqual(t, h(base), h(&other))
	require.NotEqual(t, h(base), engine.RequestHash("Unbind", tenantID, actor, base))
	require.NotEqual(t, h(base), engine.RequestHash("Bind", uuid.New(), actor, base))
	require.NotEqual(t, h(base), engine.RequestHash("Bind", tenantID, userstore.Actor{Type: userstore.ActorUser, ID: "x"}, base))

	m1 := &userstore.SetProfileValuesParams{Values: map[string]userstore.Value{"a": userstore.IntValue(1), "b": userstore.BoolValue(false)}}
	m2 := &userstore.SetProfileValuesParams{Values: map[string]userstore.Value{"b": userstore.BoolValue(false), "a": userstore.IntValue(1)}}
	m3 := &userstore.SetProfileValuesParams{Values: map[string]userstore.Value{"a": userstore.IntValue(1), "b": userstore.BoolValue(true)}}
	require.Equal(t, h(m1), h(m2), "maps are hashed in key order")
	require.NotEqual(t, h(m1), h(m3))
	big1 := &userstore.SetProfileValuesParams{Values: map[string]userstore.Value{"a": userstore.IntValue(1 << 60)}}
	big2 := &userstore.SetProfileValuesParams{Values: map[string]userstore.Value{"a": userstore.IntValue(1<<60 + 1)}}
	require.NotEqual(t, h(big1), h(big2), "integers are exact")
	require.Len(t, h(base), 64)
	require.True(t, bytes.Equal([]byte(strings.ToLower(h(base))), []byte(h(base))))
}

func TestPageLimit(t *testing.T) {
	for in, want := range map[int]int{0: userstore.DefaultLimit, 1: 1, userstore.MaxLimit: userstore.MaxLimit} {
		got, err := engine.PageLimit(userstore.ListOpts{Limit: in})
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []int{-1, userstore.MaxLimit + 1} {
		_, err := engine.PageLimit(userstore.ListOpts{Limit: bad})
		var ve *userstore.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "limit", ve.Field)
	}
	_, err := engine.ReadTenant(t.Context())
	require.ErrorIs(t, err, userstore.ErrTenantRequired)
}
