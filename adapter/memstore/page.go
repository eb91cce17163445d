package memstore

import (
	"slices"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/engine"
	"github.com/netkingdom/userstore/internal/keyset"
)

// pageByID returns one page of items in id order, after the cursor's id; clone copies an item out of
// the store.
func pageByID[T any](items []*T, id func(*T) uuid.UUID, clone func(*T) T, o userstore.ListOpts, list, filters string) (*userstore.Page[T], error) {
	limit, err := engine.PageLimit(o)
	if err != nil {
		return nil, err
	}
	after, err := keyset.Decode(o.Cursor, list, filters)
	if err != nil {
		return nil, err
	}
	var afterID uuid.UUID
	if after != "" {
		if afterID, err = uuid.Parse(after); err != nil {
			return nil, keyset.Invalid()
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
		page.NextCursor = keyset.Encode(list, filters, id(items[end-1]).String())
	}
	return page, nil
}
