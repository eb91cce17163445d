package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/projections/readmodel"
)

// Read-table rows as VerifyProjections compares them: the Go values of readmodel.Row, one per column of
// a readmodel.Table, scanned back from the live tables in the same types.

// scanLive scans a live row into the Go types readmodel.Row uses: uuid.UUID, string, int64, time.Time,
// []string, and a JSON document as string.
func scanLive(rows pgx.Rows, t *readmodel.Table) ([]any, error) {
	dest := make([]any, len(t.Columns))
	for j, c := range t.Columns {
		switch c.Type {
		case "uuid":
			dest[j] = new(uuid.UUID)
		case "bigint":
			dest[j] = new(int64)
		case "timestamptz":
			dest[j] = new(time.Time)
		case "text[]":
			dest[j] = new([]string)
		default: // text, jsonb (as text)
			dest[j] = new(string)
		}
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	out := make([]any, len(dest))
	for j, d := range dest {
		out[j] = reflect.ValueOf(d).Elem().Interface()
	}
	return out, nil
}

// compareKeys orders two rows by their first n values (uuids: byte order, PostgreSQL's uuid order).
func compareKeys(a, b []any, n int) int {
	for j := range n {
		if c := compareValue(a[j], b[j]); c != 0 {
			return c
		}
	}
	return 0
}

func compareValue(a, b any) int {
	switch x := a.(type) {
	case uuid.UUID:
		y, _ := b.(uuid.UUID)
		return bytes.Compare(x[:], y[:])
	case string:
		y, _ := b.(string)
		return strings.Compare(x, y)
	case int64:
		y, _ := b.(int64)
		return cmpInt(x, y)
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equalValue compares an expected and a live value of a column of type typ: times to the microsecond
// (PostgreSQL's precision), arrays with nil equal to empty, JSON documents by value.
func equalValue(typ string, exp, live any) bool {
	switch typ {
	case "timestamptz":
		e, _ := exp.(time.Time)
		l, _ := live.(time.Time)
		return e.Truncate(time.Microsecond).Equal(l.Truncate(time.Microsecond))
	case "text[]":
		e, _ := exp.([]string)
		l, _ := live.([]string)
		return slices.Equal(e, l)
	case "jsonb":
		var e, l any
		es, _ := exp.(string)
		ls, _ := live.(string)
		if json.Unmarshal([]byte(es), &e) != nil || json.Unmarshal([]byte(ls), &l) != nil {
			return es == ls
		}
		return reflect.DeepEqual(e, l)
	}
	return exp == live
}

// renderValue renders a column value as text.
func renderValue(typ string, v any) string {
	switch x := v.(type) {
	case time.Time:
		return formatTime(x)
	case []string:
		b, _ := json.Marshal(x)
		return string(b)
	case int64:
		return strconv.FormatInt(x, 10)
	case uuid.UUID:
		return x.String()
	case string:
		if typ == "jsonb" {
			var buf bytes.Buffer
			if json.Compact(&buf, []byte(x)) == nil {
				return buf.String()
			}
		}
		return x
	}
	return fmt.Sprint(v)
}
