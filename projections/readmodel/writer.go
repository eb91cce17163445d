package readmodel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
)

// Writer writes read rows into the read tables of one schema: the live ones ([SchemaDefault]) or a copy
// of them with the same table names in another schema (a rebuild's shadow tables). Its statements are
// built once, by [NewWriter]. A Writer is immutable and safe for concurrent use.
type Writer struct {
	schema string
	// upsert and del are per table (the index in tables): insert-or-update a row, delete a row by key.
	upsert, del []string
	// conflicts are per table: for each of its other unique keys, the statement that deletes the rows
	// holding a row's values of that key under another primary key, and which of the row's values it
	// takes.
	conflicts [][]conflict
	// deleteOtherMembers deletes a tenant's memberships except those of the users $2.
	deleteOtherMembers string
}

// NewWriter returns a writer of the read tables in schema; an empty schema is [SchemaDefault].
func NewWriter(schema string) *Writer {
	if schema == "" {
		schema = SchemaDefault
	}
	w := &Writer{schema: schema, upsert: make([]string, len(tables)), del: make([]string, len(tables)),
		conflicts: make([][]conflict, len(tables))}
	for i := range tables {
		w.upsert[i] = upsertSQL(schema, &tables[i])
		w.del[i] = deleteSQL(schema, &tables[i])
		for _, u := range tables[i].Unique {
			w.conflicts[i] = append(w.conflicts[i], conflictSQL(schema, &tables[i], u))
		}
	}
	w.deleteOtherMembers = `DELETE FROM ` + Ident(schema, TableMemberships) + ` AS m
 WHERE m.tenant_id = $1::uuid AND NOT (m.user_id = ANY ($2::text[]::uuid[]))`
	return w
}

// Schema returns the writer's schema.
func (w *Writer) Schema() string { return w.schema }

// Ident returns the quoted, schema-qualified name of a table, for SQL text.
func Ident(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }

// upsertSQL inserts a row or, when its key exists, sets every other column the read model writes; the
// columns it does not write (guard_seq) keep their values. The conflict target is the key's columns
// (the primary key), not a constraint name, so that the statement also fits a copy of the table whose
// constraints have other names.
func upsertSQL(schema string, t *Table) string {
	names := make([]string, len(t.Columns))
	params := make([]string, len(t.Columns))
	var set []string
	for i, c := range t.Columns {
		names[i] = c.Name
		params[i] = "$" + strconv.Itoa(i+1) + "::" + c.Type
		if i >= len(t.Key) {
			set = append(set, c.Name+" = EXCLUDED."+c.Name)
		}
	}
	return `INSERT INTO ` + Ident(schema, t.Name) + ` AS t (` + strings.Join(names, ", ") + `)
VALUES (` + strings.Join(params, ", ") + `)
ON CONFLICT (` + strings.Join(t.Key, ", ") + `) DO UPDATE
   SET ` + strings.Join(set, ", ")
}

// deleteSQL deletes the row of a key.
func deleteSQL(schema string, t *Table) string {
	conds := make([]string, len(t.Key))
	for i, k := range t.Key {
		conds[i] = "t." + k + " = $" + strconv.Itoa(i+1) + "::" + t.Columns[i].Type
	}
	return `DELETE FROM ` + Ident(schema, t.Name) + ` AS t WHERE ` + strings.Join(conds, " AND ")
}

// conflict deletes the rows that hold a row's values of a unique key under another primary key.
type conflict struct {
	sql string
	// args are the positions in the row's values of the statement's parameters.
	args []int
}

// conflictSQL builds the conflict statement of one unique key: its columns' values, then the primary
// key's.
func conflictSQL(schema string, t *Table, unique []string) conflict {
	var (
		c     conflict
		conds []string
		key   []string
		keyP  []string
	)
	for _, col := range unique {
		pos := t.position(col)
		c.args = append(c.args, pos)
		conds = append(conds, "t."+col+" = $"+strconv.Itoa(len(c.args))+"::"+t.Columns[pos].Type)
	}
	for i, k := range t.Key {
		c.args = append(c.args, i)
		key = append(key, "t."+k)
		keyP = append(keyP, "$"+strconv.Itoa(len(c.args))+"::"+t.Columns[i].Type)
	}
	c.sql = `DELETE FROM ` + Ident(schema, t.Name) + ` AS t WHERE ` + strings.Join(conds, " AND ") +
		` AND (` + strings.Join(key, ", ") + `) <> (` + strings.Join(keyP, ", ") + `)`
	return c
}

// QueueRow queues the upsert of one row.
func (w *Writer) QueueRow(b *pgx.Batch, r Row) {
	b.Queue(w.upsert[index(r.Table)], r.Values...)
}

// QueueWrite queues the read-model change of one append, as the durable store makes it in the append's
// transaction: the stream's row becomes its state's view, or is deleted when the state is no longer
// found (an unlinked identity, a removed binding); for a roster, only the memberships of the users that
// events (the appended ones) name are set or deleted. state is the stream's state after events.
func (w *Writer) QueueWrite(b *pgx.Batch, ref domain.StreamRef, state domain.Aggregate, events []domain.Event) error {
	if s, ok := state.(domain.RosterState); ok {
		for _, ev := range events {
			userID, ok := domain.RosterUser(ev)
			if !ok {
				continue
			}
			if m, ok := s.Membership(userID); ok {
				w.QueueRow(b, membershipRow(ref.TenantID, m))
			} else {
				b.Queue(w.del[index(TableMemberships)], ref.TenantID, userID)
			}
		}
		return nil
	}
	return w.queueStream(b, ref, state, false)
}

// QueueReplace queues the statements that make a stream's read rows exactly those of its state,
// whatever they were before: the stream's row is set (or deleted, see [Rows]); for a roster, every
// member's row is set and the tenant's other memberships are deleted. A rebuild re-folds a stream from
// the log and replaces its rows with it.
//
// A rebuild re-folds streams in its own order, not in the order of their commits, so its tables may
// still hold the row of another stream that a later event removed — say of a binding of the same
// (application, user) that was unbound before this one was bound. Before setting a row, QueueReplace
// therefore deletes the rows that hold the row's values of another unique key of the table (Unique)
// under another primary key: in the fold of the whole log no two rows share them, so those rows are
// stale, and their own re-fold removes nothing more.
func (w *Writer) QueueReplace(b *pgx.Batch, ref domain.StreamRef, state domain.Aggregate) error {
	s, ok := state.(domain.RosterState)
	if !ok {
		return w.queueStream(b, ref, state, true)
	}
	ms := s.Memberships()
	ids := make([]string, len(ms))
	for i := range ms {
		ids[i] = ms[i].UserID.String()
		w.QueueRow(b, membershipRow(ref.TenantID, &ms[i]))
	}
	b.Queue(w.deleteOtherMembers, ref.TenantID, ids)
	return nil
}

// queueStream sets or deletes the one row of a stream that is not a roster; replace: see QueueReplace.
func (w *Writer) queueStream(b *pgx.Batch, ref domain.StreamRef, state domain.Aggregate, replace bool) error {
	rows, err := Rows(ref, state)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		table, ok := removable(state)
		if !ok {
			return fmt.Errorf("readmodel: a %s stream without a read row", ref.Type)
		}
		b.Queue(w.del[index(table)], ref.TenantID, ref.ID)
		return nil
	}
	for _, r := range rows {
		if replace {
			for _, c := range w.conflicts[index(r.Table)] {
				args := make([]any, len(c.args))
				for i, pos := range c.args {
					args[i] = r.Values[pos]
				}
				b.Queue(c.sql, args...)
			}
		}
		w.QueueRow(b, r)
	}
	return nil
}

// removable returns the table of a state whose row disappears when it is no longer found; its key is
// (tenant_id, id) with id the stream's id.
func removable(state domain.Aggregate) (string, bool) {
	switch state.(type) {
	case domain.IdentityState:
		return TableIdentities, true
	case domain.BindingState:
		return TableBindings, true
	}
	return "", false
}
