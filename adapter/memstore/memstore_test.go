package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/memstore"
	"github.com/netkingdom/userstore/domain"
)

type fixture struct {
	s   *memstore.Store
	ctx context.Context
}

func setup(t *testing.T, cfg *memstore.Config) *fixture {
	t.Helper()
	s, err := memstore.New(cfg)
	require.NoError(t, err)
	ctx := userstore.WithTenant(t.Context(), uuid.New())
	ctx = userstore.WithActor(ctx, userstore.Actor{Type: userstore.ActorService, ID: "memstore-test"})
	_, err = s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + uuid.NewString()[:8], Name: "Tenant"})
	require.NoError(t, err)
	return &fixture{s: s, ctx: ctx}
}

func (f *fixture) user(t *testing.T, email string) *userstore.User {
	t.Helper()
	u, err := f.s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "User", Email: email})
	require.NoError(t, err)
	return u
}

func (f *fixture) audit(t *testing.T) []userstore.AuditRecord {
	t.Helper()
	p, err := f.s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
	require.NoError(t, err)
	require.Empty(t, p.NextCursor)
	return p.Items
}

func (f *fixture) outbox(t *testing.T) []userstore.OutboxEvent {
	t.Helper()
	p, err := f.s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
	require.NoError(t, err)
	return p.Items
}

func TestFailedCascadeChangesNothing(t *testing.T) {
	f := setup(t, nil)
	owner := f.user(t, "owner@x.io")
	acc, err := f.s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: owner.ID, LoginName: "owner", Kind: userstore.AccountPassword})
	require.NoError(t, err)
	_, err = f.s.LinkIdentity(f.ctx, &userstore.LinkIdentityParams{UserID: owner.ID, Issuer: "https://idp.x.io", Subject: "s1"})
	require.NoError(t, err)
	app, err := f.s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb})
	require.NoError(t, err)
	b, err := f.s.Bind(f.ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: owner.ID, Roles: []string{"admin"}})
	require.NoError(t, err)
	cat, err := f.s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: "Profile", Attributes: []userstore.Attribute{{Key: "nick", Type: userstore.AttrString}}})
	require.NoError(t, err)
	_, err = f.s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: owner.ID, CatalogID: cat.ID, Values: map[string]userstore.Value{"nick": userstore.StringValue("o")}})
	require.NoError(t, err)
	_, err = f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: owner.ID, Role: userstore.RoleOwner})
	require.NoError(t, err)
	audit, outbox := f.audit(t), f.outbox(t)

	// The cascade decides the user, the roster (refused: the last owner) and the rest in one unit of
	// work; the refusal rolls every part of it back.
	_, err = f.s.DeleteUser(f.ctx, &userstore.UserParams{ID: owner.ID})
	var pe *userstore.PreconditionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, userstore.ReasonLastOwner, pe.Reason)

	u, err := f.s.GetUserByEmail(f.ctx, "OWNER@x.io")
	require.NoError(t, err)
	require.Equal(t, userstore.UserActive, u.Status)
	require.Equal(t, owner.Version, u.Version)
	a, err := f.s.GetAccountByLogin(f.ctx, "owner")
	require.NoError(t, err)
	require.Equal(t, acc, a)
	_, err = f.s.FindUserByIdentity(f.ctx, "https://idp.x.io", "s1")
	require.NoError(t, err)
	_, err = f.s.GetBinding(f.ctx, b.ID)
	require.NoError(t, err)
	p, err := f.s.GetProfile(f.ctx, owner.ID, cat.ID)
	require.NoError(t, err)
	require.Len(t, p.Values, 1)
	_, err = f.s.GetMembership(f.ctx, owner.ID)
	require.NoError(t, err)
	require.Equal(t, audit, f.audit(t))
	require.Equal(t, outbox, f.outbox(t))

	// A second owner makes the deletion possible, and then it is complete.
	other := f.user(t, "other@x.io")
	_, err = f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: other.ID, Role: userstore.RoleOwner})
	require.NoError(t, err)
	_, err = f.s.DeleteUser(f.ctx, &userstore.UserParams{ID: owner.ID})
	require.NoError(t, err)
	a, err = f.s.GetAccount(f.ctx, acc.ID)
	require.NoError(t, err)
	require.Equal(t, userstore.AccountClosed, a.Status)
	_, err = f.s.GetAccountByLogin(f.ctx, "owner")
	require.ErrorIs(t, err, userstore.ErrNotFound)
	_, err = f.s.GetBinding(f.ctx, b.ID)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	p, err = f.s.GetProfile(f.ctx, owner.ID, cat.ID)
	require.NoError(t, err)
	require.Empty(t, p.Values)
	_, err = f.s.GetMembership(f.ctx, owner.ID)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	// The released email and login can be used again.
	again := f.user(t, "owner@x.io")
	_, err = f.s.OpenAccount(f.ctx, &userstore.OpenAccountParams{UserID: again.ID, LoginName: "OWNER", Kind: userstore.AccountPasskey})
	require.NoError(t, err)
}

func TestConcurrentDemotionsKeepAnOwner(t *testing.T) {
	f := setup(t, nil)
	const n = 8
	owners := make([]*userstore.User, n)
	for i := range owners {
		owners[i] = f.user(t, fmt.Sprintf("o%d@x.io", i))
		_, err := f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: owners[i].ID, Role: userstore.RoleOwner})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = f.s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: owners[i].ID, Role: userstore.RoleMember})
			} else {
				errs[i] = f.s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: owners[i].ID})
			}
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			var pe *userstore.PreconditionError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, userstore.ReasonLastOwner, pe.Reason)
			failed++
		}
	}
	require.Equal(t, 1, failed, "exactly one owner remains")
	page, err := f.s.ListMembers(f.ctx, &userstore.ListMembersParams{Role: userstore.RoleOwner})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
}

func TestConcurrentDuplicates(t *testing.T) {
	f := setup(t, nil)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			email := []string{"twin@x.io", "TWIN@X.IO"}[i%2] // one address after case folding
			_, errs[i] = f.s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: "Twin", Email: email})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var de *userstore.DuplicateError
		require.ErrorAs(t, err, &de)
		require.Equal(t, userstore.KindEmail, de.Kind)
	}
	require.Equal(t, 1, ok)
	require.Len(t, f.audit(t), 2, "tenant.created and one user.created")
}

func TestAuditAndOutboxComeFromTheLog(t *testing.T) {
	f := setup(t, nil)
	u := f.user(t, "a@x.io")
	_, err := f.s.DisableUser(userstore.WithRequestID(f.ctx, "req-7"), &userstore.UserParams{ID: u.ID})
	require.NoError(t, err)
	_, err = f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleAdmin})
	require.Error(t, err, "a disabled user cannot become a member")
	_, err = f.s.EnableUser(f.ctx, &userstore.UserParams{ID: u.ID})
	require.NoError(t, err)
	_, err = f.s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleAdmin})
	require.NoError(t, err)

	recs := f.audit(t)
	i, err := domain.VerifyAuditChain(recs)
	require.NoError(t, err, "the chain verifies (first break at %d)", i)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	require.Equal(t, []string{"tenant.created", "user.created", "user.disabled", "user.enabled", "roster.member_added"}, actions)
	require.Equal(t, "req-7", recs[2].RequestID)
	require.Equal(t, "user", recs[4].TargetType)
	require.Equal(t, u.ID, recs[4].TargetID)

	evs := f.outbox(t)
	require.Len(t, evs, len(recs), "one outbox event per event")
	for i := range evs {
		require.Equal(t, recs[i].EventID, evs[i].ID)
		require.Equal(t, recs[i].Position, evs[i].Position)
	}

	filtered, err := f.s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{TargetType: "user", TargetID: u.ID, Action: "user.enabled"})
	require.NoError(t, err)
	require.Len(t, filtered.Items, 1)
	_, err = f.s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{TargetID: u.ID})
	requireField(t, err, "target_type")
}

func TestOutboxCursorIsTheResumePoint(t *testing.T) {
	f := setup(t, nil)
	page, err := f.s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Limit: 1}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	cursor := page.NextCursor
	require.NotEmpty(t, cursor)
	page, err = f.s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor}})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	require.Equal(t, cursor, page.NextCursor, "an empty page returns the cursor it was given")
	f.user(t, "a@x.io")
	page, err = f.s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, "userstore.user.created.v1", page.Items[0].Type)
}

func TestPaging(t *testing.T) {
	f := setup(t, nil)
	var ids []uuid.UUID
	for i := range 7 {
		ids = append(ids, f.user(t, fmt.Sprintf("u%d@x.io", i)).ID)
	}
	var got []uuid.UUID
	cursor := ""
	for range 10 {
		page, err := f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: 3}})
		require.NoError(t, err)
		for _, u := range page.Items {
			got = append(got, u.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, ids, got, "UUIDv7 ids: id order is creation order")

	page, err := f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Limit: 3}})
	require.NoError(t, err)
	for _, bad := range []string{"nope", "!!!", page.NextCursor + "x"} {
		_, err := f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Cursor: bad}})
		requireField(t, err, "cursor")
	}
	_, err = f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Cursor: page.NextCursor}, Status: userstore.UserDeleted})
	requireField(t, err, "cursor") // another filter
	_, err = f.s.ListApplications(f.ctx, &userstore.ListApplicationsParams{ListOpts: userstore.ListOpts{Cursor: page.NextCursor}})
	requireField(t, err, "cursor") // another list
	_, err = f.s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit + 1}})
	requireField(t, err, "limit")
	_, err = f.s.ListUsers(f.ctx, &userstore.ListUsersParams{Status: "gone"})
	requireField(t, err, "status")
}

func TestReturnedValuesAreCopies(t *testing.T) {
	f := setup(t, nil)
	u := f.user(t, "a@x.io")
	app, err := f.s.RegisterApplication(f.ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb})
	require.NoError(t, err)
	roles := []string{"b", "a"}
	b, err := f.s.Bind(f.ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: u.ID, Roles: roles})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, b.Roles)
	require.Equal(t, []string{"b", "a"}, roles, "the caller's slice is not sorted in place")
	b.Roles[0] = "mutated"
	got, err := f.s.GetBinding(f.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, got.Roles)
	got.Roles[0] = "mutated"
	again, err := f.s.GetBinding(f.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, again.Roles)

	attrs := []userstore.Attribute{{Key: "lvl", Type: userstore.AttrEnum, EnumValues: []string{"x", "y"}}}
	c, err := f.s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: "C", Attributes: attrs})
	require.NoError(t, err)
	attrs[0].EnumValues[0] = "mutated"
	c.Attributes[0].EnumValues[1] = "mutated"
	gc, err := f.s.GetCatalog(f.ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, gc.Attributes[0].EnumValues)

	values := map[string]userstore.Value{"lvl": userstore.EnumValue("x")}
	p, err := f.s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: values})
	require.NoError(t, err)
	values["lvl"] = userstore.EnumValue("y")
	p.Values["other"] = userstore.IntValue(1)
	gp, err := f.s.GetProfile(f.ctx, u.ID, c.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]userstore.Value{"lvl": userstore.EnumValue("x")}, gp.Values)
}

func TestConfig(t *testing.T) {
	now := time.Date(2026, 6, 5, 12, 0, 0, 987654321, time.UTC)
	next := uuid.MustParse("0197a000-0000-7000-8000-0000000000aa")
	f := setup(t, &memstore.Config{
		Now:   func() time.Time { return now },
		NewID: func() uuid.UUID { next[15]++; return next },
	})
	u := f.user(t, "a@x.io")
	require.Equal(t, now.Truncate(time.Microsecond), u.CreatedAt)
	require.Equal(t, next[:15], u.ID[:15], "ids come from Config.NewID")

	r, err := f.s.Ready(f.ctx)
	require.NoError(t, err)
	require.Equal(t, &userstore.Readiness{Ready: true, Checks: []userstore.Check{{Name: "memory", OK: true}}}, r)
	v, err := f.s.SchemaVersion(f.ctx)
	require.NoError(t, err)
	require.Equal(t, &userstore.SchemaVersion{}, v)
}

func TestTenantScopes(t *testing.T) {
	f := setup(t, nil)
	other := userstore.WithTenant(f.ctx, uuid.New())
	_, err := f.s.CreateTenant(other, &userstore.CreateTenantParams{Slug: "other-" + uuid.NewString()[:8], Name: "Other"})
	require.NoError(t, err)
	u := f.user(t, "a@x.io")
	_, err = f.s.GetUser(other, u.ID)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	_, err = f.s.DisableUser(other, &userstore.UserParams{ID: u.ID})
	require.ErrorIs(t, err, userstore.ErrNotFound)
	_, err = f.s.GetUserByEmail(other, "a@x.io")
	require.ErrorIs(t, err, userstore.ErrNotFound)
	ou, err := f.s.CreateUser(other, &userstore.CreateUserParams{DisplayName: "Same email", Email: "A@x.io"})
	require.NoError(t, err, "emails are unique per tenant")

	// ListTenants is a platform operation: all tenants without a tenant in ctx, only its own with one.
	all, err := f.s.ListTenants(userstore.WithActor(t.Context(), userstore.Actor{}), &userstore.ListTenantsParams{})
	require.NoError(t, err)
	require.Len(t, all.Items, 2)
	mine, err := f.s.ListTenants(other, nil)
	require.NoError(t, err)
	require.Len(t, mine.Items, 1)
	tn, err := f.s.GetTenantBySlug(t.Context(), mine.Items[0].Slug)
	require.NoError(t, err)
	require.Equal(t, ou.TenantID, tn.ID)
	_, err = f.s.GetTenantBySlug(f.ctx, mine.Items[0].Slug)
	require.ErrorIs(t, err, userstore.ErrNotFound, "with a tenant in ctx, another tenant is not found")
}

func TestCanceledContext(t *testing.T) {
	f := setup(t, nil)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, err := f.s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "A", Email: "a@x.io"})
	require.True(t, errors.Is(err, context.Canceled))
	_, err = f.s.GetUserByEmail(f.ctx, "a@x.io")
	require.ErrorIs(t, err, userstore.ErrNotFound)
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var ve *userstore.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, field, ve.Field)
}
