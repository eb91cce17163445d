package rebuild

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// liveSchema is the schema of the live tables.
const liveSchema = "userstore"

// createShadow creates the shadow schema with a copy of each of the live tables, read from the catalog
// so that a column, index or constraint a migration adds is covered without a change here:
//
//   - CREATE TABLE … (LIKE userstore.<table> INCLUDING ALL): columns with their types, defaults and
//     generation expressions, NOT NULL and CHECK constraints, and the primary key, unique and other
//     indexes (with names of their own);
//   - the foreign keys, which LIKE does not copy, pointing at the shadow table where they point at a
//     table of the rebuild (audit_records_prev_fkey, the chain's no-gap rule, points at the shadow
//     audit_records itself);
//   - USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables for the projector pool's
//     role, which writes them.
//
// The shadow tables get no row-level security, policies or other grants: only the owner and the
// projector role reach the schema, and nothing serves from it — the swap changes the live tables' rows,
// never which tables are live (docs/adr/0009). Triggers are not copied either; a live table with a
// trigger that rewrites rows would make the verification fail, not pass wrongly.
func (r *run) createShadow(ctx context.Context, tables []string) error {
	var owner, projector string
	if err := r.p.Owner.QueryRow(ctx, sqlCurrentUser).Scan(&owner); err != nil {
		return translate("read the owner pool's role", err)
	}
	if err := r.p.Projector.QueryRow(ctx, sqlCurrentUser).Scan(&projector); err != nil {
		return translate("read the projector pool's role", err)
	}
	fks, err := r.foreignKeys(ctx, tables)
	if err != nil {
		return err
	}
	return translate("create the shadow tables", pgx.BeginFunc(ctx, r.p.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+quote(r.schema)); err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(r.schema, t)+` (LIKE `+ident(liveSchema, t)+` INCLUDING ALL)`); err != nil {
				return err
			}
		}
		for _, fk := range fks {
			if _, err := tx.Exec(ctx, fk.addSQL(r.schema, tables)); err != nil {
				return err
			}
		}
		if projector != owner {
			role := quote(projector)
			if _, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA `+quote(r.schema)+` TO `+role); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+quote(r.schema)+` TO `+role); err != nil {
				return err
			}
		}
		return nil
	}))
}

// foreignKey is a foreign key of a live table, as the catalog describes it.
type foreignKey struct {
	table, name         string
	cols                []string
	refSchema, refTable string
	refCols             []string
	onUpdate, onDelete  string
	match               string
	deferrable          bool
	deferred            bool
}

// foreignKeys reads the foreign keys of the live tables.
func (r *run) foreignKeys(ctx context.Context, tables []string) ([]foreignKey, error) {
	rows, err := r.p.Owner.Query(ctx, sqlForeignKeys, tables)
	if err != nil {
		return nil, translate("read the foreign keys", err)
	}
	defer rows.Close()
	var out []foreignKey
	for rows.Next() {
		var fk foreignKey
		if err := rows.Scan(&fk.table, &fk.name, &fk.cols, &fk.refSchema, &fk.refTable, &fk.refCols,
			&fk.onUpdate, &fk.onDelete, &fk.match, &fk.deferrable, &fk.deferred); err != nil {
			return nil, translate("read the foreign keys", err)
		}
		out = append(out, fk)
	}
	return out, translate("read the foreign keys", rows.Err())
}

// addSQL returns the ALTER TABLE that adds the foreign key to the shadow copy of its table, in schema;
// a reference to a live table that is rebuilt too goes to its shadow copy.
func (fk *foreignKey) addSQL(schema string, rebuilt []string) string {
	ref := ident(fk.refSchema, fk.refTable)
	if fk.refSchema == liveSchema && slices.Contains(rebuilt, fk.refTable) {
		ref = ident(schema, fk.refTable)
	}
	s := `ALTER TABLE ` + ident(schema, fk.table) + ` ADD CONSTRAINT ` + quote(fk.name) +
		` FOREIGN KEY (` + names(fk.cols) + `) REFERENCES ` + ref + ` (` + names(fk.refCols) + `)`
	switch fk.match {
	case "f":
		s += ` MATCH FULL`
	case "p":
		s += ` MATCH PARTIAL`
	}
	s += ` ON UPDATE ` + fkAction(fk.onUpdate) + ` ON DELETE ` + fkAction(fk.onDelete)
	if fk.deferrable {
		s += ` DEFERRABLE`
		if fk.deferred {
			s += ` INITIALLY DEFERRED`
		}
	}
	return s
}

// fkAction spells a pg_constraint action code.
func fkAction(code string) string {
	switch code {
	case "r":
		return "RESTRICT"
	case "c":
		return "CASCADE"
	case "n":
		return "SET NULL"
	case "d":
		return "SET DEFAULT"
	}
	return "NO ACTION"
}
