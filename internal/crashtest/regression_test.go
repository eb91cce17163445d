package crashtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/eventstore"
)

// TestStreamExistsAppendRace is the regression test of a defect the linearizability harness found
// (issue 8): eventstore.Append with StreamExists() on a stream that exists returned a
// *VersionConflictError when it lost the race for the next version to a concurrent append — although
// its condition held, and holds for ever (a log never loses a stream) — where the same append with
// Any() is retried. Four appenders that lose at most three races each must all succeed, since Append
// makes up to five attempts.
func TestStreamExistsAppendRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	db := c.newDatabase(t, ctx, "stream_exists_race")
	pool := c.storePool(t, ctx, roleApp, db, appApplication, 8)
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)

	const appenders, rounds = 4, 25
	tenant := uuid.New()
	event := func() []eventstore.EventData {
		return []eventstore.EventData{{Type: "crashtest.appended", Payload: []byte(`{}`)}}
	}
	for range rounds {
		stream := uuid.New()
		_, err := es.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: linStreamType, StreamID: stream,
			Expected: eventstore.NoStream(), Events: event()})
		require.NoError(t, err)
		start := make(chan struct{})
		errs := make([]error, appenders)
		var wg sync.WaitGroup
		for i := range appenders {
			wg.Go(func() {
				<-start
				_, errs[i] = es.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: linStreamType,
					StreamID: stream, Expected: eventstore.StreamExists(), Events: event()})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "appender %d: a StreamExists append to an existing stream must not conflict", i)
		}
		res, err := es.ReadStream(ctx, &eventstore.ReadStreamParams{TenantID: tenant, StreamID: stream})
		require.NoError(t, err)
		require.Len(t, res.Events, 1+appenders)
	}
}
