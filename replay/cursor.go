package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/eventstore"
)

// cursor is a server-side cursor of the operation's transaction (DECLARE … NO SCROLL CURSOR), read a
// batch at a time with FETCH. One query streams a whole range — one index scan in the query's order,
// however large the range — while the client holds one batch, and other statements (and other cursors)
// can run in the same transaction between two fetches. A cursor's plan is chosen for a fast start
// (cursor_tuple_fraction): an ordered index scan rather than a sort of the whole range. Keyset pages
// with LIMIT would re-plan each page and, with a selective tenant, let the planner read the tenant's
// whole range and sort it for every page. Cursors are transaction-local, read-only and allowed on a hot
// standby.
type cursor struct {
	tx    pgx.Tx
	op    string
	fetch string
	close string
	eof   bool
}

var cursorSeq atomic.Uint64

// openCursor declares a cursor for query in tx.
func openCursor(ctx context.Context, tx pgx.Tx, op string, batch int, query string, args ...any) (*cursor, error) {
	name := pgx.Identifier{"replay_" + strconv.FormatUint(cursorSeq.Add(1), 10)}.Sanitize()
	if _, err := tx.Exec(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+query, args...); err != nil {
		return nil, translate(op, err)
	}
	return &cursor{tx: tx, op: op, fetch: "FETCH " + strconv.Itoa(batch) + " FROM " + name, close: "CLOSE " + name}, nil
}

// next fetches the next batch and calls scan for each row; it returns the number of rows, 0 after the
// last one.
func (c *cursor) next(ctx context.Context, scan func(pgx.Rows) error) (int, error) {
	if c.eof {
		return 0, nil
	}
	rows, err := c.tx.Query(ctx, c.fetch)
	if err != nil {
		return 0, translate(c.op, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := scan(rows); err != nil {
			return n, translate(c.op, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, translate(c.op, err)
	}
	if n == 0 {
		c.eof = true
	}
	return n, nil
}

// closeCursor closes the cursor (the end of the transaction would, too; closing early frees it).
func (c *cursor) closeCursor(ctx context.Context) error {
	_, err := c.tx.Exec(ctx, c.close)
	return translate(c.op, err)
}

// eventCursor reads stored events from a cursor of eventColumns, a batch at a time.
type eventCursor struct {
	c    *cursor
	prog *progress
	buf  []eventstore.RecordedEvent
	i    int
}

func openEventCursor(ctx context.Context, tx pgx.Tx, op string, batch int, prog *progress, query string, args ...any) (*eventCursor, error) {
	c, err := openCursor(ctx, tx, op, batch, query, args...)
	if err != nil {
		return nil, err
	}
	return &eventCursor{c: c, prog: prog, buf: make([]eventstore.RecordedEvent, 0, batch)}, nil
}

// next returns the next event, or nil after the last one. The event is valid until the next batch is
// fetched.
func (ec *eventCursor) next(ctx context.Context) (*eventstore.RecordedEvent, error) {
	if ec.i == len(ec.buf) {
		ec.buf, ec.i = ec.buf[:0], 0
		n, err := ec.c.next(ctx, func(rows pgx.Rows) error {
			ev, err := scanEvent(rows)
			if err != nil {
				return err
			}
			ec.buf = append(ec.buf, ev)
			return nil
		})
		if err != nil {
			return nil, err
		}
		ec.prog.add(n)
		if n == 0 {
			return nil, nil
		}
	}
	ev := &ec.buf[ec.i]
	ec.i++
	return ev, nil
}

// scanEvent scans one row of eventColumns, as eventstore reads the log.
func scanEvent(rows pgx.Rows) (eventstore.RecordedEvent, error) {
	var (
		e        eventstore.RecordedEvent
		xid      string
		payload  string
		metadata string
	)
	if err := rows.Scan(&e.GlobalPosition, &xid, &e.TenantID, &e.StreamType, &e.StreamID, &e.StreamVersion,
		&e.Partition, &e.EventID, &e.EventType, &e.EventVersion, &payload, &metadata, &e.RecordedAt); err != nil {
		return e, err
	}
	var err error
	if e.TransactionID, err = strconv.ParseUint(xid, 10, 64); err != nil {
		return e, &parseError{fmt.Errorf("replay: parse the transaction id of the event at position %d: %w", e.GlobalPosition, err)}
	}
	e.Payload = json.RawMessage(payload)
	if err := json.Unmarshal([]byte(metadata), &e.Metadata); err != nil {
		// json's error may quote a character of the metadata, never more; name the position only.
		return e, &parseError{fmt.Errorf("replay: the metadata of the event at position %d is not a metadata object", e.GlobalPosition)}
	}
	return e, nil
}
