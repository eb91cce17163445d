package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

func TestStreamIDs(t *testing.T) {
	p := domain.ProfileStreamID(userID, catalogID)
	require.Equal(t, p, domain.ProfileStreamID(userID, catalogID), "deterministic")
	require.NotEqual(t, p, domain.ProfileStreamID(catalogID, userID), "order matters")
	require.Equal(t, uuid.Version(5), p.Version())
	r := domain.RosterStreamID(tenantID)
	require.Equal(t, uuid.Version(5), r.Version())
	require.NotEqual(t, r, domain.RosterStreamID(userID))
	// Stored data depends on these: they must never change (values checked independently in Python).
	require.Equal(t, "163f584f-ae84-5844-8300-0a3c43be9cac", p.String())
	require.Equal(t, "5071e73f-0987-5694-846f-2a99c4a49a01", r.String())
	require.Equal(t, "membership", domain.StreamRoster.Entity())
	require.Equal(t, "user", domain.StreamUser.Entity())
}

func TestClaims(t *testing.T) {
	ref := func(typ domain.StreamType, id uuid.UUID) domain.StreamRef { return domain.Ref(tenantID, typ, id) }
	take := func(scope uuid.UUID, kind, value string) domain.Claim {
		return domain.Claim{Scope: scope, Kind: kind, Value: value}
	}
	type change struct {
		op domain.ClaimOp
		c  domain.Claim
	}
	cases := []struct {
		name string
		ref  domain.StreamRef
		ev   domain.Event
		want []change
	}{
		{"tenant slug is platform-wide", domain.TenantRef(tenantID), domain.TenantCreated{TenantID: tenantID, Slug: "acme"},
			[]change{{domain.ClaimTake, take(domain.PlatformScope, userstore.KindTenantSlug, "acme")}}},
		{"email is claimed case-folded", ref(domain.StreamUser, userID), domain.UserCreated{Email: "Straße@X.de"},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindEmail, "strasse@x.de")}}},
		{"email change releases then takes", ref(domain.StreamUser, userID), domain.UserEmailChanged{Email: "b@x.io", PreviousEmail: "A@x.io"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindEmail, "a@x.io")}, {domain.ClaimTake, take(tenantID, userstore.KindEmail, "b@x.io")}}},
		{"a case-only email change keeps the claim", ref(domain.StreamUser, userID), domain.UserEmailChanged{Email: "ann@x.io", PreviousEmail: "ANN@x.io"}, nil},
		{"deleting a user releases the email", ref(domain.StreamUser, userID), domain.UserDeleted{Email: "Ann@x.io"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindEmail, "ann@x.io")}}},
		{"disabling claims nothing", ref(domain.StreamUser, userID), domain.UserDisabled{}, nil},
		{"login", ref(domain.StreamAccount, accountID), domain.AccountOpened{LoginName: "Ann"},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindLoginName, "ann")}}},
		{"login rename", ref(domain.StreamAccount, accountID), domain.AccountLoginChanged{LoginName: "b", PreviousLoginName: "a"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindLoginName, "a")}, {domain.ClaimTake, take(tenantID, userstore.KindLoginName, "b")}}},
		{"closing an account releases the login", ref(domain.StreamAccount, accountID), domain.AccountClosed{LoginName: "b"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindLoginName, "b")}}},
		{"identity", ref(domain.StreamIdentity, linkID), domain.IdentityLinked{Issuer: "https://i.io", Subject: "S"},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindExternalIdentity, "https://i.io S")}}},
		{"unlink", ref(domain.StreamIdentity, linkID), domain.IdentityUnlinked{Issuer: "https://i.io", Subject: "S"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindExternalIdentity, "https://i.io S")}}},
		{"client key is exact", ref(domain.StreamApplication, appID), domain.ApplicationRegistered{ClientKey: "App"},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindClientKey, "App")}}},
		{"deleting an application releases its key", ref(domain.StreamApplication, appID), domain.ApplicationDeleted{ClientKey: "App"},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindClientKey, "App")}}},
		{"binding", ref(domain.StreamBinding, bindingID), domain.BindingCreated{ApplicationID: appID, UserID: userID},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindBinding, appID.String()+":"+userID.String())}}},
		{"unbind", ref(domain.StreamBinding, bindingID), domain.BindingRemoved{ApplicationID: appID, UserID: userID},
			[]change{{domain.ClaimRelease, take(tenantID, userstore.KindBinding, appID.String()+":"+userID.String())}}},
		{"catalog name", ref(domain.StreamCatalog, catalogID), domain.CatalogDefined{Name: "Contact Details"},
			[]change{{domain.ClaimTake, take(tenantID, userstore.KindCatalogName, "contact details")}}},
		{"memberships are no claims", domain.RosterRef(tenantID), domain.RosterMemberAdded{UserID: userID}, nil},
		{"closing a tenant keeps its slug", domain.TenantRef(tenantID), domain.TenantClosed{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []change
			for _, ch := range domain.Claims(c.ref, c.ev) {
				require.Equal(t, c.ref, ch.Owner)
				got = append(got, change{ch.Op, ch.Claim})
			}
			require.Equal(t, c.want, got)
		})
	}
}

// auditSample is a fixed record; its hash is pinned below.
func auditSample() userstore.AuditRecord {
	return userstore.AuditRecord{
		TenantID:   tenantID,
		Sequence:   1,
		EventID:    uuid.MustParse("01970000-0000-7000-8000-0000000000e1"),
		Position:   42,
		OccurredAt: t0,
		Actor:      userstore.Actor{Type: userstore.ActorService, ID: "svc-a"},
		Action:     domain.EventUserCreated,
		TargetType: "user",
		TargetID:   userID,
		RequestID:  "req-1",
		Outcome:    userstore.OutcomeSuccess,
	}
}

func TestAuditHashGolden(t *testing.T) {
	rec := auditSample()
	h, err := domain.AuditHash(domain.AuditGenesisHash, &rec)
	require.NoError(t, err)
	// Computed independently (in Python) from the documented encoding. The encoding and the hash are
	// part of the stored data: a change here breaks every recorded chain and needs a new encoding
	// version instead.
	require.Equal(t, "0cb6cc6e4f5faf658d3a7a68b9c7817a1eab88ac764da78b6dcbdd30e5a02910", h)

	// The record's own PrevHash and Hash fields are not hashed; the time's zone and sub-microsecond
	// part are not either.
	rec.PrevHash, rec.Hash = "x", "y"
	rec.OccurredAt = t0.In(fixedZone).Add(999)
	h2, err := domain.AuditHash(domain.AuditGenesisHash, &rec)
	require.NoError(t, err)
	require.Equal(t, h, h2)

	// Every field counts.
	for _, mutate := range []func(*userstore.AuditRecord){
		func(r *userstore.AuditRecord) { r.Sequence = 2 },
		func(r *userstore.AuditRecord) { r.Position = 43 },
		func(r *userstore.AuditRecord) { r.Actor.ID = "svc-b" },
		func(r *userstore.AuditRecord) { r.Action = "user.deleted" },
		func(r *userstore.AuditRecord) { r.RequestID = "" },
		func(r *userstore.AuditRecord) { r.OccurredAt = r.OccurredAt.Add(1000) },
		// Length prefixes keep fields apart: moving a character from one field to the next changes the hash.
		func(r *userstore.AuditRecord) { r.Actor.ID, r.Action = "svc-", "auser.created" },
	} {
		r := auditSample()
		mutate(&r)
		h3, err := domain.AuditHash(domain.AuditGenesisHash, &r)
		require.NoError(t, err)
		require.NotEqual(t, h, h3)
	}
	other, err := domain.AuditHash(strings.Repeat("f", 64), &rec)
	require.NoError(t, err)
	require.NotEqual(t, h, other, "the previous hash is chained in")

	for _, bad := range []string{"", "00", strings.Repeat("g", 64), strings.Repeat("0", 66)} {
		_, err := domain.AuditHash(bad, &rec)
		require.Error(t, err)
	}
}

func TestAuditChain(t *testing.T) {
	var recs []userstore.AuditRecord
	prevSeq, prevHash := int64(0), domain.AuditGenesisHash
	for i, s := range samples() {
		r := domain.Audit(domain.Recorded{Stream: s.ref, Version: 1, EventID: uuid.New(), Position: int64(10 + i), Event: s.ev,
			Metadata: domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorUser, ID: "u1"}, RequestID: "r"}})
		require.NoError(t, domain.ChainAudit(&r, prevSeq, prevHash))
		prevSeq, prevHash = r.Sequence, r.Hash
		recs = append(recs, r)
	}
	require.Equal(t, domain.AuditGenesisHash, recs[0].PrevHash)
	i, err := domain.VerifyAuditChain(recs)
	require.NoError(t, err)
	require.Equal(t, -1, i)

	tampered := append([]userstore.AuditRecord(nil), recs...)
	tampered[5].Action = "user.nothing"
	i, err = domain.VerifyAuditChain(tampered)
	require.Error(t, err)
	require.Equal(t, 5, i)

	dropped := append(append([]userstore.AuditRecord(nil), recs[:3]...), recs[4:]...)
	i, err = domain.VerifyAuditChain(dropped)
	require.Error(t, err)
	require.Equal(t, 3, i)
}

func TestAuditRecordOfEvent(t *testing.T) {
	meta := domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorService, ID: "svc"}, RequestID: "req-9"}
	evID := uuid.New()
	r := domain.Audit(domain.Recorded{Stream: domain.Ref(tenantID, domain.StreamAccount, accountID), Version: 3, EventID: evID, Position: 7,
		Event: domain.AccountLocked{At: t0}, Metadata: meta})
	require.Equal(t, userstore.AuditRecord{TenantID: tenantID, EventID: evID, Position: 7, OccurredAt: t0, Actor: meta.Actor,
		Action: "account.locked", TargetType: "account", TargetID: accountID, RequestID: "req-9", Outcome: userstore.OutcomeSuccess}, r)

	// A roster event's target is the user whose membership changed.
	r = domain.Audit(domain.Recorded{Stream: domain.RosterRef(tenantID), Event: domain.RosterMemberAdded{UserID: userID, Role: userstore.RoleOwner, At: t0}})
	require.Equal(t, "user", r.TargetType)
	require.Equal(t, userID, r.TargetID)
	require.Equal(t, "roster.member_added", r.Action)
}

func TestOutbox(t *testing.T) {
	for i, s := range samples() {
		t.Run(s.ev.EventType(), func(t *testing.T) {
			evID := uuid.New()
			ob, err := domain.Outbox(domain.Recorded{Stream: s.ref, Version: int64(i + 1), EventID: evID, Position: int64(100 + i), Event: s.ev})
			require.NoError(t, err)
			require.Equal(t, evID, ob.ID, "the outbox id is the event id")
			require.Equal(t, "userstore."+s.ev.EventType()+".v1", ob.Type)
			require.Equal(t, tenantID, ob.TenantID)
			require.Equal(t, string(s.ref.Type), ob.AggregateType)
			require.Equal(t, s.ref.ID, ob.AggregateID)
			require.Equal(t, int64(i+1), ob.AggregateVersion)
			require.Equal(t, int64(100+i), ob.Position)
			require.Equal(t, t0, ob.OccurredAt)
			var body map[string]any
			require.NoError(t, json.Unmarshal(ob.Payload, &body))
			require.NotEmpty(t, body)
			for _, pii := range piiValues {
				require.NotContains(t, string(ob.Payload), pii, "no personal data in public events")
			}
		})
	}
}

func TestOutboxProfileValues(t *testing.T) {
	ev := domain.ProfileValuesSet{UserID: userID, CatalogID: catalogID, Values: map[string]userstore.Value{
		"nickname": userstore.StringValue(piiNickname), "level": userstore.EnumValue("gold"), "age": userstore.IntValue(0),
	}, PIIKeys: []string{"nickname"}, At: t0}
	ob, err := domain.Outbox(domain.Recorded{Stream: domain.ProfileRef(tenantID, userID, catalogID), Event: ev})
	require.NoError(t, err)
	require.JSONEq(t, `{
		"user_id": "`+userID.String()+`", "catalog_id": "`+catalogID.String()+`",
		"keys": ["age", "level", "nickname"],
		"values": {"age": {"type": "int"}, "level": {"type": "enum", "str": "gold"}}
	}`, string(ob.Payload))

	_, err = domain.Outbox(domain.Recorded{Stream: domain.TenantRef(tenantID)})
	require.Error(t, err, "no event")
	_, err = domain.Outbox(domain.Recorded{Stream: domain.TenantRef(tenantID), Event: widgetV3{}})
	require.Error(t, err, "no public form of an unknown event")
}

var fixedZone = time.FixedZone("UTC+2", 2*60*60)
