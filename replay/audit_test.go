package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/replay"
)

// TestAuditEqualsAuditRecords: the audit trail rebuilt from the events alone equals, record for record,
// what the audit projection wrote into audit_records, for several tenants with varied histories
// (cascades, memberships whose target is the user, every entity type), read in batches smaller than a
// tenant's trail; and every filter keeps exactly the matching records with their place in the chain.
func TestAuditEqualsAuditRecords(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 3, 2)
	var progress []replay.Progress
	r := e.replayer(t, &replay.Config{BatchSize: 4, ProgressFunc: func(p replay.Progress) { progress = append(progress, p) }})
	for _, tenant := range e.tenants {
		want := e.trail(t, ctx, tenant)
		require.NotEmpty(t, want)
		var got []userstore.AuditRecord
		progress = nil
		res, err := r.Audit(ctx, &replay.AuditParams{TenantID: tenant}, func(rec *userstore.AuditRecord) error {
			got = append(got, *rec)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.EqualValues(t, len(want), res.Events)
		require.EqualValues(t, len(want), res.Records)
		require.Empty(t, res.Skipped)
		require.NotEmpty(t, progress)
		last := progress[len(progress)-1]
		require.EqualValues(t, len(want), last.Done)
		require.EqualValues(t, len(want), last.Total)

		// Filters select after chaining: each kept record is the table's record of the same sequence.
		for name, f := range map[string]replay.AuditFilter{
			"actor":  {ActorType: want[0].Actor.Type, ActorID: want[0].Actor.ID},
			"action": {Action: "user.created"},
			"target": {TargetType: want[1].TargetType, TargetID: want[1].TargetID},
			"time":   {Since: want[2].OccurredAt, Until: want[len(want)-1].OccurredAt},
		} {
			var filtered []userstore.AuditRecord
			_, err := r.Audit(ctx, &replay.AuditParams{TenantID: tenant, Filter: f}, func(rec *userstore.AuditRecord) error {
				filtered = append(filtered, *rec)
				return nil
			})
			require.NoError(t, err, name)
			var expect []userstore.AuditRecord
			for i := range want {
				if f.Matches(&want[i]) {
					expect = append(expect, want[i])
				}
			}
			require.NotEmpty(t, expect, name)
			require.Equal(t, expect, filtered, name)
		}
	}
}

// TestAuditWriters: the three output formats carry every field the issue asks for (position, time,
// actor, action, target, request id, chain hash).
func TestAuditWriters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 1, 0)
	recs := e.trail(t, ctx, e.tenants[0])
	for _, f := range []replay.Format{replay.FormatTable, replay.FormatJSONL, replay.FormatCSV} {
		var buf bytes.Buffer
		w, err := replay.NewAuditWriter(&buf, f)
		require.NoError(t, err)
		for i := range recs {
			require.NoError(t, w.Write(&recs[i]))
		}
		require.NoError(t, w.Flush())
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		switch f {
		case replay.FormatJSONL:
			require.Len(t, lines, len(recs))
			var first map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
			require.Equal(t, recs[0].Hash, first["hash"])
			require.EqualValues(t, recs[0].Position, first["position"])
			require.Equal(t, "req-0", first["request_id"])
		default:
			require.Len(t, lines, len(recs)+1, "a header and a line per record")
			require.Contains(t, lines[1], recs[0].Hash[:16])
			require.Contains(t, lines[1], "svc-0")
			require.Contains(t, lines[1], "tenant.created")
			require.Contains(t, lines[1], "req-0")
		}
	}
	_, err := replay.NewAuditWriter(&bytes.Buffer{}, "xml")
	require.ErrorIs(t, err, replay.ErrValidation)
}

// TestAuditStopsOnCallbackErrorAndCancellation: an error of the callback ends the replay and comes back
// as it is; a cancelled context ends it with the context's error, and the connection goes back to the
// pool usable.
func TestAuditStopsOnCallbackErrorAndCancellation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t, 1, 0)
	r := e.replayer(t, &replay.Config{BatchSize: 2})
	n := 0
	_, err := r.Audit(ctx, &replay.AuditParams{TenantID: e.tenants[0]}, func(*userstore.AuditRecord) error {
		n++
		return errStop
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, 1, n)

	cctx, cancel := context.WithCancel(ctx)
	n = 0
	_, err = r.Audit(cctx, &replay.AuditParams{TenantID: e.tenants[0]}, func(*userstore.AuditRecord) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, n, 11, "the replay stopped within the batch after the cancellation")

	_, err = r.Audit(ctx, &replay.AuditParams{TenantID: e.tenants[0]}, func(*userstore.AuditRecord) error { return nil })
	require.NoError(t, err, "the pool still works")
}

// TestValidation: invalid input is an ErrValidation before any SQL.
func TestValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	r, err := replay.New(pgtest.ProjectorPool(t), nil)
	require.NoError(t, err)
	noop := func(*userstore.AuditRecord) error { return nil }
	_, err = r.Audit(ctx, &replay.AuditParams{}, noop)
	require.ErrorIs(t, err, replay.ErrValidation)
	_, err = r.VerifyChain(ctx, &replay.VerifyChainParams{})
	require.ErrorIs(t, err, replay.ErrValidation)
	_, err = r.State(ctx, &replay.StateParams{})
	require.ErrorIs(t, err, replay.ErrValidation)
	_, err = replay.New(pgtest.ProjectorPool(t), &replay.Config{BatchSize: replay.BatchSizeMax + 1})
	require.ErrorIs(t, err, replay.ErrValidation)
	_, err = replay.New(nil, nil)
	require.Error(t, err)
	var ve *replay.ValidationError
	_, err = replay.ParseEntity(userstore.NewID(), "user:not-a-uuid")
	require.True(t, errors.As(err, &ve))
	require.NotContains(t, err.Error(), "not-a-uuid")
}
