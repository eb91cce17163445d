package pgstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

var (
	sharedMu    sync.Mutex
	sharedStore *pgstore.Store
)

// shared returns the package's store on the package database, connected as userstore_app.
func shared(t *testing.T) *pgstore.Store {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedStore == nil {
		s, err := pgstore.New(t.Context(), pgtest.AppPool(t), nil)
		require.NoError(t, err)
		sharedStore = s
	}
	return sharedStore
}

// newStore returns a store on pool with cfg.
func newStore(t *testing.T, pool *pgxpool.Pool, cfg *pgstore.Config) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(t.Context(), pool, cfg)
	require.NoError(t, err)
	return s
}

// tenantCtx creates a tenant on s and returns a context with the tenant and an actor.
func tenantCtx(t *testing.T, s userstore.Store) (context.Context, *userstore.Tenant) {
	t.Helper()
	id := userstore.NewID()
	ctx := userstore.WithActor(userstore.WithTenant(t.Context(), id), userstore.Actor{Type: userstore.ActorService, ID: "pgstore-test"})
	tn, err := s.CreateTenant(ctx, &userstore.CreateTenantParams{Slug: "t-" + id.String()[24:], Name: "Tenant"})
	require.NoError(t, err)
	return ctx, tn
}

// bounded returns a context that ends after d or with the test.
func bounded(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
