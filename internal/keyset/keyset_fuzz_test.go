package keyset_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/keyset"
)

// requireCursorRejection fails unless err is the validation error of field "cursor".
func requireCursorRejection(t *testing.T, err error) {
	t.Helper()
	var ve *userstore.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, userstore.ErrValidation) || ve.Field != "cursor" {
		t.Fatalf("a rejected cursor must be a validation error on \"cursor\", got %T: %v", err, err)
	}
}

// FuzzDecodeInt: a numeric cursor (audit sequences, outbox positions) decodes to a positive number or
// is rejected as an invalid "cursor"; a decoded number encodes to a cursor that decodes to it again.
func FuzzDecodeInt(f *testing.F) {
	fp := keyset.Fingerprint("actor", "svc")
	for _, c := range []string{"", keyset.Encode("audit", fp, "1"), keyset.Encode("audit", fp, "9223372036854775807"),
		keyset.Encode("audit", fp, "9223372036854775808"), keyset.Encode("audit", fp, "0"), keyset.Encode("audit", fp, "-1"),
		keyset.Encode("audit", fp, "+7"), keyset.Encode("audit", fp, "007"), keyset.Encode("audit", fp, "1|2"),
		keyset.Encode("audit", "", "1"), keyset.Encode("users", fp, "1"), "djF8YXVkaXR8fDE", "====", strings.Repeat("A", 513)} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		n, err := keyset.DecodeInt(c, "audit", fp)
		if err != nil {
			requireCursorRejection(t, err)
			return
		}
		if c == "" {
			if n != 0 {
				t.Fatalf("no cursor decoded to %d", n)
			}
			return
		}
		if n < 1 {
			t.Fatalf("cursor %q decoded to %d", c, n)
		}
		again, err := keyset.DecodeInt(keyset.Encode("audit", fp, strconv.FormatInt(n, 10)), "audit", fp)
		if err != nil || again != n {
			t.Fatalf("%d does not round-trip: %d, %v", n, again, err)
		}
	})
}

// FuzzRoundTrip: a cursor encoded for any list, filters and key (without the separator "|", which no
// list name, fingerprint or key contains) decodes to that key for the same list and filters — when it
// fits keyset.MaxLength — and is an invalid "cursor" for any other list or filters.
func FuzzRoundTrip(f *testing.F) {
	f.Add("users", keyset.Fingerprint("active"), "0193a2f0-7c1e-7b3a-9d4e-5f6a7b8c9d0e", "members")
	f.Add("audit", keyset.Fingerprint(), "42", "audit2")
	f.Add("", "", "k", "x")
	f.Add("ä", "\xff", "\x00", "ä ")
	f.Fuzz(func(t *testing.T, list, filters, key, other string) {
		if key == "" || strings.Contains(list+filters+key, "|") {
			return
		}
		c := keyset.Encode(list, filters, key)
		got, err := keyset.Decode(c, list, filters)
		switch {
		case len(c) > keyset.MaxLength:
			requireCursorRejection(t, err)
			return
		case err != nil || got != key:
			t.Fatalf("Encode(%q, %q, %q) decodes to %q, %v", list, filters, key, got, err)
		}
		if other != list {
			_, err := keyset.Decode(c, other, filters)
			requireCursorRejection(t, err)
		}
		if other != filters {
			_, err := keyset.Decode(c, list, other)
			requireCursorRejection(t, err)
		}
	})
}
