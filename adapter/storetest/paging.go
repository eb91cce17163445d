package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

const (
	pagingItems = 23
	pagingLimit = 5
)

func sortedIDs(ids []uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func mapIDs[T any](items []T, id func(T) uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// requirePagedExactlyOnce pages through a list with a small limit and asserts that it returns exactly
// want, in id order, each once.
func requirePagedExactlyOnce[T any](t *testing.T, want []uuid.UUID, id func(T) uuid.UUID, list func(userstore.ListOpts) (*userstore.Page[T], error)) {
	t.Helper()
	got := mapIDs(collect(t, pagingLimit, list), id)
	require.Equal(t, sortedIDs(want), got, "every item exactly once, in id order")
}

// listCall is one list of the protocol, called with the given paging options.
type listCall struct {
	name string
	do   func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error
}

func listCalls() []listCall {
	return []listCall{
		{"ListUsers", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListUsers(ctx, &userstore.ListUsersParams{ListOpts: o})
			return err
		}},
		{"ListAccountsByUser", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListAccountsByUser(ctx, &userstore.ListAccountsParams{ListOpts: o, UserID: w.user.ID})
			return err
		}},
		{"ListIdentitiesByUser", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListIdentitiesByUser(ctx, &userstore.ListIdentitiesParams{ListOpts: o, UserID: w.user.ID})
			return err
		}},
		{"ListApplications", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListApplications(ctx, &userstore.ListApplicationsParams{ListOpts: o})
			return err
		}},
		{"ListBindingsByUser", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListBindingsByUser(ctx, &userstore.ListBindingsParams{ListOpts: o, UserID: w.user.ID})
			return err
		}},
		{"ListBindingsByApplication", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListBindingsByApplication(ctx, &userstore.ListBindingsParams{ListOpts: o, ApplicationID: w.app.ID})
			return err
		}},
		{"ListCatalogs", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListCatalogs(ctx, &userstore.ListCatalogsParams{ListOpts: o})
			return err
		}},
		{"ListMembers", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListMembers(ctx, &userstore.ListMembersParams{ListOpts: o})
			return err
		}},
		{"ListAuditRecords", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListAuditRecords(ctx, &userstore.ListAuditParams{ListOpts: o})
			return err
		}},
		{"ReadOutbox", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ReadOutbox(ctx, &userstore.ReadOutboxParams{ListOpts: o})
			return err
		}},
		{"ListTenants", func(ctx context.Context, s userstore.Store, w *world, o userstore.ListOpts) error {
			_, err := s.ListTenants(ctx, &userstore.ListTenantsParams{ListOpts: o})
			return err
		}},
	}
}

func pagingCases() []testCase {
	return []testCase{
		{"Users", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			var want []uuid.UUID
			for range pagingItems {
				want = append(want, f.createUser(t).ID)
			}
			requirePagedExactlyOnce(t, want, func(u userstore.User) uuid.UUID { return u.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.User], error) {
				return s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: o})
			})
		}},
		{"Applications", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			var want []uuid.UUID
			for range pagingItems {
				want = append(want, f.registerApp(t).ID)
			}
			requirePagedExactlyOnce(t, want, func(a userstore.Application) uuid.UUID { return a.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Application], error) {
				return s.ListApplications(f.ctx, &userstore.ListApplicationsParams{ListOpts: o})
			})
		}},
		{"Catalogs", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			var want []uuid.UUID
			for range pagingItems {
				want = append(want, f.defineCatalog(t).ID)
			}
			requirePagedExactlyOnce(t, want, func(c userstore.Catalog) uuid.UUID { return c.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Catalog], error) {
				return s.ListCatalogs(f.ctx, &userstore.ListCatalogsParams{ListOpts: o})
			})
		}},
		{"Members", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			var want []uuid.UUID
			for range pagingItems {
				u := f.createUser(t)
				f.addMember(t, u.ID, userstore.RoleMember)
				want = append(want, u.ID)
			}
			requirePagedExactlyOnce(t, want, func(m userstore.Membership) uuid.UUID { return m.UserID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Membership], error) {
				return s.ListMembers(f.ctx, &userstore.ListMembersParams{ListOpts: o})
			})
		}},
		{"AccountsByUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.openAccount(t, f.createUser(t).ID)
			var want []uuid.UUID
			for range pagingItems {
				want = append(want, f.openAccount(t, u.ID).ID)
			}
			requirePagedExactlyOnce(t, want, func(a userstore.Account) uuid.UUID { return a.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Account], error) {
				return s.ListAccountsByUser(f.ctx, &userstore.ListAccountsParams{ListOpts: o, UserID: u.ID})
			})
		}},
		{"IdentitiesByUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.linkIdentity(t, f.createUser(t).ID)
			var want []uuid.UUID
			for range pagingItems {
				want = append(want, f.linkIdentity(t, u.ID).ID)
			}
			requirePagedExactlyOnce(t, want, func(i userstore.ExternalIdentity) uuid.UUID { return i.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.ExternalIdentity], error) {
				return s.ListIdentitiesByUser(f.ctx, &userstore.ListIdentitiesParams{ListOpts: o, UserID: u.ID})
			})
		}},
		{"BindingsByUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			other := f.createUser(t)
			var want []uuid.UUID
			for range pagingItems {
				a := f.registerApp(t)
				want = append(want, f.bind(t, a.ID, u.ID).ID)
				f.bind(t, a.ID, other.ID)
			}
			requirePagedExactlyOnce(t, want, func(b userstore.Binding) uuid.UUID { return b.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Binding], error) {
				return s.ListBindingsByUser(f.ctx, &userstore.ListBindingsParams{ListOpts: o, UserID: u.ID})
			})
		}},
		{"BindingsByApplication", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.registerApp(t)
			other := f.registerApp(t)
			var want []uuid.UUID
			for range pagingItems {
				u := f.createUser(t)
				want = append(want, f.bind(t, a.ID, u.ID).ID)
				f.bind(t, other.ID, u.ID)
			}
			requirePagedExactlyOnce(t, want, func(b userstore.Binding) uuid.UUID { return b.ID }, func(o userstore.ListOpts) (*userstore.Page[userstore.Binding], error) {
				return s.ListBindingsByApplication(f.ctx, &userstore.ListBindingsParams{ListOpts: o, ApplicationID: a.ID})
			})
		}},
		{"AuditRecords", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for range pagingItems {
				f.createUser(t)
			}
			all := f.audit(t)
			require.GreaterOrEqual(t, len(all), pagingItems+1)
			paged := collect(t, pagingLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.AuditRecord], error) {
				return s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{ListOpts: o})
			})
			require.Equal(t, seqs(all), seqs(paged), "every record exactly once, in sequence order")
			// a filtered list pages the same way
			action := all[len(all)-1].Action
			want := filterRecords(all, func(r userstore.AuditRecord) bool { return r.Action == action })
			filtered := collect(t, pagingLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.AuditRecord], error) {
				return s.ListAuditRecords(f.ctx, &userstore.ListAuditParams{ListOpts: o, Action: action})
			})
			require.Equal(t, seqs(want), seqs(filtered))
			require.Len(t, filtered, pagingItems)
		}},
		{"Outbox", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for range pagingItems {
				f.createUser(t)
			}
			all := f.outbox(t)
			require.GreaterOrEqual(t, len(all), pagingItems+1)
			paged, _ := f.outboxAfter(t, "", pagingLimit)
			require.Equal(t, mapIDs(all, func(e userstore.OutboxEvent) uuid.UUID { return e.ID }), mapIDs(paged, func(e userstore.OutboxEvent) uuid.UUID { return e.ID }))
		}},
		{"Tenants", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			_, err := s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: userstore.ListOpts{Limit: 1}})
			if errors.Is(err, userstore.ErrUnsupported) {
				t.Skip("ListTenants is unsupported by this store")
			}
			require.NoError(t, err)
			mine := map[uuid.UUID]int{f.tenant.ID: 0}
			for range pagingItems - 1 {
				mine[f.other(t).tenant.ID] = 0
			}
			all := collect(t, pagingLimit, func(o userstore.ListOpts) (*userstore.Page[userstore.Tenant], error) {
				return s.ListTenants(t.Context(), &userstore.ListTenantsParams{ListOpts: o})
			})
			seen := map[uuid.UUID]bool{}
			for _, tn := range all {
				require.False(t, seen[tn.ID], "tenant %s listed twice", tn.ID)
				seen[tn.ID] = true
				if _, ok := mine[tn.ID]; ok {
					mine[tn.ID]++
				}
			}
			for id, n := range mine {
				require.Equal(t, 1, n, "tenant %s listed once", id)
			}
		}},
		{"InsertsWhilePagingDoNotDisturb", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			var want []uuid.UUID
			for range 12 {
				want = append(want, f.createUser(t).ID)
			}
			var got []uuid.UUID
			cursor := ""
			for range maxPages {
				page, err := s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: pagingLimit}})
				require.NoError(t, err)
				got = append(got, mapIDs(page.Items, func(u userstore.User) uuid.UUID { return u.ID })...)
				f.createUser(t) // a new user (a later id) between pages
				if page.NextCursor == "" {
					break
				}
				cursor = page.NextCursor
			}
			seen := map[uuid.UUID]int{}
			for _, id := range got {
				seen[id]++
			}
			for _, id := range want {
				require.Equal(t, 1, seen[id], "an existing user is listed exactly once")
			}
			for id, n := range seen {
				require.Equal(t, 1, n, "user %s listed %d times", id, n)
			}
		}},
		{"DefaultLimit", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for range userstore.DefaultLimit + 1 {
				f.createUser(t)
			}
			page, err := s.ListUsers(f.ctx, &userstore.ListUsersParams{})
			require.NoError(t, err)
			require.Len(t, page.Items, userstore.DefaultLimit)
			require.NotEmpty(t, page.NextCursor)
			next, err := s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Cursor: page.NextCursor}})
			require.NoError(t, err)
			require.Len(t, next.Items, 1)
			require.Empty(t, next.NextCursor, "the last page has no cursor")
			page, err = s.ListUsers(f.ctx, &userstore.ListUsersParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
			require.NoError(t, err)
			require.Len(t, page.Items, userstore.DefaultLimit+1)
			require.Empty(t, page.NextCursor)
		}},
		{"InvalidCursorRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			for _, l := range listCalls() {
				t.Run(l.name, func(t *testing.T) {
					for _, c := range []string{"not-a-cursor!!", "\xff\xfe", "AAAA"} {
						err := l.do(f.ctx, s, w, userstore.ListOpts{Cursor: c})
						if errors.Is(err, userstore.ErrUnsupported) {
							t.Skip("unsupported by this store")
						}
						requireInvalid(t, err, "cursor", "cursor %q", c)
					}
				})
			}
		}},
		{"LimitBounds", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			for _, l := range listCalls() {
				t.Run(l.name, func(t *testing.T) {
					for _, limit := range []int{-1, userstore.MaxLimit + 1} {
						err := l.do(f.ctx, s, w, userstore.ListOpts{Limit: limit})
						if errors.Is(err, userstore.ErrUnsupported) {
							t.Skip("unsupported by this store")
						}
						requireInvalid(t, err, "limit", "limit %d", limit)
					}
					for _, limit := range []int{0, 1, userstore.MaxLimit} {
						require.NoError(t, l.do(f.ctx, s, w, userstore.ListOpts{Limit: limit}), "limit %d", limit)
					}
				})
			}
		}},
	}
}
