package projectorcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// waitTimeout bounds every wait of these tests; a wait that runs out fails the test.
const waitTimeout = 60 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// dsn returns the URL of the role whose variable is envVar (see `scripts/pg.sh env`) on database db.
func dsn(t *testing.T, envVar string, db *pgtest.Database) string {
	t.Helper()
	u, err := url.Parse(os.Getenv(envVar))
	require.NoError(t, err, "%s must hold a URL", envVar)
	u.Path = "/" + db.Name
	return u.String()
}

// withPassword returns raw with its password replaced.
func withPassword(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// withoutPassword returns raw without its password.
func withoutPassword(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.User = url.User(u.User.Username())
	return u.String()
}

// syncBuffer is a bytes.Buffer safe for a writer and readers on other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is the outcome of one in-process run of the program.
type result struct {
	code           int
	stdout, stderr string
}

// runMain runs the program in-process with args and only the environment variables in vars.
func runMain(t *testing.T, ctx context.Context, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Main(ctx, args, &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }})
	res := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	shown := append([]string{}, args...)
	for i := range shown {
		if i > 0 && shown[i-1] == "-database-url" {
			shown[i] = "<url>" // the test's log shows no password either
		}
	}
	t.Logf("projector %v: exit %d\nstdout:\n%s\nstderr:\n%s", shown, code, res.stdout, res.stderr)
	return res
}

// running is `projector run` on a goroutine of the test.
type running struct {
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startRun starts `projector run` in-process, listening on a free loopback port, and waits until it
// listens. The test's cleanup stops it if the test did not.
func startRun(t *testing.T, ctx context.Context, vars map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	r := &running{stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	addrs := make(chan net.Addr, 1)
	env := &Env{Stdout: io.Discard, Stderr: r.stderr, Getenv: func(k string) string { return vars[k] },
		listening: func(a net.Addr) { addrs <- a }}
	args = append([]string{"run", "-listen", "127.0.0.1:0", "-log-level", "debug"}, args...)
	go func() { r.done <- Main(ctx, args, env) }()
	select {
	case a := <-addrs:
		r.addr = "http://" + a.String()
	case code := <-r.done:
		t.Fatalf("projector run exited with %d before it listened:\n%s", code, r.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatal("projector run did not listen")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Error("projector run did not stop")
		}
		t.Logf("projector run logs:\n%s", r.stderr.String())
	})
	return r
}

// stop cancels the run and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(waitTimeout):
		t.Fatal("projector run did not stop after its context was cancelled")
		return -1
	}
}

// get fetches path from the run's HTTP server.
func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return httpGet(t, r.addr+path)
}

// client keeps no idle connection (whose goroutines goleak would report).
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// readyz fetches /readyz and decodes its body.
func (r *running) readyz(t *testing.T) (int, readyBody) {
	t.Helper()
	code, body := r.get(t, "/readyz")
	var rb readyBody
	require.NoError(t, json.Unmarshal([]byte(body), &rb), body)
	return code, rb
}

func (b readyBody) check(name string) (readyItem, bool) {
	for _, c := range b.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return readyItem{}, false
}

// waitFor polls cond until it holds, failing the test after waitTimeout. The pause between polls only
// paces the loop; cond is what it waits for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	delay := time.Millisecond
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		timer := time.NewTimer(delay)
		<-timer.C
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// history writes workload.History for n tenants through a pgstore on db, as the app role.
func history(t *testing.T, ctx context.Context, db *pgtest.Database, n int) []uuid.UUID {
	t.Helper()
	store, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	return workload.History(t, ctx, store, n)
}

// countEvents counts the log's events, as the superuser.
func countEvents(t *testing.T, ctx context.Context, db *pgtest.Database) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&n))
	return n
}
