package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

type profileEnv struct {
	f    *fixture
	user *userstore.User
	cat  *userstore.Catalog
}

// profileSetup returns a fixture with a user and a catalog of richAttributes (nickname is required).
func profileSetup(t *testing.T, s userstore.Store) profileEnv {
	t.Helper()
	f := setup(t, s)
	return profileEnv{f: f, user: f.createUser(t), cat: f.defineCatalog(t, richAttributes()...)}
}

func (e profileEnv) set(values map[string]userstore.Value) (*userstore.Profile, error) {
	return e.f.s.SetProfileValues(e.f.ctx, &userstore.SetProfileValuesParams{UserID: e.user.ID, CatalogID: e.cat.ID, Values: values})
}

func (e profileEnv) clear(keys ...string) (*userstore.Profile, error) {
	return e.f.s.ClearProfileValues(e.f.ctx, &userstore.ClearProfileValuesParams{UserID: e.user.ID, CatalogID: e.cat.ID, Keys: keys})
}

func (e profileEnv) get(t *testing.T) *userstore.Profile {
	t.Helper()
	return e.f.getProfile(t, e.user.ID, e.cat.ID)
}

// requireUnchanged asserts that the profile is the given one (same version and values).
func (e profileEnv) requireUnchanged(t *testing.T, want *userstore.Profile) {
	t.Helper()
	got := e.get(t)
	require.Equal(t, want.Version, got.Version, "profile version unchanged")
	require.Equal(t, len(want.Values), len(got.Values), "profile values unchanged")
	for k, v := range want.Values {
		require.Equal(t, v, got.Values[k], "value %s unchanged", k)
	}
}

var (
	strV  = userstore.StringValue
	intV  = userstore.IntValue
	boolV = userstore.BoolValue
	enumV = userstore.EnumValue
)

func dateV(s string) userstore.Value { return userstore.Value{Type: userstore.AttrDate, Date: s} }

func profileCases() []testCase {
	return []testCase{
		{"EmptyProfileIsVersionZero", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			p := e.get(t)
			require.Equal(t, int64(0), p.Version)
			require.Empty(t, p.Values)
			require.Equal(t, e.user.ID, p.UserID)
			require.Equal(t, e.cat.ID, p.CatalogID)
		}},
		{"SetAndGetTypedValues", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			birthday := userstore.DateValue(time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC))
			require.Equal(t, "2000-02-29", birthday.Date)
			want := map[string]userstore.Value{
				"nickname": strV("Ace"), "age": intV(42), "newsletter": boolV(true), "birthday": birthday, "color": enumV("red"),
			}
			p, err := e.set(want)
			require.NoError(t, err)
			require.Equal(t, int64(1), p.Version)
			require.Equal(t, e.f.tenant.ID, p.TenantID)
			require.Equal(t, want, p.Values)
			require.Equal(t, want, e.get(t).Values)
			p, err = e.set(map[string]userstore.Value{"age": intV(-7), "newsletter": boolV(false)})
			require.NoError(t, err)
			require.Equal(t, int64(2), p.Version)
			got := e.get(t)
			require.Equal(t, int64(2), got.Version)
			require.Equal(t, intV(-7), got.Values["age"])
			require.Equal(t, boolV(false), got.Values["newsletter"])
			require.Equal(t, strV("Ace"), got.Values["nickname"], "values not in the request are kept")
			require.Len(t, got.Values, 5)
		}},
		{"ProfilesArePerCatalog", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			other := e.f.defineCatalog(t, stringAttr("nickname"))
			_, err := e.set(map[string]userstore.Value{"nickname": strV("Ace")})
			require.NoError(t, err)
			p := e.f.getProfile(t, e.user.ID, other.ID)
			require.Empty(t, p.Values)
			require.Equal(t, int64(0), p.Version)
		}},
		{"WrongTypeRefused", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			base, err := e.set(map[string]userstore.Value{"nickname": strV("Ace")})
			require.NoError(t, err)
			tr := e.f.snapshot(t)
			for key, v := range map[string]userstore.Value{
				"age":        strV("42"),
				"nickname":   intV(1),
				"newsletter": strV("true"),
				"birthday":   strV("2000-01-01"),
				"color":      strV("red"),
			} {
				_, err := e.set(map[string]userstore.Value{key: v})
				requireInvalid(t, err, "values."+key, "%s = %+v", key, v)
			}
			for _, typ := range []userstore.AttributeType{"", "float"} {
				_, err := e.set(map[string]userstore.Value{"age": {Type: typ, Int: 1}})
				requireInvalid(t, err, "values.age", "value type %q", typ)
			}
			e.requireUnchanged(t, base)
			e.f.requireNoTrace(t, tr)
		}},
		{"UnknownAttributeRefused", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			tr := e.f.snapshot(t)
			_, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "shoe_size": intV(44)})
			requireInvalid(t, err, "values.shoe_size")
			require.Equal(t, int64(0), e.get(t).Version)
			e.f.requireNoTrace(t, tr)
		}},
		{"EnumMembership", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			tr := e.f.snapshot(t)
			for _, v := range []string{"purple", "", "red "} {
				_, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "color": enumV(v)})
				requireInvalid(t, err, "values.color", "enum value %q", v)
			}
			require.Equal(t, int64(0), e.get(t).Version)
			e.f.requireNoTrace(t, tr)
			p, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "color": enumV("green")})
			require.NoError(t, err)
			require.Equal(t, enumV("green"), p.Values["color"])
		}},
		{"DatesMustBeCalendarDates", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			base, err := e.set(map[string]userstore.Value{"nickname": strV("Ace")})
			require.NoError(t, err)
			tr := e.f.snapshot(t)
			for _, d := range []string{
				"2023-02-29", "2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00",
				"2024-1-1", "24-01-01", "2024/01/01", "", "2024-01-01T00:00:00Z", " 2024-01-01", "yesterday",
			} {
				_, err := e.set(map[string]userstore.Value{"birthday": dateV(d)})
				requireInvalid(t, err, "values.birthday", "date %q", d)
			}
			e.requireUnchanged(t, base)
			e.f.requireNoTrace(t, tr)
			for _, d := range []string{"2024-02-29", "1900-01-01", "2023-12-31"} {
				p, err := e.set(map[string]userstore.Value{"birthday": dateV(d)})
				require.NoError(t, err, "date %q", d)
				require.Equal(t, d, p.Values["birthday"].Date)
			}
		}},
		{"StringMaxLengthInCharacters", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			c := f.defineCatalog(t, userstore.Attribute{Key: "code", Type: userstore.AttrString, MaxLength: 5}, stringAttr("bio"))
			set := func(key, v string) error {
				_, err := s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: map[string]userstore.Value{key: strV(v)}})
				return err
			}
			tr := f.snapshot(t)
			requireInvalid(t, set("code", "abcdef"), "values.code")
			requireInvalid(t, set("code", "éééééé"), "values.code")
			requireInvalid(t, set("bio", strings.Repeat("x", userstore.MaxValueLength+1)), "values.bio")
			requireInvalid(t, set("bio", "bad\xffbytes"), "values.bio")
			requireInvalid(t, set("bio", "nul\x00byte"), "values.bio")
			f.requireNoTrace(t, tr)
			require.NoError(t, set("code", "ééééé"), "5 characters of 2 bytes each are within a MaxLength of 5")
			require.NoError(t, set("bio", strings.Repeat("é", userstore.MaxValueLength)), "MaxValueLength characters are fine by default")
		}},
		{"RequiredAttributesMustHaveValue", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			tr := e.f.snapshot(t)
			_, err := e.set(map[string]userstore.Value{"age": intV(30)})
			require.Error(t, err, "the required nickname has no value")
			require.True(t, isOneOf(err, userstore.ErrValidation, userstore.ErrFailedPrecondition), "missing required value: %v", err)
			p := e.get(t)
			require.Equal(t, int64(0), p.Version)
			require.Empty(t, p.Values)
			e.f.requireNoTrace(t, tr)
			_, err = e.set(map[string]userstore.Value{"age": intV(30), "nickname": strV("Ace")})
			require.NoError(t, err)
			p, err = e.set(map[string]userstore.Value{"age": intV(31)})
			require.NoError(t, err, "the required value is already there")
			require.Equal(t, int64(2), p.Version)
		}},
		{"RequiredAttributeCannotBeCleared", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			base, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "age": intV(30)})
			require.NoError(t, err)
			tr := e.f.snapshot(t)
			_, err = e.clear("nickname")
			require.Error(t, err)
			require.True(t, isOneOf(err, userstore.ErrValidation, userstore.ErrFailedPrecondition), "clearing a required value: %v", err)
			_, err = e.clear("age", "nickname")
			require.Error(t, err, "all or nothing")
			e.requireUnchanged(t, base)
			e.f.requireNoTrace(t, tr)
		}},
		{"ClearOptionalValue", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			_, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "age": intV(30), "color": enumV("red")})
			require.NoError(t, err)
			p, err := e.clear("age", "color")
			require.NoError(t, err)
			require.Equal(t, int64(2), p.Version)
			require.Equal(t, map[string]userstore.Value{"nickname": strV("Ace")}, p.Values)
			require.Equal(t, map[string]userstore.Value{"nickname": strV("Ace")}, e.get(t).Values)
		}},
		{"DeprecatedAttributeRefusesNewValues", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			base, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "age": intV(30)})
			require.NoError(t, err)
			_, err = s.DeprecateCatalogAttribute(e.f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: e.cat.ID, Key: "age"})
			require.NoError(t, err)
			tr := e.f.snapshot(t)
			_, err = e.set(map[string]userstore.Value{"age": intV(31)})
			requirePrecondition(t, err, userstore.ReasonAttrDeprecated)
			_, err = e.set(map[string]userstore.Value{"nickname": strV("Bo"), "age": intV(31)})
			requirePrecondition(t, err, userstore.ReasonAttrDeprecated)
			e.requireUnchanged(t, base)
			e.f.requireNoTrace(t, tr)
		}},
		{"DeprecatedRequiredAttributeIsNoLongerRequired", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			_, err := s.DeprecateCatalogAttribute(e.f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: e.cat.ID, Key: "nickname"})
			require.NoError(t, err)
			p, err := e.set(map[string]userstore.Value{"age": intV(30)})
			require.NoError(t, err, "only required, non-deprecated attributes must have a value")
			require.Equal(t, int64(1), p.Version)
		}},
		{"SetIsAllOrNothing", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			base, err := e.set(map[string]userstore.Value{"nickname": strV("Ace"), "age": intV(30)})
			require.NoError(t, err)
			tr := e.f.snapshot(t)
			_, err = e.set(map[string]userstore.Value{"nickname": strV("Bo"), "age": strV("thirty"), "color": enumV("red")})
			requireInvalid(t, err, "values.age")
			e.requireUnchanged(t, base)
			e.f.requireNoTrace(t, tr)
		}},
		{"TooManyValues", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			u := f.createUser(t)
			attrs := make([]userstore.Attribute, userstore.MaxValuesPerRequest+1)
			values := map[string]userstore.Value{}
			keys := make([]string, 0, len(attrs))
			for i := range attrs {
				key := fmt.Sprintf("a%d", i)
				attrs[i] = stringAttr(key)
				values[key] = strV("v")
				keys = append(keys, key)
			}
			c := f.defineCatalog(t, attrs[:userstore.MaxAttributes]...)
			for _, a := range attrs[userstore.MaxAttributes:] {
				_, err := s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: a})
				if err != nil { // a catalog may be full; the values of unknown keys are refused too
					break
				}
			}
			tr := f.snapshot(t)
			_, err := s.SetProfileValues(f.ctx, &userstore.SetProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Values: values})
			requireInvalid(t, err, "values", "more than MaxValuesPerRequest values")
			_, err = s.ClearProfileValues(f.ctx, &userstore.ClearProfileValuesParams{UserID: u.ID, CatalogID: c.ID, Keys: keys})
			requireInvalid(t, err, "keys", "more than MaxValuesPerRequest keys")
			require.Equal(t, int64(0), f.getProfile(t, u.ID, c.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"MissingUserOrCatalogIsNotFound", func(t *testing.T, s userstore.Store) {
			e := profileSetup(t, s)
			_, err := s.GetProfile(e.f.ctx, userstore.NewID(), e.cat.ID)
			requireNotFound(t, err, "missing user")
			_, err = s.GetProfile(e.f.ctx, e.user.ID, userstore.NewID())
			requireNotFound(t, err, "missing catalog")
			tr := e.f.snapshot(t)
			_, err = s.SetProfileValues(e.f.ctx, &userstore.SetProfileValuesParams{UserID: userstore.NewID(), CatalogID: e.cat.ID, Values: map[string]userstore.Value{"nickname": strV("A")}})
			requireNotFound(t, err, "set for a missing user")
			_, err = s.SetProfileValues(e.f.ctx, &userstore.SetProfileValuesParams{UserID: e.user.ID, CatalogID: userstore.NewID(), Values: map[string]userstore.Value{"nickname": strV("A")}})
			requireNotFound(t, err, "set in a missing catalog")
			_, err = s.ClearProfileValues(e.f.ctx, &userstore.ClearProfileValuesParams{UserID: userstore.NewID(), CatalogID: e.cat.ID, Keys: []string{"age"}})
			requireNotFound(t, err, "clear for a missing user")
			e.f.requireNoTrace(t, tr)
		}},
	}
}
