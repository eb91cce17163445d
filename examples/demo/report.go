package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// report writes the demo's plain-text output. It keeps the first write error, which run returns.
type report struct {
	w   io.Writer
	err error
}

func (r *report) printf(format string, args ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format, args...)
	}
}

// title prints the heading of the report.
func (r *report) title(s string) { r.printf("%s\n%s\n", s, strings.Repeat("=", len(s))) }

// section starts a section: a blank line and its heading.
func (r *report) section(format string, args ...any) { r.printf("\n"+format+"\n", args...) }

// line prints one line.
func (r *report) line(format string, args ...any) { r.printf(format+"\n", args...) }

// step prints one indented line: a label in a column of its own, then the text.
func (r *report) step(label, format string, args ...any) {
	r.printf("  %-19s "+format+"\n", append([]any{label}, args...)...)
}

// table starts an aligned, indented table with the given column headings.
func (r *report) table(headings ...string) *table {
	t := &table{r: r, tw: tabwriter.NewWriter(&errWriter{r}, 0, 0, 2, ' ', 0)}
	t.row(headings...)
	return t
}

// table is a table of a report; flush writes it.
type table struct {
	r  *report
	tw *tabwriter.Writer
}

func (t *table) row(cells ...string) { _, _ = fmt.Fprintf(t.tw, "  %s\n", strings.Join(cells, "\t")) }

func (t *table) flush() { _ = t.tw.Flush() }

// errWriter writes to a report's writer, recording the first error in the report.
type errWriter struct{ r *report }

func (w *errWriter) Write(p []byte) (int, error) {
	w.r.printf("%s", p)
	if w.r.err != nil {
		return 0, w.r.err
	}
	return len(p), nil
}
