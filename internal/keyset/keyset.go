// Package keyset is the one format of the opaque list cursors that every adapter hands out, so that a
// cursor means the same in each: base64url of "v1", the list's name, a fingerprint of its filters and
// the key of the last item returned (an id, an audit sequence, a log position), separated by "|". A
// cursor of another list or of other filters, or one that does not decode, is a validation error on
// "cursor". A cursor carries no filter value, only its fingerprint.
package keyset

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/netkingdom/userstore"
)

const (
	version = "v1"
	// MaxLength bounds what is decoded at all.
	MaxLength = 512
)

// Invalid returns the error of a cursor that is not one of the list's.
func Invalid() error { return userstore.Invalid("cursor", "is not a cursor of this list") }

// Fingerprint returns a short hash of a list's filters (length-prefixed, so that ("a", "bc") and
// ("ab", "c") differ).
func Fingerprint(filters ...string) string {
	h := sha256.New()
	for _, f := range filters {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Encode returns the cursor that continues list (with the filters' fingerprint) after key.
func Encode(list, filters, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(version + "|" + list + "|" + filters + "|" + after))
}

// Decode returns the key a cursor continues after ("" for no cursor).
func Decode(cursor, list, filters string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	if len(cursor) > MaxLength {
		return "", Invalid()
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", Invalid()
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != version || parts[1] != list || parts[2] != filters || parts[3] == "" {
		return "", Invalid()
	}
	return parts[3], nil
}

// DecodeInt returns the positive number a cursor continues after (0 for no cursor).
func DecodeInt(cursor, list, filters string) (int64, error) {
	after, err := Decode(cursor, list, filters)
	if err != nil || after == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(after, 10, 64)
	if err != nil || n < 1 {
		return 0, Invalid()
	}
	return n, nil
}
