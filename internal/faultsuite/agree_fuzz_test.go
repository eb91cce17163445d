package faultsuite_test

// Differential fuzzing of the store's public API: the same queries and mutations, with the same fuzzed
// strings, numbers and cursors, go to memstore (the reference semantics) and to pgstore (on the package
// database, as userstore_app). A rejection — any error — must be of the same class in both (errorClass:
// the same *ValidationError field, the same duplicate kind, not found, …), and pgstore must never fail
// with an error a caller cannot branch on (a database error such as SQLSTATE 22021 for a NUL byte, or
// 22008 for a time out of range): outside input is refused by validation before any SQL runs.
//
// Run one with `go test -run '^$' -fuzz '^FuzzQueriesAgree$' -fuzztime 20s ./internal/faultsuite`;
// scripts/fuzz.sh runs them all.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/memstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/keyset"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// pair is the two adapters under comparison.
type pair struct {
	mem *memstore.Store
	pg  *pgstore.Store
}

var (
	pairOnce sync.Once
	thePair  pair
	pairErr  error
)

// stores returns the package's memstore and pgstore (on the package database as userstore_app).
func stores(tb testing.TB) pair {
	tb.Helper()
	pool := pgtest.AppPool(tb)
	pairOnce.Do(func() {
		thePair.mem, pairErr = memstore.New(nil)
		if pairErr == nil {
			thePair.pg, pairErr = pgstore.New(context.Background(), pool, nil)
		}
	})
	if pairErr != nil {
		tb.Fatal(pairErr)
	}
	return thePair
}

// agree runs call on both adapters and fails unless the errors are of the same class and pgstore's is
// one a caller can branch on.
func agree(t *testing.T, name string, call func(s userstore.Store) error) {
	t.Helper()
	compare(t, name, true, call)
}

// compare is agree; with same false, only pgstore's error is checked (for a cursor whose format differs
// by adapter). It returns memstore's errorClass. Failures are reported with Errorf, so that one input
// shows every call it breaks.
func compare(t *testing.T, name string, same bool, call func(s userstore.Store) error) string {
	t.Helper()
	p := stores(t)
	mem, pg := errorClass(call(p.mem)), errorClass(call(p.pg))
	if strings.HasPrefix(pg, "OTHER") {
		t.Errorf("%s: pgstore failed with an error that is not the library's vocabulary: %s (memstore: %s)", name, pg, mem)
	}
	if same && mem != pg {
		t.Errorf("%s: the adapters disagree: memstore %s, pgstore %s", name, mem, pg)
	}
	return mem
}

// bothTenants creates the same new tenant in both adapters and returns its context.
func bothTenants(t *testing.T) context.Context {
	t.Helper()
	p := stores(t)
	id := userstore.NewID()
	ctx := actorCtx(context.Background(), id)
	for _, s := range []userstore.Store{p.mem, p.pg} {
		if _, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + id.String()[24:], Name: "Tenant"}); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// bothUsers creates the same new user in both adapters, in the tenant of ctx, and returns its id.
func bothUsers(t *testing.T, ctx context.Context) uuid.UUID {
	t.Helper()
	p := stores(t)
	id := userstore.NewID()
	for _, s := range []userstore.Store{p.mem, p.pg} {
		if _, err := s.CreateUser(ctx, &userstore.CreateUserParams{ID: id, DisplayName: "Ann", Email: "ann@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// FuzzQueriesAgree: every query of the store, with a fuzzed cursor, limit, filter string (a status, a
// role, an action, a target type, an actor, an email, a login name, a slug, an issuer and subject, a
// client key) and time bounds, on a tenant with one user: both adapters answer alike and pgstore never
// fails with a database error.
func FuzzQueriesAgree(f *testing.F) {
	fp := keyset.Fingerprint()
	f.Add("", 0, "", int64(0), int64(0))
	f.Add("", 10, "active", int64(0), int64(0))
	f.Add(keyset.Encode("users", keyset.Fingerprint("active"), uuid.NewString()), 501, "owner", int64(1), int64(2))
	f.Add(keyset.Encode("audit", fp, "7"), 1, "user.created", int64(-62135596800), int64(253402300799))
	f.Add(keyset.Encode("outbox", "", "7.8"), -1, "ann@example.com", int64(0), int64(-1))
	f.Add("djF8dXNlcnN8fGs", 2, "a\x00b", int64(0), int64(0))
	f.Add("", 3, "\xff\xfe", int64(0), int64(0))
	f.Add("", 4, "https://idp.example.com", int64(1<<62), int64(0))
	f.Add("", 5, strings.Repeat("x", 300), int64(-1<<62), int64(1<<62))
	f.Add("", 6, "acme", int64(253402300800), int64(0))
	stores(f)
	f.Fuzz(func(t *testing.T, cursor string, limit int, s string, since, until int64) {
		ctx := bothTenants(t)
		user := bothUsers(t, ctx)
		opts := userstore.ListOpts{Cursor: cursor, Limit: limit}
		tm := func(sec int64) time.Time {
			if sec == 0 {
				return time.Time{}
			}
			return time.Unix(sec, 0).UTC()
		}
		agree(t, "ListUsers", func(st userstore.Store) error {
			_, err := st.ListUsers(ctx, &userstore.ListUsersParams{ListOpts: opts, Status: userstore.UserStatus(s)})
			return err
		})
		agree(t, "ListMembers", func(st userstore.Store) error {
			_, err := st.ListMembers(ctx, &userstore.ListMembersParams{ListOpts: opts, Role: userstore.MemberRole(s)})
			return err
		})
		agree(t, "ListApplications", func(st userstore.Store) error {
			_, err := st.ListApplications(ctx, &userstore.ListApplicationsParams{ListOpts: opts, Status: userstore.ApplicationStatus(s)})
			return err
		})
		agree(t, "ListCatalogs", func(st userstore.Store) error {
			_, err := st.ListCatalogs(ctx, &userstore.ListCatalogsParams{ListOpts: opts})
			return err
		})
		agree(t, "ListAccountsByUser", func(st userstore.Store) error {
			_, err := st.ListAccountsByUser(ctx, &userstore.ListAccountsParams{ListOpts: opts, UserID: user})
			return err
		})
		agree(t, "ListAuditRecords by action", func(st userstore.Store) error {
			_, err := st.ListAuditRecords(ctx, &userstore.ListAuditParams{ListOpts: opts, Action: s})
			return err
		})
		agree(t, "ListAuditRecords by actor and target", func(st userstore.Store) error {
			_, err := st.ListAuditRecords(ctx, &userstore.ListAuditParams{ListOpts: opts,
				Actor: &userstore.Actor{Type: userstore.ActorType(s), ID: s}, TargetType: s})
			return err
		})
		agree(t, "ListAuditRecords by time", func(st userstore.Store) error {
			_, err := st.ListAuditRecords(ctx, &userstore.ListAuditParams{ListOpts: opts, Since: tm(since), Until: tm(until)})
			return err
		})
		// Outbox cursors are the log position: (transaction id, position) in pgstore, the position in
		// memstore. A cursor of one adapter is not the other's, so only pgstore's answer is checked.
		compare(t, "ReadOutbox", false, func(st userstore.Store) error {
			_, err := st.ReadOutbox(ctx, &userstore.ReadOutboxParams{ListOpts: opts})
			return err
		})
		agree(t, "GetUserByEmail", func(st userstore.Store) error { _, err := st.GetUserByEmail(ctx, s); return err })
		agree(t, "GetAccountByLogin", func(st userstore.Store) error { _, err := st.GetAccountByLogin(ctx, s); return err })
		agree(t, "GetTenantBySlug", func(st userstore.Store) error { _, err := st.GetTenantBySlug(ctx, s); return err })
		agree(t, "FindUserByIdentity", func(st userstore.Store) error { _, err := st.FindUserByIdentity(ctx, s, s); return err })
		agree(t, "GetApplicationByClientKey", func(st userstore.Store) error {
			_, err := st.GetApplicationByClientKey(ctx, s)
			return err
		})
	})
}

// FuzzMutationsAgree: a user's life with fuzzed inputs — the display name, email, request id and
// idempotency key of CreateUser, then an account's login name and credential reference, an identity's
// issuer and subject, an application's name and client key, a catalog's name and a string attribute's
// key with a fuzzed value — in a new tenant of each adapter: each step is accepted by both or refused by
// both for the same reason, and pgstore never fails with a database error (a value it accepts must be
// storable: no NUL in jsonb, no invalid UTF-8 in text).
func FuzzMutationsAgree(f *testing.F) {
	f.Add("Ann", "ann@example.com", "req-1", "key-1", "ann", "vault:kv/ann", "https://idp.example.com", "sub-1", "App", "client-1", "Catalog", "nick", "Annie")
	f.Add(" Ann ", "ANN@EXAMPLE.COM ", "", "", "Ann", "", "https://idp.example.com/", "x", "A", "c.~_-", "C", "a9_", "")
	f.Add("A\u0301nn", "a\u0301@x.io", "req\u00a0", "k\x00", "ä", "\x7f", "http://h", " s ", "\u212a", "k", "İ", "Nick", "\xff")
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", "")
	f.Add("a\x00", "a@b\x00", "r\x00", "k", "l\x00", "c\x00", "https://h/\x00", "s\x00", "n\x00", "c", "n\x00", "k", "v\x00")
	f.Add(strings.Repeat("n", 201), strings.Repeat("e", 250)+"@x.io", strings.Repeat("r", 256), strings.Repeat("k", 256),
		strings.Repeat("l", 129), strings.Repeat("c", 513), "https://"+strings.Repeat("h", 2048), strings.Repeat("s", 256),
		strings.Repeat("a", 201), strings.Repeat("c", 256), strings.Repeat("c", 201), strings.Repeat("k", 65), strings.Repeat("v", 4097))
	f.Add("Ann", "ann@example.com", "req", "key", "ann", "ref", "https://user:pw@idp.example.com", "s", "App", "k", "C", "k", "\u2028")
	stores(f)
	f.Fuzz(func(t *testing.T, name, email, requestID, idemKey, login, credential, issuer, subject, appName, clientKey, catalogName, attrKey, value string) {
		ctx := userstore.WithRequestID(bothTenants(t), requestID)
		mutation := userstore.Mutation{IdempotencyKey: idemKey}
		userID := userstore.NewID()
		// step runs one mutation on both adapters and reports whether it succeeded.
		step := func(name string, call func(st userstore.Store) error) bool {
			t.Helper()
			return compare(t, name, true, call) == "ok"
		}
		if !step("CreateUser", func(st userstore.Store) error {
			_, err := st.CreateUser(ctx, &userstore.CreateUserParams{Mutation: mutation, ID: userID, DisplayName: name, Email: email})
			return err
		}) {
			return
		}
		step("OpenAccount", func(st userstore.Store) error {
			_, err := st.OpenAccount(ctx, &userstore.OpenAccountParams{UserID: userID, LoginName: login,
				Kind: userstore.AccountPassword, CredentialRef: credential})
			return err
		})
		step("LinkIdentity", func(st userstore.Store) error {
			_, err := st.LinkIdentity(ctx, &userstore.LinkIdentityParams{UserID: userID, Issuer: issuer, Subject: subject})
			return err
		})
		step("RegisterApplication", func(st userstore.Store) error {
			_, err := st.RegisterApplication(ctx, &userstore.RegisterApplicationParams{Name: appName, ClientKey: clientKey, Kind: userstore.AppWeb})
			return err
		})
		catalogID := userstore.NewID()
		if !step("DefineCatalog", func(st userstore.Store) error {
			_, err := st.DefineCatalog(ctx, &userstore.DefineCatalogParams{ID: catalogID, Name: catalogName,
				Attributes: []userstore.Attribute{{Key: attrKey, Type: userstore.AttrString, MaxLength: 100}}})
			return err
		}) {
			return
		}
		step("SetProfileValues", func(st userstore.Store) error {
			_, err := st.SetProfileValues(ctx, &userstore.SetProfileValuesParams{UserID: userID, CatalogID: catalogID,
				Values: map[string]userstore.Value{attrKey: userstore.StringValue(value)}})
			return err
		})
		step("SuspendTenant", func(st userstore.Store) error {
			_, err := st.SuspendTenant(ctx, &userstore.TenantStatusParams{Reason: value})
			return err
		})
	})
}
