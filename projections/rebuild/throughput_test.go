package rebuild_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// TestThroughput measures the rebuilds on a log of 20,020 events: 20 tenants of 50 users with 20 events
// each, appended straight to the log (fast), so that the read tables start empty. The first run
// repairs them (Force: 20,020 rows inserted), the second verifies them, the third rebuilds the audit
// table (the live one is empty: all records are appended by the swap). Nothing is asserted about time:
// the numbers are logged (docs/adr/0009). Skipped with -short.
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement; skipped with -short")
	}
	t.Parallel()
	ctx := testCtx(t)
	e := setup(t)
	const (
		tenants       = 20
		users         = 50
		eventsPerUser = 20
	)
	st, err := eventstore.New(e.db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	meta := logcodec.StoreMetadata(domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorService, ID: "bench"}, Command: "Bench"})
	appendEvents := func(tenant uuid.UUID, stream domain.StreamType, id uuid.UUID, evs []domain.Event) error {
		data := make([]eventstore.EventData, len(evs))
		for i, ev := range evs {
			enc, err := domain.Encode(ev)
			if err != nil {
				return err
			}
			data[i] = eventstore.EventData{Type: enc.Type, SchemaVersion: int16(enc.SchemaVersion), Payload: enc.Payload, Metadata: meta}
		}
		_, err := st.Append(ctx, &eventstore.AppendParams{TenantID: tenant, StreamType: string(stream), StreamID: id,
			Expected: eventstore.NoStream(), Events: data})
		return err
	}
	start := time.Now()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	errs := make(chan error, tenants)
	for i := range tenants {
		wg.Go(func() {
			tenant := userstore.NewID()
			err := appendEvents(tenant, domain.StreamTenant, tenant,
				[]domain.Event{domain.TenantCreated{TenantID: tenant, Slug: fmt.Sprintf("tp-%d-%s", i, tenant.String()[24:]), Name: "T", At: now}})
			for j := 0; err == nil && j < users; j++ {
				id := userstore.NewID()
				evs := []domain.Event{domain.UserCreated{UserID: id, TenantID: tenant, DisplayName: "U", Email: fmt.Sprintf("u%d@example.com", j), At: now}}
				for k := 1; k < eventsPerUser; k++ {
					evs = append(evs, domain.UserProfileUpdated{DisplayName: fmt.Sprintf("U%d", k), At: now})
				}
				err = appendEvents(tenant, domain.StreamUser, id, evs)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	const events = tenants * (1 + users*eventsPerUser)
	t.Logf("appended %d events in %s", events, time.Since(start).Round(time.Millisecond))

	for i, run := range []struct {
		target string
		force  bool
	}{{rebuild.TargetReadModel, true}, {rebuild.TargetReadModel, false}, {rebuild.TargetAudit, false}} {
		res, err := rebuild.Run(ctx, e.params(t, run.target), &rebuild.Opts{Force: run.force})
		require.NoError(t, err)
		require.Equal(t, int64(events), res.Events())
		require.Equal(t, run.force, res.Repaired)
		var inserted int64
		for _, tr := range res.Tables {
			inserted += tr.Inserted
		}
		t.Logf("run %d, %s (force %t): %d events in %s, %.0f events/s (copy %s, %.0f events/s; catch-up %s; swap %s; locks held %s; %d rows inserted)",
			i+1, run.target, run.force, res.Events(), res.Duration.Round(time.Millisecond), float64(res.Events())/res.Duration.Seconds(),
			res.CopyDuration.Round(time.Millisecond), float64(res.CopyEvents)/res.CopyDuration.Seconds(),
			res.CatchUpDuration.Round(time.Millisecond), res.SwapDuration.Round(time.Millisecond),
			res.LockDuration.Round(time.Millisecond), inserted)
	}
}
