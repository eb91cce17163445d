package memstore

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// TestReadModelIsTheFoldOfTheLog checks the store's central promise: everything it answers from — the
// read model, the audit trail and the outbox — is what folding and projecting its event log gives.
func TestReadModelIsTheFoldOfTheLog(t *testing.T) {
	s, err := New(nil)
	require.NoError(t, err)
	scenario(t, s)

	s.mu.RLock()
	defer s.mu.RUnlock()
	audits := map[uuid.UUID][]userstore.AuditRecord{}
	outboxes := map[uuid.UUID][]userstore.OutboxEvent{}
	for i, e := range s.log {
		require.Equal(t, int64(i+1), e.position)
		ev, err := domain.Decode(e.event)
		require.NoError(t, err)
		r := domain.Recorded{Stream: e.stream, Version: e.version, EventID: e.eventID, Position: e.position, Event: ev, Metadata: e.metadata}
		rec := domain.Audit(r)
		prev := audits[e.stream.TenantID]
		prevSeq, prevHash := int64(0), domain.AuditGenesisHash
		if n := len(prev); n > 0 {
			prevSeq, prevHash = prev[n-1].Sequence, prev[n-1].Hash
		}
		require.NoError(t, domain.ChainAudit(&rec, prevSeq, prevHash))
		audits[e.stream.TenantID] = append(prev, rec)
		ob, err := domain.Outbox(r)
		require.NoError(t, err)
		outboxes[e.stream.TenantID] = append(outboxes[e.stream.TenantID], ob)
	}

	streams := 0
	for key, st := range s.streams {
		streams++
		ref := domain.Ref(key.tenantID, st.typ, key.id)
		var events []domain.Event
		for i, pos := range st.positions {
			e := s.log[pos-1]
			require.Equal(t, ref, e.stream)
			require.Equal(t, int64(i+1), e.version, "stream versions are contiguous")
			ev, err := domain.Decode(e.event)
			require.NoError(t, err)
			events = append(events, ev)
		}
		agg, err := domain.Fold(ref, events)
		require.NoError(t, err)
		td := s.tenants[key.tenantID]
		switch a := agg.(type) {
		case domain.TenantState:
			require.Equal(t, a.View(), td.tenant)
		case domain.UserState:
			require.Equal(t, a.View(), td.users[key.id])
		case domain.AccountState:
			require.Equal(t, a.View(), td.accounts[key.id])
		case domain.IdentityState:
			if a.Found() {
				require.Equal(t, a.View(), td.identities[key.id])
			} else {
				require.NotContains(t, td.identities, key.id)
			}
		case domain.ApplicationState:
			require.Equal(t, a.View(), td.apps[key.id])
		case domain.BindingState:
			if a.Found() {
				require.Equal(t, a.View(), td.bindings[key.id])
			} else {
				require.NotContains(t, td.bindings, key.id)
			}
		case domain.CatalogState:
			require.Equal(t, a.View(), td.catalogs[key.id])
		case domain.ProfileState:
			require.Equal(t, a.View(), td.profiles[profileKey{a.UserID, a.CatalogID}])
		case domain.RosterState:
			require.Len(t, td.members, len(a.Members))
			for _, m := range a.Memberships() {
				require.Equal(t, &m, td.members[m.UserID])
			}
		default:
			t.Fatalf("unexpected state %T", agg)
		}
	}
	require.Equal(t, 10, streams, "tenant, roster, 2 users, account, identity, app, binding, catalog, profile")

	for id, td := range s.tenants {
		require.Equal(t, audits[id], td.audit)
		require.Equal(t, outboxes[id], td.outbox)
	}
}

// scenario runs one of everything, including a cascade.
func scenario(t *testing.T, s *Store) {
	t.Helper()
	ctx := userstore.WithTenant(context.Background(), uuid.New())
	ctx = userstore.WithActor(ctx, userstore.Actor{Type: userstore.ActorSystem, ID: "scenario"})
	step := func(_ any, err error) {
		t.Helper()
		require.NoError(t, err)
	}
	step(s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "scenario", Name: "Scenario"}))
	step(s.RenameTenant(ctx, &userstore.RenameTenantParams{Name: "Scenario 2"}))
	ann, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Ann", Email: "ann@x.io"})
	require.NoError(t, err)
	bob, err := s.CreateUser(ctx, &userstore.CreateUserParams{DisplayName: "Bob", Email: "bob@x.io"})
	require.NoError(t, err)
	step(s.ChangeUserEmail(ctx, &userstore.ChangeUserEmailParams{ID: ann.ID, Email: "Ann@X.io"}))
	step(s.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: ann.ID, LoginName: "ann", Kind: userstore.AccountPassword}))
	step(s.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: ann.ID, Issuer: "https://idp.x.io", Subject: "ann"}))
	app, err := s.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: "App", ClientKey: "app", Kind: userstore.AppWeb})
	require.NoError(t, err)
	step(s.Bind(ctx, &userstore.BindParams{ApplicationID: app.ID, UserID: ann.ID, Roles: []string{"x"}}))
	cat, err := s.DefineCatalog(ctx, &userstore.DefineCatalogParams{Name: "P", Attributes: []userstore.Attribute{{Key: "n", Type: userstore.AttrInt}}})
	require.NoError(t, err)
	step(s.AddCatalogAttribute(ctx, &userstore.AddCatalogAttributeParams{CatalogID: cat.ID, Attribute: userstore.Attribute{Key: "b", Type: userstore.AttrBool}}))
	step(s.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: ann.ID, CatalogID: cat.ID, Values: map[string]userstore.Value{"n": userstore.IntValue(3)}}))
	step(s.AddMember(ctx, &userstore.AddMemberParams{UserID: ann.ID, Role: userstore.RoleOwner}))
	step(s.AddMember(ctx, &userstore.AddMemberParams{UserID: bob.ID, Role: userstore.RoleOwner}))
	_, err = s.DeleteApplication(ctx, &userstore.ApplicationParams{ID: app.ID})
	require.NoError(t, err)
	step(s.DeleteUser(ctx, &userstore.UserParams{ID: ann.ID}))
	step(s.ChangeMemberRole(ctx, &userstore.ChangeMemberRoleParams{UserID: bob.ID, Role: userstore.RoleOwner}))
}
