package jetstream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// BenchmarkRelay5k relays a log of 5,005 events (workload.History of 455 tenants, 11 events each) with
// a Runner's CatchUp in its default configuration (4 workers, batches of 500) and reports events/s:
// "jetstream" into a new stream each iteration, "watermill-sql" (projections/outbox, the default sink)
// into its topic table, for comparison. Only the CatchUp is timed.
//
//	go test -run '^$' -bench Relay5k -benchtime 3x ./projections/outbox/jetstream/
func BenchmarkRelay5k(b *testing.B) {
	ctx := testCtx(b)
	db := pgtest.NewDatabase(b, nil)
	history(b, ctx, db, 455)
	n := len(logEvents(b, ctx, db))
	url := natsURL(b)
	admin := db.Pool(b, pgtest.Admin)

	bench := func(b *testing.B, name string, setup func(b *testing.B) projections.Projection) {
		var elapsed time.Duration
		for b.Loop() {
			b.StopTimer()
			_, err := admin.Exec(ctx, `DELETE FROM userstore.projection_checkpoints WHERE projection = $1`, name)
			require.NoError(b, err)
			r := runner(b, db, nil, setup(b))
			b.StartTimer()
			start := time.Now()
			require.NoError(b, r.CatchUp(ctx))
			elapsed += time.Since(start)
			b.StopTimer()
			all, _ := processed(b, ctx, db, name, 0)
			require.Equal(b, int64(n), all)
			b.StartTimer()
		}
		b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(n), "events/op")
	}
	b.Run("jetstream", func(b *testing.B) {
		bench(b, jetstream.Name, func(b *testing.B) projections.Projection {
			return connect(b, ctx, streamConfig(b, url))
		})
	})
	b.Run("watermill-sql", func(b *testing.B) {
		bench(b, outbox.Name, func(b *testing.B) projections.Projection {
			_, err := admin.Exec(ctx, `TRUNCATE `+outbox.TableName(outbox.DefaultTopic))
			require.NoError(b, err)
			p, err := outbox.New(nil)
			require.NoError(b, err)
			return p
		})
	})
}
