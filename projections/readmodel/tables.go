package readmodel

import (
	"slices"
	"strings"
)

// SchemaDefault is the schema of the live read tables (migrations/sql/00002_read_model.sql).
const SchemaDefault = "userstore"

// Names of the read tables.
const (
	TableTenants     = "tenants"
	TableUsers       = "users"
	TableAccounts    = "accounts"
	TableIdentities  = "external_identities"
	TableApps        = "applications"
	TableBindings    = "bindings"
	TableCatalogs    = "catalogs"
	TableProfiles    = "profiles"
	TableMemberships = "memberships"
)

// Column is a column the read model writes: its name and its PostgreSQL type, as the statements cast
// their parameters.
type Column struct {
	Name string
	Type string
}

// Table describes one read table: its primary key and the columns the read model writes, in the order
// in which [Row] values come. A table may have more columns than these — users.guard_seq and
// applications.guard_seq are concurrency devices of adapter/pgstore (docs/adr/0004), written by no
// event and left to their defaults here — but every column listed is a pure function of the log.
type Table struct {
	Name string
	// Key are the primary key columns; they are the first len(Key) of Columns.
	Key []string
	// Unique are the table's other unique keys (each a list of columns of Columns).
	Unique [][]string
	// Columns are the columns the read model writes, Key included.
	Columns []Column
}

// ColumnNames returns the names of the table's columns, in order.
func (t Table) ColumnNames() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// String returns the table's name.
func (t Table) String() string { return t.Name }

func cols(spec string) []Column {
	var out []Column
	for _, f := range strings.Split(spec, ",") {
		name, typ, _ := strings.Cut(strings.TrimSpace(f), " ")
		out = append(out, Column{Name: name, Type: typ})
	}
	return out
}

// tables is the list in its fixed order: tenants first. Every mutation of adapter/pgstore touches its
// tenant's row before any other read row (the tenant guard, or the tenant's own upsert), so a lock on
// the tables in this order cannot deadlock with it (projections/rebuild locks them so).
var tables = []Table{
	{Name: TableTenants, Key: []string{"tenant_id"},
		Columns: cols("tenant_id uuid, slug text, name text, status text, version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableUsers, Key: []string{"tenant_id", "id"},
		Columns: cols("tenant_id uuid, id uuid, display_name text, email text, status text, version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableAccounts, Key: []string{"tenant_id", "id"},
		Columns: cols("tenant_id uuid, id uuid, user_id uuid, login_name text, kind text, status text, credential_ref text, version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableIdentities, Key: []string{"tenant_id", "id"},
		Columns: cols("tenant_id uuid, id uuid, user_id uuid, issuer text, subject text, version bigint, created_at timestamptz")},
	{Name: TableApps, Key: []string{"tenant_id", "id"},
		Columns: cols("tenant_id uuid, id uuid, name text, client_key text, kind text, status text, version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableBindings, Key: []string{"tenant_id", "id"}, Unique: [][]string{{"tenant_id", "application_id", "user_id"}},
		Columns: cols("tenant_id uuid, id uuid, application_id uuid, user_id uuid, roles text[], version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableCatalogs, Key: []string{"tenant_id", "id"},
		Columns: cols("tenant_id uuid, id uuid, name text, attributes jsonb, version bigint, created_at timestamptz, updated_at timestamptz")},
	{Name: TableProfiles, Key: []string{"tenant_id", "user_id", "catalog_id"},
		Columns: cols("tenant_id uuid, user_id uuid, catalog_id uuid, profile_values jsonb, version bigint, updated_at timestamptz")},
	{Name: TableMemberships, Key: []string{"tenant_id", "user_id"},
		Columns: cols("tenant_id uuid, user_id uuid, role text, version bigint, created_at timestamptz, updated_at timestamptz")},
}

// Tables returns the read tables in their fixed order, tenants first: the order in which to lock them.
// The result is a copy; changing it changes nothing here.
func Tables() []Table {
	out := make([]Table, len(tables))
	for i, t := range tables {
		out[i] = Table{Name: t.Name, Key: slices.Clone(t.Key), Columns: slices.Clone(t.Columns)}
		for _, u := range t.Unique {
			out[i].Unique = append(out[i].Unique, slices.Clone(u))
		}
	}
	return out
}

// Lookup returns the read table of a name.
func Lookup(name string) (Table, bool) {
	for _, t := range Tables() {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// position returns the position of a column in the table's Columns, or -1.
func (t Table) position(column string) int {
	return slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == column })
}

// index returns the position of a table in tables; it panics on an unknown name (a bug here).
func index(name string) int {
	for i := range tables {
		if tables[i].Name == name {
			return i
		}
	}
	panic("readmodel: unknown table " + name)
}
