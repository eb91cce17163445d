package pgstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/engine"
)

// Cursors are opaque to callers: base64url of "v1", the list's name, a fingerprint of its filters and
// the key of the last item returned (an id, an audit sequence, or an outbox position), separated by
// "|". A cursor of another list or other filters, or one that does not decode, is a validation error
// on "cursor". The same format as the in-memory store's, so a cursor means the same in both.

const (
	cursorVersion = "v1"
	// maxCursorLength bounds what is decoded at all.
	maxCursorLength = 512
)

func errCursor() error { return userstore.Invalid("cursor", "is not a cursor of this list") }

// fingerprint returns a short hash of a list's filters, so that a cursor carries no filter value.
func fingerprint(filters ...string) string {
	h := sha256.New()
	for _, f := range filters {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func encodeCursor(list, filters, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "|" + list + "|" + filters + "|" + after))
}

// decodeCursor returns the key a cursor continues after ("" for no cursor).
func decodeCursor(cursor, list, filters string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	if len(cursor) > maxCursorLength {
		return "", errCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", errCursor()
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != cursorVersion || parts[1] != list || parts[2] != filters || parts[3] == "" {
		return "", errCursor()
	}
	return parts[3], nil
}

// decodeIntCursor returns the number a cursor continues after (0 for no cursor).
func decodeIntCursor(cursor, list, filters string) (int64, error) {
	after, err := decodeCursor(cursor, list, filters)
	if err != nil || after == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(after, 10, 64)
	if err != nil || n < 1 {
		return 0, errCursor()
	}
	return n, nil
}

// outbox cursors carry the log position (transaction id, global position) as "<xid>.<position>".
const outboxList = "outbox"

func encodeOutboxCursor(c eventstore.Cursor) string {
	return encodeCursor(outboxList, "", strconv.FormatUint(c.TransactionID, 10)+"."+strconv.FormatInt(c.Position, 10))
}

func decodeOutboxCursor(cursor string) (eventstore.Cursor, error) {
	after, err := decodeCursor(cursor, outboxList, "")
	if err != nil || after == "" {
		return eventstore.Cursor{}, err
	}
	xid, pos, ok := strings.Cut(after, ".")
	if !ok {
		return eventstore.Cursor{}, errCursor()
	}
	var c eventstore.Cursor
	if c.TransactionID, err = strconv.ParseUint(xid, 10, 64); err != nil {
		return eventstore.Cursor{}, errCursor()
	}
	if c.Position, err = strconv.ParseInt(pos, 10, 64); err != nil || c.Position < 1 {
		return eventstore.Cursor{}, errCursor()
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
	after, err := decodeCursor(o.Cursor, list, filters)
	if err != nil {
		return nil, err
	}
	p := &page{list: list, filters: filters, limit: limit}
	if after != "" {
		if p.after, err = uuid.Parse(after); err != nil {
			return nil, errCursor()
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
		out.NextCursor = encodeCursor(p.list, p.filters, id(out.Items[p.limit-1]).String())
	}
	return out
}
