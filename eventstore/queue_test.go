package eventstore_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
)

// TestQueueReadStreamAndAppend: a caller reads a stream and appends to two streams in its own
// transaction, in one round trip each, with statements of its own in the same batch.
func TestQueueReadStreamAndAppend(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := setup(t)
	tenant, a, b := uuid.New(), uuid.New(), uuid.New()
	_, err := s.app.Append(ctx, appendParams(tenant, a, eventstore.NoStream(), ev("one", 1)))
	require.NoError(t, err)

	tx := beginRR(t, ctx, s.appPool)
	var (
		read    *eventstore.ReadStreamResult
		empty   *eventstore.ReadStreamResult
		own     int
		results []*eventstore.AppendResult
	)
	batch := &pgx.Batch{}
	require.NoError(t, s.app.QueueReadStream(batch, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: a},
		func(r *eventstore.ReadStreamResult) error { read = r; return nil }))
	batch.Queue(`SELECT 41 + 1`).QueryRow(func(row pgx.Row) error { return row.Scan(&own) })
	require.NoError(t, s.app.QueueReadStream(batch, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: b},
		func(r *eventstore.ReadStreamResult) error { empty = r; return nil }))
	require.NoError(t, tx.SendBatch(ctx, batch).Close())
	require.Len(t, read.Events, 1)
	require.Equal(t, "one", read.Events[0].EventType)
	require.Empty(t, empty.Events)
	require.Equal(t, 42, own)

	batch = &pgx.Batch{}
	keep := func(r *eventstore.AppendResult) error { results = append(results, r); return nil }
	require.NoError(t, s.app.QueueAppend(batch, appendParams(tenant, a, eventstore.Exact(1), ev("two", 2)), keep))
	require.NoError(t, s.app.QueueAppend(batch, appendParams(tenant, b, eventstore.NoStream(), ev("new", 1), ev("new", 2)), keep))
	require.NoError(t, tx.SendBatch(ctx, batch).Close())
	require.NoError(t, tx.Commit(ctx))
	require.Len(t, results, 2)
	require.Equal(t, int64(2), results[0].NewVersion)
	require.Equal(t, int64(2), results[1].NewVersion)
	require.Equal(t, results[0].TransactionID, results[1].TransactionID, "one transaction")

	got, err := s.app.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: b})
	require.NoError(t, err)
	require.Len(t, got.Events, 2)
}

// TestQueueAppendErrors: invalid input queues nothing; a failed expected-version check and a lost race
// fail the batch with a *VersionConflictError, as AppendTx does.
func TestQueueAppendErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := setup(t)
	tenant, stream := uuid.New(), uuid.New()

	batch := &pgx.Batch{}
	err := s.app.QueueAppend(batch, appendParams(tenant, stream, eventstore.NoStream()), nil)
	require.ErrorIs(t, err, eventstore.ErrValidation)
	require.Zero(t, batch.Len(), "nothing is queued for invalid input")
	require.ErrorIs(t, s.app.QueueReadStream(batch, &eventstore.ReadStreamParams{TenantID: tenant}, func(*eventstore.ReadStreamResult) error { return nil }), eventstore.ErrValidation)
	require.Zero(t, batch.Len())

	_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.NoStream(), ev("one", 1)))
	require.NoError(t, err)

	// The condition fails in the caller's snapshot.
	tx := beginRR(t, ctx, s.appPool)
	batch = &pgx.Batch{}
	require.NoError(t, s.app.QueueAppend(batch, appendParams(tenant, stream, eventstore.Exact(0), ev("x", 1)), nil))
	err = tx.SendBatch(ctx, batch).Close()
	var conflict *eventstore.VersionConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, int64(1), conflict.Actual)
	require.NoError(t, tx.Rollback(ctx))

	// A race lost to a transaction that committed after the caller's snapshot.
	tx = beginRR(t, ctx, s.appPool)
	var n int
	require.NoError(t, tx.QueryRow(ctx, `SELECT 1`).Scan(&n)) // takes the snapshot
	_, err = s.app.Append(ctx, appendParams(tenant, stream, eventstore.Exact(1), ev("two", 2)))
	require.NoError(t, err)
	batch = &pgx.Batch{}
	require.NoError(t, s.app.QueueAppend(batch, appendParams(tenant, stream, eventstore.Exact(1), ev("late", 2)), nil))
	err = tx.SendBatch(ctx, batch).Close()
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, eventstore.ActualVersionUnknown, conflict.Actual)
}
