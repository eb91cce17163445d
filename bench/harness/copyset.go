package harness

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copySet is the rows of some of the store's tables, captured once as COPY text, and plain copies of
// those tables (CREATE TABLE … (LIKE userstore.<t> INCLUDING ALL): the same columns, defaults,
// constraints and indexes; no foreign key, trigger, row-level security or policy) in a schema of the
// baseline's. Its job COPYs the rows into the copies: the cheapest way to write the rows a projection
// produces — the baseline of measurement 3.
type copySet struct {
	db     *DB
	schema string
	tables []*copyTable
	rows   int64
}

type copyTable struct {
	name    string
	columns string // the COPY column list (generated columns left out)
	data    []byte
	rows    int64
}

// captureCopySet reads the rows of tables (in schema userstore, as the projector, which sees every
// tenant) and creates their plain copies in schema (as the owner). Tables without rows are left out.
func captureCopySet(ctx context.Context, db *DB, schema string, tables []string) (*copySet, error) {
	cs := &copySet{db: db, schema: schema}
	if _, err := db.Owner.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	for _, t := range tables {
		var cols []string
		rows, err := db.Owner.Query(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = 'userstore' AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position`, t)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, err
			}
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(cols) == 0 {
			return nil, fmt.Errorf("table userstore.%s not found", t)
		}
		ct := &copyTable{name: t, columns: strings.Join(cols, ", ")}
		var buf bytes.Buffer
		conn, err := db.Projector.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		tag, err := conn.Conn().PgConn().CopyTo(ctx, &buf,
			fmt.Sprintf("COPY (SELECT %s FROM userstore.%s) TO STDOUT", ct.columns, pgx.Identifier{t}.Sanitize()))
		conn.Release()
		if err != nil {
			return nil, fmt.Errorf("capture userstore.%s: %w", t, err)
		}
		if ct.rows = tag.RowsAffected(); ct.rows == 0 {
			continue
		}
		ct.data = buf.Bytes()
		if _, err := db.Owner.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE userstore.%s INCLUDING ALL)",
			cs.qualified(t), pgx.Identifier{t}.Sanitize())); err != nil {
			return nil, fmt.Errorf("create %s: %w", cs.qualified(t), err)
		}
		cs.tables = append(cs.tables, ct)
		cs.rows += ct.rows
	}
	return cs, nil
}

func (cs *copySet) qualified(t string) string { return pgx.Identifier{cs.schema, t}.Sanitize() }

// truncate empties the copies (the baseline's Prepare).
func (cs *copySet) truncate(ctx context.Context) error {
	names := make([]string, len(cs.tables))
	for i, t := range cs.tables {
		names[i] = cs.qualified(t.name)
	}
	if len(names) == 0 {
		return nil
	}
	_, err := cs.db.Owner.Exec(ctx, "TRUNCATE "+strings.Join(names, ", "))
	return err
}

// copy COPYs the captured rows into the copies, table after table on one connection (each COPY
// commits on its own), and returns the rows written.
func (cs *copySet) copy(ctx context.Context) (int64, error) {
	conn, err := cs.db.Owner.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var n int64
	for _, t := range cs.tables {
		tag, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(t.data),
			fmt.Sprintf("COPY %s (%s) FROM STDIN", cs.qualified(t.name), t.columns))
		if err != nil {
			return n, fmt.Errorf("copy into %s: %w", cs.qualified(t.name), err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
