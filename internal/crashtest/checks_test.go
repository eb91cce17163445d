package crashtest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
)

// checksDetectDefects proves that the crash-durability checks would fail if the store broke its
// promises: after a clean run they find nothing; then rows are tampered with as the superuser (a
// second commit of an op, a gap, a missing idempotency record and claim) and the writers' log is
// falsified (an acknowledgement the log does not hold, an error that claims no commit for an op that
// committed), and each is reported.
func checksDetectDefects(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := c.newDatabase(t, ctx, "crash_checks")
	pool := c.storePool(t, ctx, roleApp, db, appApplication, 4)
	store, err := pgstore.New(ctx, pool, nil)
	require.NoError(t, err)
	admin := c.adminPool(t, ctx, db)

	tenant := userstore.NewID()
	tctx := userstore.WithActor(userstore.WithTenant(ctx, tenant), userstore.Actor{Type: userstore.ActorService, ID: "crashtest"})
	_, err = store.CreateTenant(tctx, &userstore.CreateTenantParams{Slug: "checks-" + tenant.String()[24:], Name: "Checks"})
	require.NoError(t, err)
	w := &writer{id: 1, tenant: tenant, store: store, users: &userRegistry{users: map[uuid.UUID][]uuid.UUID{}},
		rng: newRand(1, 1), start: time.Now(), recovered: &atomic.Int64{}}
	for range 30 {
		o := w.next()
		w.ops = append(w.ops, o)
		w.resolve(ctx, o)
		require.True(t, o.Acked, "op %s: %v", o.Key, o.Attempts)
	}
	tenants := []uuid.UUID{tenant}
	var st stats
	require.Empty(t, consistency(t, ctx, admin, tenants))
	require.Empty(t, checkOps(t, ctx, admin, w.ops, &st))

	find := func(kind opKind, skip int) *op {
		for _, o := range w.ops {
			if o.Kind == kind {
				if skip == 0 {
					return o
				}
				skip--
			}
		}
		t.Fatalf("the writer ran no %s op", kind)
		return nil
	}
	// copyEvent appends a copy of an op's event (same metadata: key and request id) to its stream at
	// version, in a transaction of its own.
	copyEvent := func(o *op, version int64) {
		_, err := admin.Exec(ctx, `
			INSERT INTO userstore.events (tenant_id, stream_type, stream_id, stream_version, partition,
			                              event_id, event_type, event_version, payload, metadata)
			SELECT tenant_id, stream_type, stream_id, $3, partition, gen_random_uuid(), event_type, event_version, payload, metadata
			  FROM userstore.events
			 WHERE metadata->>'idempotency_key' = $1 AND stream_id = $2
			 ORDER BY stream_version DESC LIMIT 1`, o.Key, o.Result.ID, version)
		require.NoError(t, err)
	}
	version := func(stream uuid.UUID) int64 {
		var v int64
		require.NoError(t, admin.QueryRow(ctx, `SELECT max(stream_version) FROM userstore.events WHERE stream_id = $1`, stream).Scan(&v))
		return v
	}
	twice := find(opCreateUser, 0)
	rowVersion := version(twice.Result.ID)
	copyEvent(twice, rowVersion+1) // applied twice; and the read row lags the stream
	gap := find(opOpenAccount, 0)
	copyEvent(gap, version(gap.Result.ID)+2) // a gap
	noKey := find(opUpdateProfile, 0)
	_, err = admin.Exec(ctx, `DELETE FROM userstore.idempotency_keys WHERE key = $1`, noKey.Key)
	require.NoError(t, err)
	noClaim := find(opCreateUser, 1)
	_, err = admin.Exec(ctx, `DELETE FROM userstore.claims WHERE owner_id = $1`, noClaim.User)
	require.NoError(t, err)

	problems := strings.Join(consistency(t, ctx, admin, tenants), "\n")
	for _, want := range []string{
		"DUPLICATE: op " + twice.Key + " applied twice",
		fmt.Sprintf("HALF: user %s: stream at version %d, read row at version %d", twice.User, rowVersion+1, rowVersion),
		"GAP: stream " + gap.Account.String(),
		"HALF: op " + noKey.Key + " has events but no idempotency record",
		"HALF: user " + noClaim.User.String() + " holds no email claim",
	} {
		require.Contains(t, problems, want)
	}

	// The writers' log, falsified.
	lost := *find(opChangeEmail, 0)
	lost.Result.Version = 99
	phantom := *find(opOpenAccount, 1)
	phantom.Attempts = []attempt{{RequestID: phantom.Attempts[0].RequestID, Outcome: outFailed, Err: "userstore: unavailable"},
		{RequestID: phantom.Key + "-a2", Outcome: outAck}}
	never := &op{Key: "w1-op999", Kind: opCreateUser, Acked: true, Result: result{ID: uuid.New(), Version: 1}}
	st = stats{}
	problems = strings.Join(checkOps(t, ctx, admin, []*op{twice, &lost, &phantom, never}, &st), "\n")
	for _, want := range []string{
		"DUPLICATE: op " + twice.Key,
		"LOST: op " + lost.Key,
		"PHANTOM: op " + phantom.Key,
		"LOST: op " + never.Key,
	} {
		require.Contains(t, problems, want)
	}
	require.Equal(t, 1, st.Duplicates)
	require.Equal(t, 2, st.Losses)
	require.Equal(t, 1, st.Phantoms)
}
