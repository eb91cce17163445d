package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/projections/audit"
)

// TestUsage: the command line's mistakes exit 2 with a message on stderr, before any connection; help
// exits 0.
func TestUsage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := &cli{vars: map[string]string{}} // no database: a usage error must come first
	tenant := uuid.NewString()
	for name, tc := range map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"no command":              {nil, exitUsage, "usage: replay <command>"},
		"unknown command":         {[]string{"rewind"}, exitUsage, `unknown command "rewind"`},
		"unknown flag":            {[]string{"audit", "--tenant", tenant, "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		"missing tenant":          {[]string{"audit"}, exitUsage, "--tenant must be a tenant id"},
		"bad tenant":              {[]string{"audit", "--tenant", "acme"}, exitUsage, "--tenant must be a tenant id"},
		"bad format":              {[]string{"audit", "--tenant", tenant, "--format", "xml"}, exitUsage, "--format must be one of table, jsonl, csv"},
		"bad since":               {[]string{"audit", "--tenant", tenant, "--since", "yesterday"}, exitUsage, "--since must be an RFC 3339 time"},
		"until before since":      {[]string{"audit", "--tenant", tenant, "--since", "2025-02-01", "--until", "2025-01-01"}, exitUsage, "--until must not be before --since"},
		"bad target":              {[]string{"audit", "--tenant", tenant, "--target", "user:nope"}, exitUsage, "--target's id must be a UUID"},
		"stray argument":          {[]string{"audit", "--tenant", tenant, "extra"}, exitUsage, `unexpected argument "extra"`},
		"bad batch size":          {[]string{"audit", "--tenant", tenant, "--batch-size", "0"}, exitUsage, "--batch-size must be between 1 and"},
		"state without entity":    {[]string{"state", "--tenant", tenant}, exitUsage, "--entity is required"},
		"state bad entity":        {[]string{"state", "--tenant", tenant, "--entity", "widget:1"}, exitUsage, "the type must be one of"},
		"state position and time": {[]string{"state", "--tenant", tenant, "--entity", "tenant", "--at-position", "5", "--at-time", "2025-01-01"}, exitUsage, "exclude each other"},
		"chain needs a scope":     {[]string{"verify-chain"}, exitUsage, "--tenant T or --all is required"},
		"chain tenant and all":    {[]string{"verify-chain", "--tenant", tenant, "--all"}, exitUsage, "exclude each other"},
		"projections max diffs":   {[]string{"verify-projections", "--max-diffs", "0"}, exitUsage, "--max-diffs must be at least 1"},
		"no database":             {[]string{"verify-chain", "--all"}, exitUsage, "no database: set $USERSTORE_REPLAY_DATABASE_URL"},
		"help flag":               {[]string{"verify-chain", "-h"}, exitOK, "usage: replay verify-chain"},
	} {
		r := c.run(ctx, tc.args...)
		require.Equal(t, tc.code, r.code, "%s: %s", name, r.stderr)
		require.Contains(t, r.stderr, tc.stderr, name)
		require.Empty(t, r.stdout, name)
		require.NotContains(t, r.stderr, "Canary", name)
	}
	r := c.run(ctx, "help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stdout, "exit codes: 0 clean, 1 divergence or drift found, 2 usage or connection error, 130 interrupted")
}

// TestErrorsNeverPrintTheDSNOrPassword: a refused connection, a malformed URL and a password file all
// fail with exit code 2 and a message that names the server and the cause, never the URL or the
// password — whether the URL comes from the environment or the flag.
func TestErrorsNeverPrintTheDSNOrPassword(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const canary = "Canary-Pa55-7f3a"
	refused := "postgres://userstore_projector:" + canary + "@127.0.0.1:1/userstore?sslmode=disable&connect_timeout=5"
	file := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(file, []byte(canary+"\n"), 0o600))
	for name, tc := range map[string]struct {
		vars   map[string]string
		args   []string
		stderr string
	}{
		"refused, from the environment": {map[string]string{envDatabaseURL: refused}, nil, "connection refused"},
		"refused, projector fallback":   {map[string]string{envProjectorDatabaseURL: refused}, nil, "connection refused"},
		"refused, from the flag":        {nil, []string{"--database-url", refused}, "connection refused"},
		"malformed URL":                 {map[string]string{envDatabaseURL: "postgres://u:" + canary + "@127.0.0.1:notaport/db"}, nil, "does not hold a valid PostgreSQL URL"},
		"password file":                 {map[string]string{envDatabaseURL: "postgres://userstore_projector@127.0.0.1:1/userstore?sslmode=disable", envPasswordFile: file}, nil, "connection refused"},
	} {
		c := &cli{vars: tc.vars}
		for _, args := range [][]string{
			{"verify-chain", "--all"}, {"audit", "--tenant", uuid.NewString()}, {"verify-projections"},
			{"state", "--tenant", uuid.NewString(), "--entity", "tenant"},
		} {
			r := c.run(ctx, append(args, tc.args...)...)
			require.Equal(t, exitUsage, r.code, "%s %v: %s", name, args, r.stderr)
			require.Contains(t, r.stderr, tc.stderr, name)
			for _, out := range []string{r.stdout, r.stderr} {
				require.NotContains(t, out, canary, name)
				require.NotContains(t, out, "postgres://", name)
			}
		}
	}
	// A wrong password against the real server: refused by the server, still no secret in the output.
	u, err := url.Parse(databaseURL(t, pgtest.Default(t), pgtest.EnvProjectorURL))
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), canary)
	bad := u.String()
	r := (&cli{vars: map[string]string{envDatabaseURL: bad}}).run(ctx, "verify-chain", "--all")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "SQLSTATE 28P01")
	require.NotContains(t, r.stderr, canary)
}

// TestCommands: each subcommand against a real history, with its output and exit code.
func TestCommands(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	f := setup(t, 3)
	tenant := f.tenants[0]
	trail, err := audit.Read(ctx, f.db.Pool(t, pgtest.Projector), &audit.ReadParams{TenantID: tenant})
	require.NoError(t, err)
	require.Len(t, trail, 11)

	// audit, piped: JSON lines by default, one per record, equal to audit_records.
	r := f.cli.run(ctx, "audit", "--tenant", tenant.String(), "--batch-size", "3")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, len(trail))
	for i, line := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		require.Equal(t, trail[i].Hash, rec["hash"])
		require.EqualValues(t, trail[i].Position, rec["position"])
		require.Equal(t, trail[i].Action, rec["action"])
	}
	require.Contains(t, r.stderr, "11 record(s) of 11 event(s)")

	// audit on a terminal: a table; filtered by action and actor.
	term := &cli{vars: f.cli.vars, stdoutTerminal: true}
	r = term.run(ctx, "audit", "--tenant", tenant.String(), "--action", "user.created", "--actor", "service:svc-0")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 1+3, "a header and the three users")
	require.True(t, strings.HasPrefix(lines[0], "SEQ"))
	require.Contains(t, lines[1], "user.created")
	require.Contains(t, lines[1], "service:svc-0")

	// audit as CSV, by target.
	r = f.cli.run(ctx, "audit", "--tenant", tenant.String(), "--format", "csv", "--target", "tenant:"+tenant.String())
	require.Equal(t, exitOK, r.code, r.stderr)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, "hash", rows[0][len(rows[0])-1])
	require.Len(t, rows, 2, "a header and tenant.created")
	require.Equal(t, trail[0].Hash, rows[1][len(rows[1])-1])

	// state of the tenant's first user at the position of its first event, and now, as JSON and with
	// its history.
	user := trail[1]
	require.Equal(t, "user.created", user.Action)
	r = f.cli.run(ctx, "state", "--tenant", tenant.String(), "--entity", fmt.Sprintf("user:%s", user.TargetID),
		"--at-position", fmt.Sprint(user.Position), "--format", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var state map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &state))
	require.Equal(t, true, state["found"])
	require.EqualValues(t, 1, state["version"])
	require.Equal(t, "User", state["view"].(map[string]any)["DisplayName"])
	r = f.cli.run(ctx, "state", "--tenant", tenant.String(), "--entity", fmt.Sprintf("user:%s", user.TargetID), "--diff")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `~ DisplayName              "User" -> "Renamed"`)
	require.Contains(t, r.stdout, "exists")
	r = f.cli.run(ctx, "state", "--tenant", tenant.String(), "--entity", "user:"+uuid.NewString())
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "no event of user:")

	// The untouched database verifies.
	r = f.cli.run(ctx, "verify-chain", "--all")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	require.Contains(t, r.stdout, "verify-chain: OK: every stored record equals the log's; 3 tenant(s), 33 record(s) verified")
	r = f.cli.run(ctx, "verify-chain", "--tenant", tenant.String(), "--format", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var chain map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &chain))
	require.EqualValues(t, 11, chain["records"])
	r = f.cli.run(ctx, "verify-projections")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	require.Contains(t, r.stdout, "verify-projections: OK")
}

// TestTamperingAndDriftExitOne: after a superuser alters one audit record, deletes one and swaps two
// (in three tenants), verify-chain names the first divergence of each — sequence, expected hash, found
// hash — and exits 1; after it changes one read row and deletes another, verify-projections reports
// both and exits 1.
func TestTamperingAndDriftExitOne(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	f := setup(t, 3)
	trails := make([][]string, 3) // hashes
	for i, tenant := range f.tenants {
		recs, err := audit.Read(ctx, f.db.Pool(t, pgtest.Projector), &audit.ReadParams{TenantID: tenant})
		require.NoError(t, err)
		for _, rec := range recs {
			trails[i] = append(trails[i], rec.Hash)
		}
	}
	asAdmin(t, ctx, f.db, false, `UPDATE userstore.audit_records SET action = 'user.forged' WHERE tenant_id = $1 AND sequence = 6`)(f.tenants[0])
	asAdmin(t, ctx, f.db, true, `DELETE FROM userstore.audit_records WHERE tenant_id = $1 AND sequence = 4`)(f.tenants[1])
	asAdmin(t, ctx, f.db, true,
		`UPDATE userstore.audit_records SET sequence = 1000 WHERE tenant_id = $1 AND sequence = 2`,
		`UPDATE userstore.audit_records SET sequence = 2 WHERE tenant_id = $1 AND sequence = 3`,
		`UPDATE userstore.audit_records SET sequence = 3 WHERE tenant_id = $1 AND sequence = 1000`)(f.tenants[2])
	for i, tc := range []struct {
		seq   int
		found string
		what  string
	}{
		{6, trails[0][5], "the stored record differs from the log's"},
		{4, trails[1][4], "the record is missing (the next stored record has sequence 5)"},
		{2, trails[2][2], "the stored record differs from the log's"},
	} {
		r := f.cli.run(ctx, "verify-chain", "--tenant", f.tenants[i].String())
		require.Equal(t, exitDivergence, r.code, r.stderr+r.stdout)
		require.Contains(t, r.stdout, fmt.Sprintf("DIVERGENCE tenant %s at sequence %d: %s", f.tenants[i], tc.seq, tc.what))
		require.Contains(t, r.stdout, "expected hash  "+trails[i][tc.seq-1])
		require.Contains(t, r.stdout, "found hash     "+tc.found)
	}
	r := f.cli.run(ctx, "verify-chain", "--all")
	require.Equal(t, exitDivergence, r.code)
	require.Contains(t, r.stdout, "DIVERGENCE in 3 tenant(s)")

	// Drift in the read tables.
	r = f.cli.run(ctx, "verify-projections")
	require.Equal(t, exitOK, r.code, r.stdout)
	asAdmin(t, ctx, f.db, false,
		`UPDATE userstore.users SET email = 'forged@example.com' WHERE tenant_id = $1 AND status = 'active' AND display_name = 'Renamed'`,
		`DELETE FROM userstore.memberships WHERE tenant_id = $1 AND role = 'owner'`)(f.tenants[1])
	r = f.cli.run(ctx, "verify-projections", "--tenant", f.tenants[1].String())
	require.Equal(t, exitDivergence, r.code, r.stderr+r.stdout)
	require.Contains(t, r.stdout, "DRIFT users tenant_id="+f.tenants[1].String())
	require.Contains(t, r.stdout, "found    forged@example.com")
	require.Contains(t, r.stdout, "DRIFT memberships tenant_id="+f.tenants[1].String())
	require.Contains(t, r.stdout, "missing (the log implies this row; the table lacks it)")
	require.Contains(t, r.stdout, "DRIFT: 2 row(s) differ")
	r = f.cli.run(ctx, "verify-projections", "--tenant", f.tenants[0].String())
	require.Equal(t, exitOK, r.code, r.stdout)
}

// TestProgressOnlyOnATerminal: with stderr a terminal, the verify commands draw a progress bar with
// events/s; when stderr is not a terminal (piped), or with --no-progress, nothing but the result.
func TestProgressOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	f := setup(t, 2)
	onTerminal := &cli{vars: f.cli.vars, stderrTerminal: true}
	r := onTerminal.run(ctx, "verify-chain", "--all", "--batch-size", "2")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, " events/") // events/s, events/min, …
	require.Contains(t, r.stderr, "verify-chain")
	r = onTerminal.run(ctx, "verify-chain", "--all", "--no-progress")
	require.Equal(t, exitOK, r.code)
	require.Empty(t, r.stderr)
	r = f.cli.run(ctx, "verify-projections")
	require.Equal(t, exitOK, r.code)
	require.Empty(t, r.stderr, "piped: quiet")
	// The audit trail on a terminal is its own progress: no bar between the rows.
	both := &cli{vars: f.cli.vars, stdoutTerminal: true, stderrTerminal: true}
	r = both.run(ctx, "audit", "--tenant", f.tenants[0].String())
	require.Equal(t, exitOK, r.code)
	require.NotContains(t, r.stderr, " events/")
}

// TestInterruptedExits130: a command whose context ends (SIGINT or SIGTERM in main) stops, says so and
// exits 130.
func TestInterruptedExits130(t *testing.T) {
	t.Parallel()
	f := setup(t, 1)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	r := f.cli.run(ctx, "verify-chain", "--all")
	require.Equal(t, exitInterrupted, r.code, r.stderr)
	require.Contains(t, r.stderr, "interrupted")
}
