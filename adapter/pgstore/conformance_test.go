package pgstore_test

import (
	"testing"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/adapter/storetest"
)

// TestConformance runs the shared conformance suite against one store on the package database,
// connected as userstore_app. Every case works in tenants of its own. The only skips are the cases of
// ListTenants, which the app role does not perform (ErrUnsupported).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) userstore.Store { return shared(t) })
}

// The store's audit trail and outbox lag behind its mutations (they derive from the log below the read
// horizon): the suite syncs before reading them.
var _ storetest.Syncer = (*pgstore.Store)(nil)
