package memstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/engine"
)

// Cursors are opaque to callers: base64url of "v1", the list's name, a fingerprint of its filters and
// the key of the last item returned, separated by "|". A cursor of another list or other filters, or
// one that does not decode, is a validation error on "cursor".

const cursorVersion = "v1"

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
	if len(cursor) > 512 {
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

// pageByID returns one page of items in id order, after the cursor's id; clone copies an item out of
// the store.
func pageByID[T any](items []*T, id func(*T) uuid.UUID, clone func(*T) T, o userstore.ListOpts, list, filters string) (*userstore.Page[T], error) {
	limit, err := engine.PageLimit(o)
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(o.Cursor, list, filters)
	if err != nil {
		return nil, err
	}
	var afterID uuid.UUID
	if after != "" {
		if afterID, err = uuid.Parse(after); err != nil {
			return nil, errCursor()
		}
	}
	slices.SortFunc(items, func(a, b *T) int { return compareIDs(id(a), id(b)) })
	start := 0
	if after != "" {
		start, _ = slices.BinarySearchFunc(items, afterID, func(it *T, target uuid.UUID) int {
			if compareIDs(id(it), target) <= 0 {
				return -1
			}
			return 1
		})
	}
	end := min(start+limit, len(items))
	page := &userstore.Page[T]{Items: make([]T, 0, end-start)}
	for _, it := range items[start:end] {
		page.Items = append(page.Items, clone(it))
	}
	if end < len(items) {
		page.NextCursor = encodeCursor(list, filters, id(items[end-1]).String())
	}
	return page, nil
}
