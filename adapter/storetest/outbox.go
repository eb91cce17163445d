package storetest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

func requireEventShape(t *testing.T, f *fixture, ev userstore.OutboxEvent, what string) {
	t.Helper()
	require.NotEqual(t, uuid.Nil, ev.ID, what)
	require.Equal(t, f.tenant.ID, ev.TenantID, what)
	require.NotEmpty(t, ev.Type, what)
	require.NotEmpty(t, ev.AggregateType, what)
	require.NotEqual(t, uuid.Nil, ev.AggregateID, what)
	require.Positive(t, ev.AggregateVersion, what)
	require.False(t, ev.OccurredAt.IsZero(), what)
	require.True(t, json.Valid(ev.Payload), "%s: the payload is JSON", what)
}

func outboxCases() []testCase {
	return []testCase{
		{"EveryMutationPublished", func(t *testing.T, s userstore.Store) {
			f, steps := script(t, s)
			cursor := ""
			for _, st := range steps {
				target, err := st.run("req-" + st.name + "-" + rnd())
				require.NoError(t, err, "script step %s", st.name)
				evs, next := f.outboxAfter(t, cursor, userstore.MaxLimit)
				require.NotEmpty(t, evs, "%s publishes at least one outbox event", st.name)
				for _, ev := range evs {
					requireEventShape(t, f, ev, st.name)
				}
				if target != uuid.Nil {
					require.NotEmpty(t, eventsFor(evs, target), "%s publishes an event of aggregate %s", st.name, target)
				}
				cursor = next
			}
		}},
		{"RefusedMutationsPublishNothing", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			w := f.world(t)
			before := f.outbox(t)
			appID := refusals(t, f, w)
			after := f.outbox(t)
			require.Greater(t, len(after), len(before), "the one successful registration is published")
			for _, ev := range after[len(before):] {
				require.Equal(t, appID, ev.AggregateID, "only the successful registration was published, not %s", ev.Type)
			}
		}},
		{"CommitOrder", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			a := f.registerApp(t)
			_, err := s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: "U2"})
			require.NoError(t, err)
			f.disableUser(t, u.ID)
			_, err = s.DisableApplication(f.ctx, &userstore.ApplicationParams{ID: a.ID})
			require.NoError(t, err)
			evs := f.outbox(t)
			ids := map[uuid.UUID]bool{}
			last := map[uuid.UUID]int64{}
			for i, ev := range evs {
				require.False(t, ids[ev.ID], "event ids are unique")
				ids[ev.ID] = true
				if i > 0 {
					require.Greater(t, ev.Position, evs[i-1].Position, "positions increase in commit order")
				}
				require.Greater(t, ev.AggregateVersion, last[ev.AggregateID], "aggregate versions increase per aggregate")
				last[ev.AggregateID] = ev.AggregateVersion
			}
			ue := eventsFor(evs, u.ID)
			require.Len(t, ue, 3)
			require.Equal(t, []int64{1, 2, 3}, []int64{ue[0].AggregateVersion, ue[1].AggregateVersion, ue[2].AggregateVersion})
			ae := eventsFor(evs, a.ID)
			require.Len(t, ae, 2)
			// the user's update was committed between the app's registration and disabling
			pos := func(ev userstore.OutboxEvent) int64 { return ev.Position }
			require.Less(t, pos(ae[0]), pos(ue[1]))
			require.Less(t, pos(ue[2]), pos(ae[1]))
		}},
		{"CursorIsAlwaysTheResumePoint", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			for range 4 {
				f.createUser(t)
			}
			syncTrail(t, f.ctx, s)
			cursor := ""
			var all []userstore.OutboxEvent
			for range maxPages {
				page, err := s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: 2}})
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Items), 2)
				if len(page.Items) == 0 {
					require.Equal(t, cursor, page.NextCursor, "an empty page returns the cursor it was given")
					break
				}
				require.NotEmpty(t, page.NextCursor, "a non-empty page returns the resume point, also at the end")
				all = append(all, page.Items...)
				cursor = page.NextCursor
			}
			require.Len(t, all, len(f.outbox(t)))
			// the kept cursor returns exactly the newer events
			u := f.createUser(t)
			syncTrail(t, f.ctx, s)
			page, err := s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor}})
			require.NoError(t, err)
			require.NotEmpty(t, page.Items)
			for _, ev := range page.Items {
				require.Equal(t, u.ID, ev.AggregateID, "only the new user's events follow the kept cursor")
				require.Greater(t, ev.Position, all[len(all)-1].Position)
			}
			require.NotEqual(t, cursor, page.NextCursor)
			again, err := s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: page.NextCursor}})
			require.NoError(t, err)
			require.Empty(t, again.Items)
			require.Equal(t, page.NextCursor, again.NextCursor)
			empty, err := s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{})
			require.NoError(t, err)
			require.Equal(t, all[0].ID, empty.Items[0].ID, "no cursor reads from the start")
		}},
		{"EmptyOutboxKeepsEmptyCursor", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			evs, cursor := f.outboxAfter(t, "", 10)
			require.NotEmpty(t, evs, "the tenant's creation is published")
			page, err := s.ReadOutbox(f.ctx, &userstore.ReadOutboxParams{ListOpts: userstore.ListOpts{Cursor: cursor, Limit: 10}})
			require.NoError(t, err)
			require.Empty(t, page.Items)
			require.Equal(t, cursor, page.NextCursor)
		}},
		{"PayloadIsPIIMinimized", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			tag := rnd()
			email := "Secret.Person." + tag + "@Example.com"
			name := "Secret Person " + tag
			u, err := s.CreateUser(f.ctx, &userstore.CreateUserParams{DisplayName: name, Email: email})
			require.NoError(t, err)
			name2 := "Renamed Person " + rnd()
			_, err = s.UpdateUserProfile(f.ctx, &userstore.UpdateUserProfileParams{ID: u.ID, DisplayName: name2})
			require.NoError(t, err)
			email2 := "other." + rnd() + "@example.org"
			_, err = s.ChangeUserEmail(f.ctx, &userstore.ChangeUserEmailParams{ID: u.ID, Email: email2})
			require.NoError(t, err)
			login := "secret-login-" + rnd()
			a := f.openAccountWith(t, u.ID, login)
			login2 := "secret-login-" + rnd()
			_, err = s.RenameAccountLogin(f.ctx, &userstore.RenameAccountLoginParams{ID: a.ID, LoginName: login2})
			require.NoError(t, err)
			subject := "secret-subject-" + rnd()
			f.linkIdentityWith(t, u.ID, testIssuer, subject)
			c := f.defineCatalog(t, userstore.Attribute{Key: "ssn", Type: userstore.AttrString, PII: true}, stringAttr("team"))
			ssn := "secret-ssn-" + rnd()
			f.setValues(t, u.ID, c.ID, map[string]userstore.Value{"ssn": strV(ssn), "team": strV("blue")})
			f.deleteUser(t, u.ID)
			secrets := []string{email, email2, name, name2, login, login2, subject, ssn, tag}
			evs := f.outbox(t)
			require.NotEmpty(t, evs)
			for _, ev := range evs {
				raw := bytes.ToLower(ev.Payload)
				for _, secret := range secrets {
					require.False(t, bytes.Contains(raw, bytes.ToLower([]byte(secret))), "outbox event %s carries PII in its payload", ev.Type)
				}
			}
		}},
		{"EventIDsAreAuditEventIDs", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			f.world(t)
			audit := map[uuid.UUID]userstore.AuditRecord{}
			for _, r := range f.audit(t) {
				audit[r.EventID] = r
			}
			for _, ev := range f.outbox(t) {
				_, ok := audit[ev.ID]
				require.True(t, ok, "outbox event %s has the id of a domain event in the audit trail", ev.Type)
			}
		}},
		{"EventFields", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			before := time.Now().Add(-time.Minute)
			u := f.createUser(t)
			evs := eventsFor(f.outbox(t), u.ID)
			require.NotEmpty(t, evs)
			ev := evs[0]
			requireEventShape(t, f, ev, "user created")
			require.Equal(t, int64(1), ev.AggregateVersion)
			require.True(t, ev.OccurredAt.After(before))
			require.Contains(t, ev.Type, ".v", "the public type carries its schema version")
		}},
	}
}
