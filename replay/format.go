package replay

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netkingdom/userstore"
)

// Format is an output format.
type Format string

// Output formats. The audit trail has all three; states and reports have text (a table for humans) and
// JSON.
const (
	FormatTable Format = "table"
	FormatJSONL Format = "jsonl"
	FormatCSV   Format = "csv"
	FormatJSON  Format = "json"
)

// TimeLayout renders times in every output: UTC with microseconds, the precision the store keeps.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// auditJSON is the JSON-lines and CSV form of an audit record: audit_records' column names, the full
// hashes.
type auditJSON struct {
	TenantID   string `json:"tenant_id"`
	Sequence   int64  `json:"sequence"`
	EventID    string `json:"event_id"`
	Position   int64  `json:"position"`
	OccurredAt string `json:"occurred_at"`
	ActorType  string `json:"actor_type"`
	ActorID    string `json:"actor_id"`
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	RequestID  string `json:"request_id"`
	Outcome    string `json:"outcome"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
}

var auditCSVHeader = []string{"tenant_id", "sequence", "event_id", "position", "occurred_at", "actor_type",
	"actor_id", "action", "target_type", "target_id", "request_id", "outcome", "prev_hash", "hash"}

func toAuditJSON(r *userstore.AuditRecord) auditJSON {
	return auditJSON{
		TenantID: r.TenantID.String(), Sequence: r.Sequence, EventID: r.EventID.String(), Position: r.Position,
		OccurredAt: formatTime(r.OccurredAt), ActorType: string(r.Actor.Type), ActorID: r.Actor.ID,
		Action: r.Action, TargetType: r.TargetType, TargetID: r.TargetID.String(), RequestID: r.RequestID,
		Outcome: r.Outcome, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

// AuditWriter writes audit records one at a time in a format: a table (one line per record, fixed
// columns, the hash abbreviated to 16 digits), JSON lines or CSV (every column, full hashes). Output is
// buffered: call Flush at the end.
type AuditWriter struct {
	format Format
	w      *bufio.Writer
	csv    *csv.Writer
	enc    *json.Encoder
	header bool
}

// NewAuditWriter returns a writer of records in format f (table, jsonl or csv).
func NewAuditWriter(w io.Writer, f Format) (*AuditWriter, error) {
	aw := &AuditWriter{format: f, w: bufio.NewWriter(w)}
	switch f {
	case FormatTable:
	case FormatJSONL:
		aw.enc = json.NewEncoder(aw.w)
		aw.enc.SetEscapeHTML(false)
	case FormatCSV:
		aw.csv = csv.NewWriter(aw.w)
	default:
		return nil, invalid("format", "must be table, jsonl or csv")
	}
	return aw, nil
}

const auditTableRow = "%-8s %-10s %-27s %-24s %-28s %-48s %-16s %s\n"

// Write writes one record.
func (aw *AuditWriter) Write(r *userstore.AuditRecord) error {
	switch aw.format {
	case FormatJSONL:
		return aw.enc.Encode(toAuditJSON(r))
	case FormatCSV:
		if !aw.header {
			aw.header = true
			if err := aw.csv.Write(auditCSVHeader); err != nil {
				return err
			}
		}
		j := toAuditJSON(r)
		return aw.csv.Write([]string{j.TenantID, strconv.FormatInt(j.Sequence, 10), j.EventID,
			strconv.FormatInt(j.Position, 10), j.OccurredAt, j.ActorType, j.ActorID, j.Action, j.TargetType,
			j.TargetID, j.RequestID, j.Outcome, j.PrevHash, j.Hash})
	}
	if !aw.header {
		aw.header = true
		if _, err := fmt.Fprintf(aw.w, auditTableRow, "SEQ", "POSITION", "TIME", "ACTOR", "ACTION", "TARGET", "REQUEST", "HASH"); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(aw.w, auditTableRow, strconv.FormatInt(r.Sequence, 10), strconv.FormatInt(r.Position, 10),
		formatTime(r.OccurredAt), string(r.Actor.Type)+":"+r.Actor.ID, r.Action, r.TargetType+":"+r.TargetID.String(),
		orDash(r.RequestID), abbrev(r.Hash))
	return err
}

// Flush writes out what is buffered (the table's header too, when no record came).
func (aw *AuditWriter) Flush() error {
	if aw.format == FormatCSV {
		if !aw.header {
			aw.header = true
			_ = aw.csv.Write(auditCSVHeader)
		}
		aw.csv.Flush()
		if err := aw.csv.Error(); err != nil {
			return err
		}
	}
	return aw.w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// abbrev shortens a hash for a table.
func abbrev(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteState writes a reconstructed entity: as text (a header, the view's fields one per line, and with
// a diff the change of every event) or as JSON (the StateResult).
func WriteState(w io.Writer, res *StateResult, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, res)
	case FormatTable:
	default:
		return invalid("format", "must be table or json")
	}
	bw := bufio.NewWriter(w)
	if len(res.Steps) > 0 {
		for _, s := range res.Steps {
			fmt.Fprintf(bw, "v%-4d position %-10d %s  %-28s by %s:%s%s\n", s.Version, s.Position, formatTime(s.RecordedAt),
				s.EventType, s.Actor.Type, s.Actor.ID, requestSuffix(s.RequestID))
			if len(s.Changes) == 0 {
				fmt.Fprintln(bw, "      (no change)")
			}
			for _, c := range s.Changes {
				switch {
				case c.Before == nil:
					fmt.Fprintf(bw, "      + %-24s %s\n", c.Field, c.After)
				case c.After == nil:
					fmt.Fprintf(bw, "      - %-24s %s\n", c.Field, c.Before)
				default:
					fmt.Fprintf(bw, "      ~ %-24s %s -> %s\n", c.Field, c.Before, c.After)
				}
			}
		}
		fmt.Fprintln(bw)
	}
	where := "before its first event"
	if res.Version > 0 {
		where = fmt.Sprintf("at position %d (stream version %d, recorded %s)", res.Position, res.Version, formatTime(res.RecordedAt))
	}
	status := "exists"
	if !res.Found {
		status = "does not exist"
	}
	fmt.Fprintf(bw, "%s in tenant %s %s: %s\n", res.Entity, res.Entity.TenantID, where, status)
	if res.View != nil {
		fields, err := flatten(diffable(res.View), true)
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			fmt.Fprintf(bw, "  %-26s %s\n", k, fields[k])
		}
	}
	return bw.Flush()
}

func requestSuffix(id string) string {
	if id == "" {
		return ""
	}
	return "  request " + id
}

// WriteChainReport writes VerifyChain's report: as text (each tenant's first divergence with both
// records, the skipped events, and a summary line) or as JSON.
func WriteChainReport(w io.Writer, rep *ChainReport, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, rep)
	case FormatTable:
	default:
		return invalid("format", "must be table or json")
	}
	bw := bufio.NewWriter(w)
	for _, d := range rep.Divergences {
		fmt.Fprintf(bw, "DIVERGENCE tenant %s at sequence %d: %s\n", d.TenantID, d.Sequence, divergenceSentence(&d))
		fmt.Fprintf(bw, "  expected hash  %s\n", orDash(d.ExpectedHash))
		fmt.Fprintf(bw, "  found hash     %s\n", orDash(d.FoundHash))
		if len(d.Fields) > 0 {
			fmt.Fprintf(bw, "  differs in     %s\n", strings.Join(d.Fields, ", "))
		}
		if d.Found != nil {
			consistent := "no: the record was changed without recomputing its hash"
			if d.FoundConsistent {
				consistent = "yes: the record was rewritten or moved with a valid hash; the log disagrees"
			}
			fmt.Fprintf(bw, "  found hash matches the found record's content: %s\n", consistent)
		}
		if d.Expected != nil {
			fmt.Fprintf(bw, "  expected       %s\n", recordLine(d.Expected))
		}
		if d.Found != nil {
			fmt.Fprintf(bw, "  found          %s\n", recordLine(d.Found))
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(bw, "skipped: tenant %s event %s at position %d (%s), skipped by %s at %s: no record, by design\n",
			s.TenantID, s.EventID, s.Position, s.EventType, orDash(s.By), formatTime(s.At))
	}
	verdict := "OK: every stored record equals the log's"
	if rep.Diverged() {
		verdict = fmt.Sprintf("DIVERGENCE in %d tenant(s)", len(rep.Divergences))
	}
	fmt.Fprintf(bw, "verify-chain: %s; %d tenant(s), %d record(s) verified, %d event(s) not yet projected, %d above the read horizon\n",
		verdict, rep.Tenants, rep.Records, rep.Unprojected, rep.Pending)
	return bw.Flush()
}

func divergenceSentence(d *ChainDivergence) string {
	switch d.Kind {
	case DivergenceMissing:
		if d.Found == nil {
			return "the record is missing (the table ends before it)"
		}
		return fmt.Sprintf("the record is missing (the next stored record has sequence %d)", d.Found.Sequence)
	case DivergenceExtra:
		return "the table holds a record that no processed event accounts for"
	}
	return "the stored record differs from the log's"
}

func recordLine(r *userstore.AuditRecord) string {
	return fmt.Sprintf("seq %d event %s position %d %s %s by %s:%s on %s:%s request %s", r.Sequence, r.EventID,
		r.Position, formatTime(r.OccurredAt), r.Action, r.Actor.Type, r.Actor.ID, r.TargetType, r.TargetID, orDash(r.RequestID))
}

// WriteProjectionReport writes VerifyProjections' report: as text (a table of the read tables' counts,
// the first differing rows and a summary line) or as JSON.
func WriteProjectionReport(w io.Writer, rep *ProjectionReport, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, rep)
	case FormatTable:
	default:
		return invalid("format", "must be table or json")
	}
	bw := bufio.NewWriter(w)
	const row = "%-20s %9s %9s %9s %9s %9s %9s\n"
	fmt.Fprintf(bw, row, "TABLE", "EXPECTED", "LIVE", "MATCHING", "DIFFERING", "MISSING", "EXTRA")
	for _, t := range rep.Tables {
		fmt.Fprintf(bw, row, t.Table, strconv.FormatInt(t.Expected, 10), strconv.FormatInt(t.Live, 10),
			strconv.FormatInt(t.Matching, 10), strconv.FormatInt(t.Differing, 10), strconv.FormatInt(t.Missing, 10),
			strconv.FormatInt(t.Extra, 10))
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(bw, "\nDRIFT %s %s: %s\n", d.Table, columnList(d.Key), rowSentence(d.Kind))
		for _, c := range d.Columns {
			fmt.Fprintf(bw, "  %-16s expected %s\n  %-16s found    %s\n", c.Column, c.Expected, "", c.Found)
		}
		for _, c := range d.Row {
			fmt.Fprintf(bw, "  %-16s %s\n", c.Column, c.Value)
		}
	}
	if rest := rep.DiffsTotal - int64(len(rep.Diffs)); rest > 0 {
		fmt.Fprintf(bw, "\n… and %d more differing row(s)\n", rest)
	}
	verdict := "OK: every read row equals the fold of the log"
	if rep.Drifted() {
		verdict = fmt.Sprintf("DRIFT: %d row(s) differ from the fold of the log", rep.DiffsTotal)
	}
	fmt.Fprintf(bw, "\nverify-projections: %s; %d tenant(s), %d event(s) folded\n", verdict, rep.Tenants, rep.Events)
	return bw.Flush()
}

func columnList(cs []ColumnValue) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Column + "=" + c.Value
	}
	return strings.Join(parts, " ")
}

func rowSentence(kind string) string {
	switch kind {
	case RowMissing:
		return "missing (the log implies this row; the table lacks it)"
	case RowExtra:
		return "extra (the table holds this row; the log does not imply it)"
	}
	return "differs from the fold of the log"
}
