package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
)

// richAttributes returns one attribute of every type.
func richAttributes() []userstore.Attribute {
	return []userstore.Attribute{
		{Key: "nickname", Type: userstore.AttrString, Required: true, PII: true, MaxLength: 10},
		{Key: "age", Type: userstore.AttrInt},
		{Key: "newsletter", Type: userstore.AttrBool},
		{Key: "birthday", Type: userstore.AttrDate, PII: true},
		{Key: "color", Type: userstore.AttrEnum, EnumValues: []string{"red", "green"}},
	}
}

func requireAttribute(t *testing.T, want userstore.Attribute, c *userstore.Catalog) {
	t.Helper()
	got, ok := c.Attribute(want.Key)
	require.True(t, ok, "attribute %s present", want.Key)
	require.Equal(t, want.Type, got.Type, want.Key)
	require.ElementsMatch(t, want.EnumValues, got.EnumValues, want.Key)
	require.Equal(t, want.Required, got.Required, want.Key)
	require.Equal(t, want.PII, got.PII, want.Key)
	require.Equal(t, want.MaxLength, got.MaxLength, want.Key)
	require.Equal(t, want.Deprecated, got.Deprecated, want.Key)
}

func catalogCases() []testCase {
	return []testCase{
		{"DefineRoundTripsAttributes", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			name := "Employee " + rnd()
			c, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: name, Attributes: richAttributes()})
			require.NoError(t, err)
			require.NotEqual(t, uuid.Nil, c.ID)
			require.Equal(t, f.tenant.ID, c.TenantID)
			require.Equal(t, name, c.Name)
			require.Equal(t, int64(1), c.Version)
			require.Len(t, c.Attributes, len(richAttributes()))
			got := f.getCatalog(t, c.ID)
			require.Equal(t, name, got.Name)
			require.Len(t, got.Attributes, len(richAttributes()))
			for _, a := range richAttributes() {
				requireAttribute(t, a, c)
				requireAttribute(t, a, got)
			}
		}},
		{"DefineWithExplicitID", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			id := userstore.NewID()
			c, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{ID: id, Name: newCatalogName(), Attributes: []userstore.Attribute{stringAttr("a")}})
			require.NoError(t, err)
			require.Equal(t, id, c.ID)
		}},
		{"NameUniquePerTenantAfterNormalization", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			g := f.other(t)
			name := "Profile " + rnd()
			f.catalogNamed(t, name)
			tr := f.snapshot(t)
			_, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: "  " + strings.ToUpper(name) + " ", Attributes: []userstore.Attribute{stringAttr("a")}})
			requireDuplicate(t, err, userstore.KindCatalogName, name)
			require.Len(t, f.catalogs(t), 1)
			f.requireNoTrace(t, tr)
			g.catalogNamed(t, name)
			nfd := "Cafe\u0301 " + rnd()
			f.catalogNamed(t, nfd)
			_, err = s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: strings.Replace(nfd, "e\u0301", "\u00e9", 1), Attributes: []userstore.Attribute{stringAttr("a")}})
			requireDuplicate(t, err, userstore.KindCatalogName)
		}},
		{"AddAttribute", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			c := f.defineCatalog(t, stringAttr("nickname"))
			attr := userstore.Attribute{Key: "shirt", Type: userstore.AttrEnum, EnumValues: []string{"s", "m", "l"}}
			got, err := s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: attr})
			require.NoError(t, err)
			require.Equal(t, int64(2), got.Version)
			require.Len(t, got.Attributes, 2)
			requireAttribute(t, attr, got)
			stored := f.getCatalog(t, c.ID)
			require.Equal(t, int64(2), stored.Version)
			requireAttribute(t, attr, stored)
			requireAttribute(t, stringAttr("nickname"), stored)
		}},
		{"DuplicateAttributeKeyRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			key := "k" + rnd()
			c := f.defineCatalog(t, stringAttr(key), stringAttr("other"))
			tr := f.snapshot(t)
			_, err := s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: userstore.Attribute{Key: key, Type: userstore.AttrInt}})
			requireDuplicate(t, err, userstore.KindCatalogAttribute, key)
			got := f.getCatalog(t, c.ID)
			require.Equal(t, int64(1), got.Version)
			requireAttribute(t, stringAttr(key), got)
			f.requireNoTrace(t, tr)
			_, err = s.DeprecateCatalogAttribute(f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: c.ID, Key: key})
			require.NoError(t, err)
			tr = f.snapshot(t)
			_, err = s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: stringAttr(key)})
			requireDuplicate(t, err, userstore.KindCatalogAttribute, key)
			f.requireNoTrace(t, tr)
			_, err = s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: newCatalogName(), Attributes: []userstore.Attribute{stringAttr("twice"), stringAttr("twice")}})
			require.Error(t, err, "a catalog cannot define a key twice")
			require.True(t, isOneOf(err, userstore.ErrValidation, userstore.ErrDuplicate), "defining a key twice: %v", err)
			require.Len(t, f.catalogs(t), 1)
		}},
		{"DeprecateAttribute", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			c := f.defineCatalog(t, stringAttr("nickname"), stringAttr("old"))
			got, err := s.DeprecateCatalogAttribute(f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: c.ID, Key: "old"})
			require.NoError(t, err)
			require.Equal(t, int64(2), got.Version)
			a, ok := got.Attribute("old")
			require.True(t, ok, "a deprecated attribute stays in the catalog")
			require.True(t, a.Deprecated)
			a, _ = got.Attribute("nickname")
			require.False(t, a.Deprecated)
			a, _ = f.getCatalog(t, c.ID).Attribute("old")
			require.True(t, a.Deprecated)
			tr := f.snapshot(t)
			_, err = s.DeprecateCatalogAttribute(f.ctx, &userstore.DeprecateCatalogAttributeParams{CatalogID: c.ID, Key: "missing"})
			require.Error(t, err)
			require.True(t, isOneOf(err, userstore.ErrNotFound, userstore.ErrValidation), "deprecating a missing key: %v", err)
			require.Equal(t, int64(2), f.getCatalog(t, c.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"AttributeValidation", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			c := f.defineCatalog(t, stringAttr("nickname"))
			tr := f.snapshot(t)
			tooManyEnum := make([]string, 65)
			for i := range tooManyEnum {
				tooManyEnum[i] = fmt.Sprintf("v%d", i)
			}
			bad := map[string]userstore.Attribute{
				"key starts with a digit": {Key: "1abc", Type: userstore.AttrString},
				"key upper case":          {Key: "Nick", Type: userstore.AttrString},
				"key with dash":           {Key: "nick-name", Type: userstore.AttrString},
				"key empty":               {Key: "", Type: userstore.AttrString},
				"key too long":            {Key: "a" + strings.Repeat("b", 64), Type: userstore.AttrString},
				"key invalid utf-8":       {Key: "a\xff", Type: userstore.AttrString},
				"unknown type":            {Key: "ok", Type: "float"},
				"empty type":              {Key: "ok", Type: ""},
				"enum without values":     {Key: "ok", Type: userstore.AttrEnum},
				"enum duplicate values":   {Key: "ok", Type: userstore.AttrEnum, EnumValues: []string{"a", "a"}},
				"enum empty value":        {Key: "ok", Type: userstore.AttrEnum, EnumValues: []string{"a", ""}},
				"enum value too long":     {Key: "ok", Type: userstore.AttrEnum, EnumValues: []string{strings.Repeat("v", 65)}},
				"enum too many values":    {Key: "ok", Type: userstore.AttrEnum, EnumValues: tooManyEnum},
				"enum values on a string": {Key: "ok", Type: userstore.AttrString, EnumValues: []string{"a"}},
				"negative max length":     {Key: "ok", Type: userstore.AttrString, MaxLength: -1},
				"max length too large":    {Key: "ok", Type: userstore.AttrString, MaxLength: userstore.MaxValueLength + 1},
			}
			for name, attr := range bad {
				_, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: newCatalogName(), Attributes: []userstore.Attribute{stringAttr("fine"), attr}})
				requireInvalid(t, err, "attributes[1]", "define: %s", name)
				_, err = s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: attr})
				requireInvalid(t, err, "attribute", "add: %s", name)
			}
			tooMany := make([]userstore.Attribute, userstore.MaxAttributes+1)
			for i := range tooMany {
				tooMany[i] = stringAttr(fmt.Sprintf("a%d", i))
			}
			_, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: newCatalogName(), Attributes: tooMany})
			requireInvalid(t, err, "attributes", "more than MaxAttributes attributes")
			require.Len(t, f.catalogs(t), 1)
			require.Equal(t, int64(1), f.getCatalog(t, c.ID).Version)
			f.requireNoTrace(t, tr)
			full, err := s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: newCatalogName(), Attributes: tooMany[:userstore.MaxAttributes]})
			require.NoError(t, err, "MaxAttributes attributes are fine")
			require.Len(t, full.Attributes, userstore.MaxAttributes)
		}},
		{"AddAttributeBeyondMaxRefused", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			attrs := make([]userstore.Attribute, userstore.MaxAttributes)
			for i := range attrs {
				attrs[i] = stringAttr(fmt.Sprintf("a%d", i))
			}
			c := f.defineCatalog(t, attrs...)
			tr := f.snapshot(t)
			_, err := s.AddCatalogAttribute(f.ctx, &userstore.AddCatalogAttributeParams{CatalogID: c.ID, Attribute: stringAttr("one_more")})
			require.Error(t, err)
			require.True(t, isOneOf(err, userstore.ErrValidation, userstore.ErrFailedPrecondition), "adding beyond MaxAttributes: %v", err)
			require.Equal(t, int64(1), f.getCatalog(t, c.ID).Version)
			f.requireNoTrace(t, tr)
		}},
		{"ListInIDOrder", func(t *testing.T, s userstore.Store) {
			f := setup(t, s)
			a := f.defineCatalog(t)
			b := f.defineCatalog(t)
			got := f.catalogs(t)
			require.Len(t, got, 2)
			require.Equal(t, a.ID, got[0].ID)
			require.Equal(t, b.ID, got[1].ID)
			require.Len(t, got[0].Attributes, 1)
		}},
	}
}

func (f *fixture) catalogNamed(t *testing.T, name string) *userstore.Catalog {
	t.Helper()
	c, err := f.s.DefineCatalog(f.ctx, &userstore.DefineCatalogParams{Name: name, Attributes: []userstore.Attribute{stringAttr("a")}})
	require.NoError(t, err, "define catalog")
	return c
}
