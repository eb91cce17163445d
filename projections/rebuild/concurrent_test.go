package rebuild_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// writer mutates one tenant of its own through a store, one mutation at a time, and keeps a model of
// what every acknowledged mutation did; after each one it reads the change back (read-your-writes).
type writer struct {
	s, other userstore.Store
	tenant   uuid.UUID
	ctx      context.Context
	app      uuid.UUID
	owner    uuid.UUID
	// users maps live users to their display names; deleted are deleted users.
	users   map[uuid.UUID]string
	deleted []uuid.UUID
	// bindings and identities map to their user; gone are unbound bindings and unlinked identities.
	bindings, identities map[uuid.UUID]uuid.UUID
	goneBindings         []uuid.UUID
	members              map[uuid.UUID]userstore.MemberRole
	acked                atomic.Int64
	n                    int
}

func newWriter(t *testing.T, ctx context.Context, s, other userstore.Store) *writer {
	t.Helper()
	w, err := makeWriter(ctx, s, other)
	require.NoError(t, err)
	return w
}

// makeWriter creates a writer's tenant with an owner and an application.
func makeWriter(ctx context.Context, s, other userstore.Store) (*writer, error) {
	w := &writer{s: s, other: other, tenant: userstore.NewID(), users: map[uuid.UUID]string{},
		bindings: map[uuid.UUID]uuid.UUID{}, identities: map[uuid.UUID]uuid.UUID{}, members: map[uuid.UUID]userstore.MemberRole{}}
	w.ctx = tctx(ctx, w.tenant)
	if _, err := s.CreateTenant(w.ctx, &userstore.CreateTenantParams{Slug: "w-" + w.tenant.String()[24:], Name: "W"}); err != nil {
		return nil, err
	}
	u, err := s.CreateUser(w.ctx, &userstore.CreateUserParams{DisplayName: "Owner", Email: "owner-" + w.tenant.String()[24:] + "@example.com"})
	if err != nil {
		return nil, err
	}
	w.owner, w.users[u.ID] = u.ID, u.DisplayName
	if _, err := s.AddMember(w.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleOwner}); err != nil {
		return nil, err
	}
	w.members[u.ID] = userstore.RoleOwner
	app, err := s.RegisterApplication(w.ctx, &userstore.RegisterApplicationParams{Name: "A", ClientKey: "w-" + w.tenant.String(), Kind: userstore.AppService})
	if err != nil {
		return nil, err
	}
	w.app = app.ID
	return w, nil
}

// pick returns a random key of m other than the owner, or false.
func pick[V any](m map[uuid.UUID]V, not uuid.UUID) (uuid.UUID, bool) {
	keys := slices.DeleteFunc(slices.Collect(maps.Keys(m)), func(k uuid.UUID) bool { return k == not })
	if len(keys) == 0 {
		return uuid.Nil, false
	}
	return keys[rand.N(len(keys))], true
}

// step runs one random mutation and reads its effect back.
func (w *writer) step() error {
	w.n++
	s := w.s
	if w.n%2 == 0 {
		s = w.other
	}
	c := w.ctx
	switch rand.N(8) {
	case 0:
		u, err := s.CreateUser(c, &userstore.CreateUserParams{DisplayName: "U", Email: fmt.Sprintf("u%d-%s@example.com", w.n, w.tenant)})
		if err != nil {
			return err
		}
		w.users[u.ID] = u.DisplayName
		return w.checkUser(s, u.ID)
	case 1:
		id, ok := pick(w.users, uuid.Nil)
		if !ok {
			return nil
		}
		name := fmt.Sprintf("N%d", w.n)
		if _, err := s.UpdateUserProfile(c, &userstore.UpdateUserProfileParams{ID: id, DisplayName: name}); err != nil {
			return err
		}
		w.users[id] = name
		return w.checkUser(s, id)
	case 2:
		id, ok := pick(w.users, uuid.Nil)
		if !ok || slices.Contains(slices.Collect(maps.Values(w.bindings)), id) {
			return nil
		}
		b, err := s.Bind(c, &userstore.BindParams{ApplicationID: w.app, UserID: id, Roles: []string{"r"}})
		if err != nil {
			return err
		}
		w.bindings[b.ID] = id
		_, err = s.GetBinding(c, b.ID)
		return err
	case 3:
		id, ok := pick(w.bindings, uuid.Nil)
		if !ok {
			return nil
		}
		if err := s.Unbind(c, &userstore.UnbindParams{ID: id}); err != nil {
			return err
		}
		delete(w.bindings, id)
		w.goneBindings = append(w.goneBindings, id)
		return w.checkGone(s, id)
	case 4:
		id, ok := pick(w.users, uuid.Nil)
		if !ok {
			return nil
		}
		i, err := s.LinkIdentity(c, &userstore.LinkIdentityParams{UserID: id, Issuer: "https://idp", Subject: fmt.Sprintf("s%d", w.n)})
		if err != nil {
			return err
		}
		w.identities[i.ID] = id
		return nil
	case 5:
		id, ok := pick(w.identities, uuid.Nil)
		if !ok {
			return nil
		}
		if err := s.UnlinkIdentity(c, &userstore.UnlinkIdentityParams{ID: id}); err != nil {
			return err
		}
		delete(w.identities, id)
		return nil
	case 6:
		id, ok := pick(w.users, w.owner)
		if !ok {
			return nil
		}
		if _, member := w.members[id]; member {
			if err := s.RemoveMember(c, &userstore.RemoveMemberParams{UserID: id}); err != nil {
				return err
			}
			delete(w.members, id)
			return nil
		}
		if _, err := s.AddMember(c, &userstore.AddMemberParams{UserID: id, Role: userstore.RoleMember}); err != nil {
			return err
		}
		w.members[id] = userstore.RoleMember
		_, err := s.GetMembership(c, id)
		return err
	default:
		id, ok := pick(w.users, w.owner)
		if !ok {
			return nil
		}
		if _, err := s.DeleteUser(c, &userstore.UserParams{ID: id}); err != nil {
			return err
		}
		delete(w.users, id)
		delete(w.members, id)
		w.deleted = append(w.deleted, id)
		for b, u := range w.bindings {
			if u == id {
				delete(w.bindings, b)
				w.goneBindings = append(w.goneBindings, b)
			}
		}
		for i, u := range w.identities {
			if u == id {
				delete(w.identities, i)
			}
		}
		u, err := s.GetUser(c, id)
		if err == nil && u.Status != userstore.UserDeleted {
			err = fmt.Errorf("user %s is %s after its deletion", id, u.Status)
		}
		return err
	}
}

func (w *writer) checkUser(s userstore.Store, id uuid.UUID) error {
	u, err := s.GetUser(w.ctx, id)
	if err != nil {
		return fmt.Errorf("read back user %s: %w", id, err)
	}
	if u.DisplayName != w.users[id] {
		return fmt.Errorf("read back user %s: name %q, want %q", id, u.DisplayName, w.users[id])
	}
	return nil
}

func (w *writer) checkGone(s userstore.Store, binding uuid.UUID) error {
	if _, err := s.GetBinding(w.ctx, binding); !errors.Is(err, userstore.ErrNotFound) {
		return fmt.Errorf("read back unbound binding %s: %v", binding, err)
	}
	return nil
}

// verify checks every acknowledged mutation against the store.
func (w *writer) verify(t *testing.T) {
	t.Helper()
	for id := range w.users {
		require.NoError(t, w.checkUser(w.s, id))
	}
	for _, id := range w.deleted {
		u, err := w.s.GetUser(w.ctx, id)
		require.NoError(t, err)
		require.Equal(t, userstore.UserDeleted, u.Status)
	}
	for id := range w.bindings {
		_, err := w.s.GetBinding(w.ctx, id)
		require.NoError(t, err)
	}
	for _, id := range w.goneBindings {
		require.NoError(t, w.checkGone(w.s, id))
	}
	page, err := w.s.ListMembers(w.ctx, &userstore.ListMembersParams{ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
	require.NoError(t, err)
	got := map[uuid.UUID]userstore.MemberRole{}
	for _, m := range page.Items {
		got[m.UserID] = m.Role
	}
	require.Equal(t, w.members, got)
	var identities int
	for u := range w.users {
		p, err := w.s.ListIdentitiesByUser(w.ctx, &userstore.ListIdentitiesParams{UserID: u, ListOpts: userstore.ListOpts{Limit: userstore.MaxLimit}})
		require.NoError(t, err)
		identities += len(p.Items)
	}
	require.Equal(t, len(w.identities), identities)
}

// TestReadModelRebuildUnderConcurrentWrites: while writers mutate their tenants through two stores (one
// caching prepared statements) during the whole rebuild — copy, catch-up and the locked swap — the
// rebuild finds no drift (its catch-up under the lock misses no committed write and counts none twice),
// every acknowledged write is readable right after it was acknowledged and at the end, and a second
// rebuild with no writer running finds the live tables equal, row for row, to a fresh fold of the log.
// In the second and third rounds a transaction holds the log's horizon back during the whole rebuild:
// the copy still folds every event committed before it began. The third round also repairs drift
// planted in a quiet tenant (Force) under the same load: the writers that waited for the repair are
// re-run (their tenant row was rewritten) and lose nothing. Each round picks the batch size and the
// moment the rebuild starts at random.
func TestReadModelRebuildUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	cached := e.cachedStore(t)
	quiet := fullHistory(t, ctx, e.store)
	const writers = 6
	for round := range 3 {
		force := round == 2
		if force {
			_, err := e.admin.Exec(ctx, `UPDATE userstore.accounts SET login_name = 'tampered' WHERE tenant_id = $1`, quiet)
			require.NoError(t, err)
		}
		// From round 1 on, a transaction with a transaction id stays open during the whole rebuild and
		// holds the log's horizon below everything written meanwhile: the copy and the catch-up must
		// not depend on the horizon (or all the work would wait for the swap, under the lock).
		var holder pgx.Tx
		if round > 0 {
			var err error
			holder, err = e.admin.Begin(ctx)
			require.NoError(t, err)
			_, err = holder.Exec(ctx, `SELECT pg_current_xact_id()`)
			require.NoError(t, err)
		}
		ws := make([]*writer, writers)
		for i := range ws {
			ws[i] = newWriter(t, ctx, e.store, cached)
		}
		stop := make(chan struct{})
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for _, w := range ws {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := w.step(); err != nil {
						errs <- fmt.Errorf("writer of tenant %s, step %d: %w", w.tenant, w.n, err)
						return
					}
					w.acked.Add(1)
				}
			})
		}
		// Start the rebuild once the writers have made a random number of mutations.
		startAfter := int64(rand.N(40))
		require.Eventually(t, func() bool {
			var n int64
			for _, w := range ws {
				n += w.acked.Load()
			}
			return n >= startAfter
		}, time.Minute, time.Millisecond)
		var before int64
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&before))
		batch := 3 + rand.N(40)
		res, err := rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel),
			&rebuild.Opts{BatchSize: batch, LockTimeout: 2 * time.Second, SwapAttempts: 10, Force: force})
		close(stop)
		wg.Wait()
		if holder != nil {
			require.NoError(t, holder.Rollback(ctx))
		}
		close(errs)
		for werr := range errs {
			require.NoError(t, werr)
		}
		require.NoError(t, err, "round %d", round)
		require.Equal(t, force, res.Repaired, "round %d", round)
		require.GreaterOrEqual(t, res.CopyEvents, before, "the copy folds every event committed before it began")
		var acked int64
		for _, w := range ws {
			acked += w.acked.Load()
			w.verify(t)
		}
		t.Logf("round %d: batch %d, %d mutations acknowledged during the rebuild, %d events copied, %d caught up, %d swap attempts, lock held %s",
			round, batch, acked, res.CopyEvents, res.CatchUpEvents, res.SwapAttempts, res.LockDuration)

		// The second verification, with no writer running: the live tables are the fold of the log.
		_, err = rebuild.Run(ctx, e.params(t, rebuild.TargetReadModel), &rebuild.Opts{KeepShadow: true})
		require.NoError(t, err)
		require.Equal(t, readModelRows(t, ctx, e.admin, "userstore"), readModelRows(t, ctx, e.admin, rebuild.ShadowSchema(rebuild.TargetReadModel)))
	}
}
