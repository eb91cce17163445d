package domain_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
)

// norm is one case of a normalization function: the input, the normalized output or "" with the field
// of the expected validation error.
type norm struct {
	in    string
	want  string
	field string
}

func runNorm(t *testing.T, fn func(string) (string, error), cases []norm) {
	t.Helper()
	for _, c := range cases {
		got, err := fn(c.in)
		if c.field != "" {
			var ve *userstore.ValidationError
			require.ErrorAs(t, err, &ve, "input %q", c.in)
			require.Equal(t, c.field, ve.Field, "input %q", c.in)
			if len(strings.TrimSpace(c.in)) >= 3 {
				require.NotContains(t, err.Error(), c.in, "the error must not echo the input")
			}
			continue
		}
		require.NoError(t, err, "input %q", c.in)
		require.Equal(t, c.want, got, "input %q", c.in)
	}
}

const (
	decomposedE = "e\u0301" // e + combining acute accent
	composedE   = "\u00e9"  // é
)

func TestNormalizeSlug(t *testing.T) {
	runNorm(t, domain.NormalizeSlug, []norm{
		{in: "acme", want: "acme"},
		{in: "  ACME-Corp-2 ", want: "acme-corp-2"},
		{in: "abc", want: "abc"},
		{in: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		{in: "ab", field: "slug"},
		{in: strings.Repeat("a", 64), field: "slug"},
		{in: "a_b_c", field: "slug"},
		{in: "acme corp", field: "slug"},
		{in: "\u212Aelvin", field: "slug"}, // the Kelvin sign must not lower-case into "k"
		{in: "İstanbul", field: "slug"},
		{in: "acm\x00e", field: "slug"},
		{in: "acm\xffe", field: "slug"},
		{in: "", field: "slug"},
		{in: strings.Repeat(" ", 10000) + "acme", field: "slug"},
	})
}

func TestNormalizeEmail(t *testing.T) {
	runNorm(t, domain.NormalizeEmail, []norm{
		{in: "ann@example.com", want: "ann@example.com"},
		{in: "  Ann@Example.COM\t", want: "Ann@Example.COM"}, // kept as given, only trimmed
		{in: "jos" + decomposedE + "@example.com", want: "jos" + composedE + "@example.com"},
		{in: "straße@x.de", want: "straße@x.de"},
		{in: "a@b", want: "a@b"},
		{in: "", field: "email"},
		{in: "   ", field: "email"},
		{in: "no-at-sign", field: "email"},
		{in: "@example.com", field: "email"},
		{in: "ann@", field: "email"},
		{in: "a@b@c", field: "email"},
		{in: "ann smith@example.com", field: "email"},
		{in: "ann@exa\u00a0mple.com", field: "email"}, // no-break space
		{in: "ann@.example.com", field: "email"},
		{in: "ann@example.com.", field: "email"},
		{in: "ann@example..com", field: "email"},
		{in: "ann\x00@example.com", field: "email"},
		{in: "ann\x01@example.com", field: "email"},
		{in: "ann\xff@example.com", field: "email"},
		{in: strings.Repeat("a", 243) + "@example.com", field: "email"}, // 255 bytes
		{in: strings.Repeat("a", 242) + "@example.com", want: strings.Repeat("a", 242) + "@example.com"},
	})
}

func TestEmailKeyFoldsCase(t *testing.T) {
	// cases.Fold is full Unicode case folding: ß folds to "ss", so these are one address.
	for _, pair := range [][2]string{
		{"STRASSE@x.de", "straße@x.de"},
		{"Strasse@X.DE", "STRAẞE@x.de"},
		{"Ann@Example.com", "ann@example.COM"},
		{"jos" + decomposedE + "@x.io", "JOS" + composedE + "@X.IO"},
		{"\u212Aelvin@x.io", "kelvin@x.io"},
		{"ΣΑΣ@x.gr", "σας@x.gr"},
	} {
		a, err := domain.NormalizeEmail(pair[0])
		require.NoError(t, err)
		b, err := domain.NormalizeEmail(pair[1])
		require.NoError(t, err)
		require.Equal(t, domain.EmailKey(a), domain.EmailKey(b), "%q vs %q", pair[0], pair[1])
	}
	require.Equal(t, "strasse@x.de", domain.EmailKey("STRASSE@x.de"))
	require.NotEqual(t, domain.EmailKey("ann@x.io"), domain.EmailKey("anne@x.io"))
}

func TestNormalizeLoginName(t *testing.T) {
	runNorm(t, domain.NormalizeLoginName, []norm{
		{in: "ann", want: "ann"},
		{in: " Ann Smith ", want: "Ann Smith"},
		{in: "jos" + decomposedE, want: "jos" + composedE},
		{in: strings.Repeat("é", 128), want: strings.Repeat("é", 128)}, // characters, not bytes
		{in: strings.Repeat("é", 129), field: "login_name"},
		{in: "", field: "login_name"},
		{in: "ann\tsmith", field: "login_name"},
		{in: "ann\x00", field: "login_name"},
		{in: "ann\xc3", field: "login_name"},
	})
	require.Equal(t, domain.LoginKey("ANN"), domain.LoginKey("ann"))
}

func TestNormalizeIssuer(t *testing.T) {
	runNorm(t, domain.NormalizeIssuer, []norm{
		{in: "https://idp.example.com", want: "https://idp.example.com"},
		{in: " https://idp.example.com/realms/a ", want: "https://idp.example.com/realms/a"},
		{in: "http://localhost:8080/", want: "http://localhost:8080/"},
		{in: "https://IdP.Example.com", want: "https://IdP.Example.com"}, // exact: no case folding
		{in: "", field: "issuer"},
		{in: "idp.example.com", field: "issuer"},
		{in: "/realms/a", field: "issuer"},
		{in: "ftp://idp.example.com", field: "issuer"},
		{in: "https://", field: "issuer"},
		{in: "https:idp.example.com", field: "issuer"},
		{in: "https://user:pw@idp.example.com", field: "issuer"},
		{in: "https://idp.example.com/#frag", field: "issuer"},
		{in: "https://idp.example.com/#", field: "issuer"},
		{in: "https://idp.example .com", field: "issuer"},
		{in: "https://idp.example.com/\x00", field: "issuer"},
		{in: "https://" + strings.Repeat("a", 2048), field: "issuer"},
		{in: "https://idp\xff.example.com", field: "issuer"},
	})
}

func TestNormalizeSubject(t *testing.T) {
	runNorm(t, domain.NormalizeSubject, []norm{
		{in: "248289761001", want: "248289761001"},
		{in: " spaced ", want: " spaced "}, // exact
		{in: "CaSe", want: "CaSe"},
		{in: strings.Repeat("s", 255), want: strings.Repeat("s", 255)},
		{in: strings.Repeat("s", 256), field: "subject"},
		{in: "", field: "subject"},
		{in: "a\nb", field: "subject"},
		{in: "a\x00", field: "subject"},
		{in: "a\xff", field: "subject"},
	})
	require.Equal(t, "https://x.io s p", domain.IdentityKey("https://x.io", "s p"))
}

func TestNormalizeClientKey(t *testing.T) {
	runNorm(t, domain.NormalizeClientKey, []norm{
		{in: "my-App_1.0~x", want: "my-App_1.0~x"},
		{in: strings.Repeat("k", 255), want: strings.Repeat("k", 255)},
		{in: strings.Repeat("k", 256), field: "client_key"},
		{in: "", field: "client_key"},
		{in: " app", field: "client_key"},
		{in: "app/1", field: "client_key"},
		{in: "äpp", field: "client_key"},
	})
}

func TestNormalizeNames(t *testing.T) {
	runNorm(t, func(s string) (string, error) { return domain.NormalizeName("display_name", s) }, []norm{
		{in: " Ann ", want: "Ann"},
		{in: "Zo" + decomposedE, want: "Zo" + composedE},
		{in: strings.Repeat("名", 200), want: strings.Repeat("名", 200)},
		{in: strings.Repeat("名", 201), field: "display_name"},
		{in: "", field: "display_name"},
		{in: " \t ", field: "display_name"},
		{in: "Ann\x00", field: "display_name"},
		{in: "Ann\nSmith", field: "display_name"},
		{in: "Ann\xff", field: "display_name"},
	})
	runNorm(t, domain.NormalizeCatalogName, []norm{
		{in: " Contact ", want: "Contact"},
		{in: "", field: "name"},
	})
	require.Equal(t, domain.CatalogNameKey("CONTACT"), domain.CatalogNameKey("contact"))
	runNorm(t, func(s string) (string, error) { return domain.NormalizeNote("reason", s) }, []norm{
		{in: "", want: ""},
		{in: " line 1\nline 2\t ", want: "line 1\nline 2"},
		{in: "bell\a", field: "reason"},
		{in: strings.Repeat("r", 201), field: "reason"},
	})
}

func TestNormalizeRoles(t *testing.T) {
	got, err := domain.NormalizeRoles([]string{"viewer", "admin", "viewer", "app:read", "a.b-c_d"})
	require.NoError(t, err)
	require.Equal(t, []string{"a.b-c_d", "admin", "app:read", "viewer"}, got)

	got, err = domain.NormalizeRoles(nil)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)

	for i, bad := range []string{"", "Admin", "has space", strings.Repeat("r", 65), "x\x00"} {
		_, err := domain.NormalizeRoles([]string{"ok", bad})
		var ve *userstore.ValidationError
		require.ErrorAs(t, err, &ve, "case %d", i)
		require.Equal(t, "roles[1]", ve.Field)
	}

	many := make([]string, userstore.MaxRoles+1)
	for i := range many {
		many[i] = "r" + strconv.Itoa(i)
	}
	_, err = domain.NormalizeRoles(many)
	requireField(t, err, "roles")
	dups := append(many[:userstore.MaxRoles:userstore.MaxRoles], many[0]) // 65 entries, 64 distinct
	_, err = domain.NormalizeRoles(dups)
	require.NoError(t, err)
}

func TestValidateAttributeKey(t *testing.T) {
	for _, ok := range []string{"a", "nickname", "level_2", "a" + strings.Repeat("b", 63)} {
		require.NoError(t, domain.ValidateAttributeKey("key", ok), ok)
	}
	for _, bad := range []string{"", "1a", "_a", "Nick", "nick-name", "a" + strings.Repeat("b", 64), "ä"} {
		requireField(t, domain.ValidateAttributeKey("key", bad), "key")
	}
}

func TestNormalizeAttribute(t *testing.T) {
	enum := userstore.Attribute{Key: "level", Type: userstore.AttrEnum, EnumValues: []string{"gold", "silver"}}
	got, err := domain.NormalizeAttribute("attribute", enum)
	require.NoError(t, err)
	require.Equal(t, enum, got)
	got.EnumValues[0] = "changed"
	require.Equal(t, "gold", enum.EnumValues[0], "the result does not alias the input")

	_, err = domain.NormalizeAttribute("a", userstore.Attribute{Key: "s", Type: userstore.AttrString, MaxLength: 10, Required: true, PII: true})
	require.NoError(t, err)

	for _, c := range []struct {
		a     userstore.Attribute
		field string
	}{
		{userstore.Attribute{Key: "1x", Type: userstore.AttrString}, "attributes[3].key"},
		{userstore.Attribute{Key: "x", Type: "float"}, "attributes[3].type"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrEnum}, "attributes[3].enum_values"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrEnum, EnumValues: []string{"a", "a"}}, "attributes[3].enum_values[1]"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrEnum, EnumValues: []string{""}}, "attributes[3].enum_values[0]"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrEnum, EnumValues: []string{"a\x00"}}, "attributes[3].enum_values[0]"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrEnum, EnumValues: make([]string, 65)}, "attributes[3].enum_values"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrInt, EnumValues: []string{"a"}}, "attributes[3].enum_values"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrString, MaxLength: -1}, "attributes[3].max_length"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrString, MaxLength: userstore.MaxValueLength + 1}, "attributes[3].max_length"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrInt, MaxLength: 5}, "attributes[3].max_length"},
		{userstore.Attribute{Key: "x", Type: userstore.AttrBool, Deprecated: true}, "attributes[3].deprecated"},
	} {
		_, err := domain.NormalizeAttribute("attributes[3]", c.a)
		requireField(t, err, c.field)
	}
}

func TestValidateValue(t *testing.T) {
	str := userstore.Attribute{Key: "s", Type: userstore.AttrString, MaxLength: 3}
	enum := userstore.Attribute{Key: "e", Type: userstore.AttrEnum, EnumValues: []string{"gold"}}
	date := userstore.Attribute{Key: "d", Type: userstore.AttrDate}
	intA := userstore.Attribute{Key: "i", Type: userstore.AttrInt}

	v, err := domain.ValidateValue("values.s", str, userstore.Value{Type: userstore.AttrString, Str: "äöü", Int: 9})
	require.NoError(t, err)
	require.Equal(t, userstore.StringValue("äöü"), v, "only the type's field is kept")
	_, err = domain.ValidateValue("values.s", str, userstore.StringValue("abcd"))
	requireField(t, err, "values.s")
	_, err = domain.ValidateValue("values.s", str, userstore.StringValue("a\x00"))
	requireField(t, err, "values.s")
	_, err = domain.ValidateValue("values.s", str, userstore.StringValue("\xff"))
	requireField(t, err, "values.s")
	_, err = domain.ValidateValue("values.s", str, userstore.IntValue(1))
	requireField(t, err, "values.s")
	_, err = domain.ValidateValue("values.s", userstore.Attribute{Type: userstore.AttrString}, userstore.StringValue(strings.Repeat("x", userstore.MaxValueLength+1)))
	requireField(t, err, "values.s")

	_, err = domain.ValidateValue("values.e", enum, userstore.EnumValue("gold"))
	require.NoError(t, err)
	_, err = domain.ValidateValue("values.e", enum, userstore.EnumValue("Gold"))
	requireField(t, err, "values.e")
	_, err = domain.ValidateValue("values.e", enum, userstore.StringValue("gold"))
	requireField(t, err, "values.e")

	v, err = domain.ValidateValue("values.i", intA, userstore.Value{Type: userstore.AttrInt, Int: -5, Str: "x"})
	require.NoError(t, err)
	require.Equal(t, userstore.IntValue(-5), v)

	for _, ok := range []string{"2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31"} {
		_, err := domain.ValidateValue("values.d", date, userstore.Value{Type: userstore.AttrDate, Date: ok})
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"2023-02-29", "1900-02-29", "2024-13-01", "2024-04-31", "2024-2-3", "24-02-03", "2024/02/03", "", "2024-02-03T00:00:00Z"} {
		_, err := domain.ValidateValue("values.d", date, userstore.Value{Type: userstore.AttrDate, Date: bad})
		requireField(t, err, "values.d")
	}
}

func TestValidateTokenAndActor(t *testing.T) {
	require.NoError(t, domain.ValidateToken("request_id", ""))
	require.NoError(t, domain.ValidateToken("request_id", "req-123 ünïcode"))
	require.NoError(t, domain.ValidateToken("request_id", strings.Repeat("k", 255)))
	for _, bad := range []string{strings.Repeat("k", 256), "a\x00", "a\nb", "\xff", "tab\t"} {
		requireField(t, domain.ValidateToken("request_id", bad), "request_id")
	}
	require.NoError(t, domain.ValidateActor(userstore.Actor{Type: userstore.ActorService, ID: "svc"}))
	requireField(t, domain.ValidateActor(userstore.Actor{Type: "robot", ID: "r2"}), "actor.type")
	requireField(t, domain.ValidateActor(userstore.Actor{Type: userstore.ActorUser}), "actor.id")
	requireField(t, domain.ValidateActor(userstore.Actor{Type: userstore.ActorUser, ID: "bad\xff"}), "actor.id")
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var ve *userstore.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, field, ve.Field)
	require.ErrorIs(t, err, userstore.ErrValidation)
}

// fuzzNormalizer checks the properties every normalizer has: it never panics, it fails only with a
// *ValidationError, its output is valid UTF-8 without NUL, and normalizing its output again changes
// nothing.
func fuzzNormalizer(f *testing.F, fn func(string) (string, error), seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := fn(in)
		if err != nil {
			var ve *userstore.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if !utf8.ValidString(out) || strings.ContainsRune(out, 0) {
			t.Fatalf("invalid output %q", out)
		}
		again, err := fn(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
	})
}

var fuzzSeeds = []string{"", " ", "a", "ann@example.com", "STRASSE@x.de", "straße@x.de", "\xff", "a\x00b", decomposedE, "https://idp.example.com/x", "\u212A", "İ", strings.Repeat("ä", 300)}

func FuzzNormalizeEmail(f *testing.F)     { fuzzNormalizer(f, domain.NormalizeEmail, fuzzSeeds...) }
func FuzzNormalizeSlug(f *testing.F)      { fuzzNormalizer(f, domain.NormalizeSlug, fuzzSeeds...) }
func FuzzNormalizeLoginName(f *testing.F) { fuzzNormalizer(f, domain.NormalizeLoginName, fuzzSeeds...) }
func FuzzNormalizeIssuer(f *testing.F)    { fuzzNormalizer(f, domain.NormalizeIssuer, fuzzSeeds...) }
func FuzzNormalizeSubject(f *testing.F)   { fuzzNormalizer(f, domain.NormalizeSubject, fuzzSeeds...) }
func FuzzNormalizeClientKey(f *testing.F) { fuzzNormalizer(f, domain.NormalizeClientKey, fuzzSeeds...) }
func FuzzNormalizeName(f *testing.F) {
	fuzzNormalizer(f, func(s string) (string, error) { return domain.NormalizeName("name", s) }, fuzzSeeds...)
}

func FuzzEmailKey(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		email, err := domain.NormalizeEmail(in)
		if err != nil {
			return
		}
		key := domain.EmailKey(email)
		if domain.EmailKey(key) != key {
			t.Fatalf("EmailKey not idempotent on %q", in)
		}
	})
}
