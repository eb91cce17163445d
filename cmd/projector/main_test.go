package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// envRunMain makes the test binary run the program's main instead of the tests (see startProgram).
const envRunMain = "USERSTORE_PROJECTOR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run())
	}
	pgtest.Main(m)
}

// waitTimeout bounds every wait of these tests; a wait that runs out fails the test.
const waitTimeout = 60 * time.Second

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}

// program is the projector running as a process of its own (this test binary, running main).
type program struct {
	cmd    *exec.Cmd
	addr   string
	logs   chan string
	lines  []string
	exited chan error
	// ended: the test received the process's end (only the test's goroutine touches it).
	ended bool
}

// startProgram runs `projector run` in a process of its own on the database and waits until it
// listens.
func startProgram(t *testing.T, db *pgtest.Database, args ...string) *program {
	t.Helper()
	u, err := url.Parse(os.Getenv(pgtest.EnvProjectorURL))
	require.NoError(t, err)
	u.Path = "/" + db.Name
	cmd := exec.Command(os.Args[0], append([]string{"run", "-listen", "127.0.0.1:0", "-log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), envRunMain+"=1", "USERSTORE_PROJECTOR_DATABASE_URL="+u.String())
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &program{cmd: cmd, logs: make(chan string, 1000), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs <- sc.Text()
		}
		close(p.logs)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.ended {
			_ = cmd.Process.Kill()
			for range p.logs {
			}
			<-p.exited
		}
	})
	deadline := time.After(waitTimeout)
	for p.addr == "" {
		select {
		case line, ok := <-p.logs:
			require.True(t, ok, "the program ended before it listened: %v", p.lines)
			p.lines = append(p.lines, line)
			var rec struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &rec), "a log line that is not JSON: %s", line)
			if strings.HasPrefix(rec.Msg, "projector: serving") {
				p.addr = "http://" + rec.Address
			}
		case <-deadline:
			t.Fatalf("the program did not listen: %v", p.lines)
		}
	}
	return p
}

// signal sends sig and waits for the process to end; it returns the exit code and the log lines.
func (p *program) signal(t *testing.T, sig os.Signal) (int, []string) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	deadline := time.After(waitTimeout)
	for {
		select {
		case line, ok := <-p.logs:
			if !ok {
				err := <-p.exited
				p.ended = true
				var exitErr *exec.ExitError
				if err != nil {
					require.ErrorAs(t, err, &exitErr)
				}
				return p.cmd.ProcessState.ExitCode(), p.lines
			}
			p.lines = append(p.lines, line)
		case <-deadline:
			t.Fatalf("the program did not end after %s: %v", sig, p.lines)
		}
	}
}

func (p *program) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := client.Get(p.addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestSignals: the program stops on SIGINT and on SIGTERM in the middle of its work with exit code 0;
// whatever batches were in flight were rolled back, not half-applied: after a catch-up every event has
// exactly one audit record (each tenant's chain valid) and exactly one outbox message.
func TestSignals(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	db := pgtest.NewDatabase(t, nil)
	store, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	tenants := workload.History(t, ctx, store, 20)
	pool := db.Pool(t, pgtest.Projector)
	es, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	relay, err := outbox.New(nil)
	require.NoError(t, err)
	r, err := projections.New(pool, es, []projections.Projection{audit.New(nil), relay}, nil)
	require.NoError(t, err)

	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		p := startProgram(t, db, "-batch-size", "3", "-workers", "2")
		code, body := p.get(t, "/healthz")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ok\n", body)
		// Signal it once it has started working (in the middle of the log, most likely).
		deadline := time.Now().Add(waitTimeout)
		for {
			_, metrics := p.get(t, "/metrics")
			if strings.Contains(metrics, projections.MetricBatches+`{outcome="committed",projection="audit",version="1"}`) &&
				!strings.Contains(metrics, projections.MetricBatches+`{outcome="committed",projection="audit",version="1"} 0`) {
				break
			}
			require.True(t, time.Now().Before(deadline), "the program committed no batch")
			pause := time.NewTimer(10 * time.Millisecond) // paces the polling only
			<-pause.C
		}
		code, lines := p.signal(t, sig)
		require.Equal(t, 0, code, "exit code after %s; logs: %v", sig, lines)
		logs := strings.Join(lines, "\n")
		require.Contains(t, logs, "projector: stopping")
		require.Contains(t, logs, "projector: stopped")
		st, err := r.Status(ctx)
		require.NoError(t, err)
		for _, ps := range st.Projections {
			t.Logf("after %s: %s is %d events behind", sig, ps.Name, ps.EventsBehind)
		}
	}

	// Finish the work and check that nothing was applied twice or half.
	require.NoError(t, r.CatchUp(ctx))

	admin := db.Pool(t, pgtest.Admin)
	var events, messages, distinct int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM userstore.events`).Scan(&events))
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*), count(DISTINCT uuid) FROM `+outbox.TableName(outbox.DefaultTopic)).
		Scan(&messages, &distinct))
	require.Equal(t, events, messages)
	require.Equal(t, events, distinct)
	var total int
	for _, tenant := range tenants {
		recs, err := audit.Read(ctx, pool, &audit.ReadParams{TenantID: tenant})
		require.NoError(t, err)
		i, err := domain.VerifyAuditChain(recs)
		require.NoError(t, err, "tenant %s: chain broken at %d", tenant, i)
		total += len(recs)
	}
	require.Equal(t, events, int64(total))
	dl, err := r.DeadLetters(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, dl.DeadLetters)
}
