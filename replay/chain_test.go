package replay_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/replay"
)

// TestVerifyChainDetectsTampering: with superuser rights, one tenant's record is altered, one deleted
// (foreign keys off, as a superuser can), two swapped, the last one deleted, and one altered with its
// hash recomputed; verify-chain names the first divergence of each — sequence, expected hash, found
// hash — and leaves the untouched tenant alone. Before the tampering the whole database verifies.
func TestVerifyChainDetectsTampering(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 6, 0)
	r := e.replayer(t, &replay.Config{BatchSize: 3})

	clean, err := r.VerifyChain(ctx, &replay.VerifyChainParams{All: true})
	require.NoError(t, err)
	require.False(t, clean.Diverged())
	require.EqualValues(t, 6, clean.Tenants)
	require.EqualValues(t, 66, clean.Records)
	require.Zero(t, clean.Unprojected)

	altered, deleted, swapped, truncated, rehashed, untouched := e.tenants[0], e.tenants[1], e.tenants[2], e.tenants[3], e.tenants[4], e.tenants[5]
	trails := map[uuid.UUID][]userstore.AuditRecord{}
	for _, tenant := range e.tenants {
		trails[tenant] = e.trail(t, ctx, tenant)
		require.Len(t, trails[tenant], 11)
	}
	asAdmin(t, ctx, e.db, false, func(tx pgx.Tx) {
		exec(t, ctx, tx, `UPDATE userstore.audit_records SET actor_id = 'mallory' WHERE tenant_id = $1 AND sequence = 5`, altered)
	})
	asAdmin(t, ctx, e.db, true, func(tx pgx.Tx) {
		exec(t, ctx, tx, `DELETE FROM userstore.audit_records WHERE tenant_id = $1 AND sequence = 4`, deleted)
		exec(t, ctx, tx, `UPDATE userstore.audit_records SET sequence = 1000 WHERE tenant_id = $1 AND sequence = 3`, swapped)
		exec(t, ctx, tx, `UPDATE userstore.audit_records SET sequence = 3 WHERE tenant_id = $1 AND sequence = 6`, swapped)
		exec(t, ctx, tx, `UPDATE userstore.audit_records SET sequence = 6 WHERE tenant_id = $1 AND sequence = 1000`, swapped)
		exec(t, ctx, tx, `DELETE FROM userstore.audit_records WHERE tenant_id = $1 AND sequence = 11`, truncated)
	})
	// A careful forger changes a record and recomputes its hash (the chain then breaks at the next
	// record's prev_hash, but the record itself is consistent).
	forged := trails[rehashed][6]
	forged.Actor.ID = "mallory"
	h, err := domain.AuditHash(forged.PrevHash, &forged)
	require.NoError(t, err)
	asAdmin(t, ctx, e.db, false, func(tx pgx.Tx) {
		exec(t, ctx, tx, `UPDATE userstore.audit_records SET actor_id = 'mallory', hash = $2 WHERE tenant_id = $1 AND sequence = 7`, rehashed, h)
	})

	type want struct {
		seq          int64
		kind         replay.DivergenceKind
		expectedHash string
		foundHash    string
		fields       []string
		consistent   bool
	}
	cases := map[uuid.UUID]want{
		altered:   {5, replay.DivergenceDiffers, trails[altered][4].Hash, trails[altered][4].Hash, []string{"actor_id"}, false},
		deleted:   {4, replay.DivergenceMissing, trails[deleted][3].Hash, trails[deleted][4].Hash, nil, true},
		swapped:   {3, replay.DivergenceDiffers, trails[swapped][2].Hash, trails[swapped][5].Hash, nil, false},
		truncated: {11, replay.DivergenceMissing, trails[truncated][10].Hash, "", nil, false},
		rehashed:  {7, replay.DivergenceDiffers, trails[rehashed][6].Hash, h, []string{"actor_id", "hash"}, true},
	}
	for tenant, w := range cases {
		rep, err := r.VerifyChain(ctx, &replay.VerifyChainParams{TenantID: tenant})
		require.NoError(t, err)
		require.True(t, rep.Diverged())
		require.Len(t, rep.Divergences, 1)
		d := rep.Divergences[0]
		require.Equal(t, tenant, d.TenantID)
		require.Equal(t, w.seq, d.Sequence)
		require.Equal(t, w.kind, d.Kind)
		require.Equal(t, w.expectedHash, d.ExpectedHash)
		require.Equal(t, w.foundHash, d.FoundHash)
		if w.fields != nil {
			require.Equal(t, w.fields, d.Fields)
		}
		require.Equal(t, w.consistent, d.FoundConsistent)
		require.EqualValues(t, w.seq-1, rep.Records, "the records before the divergence verified")

		var out bytes.Buffer
		require.NoError(t, replay.WriteChainReport(&out, rep, replay.FormatTable))
		require.Contains(t, out.String(), "at sequence ")
		require.Contains(t, out.String(), "expected hash  "+w.expectedHash)
		require.Contains(t, out.String(), "DIVERGENCE in 1 tenant(s)")
	}
	// The swap shows as the later record sitting at the earlier sequence.
	swap, err := r.VerifyChain(ctx, &replay.VerifyChainParams{TenantID: swapped})
	require.NoError(t, err)
	require.Equal(t, trails[swapped][5].EventID, swap.Divergences[0].Found.EventID)
	require.Equal(t, trails[swapped][2].EventID, swap.Divergences[0].Expected.EventID)

	ok, err := r.VerifyChain(ctx, &replay.VerifyChainParams{TenantID: untouched})
	require.NoError(t, err)
	require.False(t, ok.Diverged())
	require.EqualValues(t, 11, ok.Records)

	all, err := r.VerifyChain(ctx, &replay.VerifyChainParams{All: true})
	require.NoError(t, err)
	require.Len(t, all.Divergences, len(cases))
	for _, d := range all.Divergences {
		require.Equal(t, cases[d.TenantID].seq, d.Sequence)
	}
}

// TestVerifyChainLagSkipsAndParks: events the projection has not applied yet (behind its checkpoint, or
// parked as dead letters) are not a divergence but counted as unprojected; an event an operator skipped
// has no record, the chain goes on without it, and both the chain check and the rebuilt trail say so.
func TestVerifyChainLagSkipsAndParks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	app, err := eventstore.New(db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	now := func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
	appendTo := func(tenant uuid.UUID, data ...eventstore.EventData) {
		_, err := app.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: "tenant", StreamID: tenant,
			Expected: eventstore.Any(), Events: data})
		require.NoError(t, err)
	}
	event := func(ev domain.Event) eventstore.EventData {
		enc, err := domain.Encode(ev)
		require.NoError(t, err)
		return eventstore.EventData{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion), Payload: enc.Payload,
			Metadata: logcodec.StoreMetadata(domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorSystem, ID: "test"}})}
	}
	poison := eventstore.EventData{Type: "tenant.exploded", Payload: []byte(`{"secret": "x"}`)}
	skippedTenant, parkedTenant, laggingTenant := uuid.New(), uuid.New(), uuid.New()
	for _, tenant := range []uuid.UUID{skippedTenant, parkedTenant, laggingTenant} {
		appendTo(tenant, event(domain.TenantCreated{TenantID: tenant, Slug: "t-" + tenant.String()[:8], Name: "T", At: now()}))
	}
	appendTo(skippedTenant, poison)
	appendTo(parkedTenant, poison)
	for _, tenant := range []uuid.UUID{skippedTenant, parkedTenant} {
		appendTo(tenant, event(domain.TenantRenamed{Name: "T2", At: now()}))
	}

	pool := db.Pool(t, pgtest.Projector)
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	runner, err := projections.New(pool, es, []projections.Projection{audit.New(nil)},
		&projections.Config{RetryBackoffMin: time.Hour, RetryBackoffMax: time.Hour})
	require.NoError(t, err)
	require.NoError(t, runner.CatchUp(ctx))
	dl, err := runner.DeadLetters(ctx, &projections.DeadLettersParams{Projection: audit.Name, TenantID: skippedTenant})
	require.NoError(t, err)
	require.Len(t, dl.DeadLetters, 2)
	_, err = runner.Skip(ctx, &projections.SkipParams{Projection: audit.Name, TenantID: skippedTenant, EventID: dl.DeadLetters[0].EventID, By: "ops"})
	require.NoError(t, err)
	// Two events the projector has not seen.
	appendTo(laggingTenant, event(domain.TenantRenamed{Name: "L2", At: now()}), event(domain.TenantRenamed{Name: "L3", At: now()}))
	require.NoError(t, pgstoreSync(t, ctx, db))

	r, err := replay.New(pool, nil)
	require.NoError(t, err)
	rep, err := r.VerifyChain(ctx, &replay.VerifyChainParams{All: true})
	require.NoError(t, err)
	require.False(t, rep.Diverged(), "%+v", rep.Divergences)
	require.EqualValues(t, 3, rep.Tenants)
	require.EqualValues(t, 2+1+1, rep.Records, "skipped: created and renamed; parked: created; lagging: created")
	require.EqualValues(t, 2+2, rep.Unprojected, "parked: the poison and the rename behind it; lagging: two renames")
	require.Len(t, rep.Skipped, 1)
	require.Equal(t, dl.DeadLetters[0].EventID, rep.Skipped[0].EventID)
	require.Equal(t, "ops", rep.Skipped[0].By)

	var trail []userstore.AuditRecord
	res, err := r.Audit(ctx, &replay.AuditParams{TenantID: skippedTenant}, func(rec *userstore.AuditRecord) error {
		trail = append(trail, *rec)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, res.Skipped, 1)
	stored, err := audit.Read(ctx, pool, &audit.ReadParams{TenantID: skippedTenant})
	require.NoError(t, err)
	require.Equal(t, stored, trail)

	// The parked tenant's poison event cannot be rebuilt: the trail stops with an error naming it.
	_, err = r.Audit(ctx, &replay.AuditParams{TenantID: parkedTenant}, func(*userstore.AuditRecord) error { return nil })
	require.ErrorIs(t, err, replay.ErrUndecodable)
	require.NotContains(t, err.Error(), "secret")
}
