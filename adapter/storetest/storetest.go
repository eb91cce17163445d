// Package storetest is the conformance suite of the userstore protocol: one set of cases that every
// implementation of userstore.Store must pass (adapter/memstore, adapter/pgstore, …), in the manner of
// river's riverdrivertest and watermill's pubsub/tests.
//
// An implementation runs it from one of its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) userstore.Store {
//			s, err := memstore.New(nil)
//			require.NoError(t, err)
//			return s
//		})
//	}
//
// The cases are the executable form of the protocol's documentation (the doc comments of package
// userstore and docs/store-semantics.md). Each case runs in parallel with the others and creates its own
// tenants with random slugs, so the factory may return a fresh store per case or one shared store; no
// case assumes an empty store. The suite relies on read-your-writes: once a mutation returns, every query
// of the same store sees its effect — except the audit trail and the outbox, which a durable store may
// derive asynchronously from its log. A store whose audit trail or outbox lags implements Syncer; the
// suite calls Sync before every read of them.
package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// Factory returns the store a case runs against. It may return a new store per call or the same shared
// store every time; it registers its own cleanup with t.Cleanup.
type Factory func(t *testing.T) userstore.Store

// Syncer is implemented by a store whose audit records and outbox events appear after a lag (derived
// asynchronously from its log). After Sync returns, the audit records and outbox events of every mutation
// that returned before Sync was called are readable. A store without lag need not implement it.
type Syncer interface {
	Sync(ctx context.Context) error
}

// syncTrail waits, if s lags, until the effects of every mutation that returned so far are readable in the
// audit trail and the outbox.
func syncTrail(t *testing.T, ctx context.Context, s userstore.Store) {
	t.Helper()
	if sy, ok := s.(Syncer); ok {
		require.NoError(t, sy.Sync(ctx), "sync the store's audit trail and outbox")
	}
}

// testCase is one conformance case: a name within its group and the body, which receives the store.
type testCase struct {
	name string
	fn   func(t *testing.T, s userstore.Store)
}

// group is one area of the protocol.
type group struct {
	name  string
	cases []testCase
}

// groups lists every area of the suite, in the order they are reported.
func groups() []group {
	return []group{
		{"Health", healthCases()},
		{"Context", contextCases()},
		{"Tenants", tenantCases()},
		{"Users", userCases()},
		{"Accounts", accountCases()},
		{"Identities", identityCases()},
		{"Applications", applicationCases()},
		{"Bindings", bindingCases()},
		{"Catalogs", catalogCases()},
		{"Profiles", profileCases()},
		{"Members", memberCases()},
		{"Idempotency", idempotencyCases()},
		{"Versions", versionCases()},
		{"Boundary", boundaryCases()},
		{"Audit", auditCases()},
		{"Outbox", outboxCases()},
		{"Paging", pagingCases()},
		{"Validation", validationCases()},
	}
}

// Run runs the whole conformance suite against the stores factory returns. Every case is a parallel
// subtest named "<Area>/<Case>", e.g. "Users/EmailUniquePerTenantAfterNormalization".
func Run(t *testing.T, factory Factory) {
	t.Helper()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					s := factory(t)
					if s == nil {
						t.Fatal("storetest: factory returned a nil store")
					}
					c.fn(t, s)
				})
			}
		})
	}
}

// CaseNames returns the names of all cases ("<Area>/<Case>"), for reports and for implementations that
// want to skip a case explicitly.
func CaseNames() []string {
	var names []string
	for _, g := range groups() {
		for _, c := range g.cases {
			names = append(names, g.name+"/"+c.name)
		}
	}
	return names
}
