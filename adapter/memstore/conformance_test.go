package memstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/memstore"
	"github.com/netkingdom/userstore/adapter/storetest"
)

// TestConformance runs the shared conformance suite against a fresh in-memory store per case.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) userstore.Store {
		s, err := memstore.New(nil)
		require.NoError(t, err)
		return s
	})
}
