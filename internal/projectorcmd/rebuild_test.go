package projectorcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections/readmodel"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// rebuildVars returns the variables of a rebuild on db: the owner's and the projector's URLs.
func rebuildVars(t *testing.T, db *pgtest.Database) map[string]string {
	t.Helper()
	return map[string]string{
		EnvOwnerDatabaseURL:     dsn(t, pgtest.EnvOwnerURL, db),
		EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db),
	}
}

// tableLine matches a line of the rebuild's table: name, live rows, shadow rows, checksums, deleted,
// inserted.
var tableLine = regexp.MustCompile(`(?m)^(\w+)\s+(\d+)\s+(\d+)\s+(match|differed|differed, repaired)\s+(\d+)\s+(\d+)$`)

// rebuiltTables parses the table of a rebuild's output.
func rebuiltTables(t *testing.T, stdout string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range tableLine.FindAllStringSubmatch(stdout, -1) {
		out[m[1]] = m[2:]
	}
	return out
}

// phaseLines returns the phases of the "rebuild: phase" log lines (JSON) in stderr, in order.
func phaseLines(t *testing.T, stderr string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Phase   string `json:"phase"`
			Attempt int    `json:"attempt"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "a log line that is not JSON: %s", line)
		if rec.Msg == "rebuild: phase" {
			out = append(out, rec.Phase)
		}
	}
	return out
}

// TestRebuild: after a workload, `rebuild readmodel` verifies every read table (live rows equal to the
// rebuilt ones, checksums matching) and exits 0, logging a line per phase (stderr is no terminal);
// `rebuild audit` with the live audit projection behind appends the records it had not written yet and
// exits 0; then every event has its record.
func TestRebuild(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	vars := rebuildVars(t, db)
	history(t, ctx, db, 3)
	catchUp(t, ctx, db)
	history(t, ctx, db, 2) // the live audit projection is behind these

	res := runMain(t, ctx, vars, "rebuild", "readmodel")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "rebuild readmodel: verified, no drift\n")
	require.Regexp(t, `(?m)^events: \d+ copied, \d+ caught up$`, res.stdout)
	require.Regexp(t, `(?m)^time: .+ \(copy .+, catch-up .+, swap .+ in 1 attempt\); the read tables were locked for writes for .+$`, res.stdout)
	require.Regexp(t, `(?m)^TABLE\s+LIVE ROWS\s+SHADOW ROWS\s+CHECKSUMS\s+DELETED\s+INSERTED$`, res.stdout)
	tables := rebuiltTables(t, res.stdout)
	require.Len(t, tables, len(readmodel.Tables()))
	for _, tb := range readmodel.Tables() {
		row, ok := tables[tb.Name]
		require.True(t, ok, tb.Name)
		require.Equal(t, row[0], row[1], "%s: live and shadow rows", tb.Name)
		require.Equal(t, []string{"match", "0", "0"}, row[2:], tb.Name)
	}
	require.NotEqual(t, "0", tables[readmodel.TableUsers][0])
	phases := phaseLines(t, res.stderr)
	require.Equal(t, []string{"copy", "catch-up", "swap", "verify"}, phases)
	require.Contains(t, res.stderr, `"msg":"rebuild: done"`)

	events := countEvents(t, ctx, db)
	res = runMain(t, ctx, vars, "rebuild", "-workers", "2", "-batch-size", "50", "audit")
	require.Equal(t, ExitOK, res.code)
	require.Regexp(t, `^rebuild audit: verified, no drift; appended \d+ records the live projection had not written yet\n`, res.stdout)
	require.Contains(t, res.stdout, "the live audit projection paused for")
	row := rebuiltTables(t, res.stdout)["audit_records"]
	require.NotNil(t, row)
	require.Equal(t, row[0], row[1])
	require.Equal(t, "match", row[2])
	live, _ := strconv.ParseInt(row[0], 10, 64)
	appended, _ := strconv.ParseInt(row[4], 10, 64)
	require.Positive(t, appended)
	require.Equal(t, events, live+appended)
	var records int64
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx, `SELECT count(*) FROM userstore.audit_records`).Scan(&records))
	require.Equal(t, events, records)

	// Nothing left behind.
	var schemas int
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx,
		`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'userstore_rebuild_%'`).Scan(&schemas))
	require.Zero(t, schemas)
}

// TestRebuildDrift: a live read row changed behind the store's back makes `rebuild readmodel` refuse
// (exit 1), naming the table on stdout and stderr and changing nothing; -keep-shadow leaves the shadow
// schema for -cleanup; -force repairs the row (exit 0) and a second run finds no drift.
func TestRebuildDrift(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	vars := rebuildVars(t, db)
	tenants := history(t, ctx, db, 2)
	admin := db.Pool(t, pgtest.Admin)
	tag, err := admin.Exec(ctx, `UPDATE userstore.users SET display_name = 'tampered' WHERE tenant_id = $1 AND display_name = 'Renamed'`,
		tenants[0])
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	tampered := func() int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM userstore.users WHERE display_name = 'tampered'`).Scan(&n))
		return n
	}
	shadowSchemas := func() int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`,
			rebuild.ShadowSchema(rebuild.TargetReadModel)).Scan(&n))
		return n
	}

	res := runMain(t, ctx, vars, "rebuild", "readmodel")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stdout, "rebuild readmodel: DRIFT: 1 table differs from the rebuild from the log; nothing was changed\n")
	require.Regexp(t, `(?m)^users\s+\d+\s+\d+\s+[0-9a-f]{32}\s+[0-9a-f]{32}$`, res.stdout)
	require.Contains(t, res.stdout, "projector rebuild -force readmodel")
	require.Contains(t, res.stderr, "projector: rebuild: readmodel: the live tables differ from the rebuild: users (live ")
	require.Equal(t, 1, tampered())
	require.Zero(t, shadowSchemas())

	res = runMain(t, ctx, vars, "rebuild", "-keep-shadow", "readmodel")
	require.Equal(t, ExitFailed, res.code)
	require.Contains(t, res.stdout, "the rebuilt rows stay in schema "+rebuild.ShadowSchema(rebuild.TargetReadModel))
	require.Equal(t, 1, shadowSchemas())
	res = runMain(t, ctx, vars, "rebuild", "-cleanup", "readmodel")
	require.Equal(t, ExitOK, res.code)
	require.Equal(t, "rebuild readmodel: cleaned up: schema userstore_rebuild_readmodel dropped if it existed\n", res.stdout)
	require.Zero(t, shadowSchemas())

	res = runMain(t, ctx, vars, "rebuild", "-force", "readmodel")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "rebuild readmodel: drift repaired (-force): 1 of 9 tables differed; 1 live row deleted, 1 inserted\n")
	tables := rebuiltTables(t, res.stdout)
	require.Equal(t, []string{"differed, repaired", "1", "1"}, tables[readmodel.TableUsers][2:])
	require.Equal(t, []string{"match", "0", "0"}, tables[readmodel.TableAccounts][2:])
	require.Zero(t, tampered())

	res = runMain(t, ctx, vars, "rebuild", "readmodel")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "rebuild readmodel: verified, no drift\n")
	for name, row := range rebuiltTables(t, res.stdout) {
		require.Equal(t, "match", row[2], name)
	}
}

// cancelOn is a writer that cancels a context once the text written to it contains a string.
type cancelOn struct {
	syncBuffer
	needle string
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.syncBuffer.Write(p)
	if strings.Contains(c.String(), c.needle) {
		c.once.Do(c.cancel)
	}
	return n, err
}

// TestRebuildCancelled: a cancellation (SIGINT or SIGTERM in the program) during the copy stops the
// rebuild with exit code 1, saying so; the shadow schema is dropped and the live tables keep serving.
func TestRebuildCancelled(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	vars := rebuildVars(t, db)
	history(t, ctx, db, 2)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stderr := &cancelOn{needle: `"phase":"copy"`, cancel: cancel}
	var stdout syncBuffer
	code := Main(rctx, []string{"rebuild", "readmodel"}, &Env{Stdout: &stdout, Stderr: stderr, Getenv: func(k string) string { return vars[k] }})
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, ExitFailed, code)
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "projector: rebuild readmodel interrupted: ")
	require.Contains(t, stderr.String(), "context canceled")
	var schemas int
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx,
		`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'userstore_rebuild_%'`).Scan(&schemas))
	require.Zero(t, schemas)

	res := runMain(t, ctx, vars, "rebuild", "readmodel")
	require.Equal(t, ExitOK, res.code)
}

// TestRebuildUsage: a missing or unknown target, the outbox, a missing owner URL, invalid or
// conflicting flags are usage errors (exit 2) — the targets' without connecting; -h lists the flags
// and variables; flags and variables combine as elsewhere, the target before or after the flags.
func TestRebuildUsage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	// Hosts that do not exist: these errors come before any connection.
	vars := map[string]string{
		EnvOwnerDatabaseURL:     "postgres://userstore_owner@db.invalid/userstore",
		EnvProjectorDatabaseURL: "postgres://userstore_projector@db.invalid/userstore",
	}
	cases := []struct {
		vars map[string]string
		args []string
		want string
	}{
		{vars, []string{"rebuild"}, "rebuild: name the target: readmodel or audit"},
		{vars, []string{"rebuild", "-force"}, "rebuild: name the target"},
		{vars, []string{"rebuild", "nope"}, `rebuild: unknown target: Params.Target "nope"`},
		{vars, []string{"rebuild", "outbox"}, "the outbox is a delivery, not state"},
		{vars, []string{"rebuild", "-cleanup", "outbox"}, "the outbox is a delivery, not state"},
		{map[string]string{EnvProjectorDatabaseURL: vars[EnvProjectorDatabaseURL]}, []string{"rebuild", "readmodel"},
			"no database: set -owner-database-url or " + EnvOwnerDatabaseURL},
		{map[string]string{EnvOwnerDatabaseURL: vars[EnvOwnerDatabaseURL]}, []string{"rebuild", "readmodel"},
			"no database: set -database-url or " + EnvProjectorDatabaseURL},
		{vars, []string{"rebuild", "-batch-size", "-1", "readmodel"}, "-batch-size must not be negative"},
		{vars, []string{"rebuild", "-lock-timeout", "10us", "readmodel"}, "-lock-timeout must be at least 1ms"},
		{vars, []string{"rebuild", "-cleanup", "-force", "readmodel"}, "-cleanup rebuilds nothing"},
		{vars, []string{"rebuild", "readmodel", "audit"}, `unexpected argument "audit"`},
		{vars, []string{"rebuild", "-log-format", "xml", "readmodel"}, "-log-format"},
	}
	for _, c := range cases {
		res := runMain(t, ctx, c.vars, c.args...)
		require.Equal(t, ExitUsage, res.code, c.args)
		require.Contains(t, res.stderr, c.want, c.args)
	}

	res := runMain(t, ctx, vars, "rebuild", "-h")
	require.Equal(t, ExitOK, res.code)
	for _, want := range []string{"usage: projector rebuild [flags] <readmodel|audit>", "-owner-database-url", EnvOwnerDatabaseURL,
		"-owner-database-password-file", EnvOwnerPasswordFile, "-database-url", EnvProjectorDatabaseURL, "-force", "-keep-shadow",
		"-cleanup", EnvRebuildBatchSize, EnvRebuildWorkers, EnvRebuildLockTimeout, EnvRebuildSwapAttempts, EnvRebuildCatchUpRounds} {
		require.Contains(t, res.stderr, want)
	}
	require.Contains(t, runMain(t, ctx, nil, "help").stdout, "rebuild <target>")

	env := &Env{Stderr: &bytes.Buffer{}, Getenv: func(k string) string {
		return map[string]string{EnvRebuildWorkers: "6", EnvRebuildLockTimeout: "2s", EnvRebuildBatchSize: "0"}[k]
	}}
	for _, args := range [][]string{{"audit", "-force", "-workers", "3"}, {"-force", "-workers", "3", "audit"}} {
		o, err := parseRebuild(args, env)
		require.NoError(t, err, args)
		require.Equal(t, "audit", o.target)
		require.True(t, o.rebuild.Force)
		require.False(t, o.rebuild.KeepShadow)
		require.Equal(t, 3, o.rebuild.Workers)
		require.Equal(t, 2*time.Second, o.rebuild.LockTimeout)
		require.Zero(t, o.rebuild.BatchSize) // zero: the library's default
		require.Equal(t, rebuild.BatchSizeDefault, o.rebuild.WithDefaults().BatchSize)
		require.Equal(t, rebuild.SwapAttemptsDefault, o.rebuild.SwapAttempts)
	}
}

// TestLineProgress: without a terminal, a rebuild's progress is a log line per phase (a new swap
// attempt is a new phase; the audit swap's reports without an attempt are not), and within a phase at
// most one line per interval, with the events done (the read model's catch-up rounds summed), the total,
// the rate and the time left.
func TestLineProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := newLogger(&logOptions{level: "info", format: "json"}, &buf)
	require.NoError(t, err)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	l := newLineProgress(log, func() time.Time { return now }, 5*time.Second)
	at := func(sec int, ph rebuild.Phase, done, total int64, attempt int) {
		now = start.Add(time.Duration(sec) * time.Second)
		l.report(rebuild.Progress{Target: "readmodel", Phase: ph, Done: done, Total: total, Attempt: attempt})
	}
	at(0, rebuild.PhaseCopy, 0, 100, 0)
	at(1, rebuild.PhaseCopy, 50, 100, 0)
	at(4, rebuild.PhaseCopy, 60, 100, 0)
	at(5, rebuild.PhaseCopy, 80, 100, 0) // 5s after the phase line: a progress line
	at(6, rebuild.PhaseCopy, 100, 100, 0)
	at(6, rebuild.PhaseCatchUp, 0, 0, 0)
	at(7, rebuild.PhaseCatchUp, 6, 12, 0)
	at(8, rebuild.PhaseCatchUp, 12, 12, 0)
	at(9, rebuild.PhaseCatchUp, 3, 4, 0) // a second round
	at(11, rebuild.PhaseCatchUp, 4, 4, 0)
	at(11, rebuild.PhaseSwap, 0, 0, 1)
	at(12, rebuild.PhaseSwap, 7, 0, 0) // the audit swap's last catch-up: the same attempt
	at(12, rebuild.PhaseVerify, 0, 0, 1)
	at(13, rebuild.PhaseSwap, 0, 0, 2)
	l.close()

	type line struct {
		Msg             string  `json:"msg"`
		Target          string  `json:"target"`
		Phase           string  `json:"phase"`
		Attempt         int     `json:"attempt"`
		Done            int64   `json:"done"`
		Total           int64   `json:"total"`
		EventsPerSecond float64 `json:"events_per_second"`
		ETA             string  `json:"eta"`
	}
	var lines []line
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l line
		require.NoError(t, json.Unmarshal([]byte(s), &l), s)
		require.Equal(t, "readmodel", l.Target)
		lines = append(lines, l)
	}
	require.Equal(t, []line{
		{Msg: "rebuild: phase", Target: "readmodel", Phase: "copy", Total: 100},
		{Msg: "rebuild: progress", Target: "readmodel", Phase: "copy", Done: 80, Total: 100, EventsPerSecond: 16, ETA: "1s"},
		{Msg: "rebuild: phase", Target: "readmodel", Phase: "catch-up"},
		{Msg: "rebuild: progress", Target: "readmodel", Phase: "catch-up", Done: 16, Total: 16, EventsPerSecond: 3.2, ETA: "0s"},
		{Msg: "rebuild: phase", Target: "readmodel", Phase: "swap", Attempt: 1},
		{Msg: "rebuild: phase", Target: "readmodel", Phase: "verify", Attempt: 1},
		{Msg: "rebuild: phase", Target: "readmodel", Phase: "swap", Attempt: 2},
	}, lines)
}

// TestBarProgress: on a terminal, each phase has a bar (or a spinner without a total) showing the
// count, the rate and the time; it ends on a line of its own, at the count reached; log lines written
// meanwhile appear above it.
func TestBarProgress(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	b := newBarProgress(&buf)
	report := func(ph rebuild.Phase, done, total int64, attempt int) {
		b.report(rebuild.Progress{Target: "audit", Phase: ph, Done: done, Total: total, Attempt: attempt})
	}
	report(rebuild.PhaseCopy, 0, 1000, 0)
	report(rebuild.PhaseCopy, 400, 1000, 0)
	_, err := b.Write([]byte("a log line\n"))
	require.NoError(t, err)
	report(rebuild.PhaseCopy, 1100, 1000, 0) // more than the estimate
	report(rebuild.PhaseCatchUp, 0, 0, 0)
	report(rebuild.PhaseCatchUp, 25, 0, 0)
	report(rebuild.PhaseSwap, 0, 0, 1)
	b.close()
	_, err = b.Write([]byte("after the bars\n"))
	require.NoError(t, err)

	out := buf.String()
	t.Logf("%q", out)
	require.Contains(t, out, "audit copy")
	require.Contains(t, out, "1100/1100")
	require.Contains(t, out, "events/s")
	require.Contains(t, out, "audit catch-up")
	require.Contains(t, out, "audit swap (attempt 1)")
	require.Contains(t, out, "a log line\n")
	require.True(t, strings.HasSuffix(out, "\nafter the bars\n"), "each bar ends its line")
	// Each phase's last rendering stays on a line of its own.
	var last []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		if strings.TrimSpace(l) != "" {
			last = append(last, strings.TrimSpace(l))
		}
	}
	require.Len(t, last, 5, "%q", last) // the log line, three phases, the line after them
	require.Contains(t, last[1], "1100/1100")
	require.Contains(t, last[2], "audit catch-up")
	require.Contains(t, last[2], "25")
}
