package faultsuite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// connectConfig returns pgstore settings that reach db directly as role, the role's password in a file
// of the test's.
func connectConfig(t testing.TB, db *pgtest.Database, role pgtest.Role) *pgstore.ConnectConfig {
	t.Helper()
	cc := db.PoolConfig(t, role).ConnConfig
	return &pgstore.ConnectConfig{
		Host:           cc.Host,
		Port:           cc.Port,
		Database:       cc.Database,
		User:           cc.User,
		PasswordFile:   writeSecret(t, cc.Password),
		ConnectTimeout: 10 * time.Second,
	}
}

// writeSecret writes a password file (mode 0600) in a directory of the test's and returns its path.
func writeSecret(t testing.TB, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(path, []byte(password+"\n"), 0o600))
	return path
}

// newPool opens a pool with pgstore.NewPool and closes it when the test ends.
func newPool(t testing.TB, cfg *pgstore.ConnectConfig) *pgxpool.Pool {
	t.Helper()
	pool, err := pgstore.NewPool(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// actorCtx returns ctx with tenant and a service actor.
func actorCtx(ctx context.Context, tenant uuid.UUID) context.Context {
	return userstore.WithActor(userstore.WithTenant(ctx, tenant), userstore.Actor{Type: userstore.ActorService, ID: "faultsuite"})
}

// newTenant creates a tenant with a new id through s and returns a context scoped to it.
func newTenant(t testing.TB, ctx context.Context, s userstore.Store) (context.Context, uuid.UUID) {
	t.Helper()
	id := userstore.NewID()
	tctx := actorCtx(ctx, id)
	_, err := s.CreateTenant(tctx, &userstore.CreateTenantParams{Slug: "t-" + id.String()[24:], Name: "Tenant"})
	require.NoError(t, err)
	return tctx, id
}

// errorClass names the kind of a store error, for comparing two adapters: "ok", "invalid <field>",
// "duplicate <kind>", "not found", "precondition <reason>", "conflict", "idempotency conflict",
// "tenant required", or "OTHER: <text>" for anything a caller could not branch on.
func errorClass(err error) string {
	var (
		ve  *userstore.ValidationError
		de  *userstore.DuplicateError
		pe  *userstore.PreconditionError
		vce *userstore.VersionConflictError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ve):
		return "invalid " + ve.Field
	case errors.As(err, &de):
		return "duplicate " + de.Kind
	case errors.As(err, &pe):
		return "precondition " + pe.Reason
	case errors.As(err, &vce), errors.Is(err, userstore.ErrConflict):
		return "conflict"
	case errors.Is(err, userstore.ErrNotFound):
		return "not found"
	case errors.Is(err, userstore.ErrIdempotencyConflict):
		return "idempotency conflict"
	case errors.Is(err, userstore.ErrTenantRequired):
		return "tenant required"
	}
	return fmt.Sprintf("OTHER: %v", err)
}
