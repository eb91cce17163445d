package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// maxPages bounds every paging loop, so that a cursor that never ends fails the case instead of hanging.
const maxPages = 10_000

// waitTimeout bounds every wait on goroutines the suite starts.
const waitTimeout = 60 * time.Second

// rnd returns 16 random lower-case hex characters.
func rnd() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// fixture is one case's tenant on a store, with a context that carries the tenant, an actor and a
// request id.
type fixture struct {
	s      userstore.Store
	tenant *userstore.Tenant
	actor  userstore.Actor
	ctx    context.Context
}

// setup creates a new tenant with a random slug on s and returns its fixture.
func setup(t *testing.T, s userstore.Store) *fixture {
	t.Helper()
	id := userstore.NewID()
	actor := userstore.Actor{Type: userstore.ActorService, ID: "storetest-" + rnd()}
	ctx := userstore.WithTenant(t.Context(), id)
	ctx = userstore.WithActor(ctx, actor)
	ctx = userstore.WithRequestID(ctx, "req-"+rnd())
	tn, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + rnd(), Name: "Tenant " + rnd()})
	require.NoError(t, err, "create tenant")
	require.Equal(t, id, tn.ID)
	return &fixture{s: s, tenant: tn, actor: actor, ctx: ctx}
}

// other creates a second tenant on the same store.
func (f *fixture) other(t *testing.T) *fixture {
	t.Helper()
	return setup(t, f.s)
}

// withActor returns f's context with another actor.
func (f *fixture) withActor(a userstore.Actor) context.Context {
	return userstore.WithActor(f.ctx, a)
}

func newEmail() string { return "u-" + rnd() + "@example.com" }

func (f *fixture) createUser(t *testing.T) *userstore.User {
	t.Helper()
	return f.createUserWith(t, newEmail())
}

func (f *fixture) createUserWith(t *testing.T, email string) *userstore.User {
	t.Helper()
	u, err := f.s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "User " + rnd(), Email: email})
	require.NoError(t, err, "create user")
	return u
}

func (f *fixture) getUser(t *testing.T, id uuid.UUID) *userstore.User {
	t.Helper()
	u, err := f.s.GetUser(f.ctx, id)
	require.NoError(t, err, "get user")
	return u
}

func (f *fixture) disableUser(t *testing.T, id uuid.UUID) *userstore.User {
	t.Helper()
	u, err := f.s.DisableUser(f.ctx, &userstore.UserParams{ID: id})
	require.NoError(t, err, "disable user")
	return u
}

func (f *fixture) deleteUser(t *testing.T, id uuid.UUID) *userstore.User {
	t.Helper()
	u, err := f.s.DeleteUser(f.ctx, &userstore.UserParams{ID: id})
	require.NoError(t, err, "delete user")
	return u
}

func newLogin() string { return "login-" + rnd() }

func (f *fixture) openAccount(t *testing.T, userID uuid.UUID) *userstore.Account {
	t.Helper()
	return f.openAccountWith(t, userID, newLogin())
}

func (f *fixture) openAccountWith(t *testing.T, userID uuid.UUID, login string) *userstore.Account {
	t.Helper()
	a, err := f.s.OpenAccount(f.ctx, &userstore.OpenAccountParams{
		UserID: userID, LoginName: login, Kind: userstore.AccountPassword, CredentialRef: "vault:kv/storetest/" + rnd(),
	})
	require.NoError(t, err, "open account")
	return a
}

func (f *fixture) getAccount(t *testing.T, id uuid.UUID) *userstore.Account {
	t.Helper()
	a, err := f.s.GetAccount(f.ctx, id)
	require.NoError(t, err, "get account")
	return a
}

const testIssuer = "https://idp.example.com/realms/storetest"

func (f *fixture) linkIdentity(t *testing.T, userID uuid.UUID) *userstore.ExternalIdentity {
	t.Helper()
	return f.linkIdentityWith(t, userID, testIssuer, "sub-"+rnd())
}

func (f *fixture) linkIdentityWith(t *testing.T, userID uuid.UUID, issuer, subject string) *userstore.ExternalIdentity {
	t.Helper()
	id, err := f.s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: userID, Issuer: issuer, Subject: subject})
	require.NoError(t, err, "link identity")
	return id
}

func newClientKey() string { return "app-" + rnd() }

func (f *fixture) registerApp(t *testing.T) *userstore.Application {
	t.Helper()
	return f.registerAppWith(t, newClientKey())
}

func (f *fixture) registerAppWith(t *testing.T, clientKey string) *userstore.Application {
	t.Helper()
	a, err := f.s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{
		Name: "App " + rnd(), ClientKey: clientKey, Kind: userstore.AppWeb,
	})
	require.NoError(t, err, "register application")
	return a
}

func (f *fixture) getApp(t *testing.T, id uuid.UUID) *userstore.Application {
	t.Helper()
	a, err := f.s.GetApplication(f.ctx, id)
	require.NoError(t, err, "get application")
	return a
}

func (f *fixture) bind(t *testing.T, appID, userID uuid.UUID, roles ...string) *userstore.Binding {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"viewer"}
	}
	b, err := f.s.Bind(f.ctx, &userstore.BindParams{ApplicationID: appID, UserID: userID, Roles: roles})
	require.NoError(t, err, "bind")
	return b
}

func (f *fixture) getBinding(t *testing.T, id uuid.UUID) *userstore.Binding {
	t.Helper()
	b, err := f.s.GetBinding(f.ctx, id)
	require.NoError(t, err, "get binding")
	return b
}

func newCatalogName() string { return "Catalog " + rnd() }

// stringAttr returns an optional string attribute.
func stringAttr(key string) userstore.Attribute {
	return userstore.Attribute{Key: key, Type: userstore.AttrString}
}

func (f *fixture) defineCatalog(t *testing.T, attrs ...userstore.Attribute) *userstore.Catalog {
	t.Helper()
	if len(attrs) == 0 {
		attrs = []userstore.Attribute{stringAttr("nickname")}
	}
	c, err := f.s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: newCatalogName(), Attributes: attrs})
	require.NoError(t, err, "define catalog")
	return c
}

func (f *fixture) getCatalog(t *testing.T, id uuid.UUID) *userstore.Catalog {
	t.Helper()
	c, err := f.s.GetCatalog(f.ctx, id)
	require.NoError(t, err, "get catalog")
	return c
}

func (f *fixture) setValues(t *testing.T, userID, catalogID uuid.UUID, values map[string]userstore.Value) *userstore.Profile {
	t.Helper()
	p, err := f.s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: userID, CatalogID: catalogID, Values: values})
	require.NoError(t, err, "set profile values")
	return p
}

func (f *fixture) getProfile(t *testing.T, userID, catalogID uuid.UUID) *userstore.Profile {
	t.Helper()
	p, err := f.s.GetProfile(f.ctx, userID, catalogID)
	require.NoError(t, err, "get profile")
	return p
}

func (f *fixture) addMember(t *testing.T, userID uuid.UUID, role userstore.MemberRole) *userstore.Membership {
	t.Helper()
	m, err := f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: userID, Role: role})
	require.NoError(t, err, "add member")
	return m
}

func (f *fixture) getMembership(t *testing.T, userID uuid.UUID) *userstore.Membership {
	t.Helper()
	m, err := f.s.GetMembership(f.ctx, userID)
	require.NoError(t, err, "get membership")
	return m
}

func (f *fixture) getTenant(t *testing.T) *userstore.Tenant {
	t.Helper()
	tn, err := f.s.GetTenant(f.ctx)
	require.NoError(t, err, "get tenant")
	return tn
}

// collect pages through a list with the given limit and returns every item. It fails on a repeated
// cursor, an oversized page or more than maxPages pages.
func collect[T any](t *testing.T, limit int, list func(userstore.ListOpts) (*userstore.Page[T], error)) []T {
	t.Helper()
	var all []T
	cursor := ""
	seen := map[string]bool{}
	for range maxPages {
		page, err := list(userstore.ListOpts{Cursor: cursor, Limit: limit})
		require.NoError(t, err, "list page (cursor %q)", cursor)
		require.NotNil(t, page, "list page")
		pageSize := limit
		if pageSize == 0 {
			pageSize = userstore.DefaultLimit
		}
		require.LessOrEqual(t, len(page.Items), pageSize, "page larger than its limit")
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		require.False(t, seen[page.NextCursor], "list returned the same cursor twice")
		seen[page.NextCursor] = true
		cursor = page.NextCursor
	}
	t.Fatalf("list did not end within %d pages", maxPages)
	return nil
}

func (f *fixture) users(t *testing.T, status userstore.UserStatus) []userstore.User {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.User], error) {
		return f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: o, Status: status})
	})
}

func (f *fixture) accountsOf(t *testing.T, userID uuid.UUID) []userstore.Account {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Account], error) {
		return f.s.ListAccountsByUser(f.ctx, &userstore.ListAccountsParams{ListOpts: o, UserID: userID})
	})
}

func (f *fixture) identitiesOf(t *testing.T, userID uuid.UUID) []userstore.ExternalIdentity {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.ExternalIdentity], error) {
		return f.s.ListIdentitiesByUser(f.ctx, &userstore.ListIdentitiesParams{ListOpts: o, UserID: userID})
	})
}

func (f *fixture) apps(t *testing.T, status userstore.ApplicationStatus) []userstore.Application {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Application], error) {
		return f.s.ListApplications(f.ctx, &userstore.ListApplicationsParams{ListOpts: o, Status: status})
	})
}

func (f *fixture) bindingsOfUser(t *testing.T, userID uuid.UUID) []userstore.Binding {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Binding], error) {
		return f.s.ListBindingsByUser(f.ctx, &userstore.ListBindingsParams{ListOpts: o, UserID: userID})
	})
}

func (f *fixture) bindingsOfApp(t *testing.T, appID uuid.UUID) []userstore.Binding {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Binding], error) {
		return f.s.ListBindingsByApplication(f.ctx, &userstore.ListBindingsParams{ListOpts: o, ApplicationID: appID})
	})
}

func (f *fixture) catalogs(t *testing.T) []userstore.Catalog {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Catalog], error) {
		return f.s.ListCatalogs(f.ctx, &userstore.ListCatalogsParams{ListOpts: o})
	})
}

func (f *fixture) members(t *testing.T, role userstore.MemberRole) []userstore.Membership {
	t.Helper()
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Membership], error) {
		return f.s.ListMembers(f.ctx, &userstore.ListMembersParams{ListOpts: o, Role: role})
	})
}

// audit returns the tenant's whole audit trail.
func (f *fixture) audit(t *testing.T) []userstore.AuditRecord {
	t.Helper()
	return f.auditWhere(t, userstore.ListAuditParams{})
}

// auditWhere returns every audit record that matches the filters of p (its paging options are ignored).
func (f *fixture) auditWhere(t *testing.T, p userstore.ListAuditParams) []userstore.AuditRecord {
	t.Helper()
	syncTrail(t, f.ctx, f.s)
	return collect(t, userstore.MaxLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.AuditRecord], error) {
		q := p
		q.ListOpts = o
		return f.s.ListAuditRecords(f.ctx, &q)
	})
}

// recordsFor returns the audit records of one target id.
func recordsFor(recs []userstore.AuditRecord, id uuid.UUID) []userstore.AuditRecord {
	var out []userstore.AuditRecord
	for _, r := range recs {
		if r.TargetID == id {
			out = append(out, r)
		}
	}
	return out
}

// recordsWithRequest returns the audit records of one request id.
func recordsWithRequest(recs []userstore.AuditRecord, requestID string) []userstore.AuditRecord {
	var out []userstore.AuditRecord
	for _, r := range recs {
		if r.RequestID == requestID {
			out = append(out, r)
		}
	}
	return out
}

// outbox reads the tenant's outbox from the start to its end.
func (f *fixture) outbox(t *testing.T) []userstore.OutboxEvent {
	t.Helper()
	evs, _ := f.outboxAfter(t, "", userstore.MaxLimit)
	return evs
}

// outboxAfter reads the outbox after cursor until an empty page and returns the events and the cursor
// to resume from.
func (f *fixture) outboxAfter(t *testing.T, cursor string, limit int) ([]userstore.OutboxEvent, string) {
	t.Helper()
	syncTrail(t, f.ctx, f.s)
	var all []userstore.OutboxEvent
	for range maxPages {
		page, err := f.s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: limit}})
		require.NoError(t, err, "read outbox")
		require.NotNil(t, page, "read outbox")
		if len(page.Items) == 0 {
			return all, page.NextCursor
		}
		require.LessOrEqual(t, len(page.Items), limit, "outbox page larger than its limit")
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			// Not the documented behaviour (Outbox/CursorIsAlwaysTheResumePoint checks it); stop here
			// rather than read from the start again.
			return all, ""
		}
		require.NotEqual(t, cursor, page.NextCursor, "outbox cursor did not advance past a non-empty page")
		cursor = page.NextCursor
	}
	t.Fatalf("outbox did not end within %d pages", maxPages)
	return nil, ""
}

func eventsFor(evs []userstore.OutboxEvent, aggregateID uuid.UUID) []userstore.OutboxEvent {
	var out []userstore.OutboxEvent
	for _, e := range evs {
		if e.AggregateID == aggregateID {
			out = append(out, e)
		}
	}
	return out
}

// trail is a snapshot of a tenant's audit trail and outbox.
type trail struct {
	audit  int
	outbox int
	last   *userstore.AuditRecord
}

// snapshot records the current length of the tenant's audit trail and outbox.
func (f *fixture) snapshot(t *testing.T) trail {
	t.Helper()
	recs := f.audit(t)
	tr := trail{audit: len(recs), outbox: len(f.outbox(t))}
	if len(recs) > 0 {
		tr.last = &recs[len(recs)-1]
	}
	return tr
}

// requireNoTrace asserts that the audit trail and the outbox are exactly as in tr: a refused mutation
// leaves no audit record and no outbox event.
func (f *fixture) requireNoTrace(t *testing.T, tr trail) {
	t.Helper()
	recs := f.audit(t)
	if len(recs) != tr.audit {
		var extra []string
		for _, r := range recs[min(tr.audit, len(recs)):] {
			extra = append(extra, r.Action+" "+r.TargetType)
		}
		require.Failf(t, "audit trail changed by a refused mutation", "audit records: %d before, %d after; new: %v", tr.audit, len(recs), extra)
	}
	if tr.last != nil {
		require.Equal(t, tr.last.EventID, recs[len(recs)-1].EventID, "the last audit record changed")
	}
	evs := f.outbox(t)
	if len(evs) != tr.outbox {
		var extra []string
		for _, e := range evs[min(tr.outbox, len(evs)):] {
			extra = append(extra, e.Type)
		}
		require.Failf(t, "outbox changed by a refused mutation", "outbox events: %d before, %d after; new: %v", tr.outbox, len(evs), extra)
	}
}

// --- error assertions -------------------------------------------------------------------------------

// fieldMatches reports whether a ValidationError field names want or an element or member of it
// ("roles" matches "roles", "roles[3]" and "roles.x").
func fieldMatches(got, want string) bool {
	return got == want || strings.HasPrefix(got, want+"[") || strings.HasPrefix(got, want+".")
}

// requireInvalid asserts a *ValidationError on field (or an element of it); field "" accepts any field.
func requireInvalid(t *testing.T, err error, field string, msgAndArgs ...any) {
	t.Helper()
	ctx := fmtMsg(msgAndArgs...)
	require.Error(t, err, "want a validation error on %q %s", field, ctx)
	require.ErrorIs(t, err, userstore.ErrValidation, "want ErrValidation on %q %s", field, ctx)
	var ve *userstore.ValidationError
	require.ErrorAs(t, err, &ve, "want a *ValidationError %s", ctx)
	if field != "" {
		require.True(t, fieldMatches(ve.Field, field), "ValidationError.Field = %q, want %q %s", ve.Field, field, ctx)
	}
}

// requireDuplicate asserts a *DuplicateError of kind whose text contains none of the values.
func requireDuplicate(t *testing.T, err error, kind string, values ...string) {
	t.Helper()
	require.Error(t, err, "want a duplicate %s", kind)
	require.ErrorIs(t, err, userstore.ErrDuplicate)
	var de *userstore.DuplicateError
	require.ErrorAs(t, err, &de)
	require.Equal(t, kind, de.Kind, "DuplicateError.Kind")
	requireNoLeak(t, err, values...)
}

// requireNoLeak asserts that err's text contains none of the values, in any case.
func requireNoLeak(t *testing.T, err error, values ...string) {
	t.Helper()
	text := strings.ToLower(err.Error())
	for _, v := range values {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" {
			continue
		}
		require.NotContains(t, text, v, "the error text must not contain the value")
	}
}

// requirePrecondition asserts a *PreconditionError with one of the reasons (any reason if none given).
func requirePrecondition(t *testing.T, err error, reasons ...string) {
	t.Helper()
	require.Error(t, err, "want a failed precondition %v", reasons)
	require.ErrorIs(t, err, userstore.ErrFailedPrecondition, "want ErrFailedPrecondition %v", reasons)
	var pe *userstore.PreconditionError
	require.ErrorAs(t, err, &pe)
	if len(reasons) > 0 {
		require.Contains(t, reasons, pe.Reason, "PreconditionError.Reason")
	}
}

// requireConflict asserts a *VersionConflictError reporting the actual version.
func requireConflict(t *testing.T, err error, actual int64) {
	t.Helper()
	require.Error(t, err, "want a version conflict")
	require.ErrorIs(t, err, userstore.ErrConflict)
	var ve *userstore.VersionConflictError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, actual, ve.Actual, "VersionConflictError.Actual")
}

func requireNotFound(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, "want ErrNotFound %s", fmtMsg(msgAndArgs...))
	require.ErrorIs(t, err, userstore.ErrNotFound, fmtMsg(msgAndArgs...))
}

// requireNotFoundOrEmpty accepts either ErrNotFound or an empty page: how a list by another tenant's
// parent id may answer.
func requireNotFoundOrEmpty[T any](t *testing.T, page *userstore.Page[T], err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		require.ErrorIs(t, err, userstore.ErrNotFound, fmtMsg(msgAndArgs...))
		return
	}
	require.NotNil(t, page)
	require.Empty(t, page.Items, fmtMsg(msgAndArgs...))
}

// requireLooksMissing asserts that err (about another tenant's entity id) is ErrNotFound and looks
// exactly like the error for a truly missing id (same type, same text with the ids masked).
func requireLooksMissing(t *testing.T, err error, id uuid.UUID, missing func(uuid.UUID) error, what string) {
	t.Helper()
	requireNotFound(t, err, what)
	randomID := userstore.NewID()
	want := missing(randomID)
	requireNotFound(t, want, what+" (missing id)")
	require.Equal(t, fmt.Sprintf("%T", want), fmt.Sprintf("%T", err), "%s: error type differs from a missing id's", what)
	got := strings.ReplaceAll(err.Error(), id.String(), "<id>")
	exp := strings.ReplaceAll(want.Error(), randomID.String(), "<id>")
	require.Equal(t, exp, got, "%s: error text differs from a missing id's", what)
}

// fmtMsg renders testify-style msgAndArgs: a format string and its arguments.
func fmtMsg(msgAndArgs ...any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	format, ok := msgAndArgs[0].(string)
	if !ok {
		return fmt.Sprintf("%v", msgAndArgs)
	}
	rest := msgAndArgs[1:]
	return fmt.Sprintf(format, rest...)
}

// --- concurrency ------------------------------------------------------------------------------------

// parallel runs fn(i) for i in [0, n) in n goroutines and waits (bounded) for all of them.
func parallel(t *testing.T, n int, fn func(i int)) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%d goroutines did not finish within %s", n, waitTimeout)
	}
}

// isOneOf reports whether err matches one of the targets.
func isOneOf(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// sameTime compares timestamps at the microsecond precision every implementation keeps.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}
