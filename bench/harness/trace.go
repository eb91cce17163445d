package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// roundTrips counts the round trips the app pool makes: each Exec/Query, each pipelined batch and
// each COPY counts once, BEGIN and COMMIT included (pgx sends them as Exec). The counters are
// shared by both sides of a pair, which run one after the other; the cost is one atomic add per
// round trip on both sides.
type roundTrips struct {
	trips      atomic.Int64
	statements atomic.Int64
	// printSQL (BENCH_TRACE_SQL=1, for diagnosis only) prints each statement's first line to stderr.
	printSQL bool
}

func (r *roundTrips) print(kind, sql string) {
	if !r.printSQL {
		return
	}
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 110 {
		sql = sql[:110]
	}
	fmt.Fprintf(os.Stderr, "sql %s: %s\n", kind, sql)
}

var _ interface {
	pgx.QueryTracer
	pgx.BatchTracer
	pgx.CopyFromTracer
} = (*roundTrips)(nil)

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.print("query", d.SQL)
	r.trips.Add(1)
	r.statements.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	r.print("batch", "")
	r.trips.Add(1)
	r.statements.Add(int64(d.Batch.Len()))
	return ctx
}
func (r *roundTrips) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.print("  in batch", d.SQL)
}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *roundTrips) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	r.trips.Add(1)
	r.statements.Add(1)
	return ctx
}
func (r *roundTrips) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

func (r *roundTrips) snapshot() (trips, statements int64) { return r.trips.Load(), r.statements.Load() }
