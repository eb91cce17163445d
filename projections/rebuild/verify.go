package rebuild

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// table is a table the rebuild compares and repairs: its name (the same in schema userstore and in the
// shadow schema), its key and the columns that are a function of the log.
type table struct {
	name string
	key  []string
	cols []string
}

// checksums compares live and shadow tables: for each table, the row count and checksum of the live
// table and of its shadow copy, over the table's columns, all in one round trip (and, in a
// transaction, in one statement snapshot each).
func checksums(ctx context.Context, q querier, schema string, tables []table) ([]TableResult, error) {
	out := make([]TableResult, len(tables))
	b := &pgx.Batch{}
	for i, t := range tables {
		out[i].Table = t.name
		res := &out[i]
		b.Queue(checksumSQL(ident(liveSchema, t.name), t.cols)).QueryRow(func(row pgx.Row) error {
			return row.Scan(&res.LiveRows, &res.LiveChecksum)
		})
		b.Queue(checksumSQL(ident(schema, t.name), t.cols)).QueryRow(func(row pgx.Row) error {
			return row.Scan(&res.ShadowRows, &res.ShadowChecksum)
		})
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, translate("verify", err)
	}
	return out, nil
}

// differing returns the results that do not match.
func differing(results []TableResult) []TableResult {
	var out []TableResult
	for _, t := range results {
		if !t.Match() {
			out = append(out, t)
		}
	}
	return out
}
