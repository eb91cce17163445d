package storetest

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func memberUserIDs(ms []userstore.Membership) []uuid.UUID {
	ids := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids
}

func memberCases() []testCase {
	return []testCase{
		{"AddAndGet", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			m, err := s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleAdmin})
			require.NoError(t, err)
			require.Equal(t, f.tenant.ID, m.TenantID)
			require.Equal(t, u.ID, m.UserID)
			require.Equal(t, userstore.RoleAdmin, m.Role)
			require.Equal(t, int64(1), m.Version, "the first change of the roster is version 1")
			got := f.getMembership(t, u.ID)
			require.Equal(t, userstore.RoleAdmin, got.Role)
			require.Equal(t, m.Version, got.Version)
			require.Equal(t, []uuid.UUID{u.ID}, memberUserIDs(f.members(t, "")))
		}},
		{"OnePerUser", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			f.addMember(t, u.ID, userstore.RoleMember)
			tr := f.snapshot(t)
			_, err := s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: userstore.RoleOwner})
			requireDuplicate(t, err, userstore.KindMembership)
			require.Equal(t, userstore.RoleMember, f.getMembership(t, u.ID).Role)
			f.requireNoTrace(t, tr)
			require.NoError(t, s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: u.ID}))
			_, err = s.GetMembership(f.ctx, u.ID)
			requireNotFound(t, err)
			require.Empty(t, f.members(t, ""))
			again := f.addMember(t, u.ID, userstore.RoleOwner)
			require.Equal(t, userstore.RoleOwner, again.Role)
		}},
		{"RequireActiveUserOfSameTenant", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			disabled := f.createUser(t)
			f.disableUser(t, disabled.ID)
			deleted := f.createUser(t)
			f.deleteUser(t, deleted.ID)
			foreign := g.createUser(t)
			tr := f.snapshot(t)
			add := func(id uuid.UUID) error {
				_, err := s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: id, Role: userstore.RoleMember})
				return err
			}
			requirePrecondition(t, add(disabled.ID), userstore.ReasonUserInactive)
			requirePrecondition(t, add(deleted.ID), userstore.ReasonUserDeleted, userstore.ReasonUserInactive)
			requireNotFound(t, add(foreign.ID), "a user of another tenant")
			requireNotFound(t, add(userstore.NewID()), "a missing user")
			require.Empty(t, f.members(t, ""))
			f.requireNoTrace(t, tr)
		}},
		{"ChangeRoleAndListByRole", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			b := f.createUser(t)
			c := f.createUser(t)
			f.addMember(t, a.ID, userstore.RoleOwner)
			f.addMember(t, b.ID, userstore.RoleMember)
			f.addMember(t, c.ID, userstore.RoleMember)
			m, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: b.ID, Role: userstore.RoleAdmin})
			require.NoError(t, err)
			require.Equal(t, userstore.RoleAdmin, m.Role)
			require.Equal(t, int64(4), m.Version, "the roster's fourth change")
			require.Equal(t, userstore.RoleAdmin, f.getMembership(t, b.ID).Role)
			require.Equal(t, []uuid.UUID{a.ID, b.ID, c.ID}, memberUserIDs(f.members(t, "")), "in user id order")
			require.Equal(t, []uuid.UUID{a.ID}, memberUserIDs(f.members(t, userstore.RoleOwner)))
			require.Equal(t, []uuid.UUID{b.ID}, memberUserIDs(f.members(t, userstore.RoleAdmin)))
			require.Equal(t, []uuid.UUID{c.ID}, memberUserIDs(f.members(t, userstore.RoleMember)))
		}},
		{"RosterVersionSemantics", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			b := f.createUser(t)
			ma := f.addMember(t, a.ID, userstore.RoleMember)
			mb := f.addMember(t, b.ID, userstore.RoleMember)
			require.Equal(t, ma.Version+1, mb.Version, "the roster version grows by one per change")
			require.Equal(t, ma.Version, f.getMembership(t, a.ID).Version, "a membership carries the roster version of its own last change")
			m, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: a.ID, Role: userstore.RoleAdmin, ExpectedVersion: ma.Version})
			require.NoError(t, err, "a's membership is unchanged since the version it carries")
			require.Equal(t, mb.Version+1, m.Version)
			tr := f.snapshot(t)
			_, err = s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: a.ID, Role: userstore.RoleOwner, ExpectedVersion: ma.Version})
			require.ErrorIs(t, err, userstore.ErrConflict, "a changed since ma.Version")
			require.Equal(t, userstore.RoleAdmin, f.getMembership(t, a.ID).Role)
			f.requireNoTrace(t, tr)
		}},
		{"LastOwnerCannotBeDemotedOrRemoved", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			o := f.createUser(t)
			f.addMember(t, o.ID, userstore.RoleOwner)
			f.addMember(t, f.createUser(t).ID, userstore.RoleAdmin)
			before := f.getMembership(t, o.ID)
			tr := f.snapshot(t)
			for _, role := range []userstore.MemberRole{userstore.RoleAdmin, userstore.RoleMember} {
				_, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: o.ID, Role: role})
				requirePrecondition(t, err, userstore.ReasonLastOwner)
			}
			err := s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: o.ID})
			requirePrecondition(t, err, userstore.ReasonLastOwner)
			after := f.getMembership(t, o.ID)
			require.Equal(t, userstore.RoleOwner, after.Role)
			require.Equal(t, before.Version, after.Version)
			f.requireNoTrace(t, tr)
			m, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: o.ID, Role: userstore.RoleOwner})
			if err == nil {
				require.Equal(t, userstore.RoleOwner, m.Role, "an owner may stay owner")
			}
		}},
		{"SecondOwnerCanBeDemoted", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			b := f.createUser(t)
			f.addMember(t, a.ID, userstore.RoleOwner)
			f.addMember(t, b.ID, userstore.RoleOwner)
			m, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: a.ID, Role: userstore.RoleMember})
			require.NoError(t, err)
			require.Equal(t, userstore.RoleMember, m.Role)
			_, err = s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: b.ID, Role: userstore.RoleMember})
			requirePrecondition(t, err, userstore.ReasonLastOwner)
			err = s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: b.ID})
			requirePrecondition(t, err, userstore.ReasonLastOwner)
			c := f.createUser(t)
			f.addMember(t, c.ID, userstore.RoleOwner)
			require.NoError(t, s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: b.ID}), "with another owner, an owner can be removed")
			require.Equal(t, []uuid.UUID{c.ID}, memberUserIDs(f.members(t, userstore.RoleOwner)))
		}},
		{"TenantWithoutOwnerAcceptsMembers", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.createUser(t)
			f.addMember(t, a.ID, userstore.RoleMember)
			_, err := s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: a.ID, Role: userstore.RoleAdmin})
			require.NoError(t, err)
			require.NoError(t, s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: a.ID}))
		}},
		{"ConcurrentDemotionsKeepOneOwner", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			const n = 20
			owners := make([]*userstore.User, n)
			for i := range owners {
				owners[i] = f.createUser(t)
				f.addMember(t, owners[i].ID, userstore.RoleOwner)
			}
			const maxAttempts = 200
			var demoted, refused atomic.Int32
			errs := make([]error, n)
			parallel(t, n, func(i int) {
				ctx := userstore.WithRequestID(f.ctx, "demote-"+rnd())
				for range maxAttempts {
					_, err := s.ChangeMemberRole(ctx, &userstore.ChangeMemberRoleParams{UserID: owners[i].ID, Role: userstore.RoleMember})
					var pe *userstore.PreconditionError
					switch {
					case err == nil:
						demoted.Add(1)
						return
					case errors.As(err, &pe) && pe.Reason == userstore.ReasonLastOwner:
						refused.Add(1)
						return
					case errors.Is(err, userstore.ErrConflict):
						continue // the roster changed under us: decide again
					default:
						errs[i] = err
						return
					}
				}
				errs[i] = errors.New("still conflicting after the maximum number of attempts")
			})
			for i, err := range errs {
				require.NoError(t, err, "demotion %d", i)
			}
			require.Equal(t, int32(n-1), demoted.Load(), "all but one demotion succeed")
			require.Equal(t, int32(1), refused.Load(), "exactly one demotion is refused as the last owner")
			require.Len(t, f.members(t, userstore.RoleOwner), 1, "exactly one owner remains")
			require.Len(t, f.members(t, userstore.RoleMember), n-1)
		}},
		{"NonMemberRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			_, err := s.GetMembership(f.ctx, u.ID)
			requireNotFound(t, err)
			tr := f.snapshot(t)
			_, err = s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: u.ID, Role: userstore.RoleAdmin})
			require.Error(t, err)
			if !errors.Is(err, userstore.ErrNotFound) {
				requirePrecondition(t, err, userstore.ReasonNotAMember)
			}
			err = s.RemoveMember(f.ctx, &userstore.RemoveMemberParams{UserID: u.ID})
			require.Error(t, err)
			if !errors.Is(err, userstore.ErrNotFound) {
				requirePrecondition(t, err, userstore.ReasonNotAMember)
			}
			f.requireNoTrace(t, tr)
		}},
		{"RoleValidation", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			v := f.createUser(t)
			f.addMember(t, v.ID, userstore.RoleMember)
			tr := f.snapshot(t)
			for _, role := range []userstore.MemberRole{"", "god", "admin\x00", "admin\xff"} {
				_, err := s.AddMember(f.ctx, &userstore.AddMemberParams{UserID: u.ID, Role: role})
				requireInvalid(t, err, "role", "add with role %q", role)
				_, err = s.ChangeMemberRole(f.ctx, &userstore.ChangeMemberRoleParams{UserID: v.ID, Role: role})
				requireInvalid(t, err, "role", "change to role %q", role)
			}
			_, err := s.ListMembers(f.ctx, &userstore.ListMembersParams{Role: "god"})
			requireInvalid(t, err, "role")
			require.Equal(t, []uuid.UUID{v.ID}, memberUserIDs(f.members(t, "")))
			f.requireNoTrace(t, tr)
		}},
	}
}
