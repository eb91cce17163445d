package pgstore

import (
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
)

// outbox cursors carry the log position (transaction id, global position) as "<xid>.<position>".
const outboxList = "outbox"

func encodeOutboxCursor(c eventstore.Cursor) string {
	return keyset.Encode(outboxList, "", strconv.FormatUint(c.TransactionID, 10)+"."+strconv.FormatInt(c.Position, 10))
}

func decodeOutboxCursor(cursor string) (eventstore.Cursor, error) {
	after, err := keyset.Decode(cursor, outboxList, "")
	if err != nil || after == "" {
		return eventstore.Cursor{}, err
	}
	xid, pos, ok := strings.Cut(after, ".")
	if !ok {
		return eventstore.Cursor{}, keyset.Invalid()
	}
	var c eventstore.Cursor
	if c.TransactionID, err = strconv.ParseUint(xid, 10, 64); err != nil {
		return eventstore.Cursor{}, keyset.Invalid()
	}
	if c.Position, err = strconv.ParseInt(pos, 10, 64); err != nil || c.Position < 1 {
		return eventstore.Cursor{}, keyset.Invalid()
	}
	return c, nil
}

// page is a validated keyset page request of a list by id.
type page struct {
	list, filters string
	limit         int
	after         uuid.UUID // uuid.Nil: from the start
}

// newPage validates the paging options of a list: the limit (engine.PageLimit) and the cursor.
func newPage(o userstore.ListOpts, list, filters string) (*page, error) {
	limit, err := engine.PageLimit(o)
	if err != nil {
		return nil, err
	}
	after, err := keyset.Decode(o.Cursor, list, filters)
	if err != nil {
		return nil, err
	}
	p := &page{list: list, filters: filters, limit: limit}
	if after != "" {
		if p.after, err = uuid.Parse(after); err != nil {
			return nil, keyset.Invalid()
		}
	}
	return p, nil
}

// fetch is the number of rows to read: one more than the limit, to know whether another page follows.
func (p *page) fetch() int64 { return int64(p.limit) + 1 }

// finish returns the page of items (read with fetch()); NextCursor is set when more follow.
func finish[T any](p *page, items []T, id func(T) uuid.UUID) *userstore.Page[T] {
	out := &userstore.Page[T]{Items: items}
	if out.Items == nil {
		out.Items = []T{}
	}
	if len(out.Items) > p.limit {
		out.Items = out.Items[:p.limit]
		out.NextCursor = keyset.Encode(p.list, p.filters, id(out.Items[p.limit-1]).String())
	}
	return out
}
