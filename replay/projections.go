package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
	"github.com/netkingdom/userstore/projections/readmodel"
)

// VerifyProjectionsParams select the tenants whose read tables VerifyProjections checks.
type VerifyProjectionsParams struct {
	// TenantID is the tenant to verify; uuid.Nil verifies every tenant that has events or read rows.
	TenantID uuid.UUID
}

// Row diff kinds.
const (
	// RowDiffers: the live row's columns differ from the row the log implies.
	RowDiffers = "differs"
	// RowMissing: the log implies a row the live table lacks.
	RowMissing = "missing"
	// RowExtra: the live table holds a row the log does not imply.
	RowExtra = "extra"
)

// TableSummary counts one read table's rows, over the tenants verified.
type TableSummary struct {
	Table string `json:"table"`
	// Expected counts the rows the log implies; Live the rows the table holds.
	Expected int64 `json:"expected"`
	Live     int64 `json:"live"`
	// Matching, Differing, Missing and Extra count the rows by outcome.
	Matching  int64 `json:"matching"`
	Differing int64 `json:"differing"`
	Missing   int64 `json:"missing"`
	Extra     int64 `json:"extra"`
}

// Drifted reports whether any row of the table differs, is missing or is extra.
func (s *TableSummary) Drifted() bool { return s.Differing+s.Missing+s.Extra > 0 }

// ColumnValue is one column of a row, rendered as text (JSON for arrays and documents, RFC 3339 with
// microseconds in UTC for times).
type ColumnValue struct {
	Column string `json:"column"`
	Value  string `json:"value"`
}

// ColumnDiff is one column whose live value differs from the one the log implies.
type ColumnDiff struct {
	Column   string `json:"column"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
}

// RowDiff is one row where a live table departs from the log.
type RowDiff struct {
	Table string `json:"table"`
	// Kind is RowDiffers, RowMissing or RowExtra.
	Kind string `json:"kind"`
	// Key is the row's primary key.
	Key []ColumnValue `json:"key"`
	// Columns are the differing columns (RowDiffers).
	Columns []ColumnDiff `json:"columns,omitempty"`
	// Row is the whole row: the one expected (RowMissing) or the one found (RowExtra).
	Row []ColumnValue `json:"row,omitempty"`
}

// ProjectionReport is the result of VerifyProjections.
type ProjectionReport struct {
	// Tenants is the number of tenants verified; Events the number of events folded.
	Tenants int64 `json:"tenants"`
	Events  int64 `json:"events"`
	// Tables counts each read table's rows by outcome, in readmodel.Tables order.
	Tables []TableSummary `json:"tables"`
	// Diffs holds the first Config.MaxDiffs differing rows, in the order found; DiffsTotal counts them
	// all.
	Diffs      []RowDiff `json:"diffs,omitempty"`
	DiffsTotal int64     `json:"diffs_total"`
}

// Drifted reports whether any read table departs from the log.
func (r *ProjectionReport) Drifted() bool { return r.DiffsTotal > 0 }

// VerifyProjections folds every stream of one tenant, or of every tenant, from the log with the domain's
// Evolve and compares the rows the read model derives from the folded states (readmodel.Rows, the
// mapping adapter/pgstore writes with) row by row, column by column, with the live read tables —
// tenants, users, accounts, external_identities, applications, bindings, catalogs, profiles and
// memberships (readmodel.Tables; the guard_seq columns are concurrency devices, not state, and are not
// compared).
//
// It runs in one REPEATABLE READ READ ONLY transaction and never writes, so it runs on a replica: it
// builds the expected rows in memory rather than in a temporary schema, and reads the live rows in the
// same snapshot as the events. The store writes a stream's events and its read rows in one transaction,
// so the snapshot sees both or neither: every event visible counts (no horizon), and any difference is
// drift, not lag.
//
// A tenant's events are read in stream order and each table's live rows in key order, through cursors,
// and merged as they go: the memory held is a batch of each, plus the tenant's profiles (whose keys are
// not in stream order) and its roster. An event that does not decode fails the verification with
// ErrUndecodable.
func (r *Replayer) VerifyProjections(ctx context.Context, params *VerifyProjectionsParams) (*ProjectionReport, error) {
	if params == nil {
		params = &VerifyProjectionsParams{}
	}
	tables := readmodel.Tables()
	rep := &ProjectionReport{Tables: make([]TableSummary, len(tables))}
	for i, t := range tables {
		rep.Tables[i].Table = t.Name
	}
	err := r.readOnly(ctx, "verify projections", func(tx pgx.Tx) error {
		prog := r.newProgress()
		if prog.enabled() {
			var n int64
			var err error
			if params.TenantID != uuid.Nil {
				err = tx.QueryRow(ctx, sqlCountVisibleTenant, params.TenantID).Scan(&n)
			} else {
				err = tx.QueryRow(ctx, sqlCountVisible).Scan(&n)
			}
			if err != nil {
				return translate("count the log", err)
			}
			prog.total(n)
		}
		v := &projectionVerifier{r: r, tx: tx, tables: tables, rep: rep, prog: prog}
		if params.TenantID != uuid.Nil {
			return v.tenant(ctx, params.TenantID)
		}
		names := []string{"userstore.events"}
		for _, t := range tables {
			names = append(names, readmodel.Ident(readmodel.SchemaDefault, t.Name))
		}
		return forEachTenant(ctx, tx, names, func(tenant uuid.UUID) error { return v.tenant(ctx, tenant) })
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// projectionVerifier verifies one tenant at a time.
type projectionVerifier struct {
	r      *Replayer
	tx     pgx.Tx
	tables []readmodel.Table
	rep    *ProjectionReport
	prog   *progress
}

func (v *projectionVerifier) tenant(ctx context.Context, tenant uuid.UUID) error {
	v.rep.Tenants++
	merges := make(map[string]*tableMerge, len(v.tables))
	for i := range v.tables {
		m, err := v.openMerge(ctx, tenant, i)
		if err != nil {
			return err
		}
		merges[m.table.Name] = m
	}
	defer func() {
		for _, m := range merges {
			_ = m.live.closeCursor(ctx)
		}
	}()
	events, err := openEventCursor(ctx, v.tx, "read the log", v.r.cfg.BatchSize, v.prog, sqlTenantStreams, tenant)
	if err != nil {
		return err
	}
	defer func() { _ = events.c.closeCursor(ctx) }()

	var (
		profiles []readmodel.Row // their keys are not in stream order: sorted and merged at the end
		ref      domain.StreamRef
		state    domain.Aggregate
	)
	flush := func() error {
		if state == nil {
			return nil
		}
		rows, err := readmodel.Rows(ref, state)
		if err != nil {
			return fmt.Errorf("replay: the read rows of stream %s: %w", ref.ID, err)
		}
		for _, row := range rows {
			if row.Table == readmodel.TableProfiles {
				profiles = append(profiles, row)
				continue
			}
			if err := merges[row.Table].expect(ctx, row.Values); err != nil {
				return err
			}
		}
		state = nil
		return nil
	}
	for {
		ev, err := events.next(ctx)
		if err != nil {
			return err
		}
		if ev == nil {
			break
		}
		v.rep.Events++
		if state == nil || ev.StreamID != ref.ID {
			if err := flush(); err != nil {
				return err
			}
			ref = domain.StreamRef{TenantID: tenant, Type: domain.StreamType(ev.StreamType), ID: ev.StreamID}
			if state, err = domain.NewState(ref); err != nil {
				return fmt.Errorf("%w: the stream of the event at position %d has the unknown type %q", ErrUndecodable, ev.GlobalPosition, ev.StreamType)
			}
		}
		if err := fold(&state, ref, ev); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	slices.SortFunc(profiles, func(a, b readmodel.Row) int { return compareKeys(a.Values, b.Values, 3) })
	pm := merges[readmodel.TableProfiles]
	for _, row := range profiles {
		if err := pm.expect(ctx, row.Values); err != nil {
			return err
		}
	}
	for _, t := range v.tables {
		if err := merges[t.Name].drain(ctx); err != nil {
			return err
		}
	}
	return nil
}

// fold applies one stored event to a stream's state, as domain.Fold does.
func fold(state *domain.Aggregate, ref domain.StreamRef, ev *eventstore.RecordedEvent) error {
	rec, err := logcodec.Recorded(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if st, ok := domain.EventStream(rec.Event.EventType()); !ok || st != ref.Type {
		return fmt.Errorf("%w: the event at position %d is a %s in a %s stream", ErrUndecodable, ev.GlobalPosition,
			rec.Event.EventType(), ref.Type)
	}
	*state = domain.Evolve(*state, rec.Event)
	return nil
}

// tableMerge merges the expected rows of one table, given in key order, with the table's live rows,
// read in key order through a cursor.
type tableMerge struct {
	v     *projectionVerifier
	table *readmodel.Table
	sum   *TableSummary
	live  *cursor
	buf   [][]any
	i     int
	eof   bool
}

func (v *projectionVerifier) openMerge(ctx context.Context, tenant uuid.UUID, i int) (*tableMerge, error) {
	t := &v.tables[i]
	cols := make([]string, len(t.Columns))
	for j, c := range t.Columns {
		cols[j] = "x." + pgx.Identifier{c.Name}.Sanitize()
		if c.Type == "jsonb" {
			cols[j] += "::text"
		}
	}
	keys := make([]string, len(t.Key))
	for j, k := range t.Key {
		keys[j] = "x." + pgx.Identifier{k}.Sanitize()
	}
	// A range of the table's primary key, which leads with tenant_id, in key order.
	sql := "SELECT " + strings.Join(cols, ", ") + " FROM " + readmodel.Ident(readmodel.SchemaDefault, t.Name) +
		" AS x WHERE x.tenant_id = $1::uuid ORDER BY " + strings.Join(keys, ", ")
	c, err := openCursor(ctx, v.tx, "read "+t.Name, v.r.cfg.BatchSize, sql, tenant)
	if err != nil {
		return nil, err
	}
	return &tableMerge{v: v, table: t, sum: &v.rep.Tables[i], live: c}, nil
}

// peek returns the next live row without consuming it, or nil after the last one.
func (m *tableMerge) peek(ctx context.Context) ([]any, error) {
	if m.i == len(m.buf) {
		if m.eof {
			return nil, nil
		}
		m.buf, m.i = m.buf[:0], 0
		n, err := m.live.next(ctx, func(rows pgx.Rows) error {
			row, err := scanLive(rows, m.table)
			if err != nil {
				return err
			}
			m.buf = append(m.buf, row)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			m.eof = true
			return nil, nil
		}
	}
	return m.buf[m.i], nil
}

// expect merges one expected row: live rows with smaller keys are extra; a live row with the same key is
// compared; none is a missing row.
func (m *tableMerge) expect(ctx context.Context, exp []any) error {
	m.sum.Expected++
	nk := len(m.table.Key)
	for {
		live, err := m.peek(ctx)
		if err != nil {
			return err
		}
		c := 1
		if live != nil {
			c = compareKeys(live, exp, nk)
		}
		switch {
		case c < 0:
			m.extra(live)
			m.i++
			continue
		case c == 0:
			m.i++
			m.sum.Live++
			if diffs := m.compare(exp, live); len(diffs) > 0 {
				m.sum.Differing++
				m.v.diff(RowDiff{Table: m.table.Name, Kind: RowDiffers, Key: m.render(exp[:nk], 0), Columns: diffs})
			} else {
				m.sum.Matching++
			}
			return nil
		}
		m.sum.Missing++
		m.v.diff(RowDiff{Table: m.table.Name, Kind: RowMissing, Key: m.render(exp[:nk], 0), Row: m.render(exp, 0)})
		return nil
	}
}

// drain reports the live rows left as extra.
func (m *tableMerge) drain(ctx context.Context) error {
	for {
		live, err := m.peek(ctx)
		if err != nil || live == nil {
			return err
		}
		m.extra(live)
		m.i++
	}
}

func (m *tableMerge) extra(live []any) {
	m.sum.Live++
	m.sum.Extra++
	nk := len(m.table.Key)
	m.v.diff(RowDiff{Table: m.table.Name, Kind: RowExtra, Key: m.render(live[:nk], 0), Row: m.render(live, 0)})
}

func (v *projectionVerifier) diff(d RowDiff) {
	v.rep.DiffsTotal++
	if len(v.rep.Diffs) < v.r.cfg.MaxDiffs {
		v.rep.Diffs = append(v.rep.Diffs, d)
	}
}

// compare returns the columns in which a live row differs from the expected one.
func (m *tableMerge) compare(exp, live []any) []ColumnDiff {
	var out []ColumnDiff
	for j, c := range m.table.Columns {
		if !equalValue(c.Type, exp[j], live[j]) {
			out = append(out, ColumnDiff{Column: c.Name, Expected: renderValue(c.Type, exp[j]), Found: renderValue(c.Type, live[j])})
		}
	}
	return out
}

// render renders values of the table's columns from the first on (offset: the first column's index).
func (m *tableMerge) render(values []any, offset int) []ColumnValue {
	out := make([]ColumnValue, len(values))
	for j, val := range values {
		c := m.table.Columns[offset+j]
		out[j] = ColumnValue{Column: c.Name, Value: renderValue(c.Type, val)}
	}
	return out
}
