package projectorcmd

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
)

// canary is a password that must never appear in any output, log line or HTTP body.
const canary = "canary-Pw-9f1c3e7a"

// TestRedactionCanary: with a canary password in the connection string (or the password file), a
// refused login, an unreachable server and an unparsable string end every command (rebuild: in either
// of its two URLs) with exit code 2 and a message that names the cause — never the password or the
// string; `run` that waits for the database keeps the password out of its logs, /readyz and /metrics.
func TestRedactionCanary(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.Default(t)
	good := dsn(t, pgtest.EnvProjectorURL, db)
	goodOwner := dsn(t, pgtest.EnvOwnerURL, db)
	wrongPassword := withPassword(t, good, canary)
	u, err := url.Parse(wrongPassword)
	require.NoError(t, err)
	u.Host = "127.0.0.1:1"
	unreachable := u.String()
	unparsable := "postgres://userstore_projector:" + canary + "@127.0.0.1:notaport/" + db.Name

	cases := []struct {
		name, url, want string
	}{
		{"wrong password", wrongPassword, "SQLSTATE 28P01"},
		{"unreachable", unreachable, "connection refused"},
		{"unparsable", unparsable, "does not hold a valid PostgreSQL URL or key=value string"},
	}
	commands := [][]string{
		{"status"},
		{"status", "-json"},
		{"dead-letters", "list"},
		{"dead-letters", "retry", "-projection", "audit", "-tenant", "01a2432c-5048-7c4b-a617-818bf72fd11b", "-by", "x"},
		{"run", "-listen", "", "-wait=false"},
	}
	for _, c := range cases {
		for _, args := range commands {
			for _, viaFlag := range []bool{false, true} {
				vars := map[string]string{EnvProjectorDatabaseURL: c.url}
				if viaFlag {
					vars = nil
					args = append(append([]string{}, args...), "-database-url", c.url)
				}
				res := runMain(t, ctx, vars, args...)
				require.Equal(t, ExitUsage, res.code, "%s: %v", c.name, args)
				require.Contains(t, res.stderr, c.want, "%s: %v", c.name, args)
				require.NotContains(t, res.stdout+res.stderr, canary, "%s: %v", c.name, args)
			}
		}
		res := runMain(t, ctx, map[string]string{EnvOwnerDatabaseURL: c.url}, "migrate")
		require.Equal(t, ExitUsage, res.code, c.name)
		require.NotContains(t, res.stdout+res.stderr, canary, c.name)

		// rebuild connects as the owner and as the projector: the bad URL as either, by variable or flag.
		for _, bad := range []struct{ env, flag string }{
			{EnvOwnerDatabaseURL, "-owner-database-url"}, {EnvProjectorDatabaseURL, "-database-url"}} {
			for _, args := range [][]string{{"rebuild", "readmodel"}, {"rebuild", "audit"}, {"rebuild", "-cleanup", "readmodel"}} {
				vars := map[string]string{EnvOwnerDatabaseURL: goodOwner, EnvProjectorDatabaseURL: good}
				vars[bad.env] = c.url
				res := runMain(t, ctx, vars, args...)
				require.Equal(t, ExitUsage, res.code, "%s: %s: %v", c.name, bad.env, args)
				require.Contains(t, res.stderr, c.want, "%s: %s: %v", c.name, bad.env, args)
				require.NotContains(t, res.stdout+res.stderr, canary, "%s: %s: %v", c.name, bad.env, args)

				// By flag (run without runMain, whose log would show the flag's value).
				delete(vars, bad.env)
				var stdout, stderr bytes.Buffer
				code := Main(ctx, append([]string{args[0], bad.flag, c.url}, args[1:]...),
					&Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }})
				require.Equal(t, ExitUsage, code, "%s: %s: %v", c.name, bad.flag, args)
				require.Contains(t, stderr.String(), c.want, "%s: %s: %v", c.name, bad.flag, args)
				require.NotContains(t, stdout.String()+stderr.String(), canary, "%s: %s: %v", c.name, bad.flag, args)
			}
		}
	}

	// The password from a file: the same.
	file := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(file, []byte(canary+"\n"), 0o600))
	fileVars := map[string]string{EnvProjectorDatabaseURL: withoutPassword(t, good), EnvProjectorPasswordFile: file}
	res := runMain(t, ctx, fileVars, "status")
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "SQLSTATE 28P01")
	require.NotContains(t, res.stdout+res.stderr, canary)
	res = runMain(t, ctx, map[string]string{EnvOwnerDatabaseURL: withoutPassword(t, goodOwner), EnvOwnerPasswordFile: file,
		EnvProjectorDatabaseURL: good}, "rebuild", "readmodel")
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "SQLSTATE 28P01")
	require.NotContains(t, res.stdout+res.stderr, canary)
	res = runMain(t, ctx, map[string]string{EnvProjectorDatabaseURL: withoutPassword(t, good),
		EnvProjectorPasswordFile: filepath.Join(t.TempDir(), "missing")}, "status")
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "no such file")

	// run waits for the database: its logs, /readyz and /metrics keep the password out.
	for _, vars := range []map[string]string{{EnvProjectorDatabaseURL: wrongPassword}, fileVars} {
		r := startRun(t, ctx, vars, "-wait-interval", "20ms")
		code, rb := r.readyz(t)
		require.Equal(t, 503, code)
		c, ok := rb.check(pgstore.CheckConnectivity)
		require.True(t, ok)
		require.False(t, c.OK)
		require.Contains(t, c.Reason, "28P01")
		_, body := r.get(t, "/readyz")
		require.NotContains(t, body, canary)
		code, metrics := r.get(t, "/metrics")
		require.Equal(t, 200, code)
		require.NotContains(t, metrics, canary)
		waitFor(t, "the waiting log line", func() bool {
			return len(r.stderr.String()) > 0 && containsAll(r.stderr.String(), "waiting for the database", "28P01")
		})
		require.Equal(t, ExitOK, r.stop(t))
		require.NotContains(t, r.stderr.String(), canary)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
