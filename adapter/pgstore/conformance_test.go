package pgstore_test

import (
	"testing"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/storetest"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// TestConformance runs the shared conformance suite against one store connected as userstore_app, with
// the audit projection running beside it (projectedStore, whose Sync waits for it). Every case works in tenants of its
// own. The only skips are the cases of ListTenants, which the app role does not perform
// (ErrUnsupported).
//
// The suite runs in a database of its own: its projector projects every tenant of its database, and a
// package-database test that reads a tenant's rows twice (TestTenantIsolationInRawSQL counts them as the
// superuser, then as the app role) must not see audit records appear in between.
func TestConformance(t *testing.T) {
	db := pgtest.NewDatabase(t, nil)
	s := newProjectedStore(t, db, nil)
	storetest.Run(t, func(t *testing.T) userstore.Store { return s })
}

// The store's audit trail lags behind its mutations (the projector writes it), and so does its outbox
// (derived from the log below the read horizon): the suite syncs before reading them.
var _ storetest.Syncer = (*projectedStore)(nil)
