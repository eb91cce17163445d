package replay_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/replay"
)

// TestStateAtPositionEqualsWhatTheStoreReturned: for every mutation of a history that touches every
// entity type (renames, status changes, unlinks, unbinds, role changes, a cascading delete, …), the
// entity folded from the log up to the position of its stream's event equals what the store returned
// right after the mutation; and so does the state as of that event's recorded time. Entities that no
// longer existed (unlinked, unbound, removed) are not found at that point.
func TestStateAtPositionEqualsWhatTheStoreReturned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 0, 2)
	r := e.replayer(t, &replay.Config{BatchSize: 2})
	require.Greater(t, len(e.snaps), 40)
	for _, s := range e.snaps {
		res, err := r.State(ctx, &replay.StateParams{Entity: s.entity, AtPosition: s.position})
		require.NoError(t, err, s.what)
		require.Equal(t, s.found, res.Found, s.what)
		if s.found || s.entity.Type == replay.EntityProfile {
			require.Equal(t, s.view, res.View, "%s: %s", s.what, s.entity)
		} else {
			require.Nil(t, res.View, s.what)
		}
		require.Equal(t, s.position, res.Position, s.what)

		byTime, err := r.State(ctx, &replay.StateParams{Entity: s.entity, AtTime: s.recorded})
		require.NoError(t, err, s.what)
		require.Equal(t, res.View, byTime.View, s.what)
		require.Equal(t, res.Version, byTime.Version, s.what)
	}
}

// TestStateDiffAndBounds: --diff lists each event's changes; a point before the first event is "not
// found yet"; an id of another kind of entity, or one without events, is an error.
func TestStateDiffAndBounds(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 0, 1)
	r := e.replayer(t, nil)
	var user replay.EntityRef
	for _, s := range e.snaps {
		if s.what == "user changed" {
			user = s.entity
		}
	}
	res, err := r.State(ctx, &replay.StateParams{Entity: user, Diff: true})
	require.NoError(t, err)
	require.True(t, res.Found)
	var types []string
	for _, st := range res.Steps {
		types = append(types, st.EventType)
	}
	require.Equal(t, []string{"user.created", "user.profile_updated", "user.email_changed", "user.disabled", "user.enabled"}, types)
	renamed := res.Steps[1]
	require.Contains(t, renamed.Changes, replay.Change{Field: "DisplayName", Before: []byte(`"User 0"`), After: []byte(`"Ann"`)})
	require.Equal(t, userstore.Actor{Type: userstore.ActorUser, ID: "admin-" + user.TenantID.String()[24:]}, renamed.Actor)
	created := res.Steps[0]
	for _, c := range created.Changes {
		require.Nil(t, c.Before, "creation adds every field")
	}

	var out bytes.Buffer
	require.NoError(t, replay.WriteState(&out, res, replay.FormatTable))
	require.Contains(t, out.String(), `~ DisplayName              "User 0" -> "Ann"`)
	require.Contains(t, out.String(), "exists")

	before, err := r.State(ctx, &replay.StateParams{Entity: user, AtPosition: 1})
	require.NoError(t, err)
	require.False(t, before.Found)
	require.Zero(t, before.Version)
	require.Nil(t, before.View)
	past, err := r.State(ctx, &replay.StateParams{Entity: user, AtTime: time.Unix(0, 0)})
	require.NoError(t, err)
	require.False(t, past.Found)

	// The roster and a membership's diff (only its own user's events).
	roster, err := r.State(ctx, &replay.StateParams{Entity: replay.EntityRef{TenantID: user.TenantID, Type: replay.EntityRoster}})
	require.NoError(t, err)
	require.Len(t, roster.View, 1, "one member left: the owner")
	m, err := r.State(ctx, &replay.StateParams{Entity: replay.EntityRef{TenantID: user.TenantID, Type: replay.EntityMembership, ID: user.ID}, Diff: true})
	require.NoError(t, err)
	require.Len(t, m.Steps, 1)
	require.Equal(t, "roster.member_added", m.Steps[0].EventType)

	wrongType := user
	wrongType.Type = replay.EntityAccount
	_, err = r.State(ctx, &replay.StateParams{Entity: wrongType})
	require.ErrorIs(t, err, replay.ErrValidation)
	require.True(t, strings.Contains(err.Error(), "is a user stream"), err.Error())
	_, err = r.State(ctx, &replay.StateParams{Entity: replay.EntityRef{TenantID: user.TenantID, Type: replay.EntityUser, ID: uuid.New()}})
	require.ErrorIs(t, err, replay.ErrNotFound)
	_, err = r.State(ctx, &replay.StateParams{Entity: user, AtPosition: 5, AtTime: time.Now()})
	require.ErrorIs(t, err, replay.ErrValidation)
}

// TestParseEntity: the TYPE:ID forms the command line takes.
func TestParseEntity(t *testing.T) {
	t.Parallel()
	tenant, id, cat := uuid.New(), uuid.New(), uuid.New()
	for in, want := range map[string]replay.EntityRef{
		"user:" + id.String():                         {TenantID: tenant, Type: replay.EntityUser, ID: id},
		"membership:" + id.String():                   {TenantID: tenant, Type: replay.EntityMembership, ID: id},
		"profile:" + id.String() + "/" + cat.String(): {TenantID: tenant, Type: replay.EntityProfile, ID: id, CatalogID: cat},
		"tenant":                    {TenantID: tenant, Type: replay.EntityTenant, ID: tenant},
		"tenant:" + tenant.String(): {TenantID: tenant, Type: replay.EntityTenant, ID: tenant},
		"roster":                    {TenantID: tenant, Type: replay.EntityRoster, ID: tenant},
	} {
		got, err := replay.ParseEntity(tenant, in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		again, err := replay.ParseEntity(tenant, got.String())
		require.NoError(t, err)
		require.Equal(t, got, again)
	}
	for _, bad := range []string{"", "user", "user:x", "widget:" + id.String(), "profile:" + id.String(), "tenant:" + id.String()} {
		_, err := replay.ParseEntity(tenant, bad)
		require.ErrorIs(t, err, replay.ErrValidation, bad)
	}
}
