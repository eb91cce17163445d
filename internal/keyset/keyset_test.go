package keyset_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/internal/keyset"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := keyset.Fingerprint("active", "")
	c := keyset.Encode("users", f, "0193a2f0-7c1e-7b3a-9d4e-5f6a7b8c9d0e")
	got, err := keyset.Decode(c, "users", f)
	require.NoError(t, err)
	require.Equal(t, "0193a2f0-7c1e-7b3a-9d4e-5f6a7b8c9d0e", got)
	got, err = keyset.Decode("", "users", f)
	require.NoError(t, err)
	require.Empty(t, got)
	n, err := keyset.DecodeInt(keyset.Encode("audit", f, "42"), "audit", f)
	require.NoError(t, err)
	require.Equal(t, int64(42), n)
}

func TestFingerprintIsLengthPrefixed(t *testing.T) {
	t.Parallel()
	require.NotEqual(t, keyset.Fingerprint("a", "bc"), keyset.Fingerprint("ab", "c"))
}

func TestForeignCursorsAreValidationErrors(t *testing.T) {
	t.Parallel()
	f := keyset.Fingerprint("x")
	for name, c := range map[string]string{
		"other list":    keyset.Encode("apps", f, "k"),
		"other filters": keyset.Encode("users", keyset.Fingerprint("y"), "k"),
		"not base64":    "***",
		"empty key":     keyset.Encode("users", f, ""),
		"too long":      string(make([]byte, keyset.MaxLength+1)),
	} {
		_, err := keyset.Decode(c, "users", f)
		var ve *userstore.ValidationError
		require.ErrorAs(t, err, &ve, name)
		require.Equal(t, "cursor", ve.Field, name)
	}
	_, err := keyset.DecodeInt(keyset.Encode("users", f, "-1"), "users", f)
	require.ErrorIs(t, err, userstore.ErrValidation)
}

func FuzzDecode(f *testing.F) {
	f.Add(keyset.Encode("users", keyset.Fingerprint(), "k"))
	f.Add("")
	f.Add("djF8dXNlcnN8fGs")
	f.Fuzz(func(t *testing.T, c string) {
		if _, err := keyset.Decode(c, "users", keyset.Fingerprint()); err != nil {
			require.ErrorIs(t, err, userstore.ErrValidation)
		}
	})
}
