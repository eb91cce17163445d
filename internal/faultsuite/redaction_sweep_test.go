package faultsuite_test

// The redaction sweep of the programs, black-box: cmd/projector and cmd/replay are built into the test's
// directory and run as processes, with a canary password — the real password of a throwaway login role
// (a member of userstore_projector) or a wrong one — in the URL, in a key=value string or in the
// password file, against every kind of failure at start (a refused login, a closed port, a server that
// hangs up during the handshake, a string that does not parse, a missing password file) and on the
// path that succeeds, at log level debug. Nothing they print — stdout and stderr of every command, every
// log line, every /readyz, /healthz and /metrics body of `projector run` — may hold the canary in any
// form (as is, URL-escaped, or a 6-byte piece of it), a "password=" setting, or a URL with a password.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/faultproxy"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
)

// redactionCanary is the password of the sweep: a distinctive core and every character that URLs and
// key=value strings treat specially, so that an escaped or half-parsed form shows too.
var redactionCanary = "Cnry7Qx" + randomHex(4) + "@/:?#%' x=&;"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// canaryForms are the forms of the canary that must not appear anywhere.
func canaryForms() []string {
	c := redactionCanary
	forms := []string{c, url.QueryEscape(c), url.PathEscape(c), strings.TrimPrefix(url.UserPassword("u", c).String(), "u:")}
	for i := 0; i+6 <= len(c); i++ {
		forms = append(forms, c[i:i+6])
	}
	return forms
}

var (
	// passwordSetting is a key=value password setting.
	passwordSetting = regexp.MustCompile(`(?i)password\s*=`)
	// urlWithPassword is a URL with a user and a password (its second group); masked is a password
	// replaced by a placeholder, which is not a leak.
	urlWithPassword = regexp.MustCompile(`(?i)postgres(ql)?://[^/\s:@"]+:([^@\s"]+)@`)
	masked          = regexp.MustCompile(`(?i)^(\*+|x+|redacted|%2a+)$`)
)

// leaks returns what in text (what a program printed or served) gives a secret away: a form of the
// canary, a password setting, or a URL with an unmasked password.
func leaks(text string) []string {
	var out []string
	for _, f := range canaryForms() {
		if strings.Contains(text, f) {
			out = append(out, fmt.Sprintf("the canary (as %q)", f))
		}
	}
	if passwordSetting.MatchString(text) {
		out = append(out, "a password setting")
	}
	for _, m := range urlWithPassword.FindAllStringSubmatch(text, -1) {
		if !masked.MatchString(m[2]) {
			out = append(out, "a URL with a password")
		}
	}
	return out
}

// requireClean fails when text (what a program printed or served, named by what) gives a secret away.
func requireClean(t *testing.T, what, text string) {
	t.Helper()
	if l := leaks(text); len(l) > 0 {
		t.Fatalf("%s leaks %s:\n%s", what, strings.Join(l, ", "), text)
	}
}

// TestRedactionSweepSeesALeak: the sweep's check finds each kind of leak (and accepts a masked URL).
func TestRedactionSweepSeesALeak(t *testing.T) {
	t.Parallel()
	for _, leak := range []string{
		"error: " + redactionCanary,
		"url: postgres://u:" + url.QueryEscape(redactionCanary) + "@h/db",
		"piece: " + redactionCanary[2:8],
		"dsn: host=h password=secret",
		"dsn: host=h PASSWORD = 'secret'",
		"url: postgresql://userstore_projector:secret@127.0.0.1:5432/userstore",
	} {
		require.NotEmpty(t, leaks(leak), "%q", leak)
	}
	for _, clean := range []string{"connect to 127.0.0.1:5432 as \"u\": SQLSTATE 28P01", "postgres://u:***@h/db", "postgres://u@h/db"} {
		require.Empty(t, leaks(clean), "%q", clean)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// programs builds cmd/projector and cmd/replay once per test binary and returns the directory of the
// executables.
func programs(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "faultsuite-programs-")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"projector", "replay"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, p), "github.com/netkingdom/userstore/cmd/"+p).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build cmd/%s: %v\n%s", p, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return buildDir
}

// cleanupPrograms removes the built programs when the test that built them ends.
func cleanupPrograms(t *testing.T) {
	t.Cleanup(func() {
		if buildDir != "" {
			_ = os.RemoveAll(buildDir)
		}
	})
}

// canaryRole creates a throwaway LOGIN role with the canary password, a member of userstore_projector
// (so the projector's and the replay tool's policies apply to it), and drops it when the test ends.
func canaryRole(t *testing.T) string {
	t.Helper()
	name := "ut_canary_" + randomHex(4)
	admin := pgtest.AdminPool(t)
	_, err := admin.Exec(t.Context(), "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN IN ROLE userstore_projector PASSWORD "+quoteLiteral(redactionCanary))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
		require.NoError(t, err)
		_, err = admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
	})
	return name
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// connTarget is where a program is pointed: a URL and, optionally, a password file.
type connTarget struct {
	name         string
	url          string
	passwordFile string
	// ok: the login succeeds.
	ok bool
}

// targets returns the connection settings of the sweep, each with the canary as the password (or
// around it).
func targets(t *testing.T, role string) []connTarget {
	t.Helper()
	cc := pgtest.Default(t).PoolConfig(t, pgtest.Projector).ConnConfig
	host := net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
	db := cc.Database
	mkURL := func(user, hostport, password string) string {
		u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: hostport, Path: "/" + db,
			RawQuery: "sslmode=disable&connect_timeout=1"}
		return u.String()
	}
	noPassword := (&url.URL{Scheme: "postgres", User: url.User(role), Host: host, Path: "/" + db, RawQuery: "sslmode=disable&connect_timeout=1"}).String()
	secret := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(secret, []byte(redactionCanary+"\n"), 0o600))

	refusing := newProxy(t)
	refusing.SetMode(faultproxy.Refuse)
	blackhole := newProxy(t)
	blackhole.SetMode(faultproxy.Blackhole)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())

	kv := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable connect_timeout=1 password='%s'",
		cc.Host, cc.Port, db, "userstore_projector", strings.ReplaceAll(strings.ReplaceAll(redactionCanary, `\`, `\\`), `'`, `\'`))
	return []connTarget{
		{name: "the canary is the password (URL)", url: mkURL(role, host, redactionCanary), ok: true},
		{name: "the canary is the password (file)", url: noPassword, passwordFile: secret, ok: true},
		{name: "wrong password (URL)", url: mkURL("userstore_projector", host, redactionCanary)},
		{name: "wrong password (key=value)", url: kv},
		{name: "wrong password (file)", url: (&url.URL{Scheme: "postgres", User: url.User("userstore_projector"), Host: host, Path: "/" + db, RawQuery: "sslmode=disable"}).String(), passwordFile: secret},
		{name: "closed port", url: mkURL(role, closedAddr, redactionCanary)},
		{name: "server hangs up in the handshake", url: mkURL(role, refusing.Addr(), redactionCanary)},
		{name: "server never answers (connect timeout)", url: mkURL(role, blackhole.Addr(), redactionCanary)},
		{name: "unparsable URL", url: "postgres://" + role + ":" + redactionCanary + "@" + host + ":notaport/" + db},
		{name: "missing password file", url: noPassword, passwordFile: filepath.Join(t.TempDir(), "missing")},
	}
}

// programEnv is the whole environment of a program run: no variable of the test's (they hold the
// local cluster's passwords), the given ones, and what go-built programs need.
func programEnv(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TZ=UTC"}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// runProgram runs a program to its end (bounded) and returns its exit code and output.
func runProgram(t *testing.T, bin string, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = programEnv(vars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%s %v: %v", filepath.Base(bin), args, err)
		code = ee.ExitCode()
	}
	require.NoError(t, ctx.Err(), "%s %v did not end", filepath.Base(bin), args)
	return code, stdout.String(), stderr.String()
}

// TestProgramsRedactThePassword runs every command of cmd/projector and cmd/replay against every
// connection target and sweeps what they print; `projector run` is also swept while it runs (its
// /readyz, /healthz and /metrics) and after it stops. Commands that cannot log in must end with exit
// code 2 (usage or connection error); those that can, with 0 or 1.
func TestProgramsRedactThePassword(t *testing.T) {
	t.Parallel()
	dir := programs(t)
	cleanupPrograms(t)
	role := canaryRole(t)
	// A tenant with a history, for the commands that succeed.
	s, err := pgstore.New(t.Context(), pgtest.AppPool(t), nil)
	require.NoError(t, err)
	tenant := workload.History(t, t.Context(), s, 1)[0].String()
	projectorCmds := [][]string{
		{"status"},
		{"status", "-json"},
		{"dead-letters", "list"},
		{"dead-letters", "retry", "-projection", "audit", "-tenant", tenant, "-by", "faultsuite"},
		{"run", "-listen", "", "-wait=false", "-log-level", "debug", "-log-format", "json"},
	}
	replayCmds := [][]string{
		{"audit", "--tenant", tenant, "--format", "jsonl", "--no-progress"},
		{"state", "--tenant", tenant, "--entity", "tenant", "--format", "json"},
		{"verify-chain", "--all", "--format", "json"},
		{"verify-projections", "--tenant", tenant, "--format", "json"},
	}
	runs, lines := 0, 0
	for _, target := range targets(t, role) {
		t.Run(target.name, func(t *testing.T) {
			for _, args := range projectorCmds {
				if target.ok && args[0] == "run" {
					continue // runs until stopped: sweepRun below
				}
				vars := map[string]string{"USERSTORE_PROJECTOR_DATABASE_URL": target.url, "USERSTORE_PROJECTOR_LOG_LEVEL": "debug"}
				if target.passwordFile != "" {
					vars["USERSTORE_PROJECTOR_DATABASE_PASSWORD_FILE"] = target.passwordFile
				}
				code, stdout, stderr := runProgram(t, filepath.Join(dir, "projector"), vars, args...)
				what := fmt.Sprintf("projector %v", args)
				requireClean(t, what+" stdout", stdout)
				requireClean(t, what+" stderr", stderr)
				if !target.ok {
					require.Equal(t, 2, code, "%s: a connection error\n%s", what, stderr)
				}
				runs++
				lines += strings.Count(stdout+stderr, "\n")
			}
			// migrate connects as the owner: the same targets stand for it.
			code, stdout, stderr := runProgram(t, filepath.Join(dir, "projector"), map[string]string{
				"USERSTORE_DATABASE_URL": target.url, "USERSTORE_DATABASE_PASSWORD_FILE": target.passwordFile}, "migrate")
			requireClean(t, "projector migrate", stdout+stderr)
			if !target.ok {
				require.Equal(t, 2, code, "projector migrate: a connection error\n%s", stderr)
			}
			runs++
			for _, args := range replayCmds {
				vars := map[string]string{"USERSTORE_REPLAY_DATABASE_URL": target.url}
				if target.passwordFile != "" {
					vars["USERSTORE_REPLAY_DATABASE_PASSWORD_FILE"] = target.passwordFile
				}
				code, stdout, stderr := runProgram(t, filepath.Join(dir, "replay"), vars, args...)
				what := fmt.Sprintf("replay %v", args)
				requireClean(t, what+" stdout", stdout)
				requireClean(t, what+" stderr", stderr)
				if target.ok {
					require.Contains(t, []int{0, 1}, code, "%s\n%s", what, stderr)
				} else {
					require.Equal(t, 2, code, "%s: a connection error\n%s", what, stderr)
				}
				runs++
				lines += strings.Count(stdout+stderr, "\n")
			}
			lines += sweepRun(t, filepath.Join(dir, "projector"), target)
			runs++
		})
	}
	t.Logf("redaction sweep: %d program runs, %d lines of output and HTTP bodies swept, no leak", runs, lines)
}

// sweepRun starts `projector run` at log level debug (waiting for the database when it cannot log in),
// reads /healthz, /readyz and /metrics a few times — ready within a bound when it can log in, 503 while
// it cannot —, stops it with SIGTERM and sweeps everything it printed and served. It returns the number
// of lines swept.
func sweepRun(t *testing.T, bin string, target connTarget) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	vars := map[string]string{
		"USERSTORE_PROJECTOR_DATABASE_URL":   target.url,
		"USERSTORE_PROJECTOR_LISTEN":         addr,
		"USERSTORE_PROJECTOR_LOG_LEVEL":      "debug",
		"USERSTORE_PROJECTOR_LOG_FORMAT":     "json",
		"USERSTORE_PROJECTOR_WAIT_INTERVAL":  "50ms",
		"USERSTORE_PROJECTOR_STATUS_MAX_AGE": "10ms",
	}
	if target.passwordFile != "" {
		vars["USERSTORE_PROJECTOR_DATABASE_PASSWORD_FILE"] = target.passwordFile
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = programEnv(vars)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("projector run did not stop on SIGTERM")
		}
	}
	t.Cleanup(stop)
	sweepOutput := func() int {
		requireClean(t, "projector run: stdout", stdout.String())
		requireClean(t, "projector run: stderr (debug)", stderr.String())
		return strings.Count(stdout.String()+stderr.String(), "\n")
	}

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, bool) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, "", false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), true
	}
	var bodies []string
	want := http.StatusServiceUnavailable
	if target.ok {
		want = http.StatusOK
	}
	deadline := time.Now().Add(60 * time.Second)
	seen := false
	for !seen {
		require.True(t, time.Now().Before(deadline), "projector run: /readyz never answered %d; stderr:\n%s", want, stderr.String())
		select {
		case <-exited:
			// It gave up at once (a setting it cannot use, such as a missing password file): a usage or
			// connection error, exit code 2.
			var ee *exec.ExitError
			require.ErrorAs(t, waitErr, &ee, "projector run ended: %v", waitErr)
			require.Equal(t, 2, ee.ExitCode())
			require.False(t, target.ok, "projector run ended although it can log in; stderr:\n%s", stderr.String())
			return sweepOutput()
		default:
		}
		code, body, ok := get("/readyz")
		if ok {
			bodies = append(bodies, body)
			seen = code == want
		}
		if !seen {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		_, body, ok := get(path)
		require.True(t, ok, "projector run serves %s", path)
		bodies = append(bodies, body)
	}
	stop()
	require.NoError(t, waitErr, "projector run stops cleanly on SIGTERM; stderr:\n%s", stderr.String())
	all := strings.Join(bodies, "\n")
	requireClean(t, "projector run: HTTP bodies", all)
	return strings.Count(all, "\n") + sweepOutput()
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
