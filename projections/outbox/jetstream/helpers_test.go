package jetstream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/pgtest"
	"github.com/netkingdom/userstore/internal/workload"
	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// natsURL returns the local NATS server's URL (it carries a user and password).
func natsURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(natsURLEnv)
	if u == "" {
		t.Fatalf("%s is unset: %s", natsURLEnv, natsHint)
	}
	return u
}

// password returns the password of a URL, for checking that nothing prints it.
func password(t testing.TB, rawURL string) string {
	t.Helper()
	_, rest, ok := strings.Cut(rawURL, "://")
	require.True(t, ok)
	userinfo, _, ok := strings.Cut(rest, "@")
	require.True(t, ok, "the URL carries credentials")
	_, pass, ok := strings.Cut(userinfo, ":")
	require.True(t, ok)
	require.NotEmpty(t, pass)
	return pass
}

func randomTag() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// streamConfig returns a relay configuration with a subject and a stream of the test's own on url,
// created by Connect; the stream is deleted when the test ends.
func streamConfig(t testing.TB, url string) *jetstream.Config {
	t.Helper()
	tag := randomTag()
	cfg := &jetstream.Config{URL: url, Subject: "userstore.test." + tag, Stream: "TEST_" + tag, CreateStream: true}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := nats.Connect(url)
		if err != nil {
			return // a private server that is gone already
		}
		defer nc.Close()
		if js, err := natsjs.New(nc); err == nil {
			_ = js.DeleteStream(ctx, cfg.Stream)
		}
	})
	return cfg
}

// connect connects the relay; it is closed when the test ends.
func connect(t testing.TB, ctx context.Context, cfg *jetstream.Config) *jetstream.Projection {
	t.Helper()
	p, err := jetstream.Connect(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// runner returns a Runner of ps on db, as the projector role.
func runner(t testing.TB, db *pgtest.Database, cfg *projections.Config, ps ...projections.Projection) *projections.Runner {
	t.Helper()
	pool := db.Pool(t, pgtest.Projector)
	st, err := eventstore.New(pool, nil)
	require.NoError(t, err)
	r, err := projections.New(pool, st, ps, cfg)
	require.NoError(t, err)
	return r
}

// run runs r.Run until the returned function (also called when the test ends) stops it.
func run(t testing.TB, ctx context.Context, r *projections.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds; it fails the test when ctx ends first.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// history writes a varied history for n tenants through the durable store (as the app role) and
// returns the tenants.
func history(t testing.TB, ctx context.Context, db *pgtest.Database, n int) []uuid.UUID {
	t.Helper()
	s, err := pgstore.New(ctx, db.Pool(t, pgtest.App), nil)
	require.NoError(t, err)
	out := workload.History(t, ctx, s, n)
	require.NoError(t, s.Sync(ctx))
	return out
}

// logEvent is an event of the log as the test expects its message.
type logEvent struct {
	tenant, stream uuid.UUID
	streamType     string
	version        int64
	position       int64
	eventType      string
	partition      int16
}

// logEvents reads the whole log (as the admin role).
func logEvents(t testing.TB, ctx context.Context, db *pgtest.Database) map[uuid.UUID]logEvent {
	t.Helper()
	rows, err := db.Pool(t, pgtest.Admin).Query(ctx, `
		SELECT event_id, tenant_id, stream_type, stream_id, stream_version, global_position, event_type, partition
		  FROM userstore.events`)
	require.NoError(t, err)
	out := map[uuid.UUID]logEvent{}
	for rows.Next() {
		var (
			id uuid.UUID
			e  logEvent
		)
		require.NoError(t, rows.Scan(&id, &e.tenant, &e.streamType, &e.stream, &e.version, &e.position, &e.eventType, &e.partition))
		out[id] = e
	}
	require.NoError(t, rows.Err())
	return out
}

// processed returns how many events the checkpoints of a projection have advanced over, in all, and
// in one partition.
func processed(t testing.TB, ctx context.Context, db *pgtest.Database, projection string, partition int16) (all, inPartition int64) {
	t.Helper()
	require.NoError(t, db.Pool(t, pgtest.Admin).QueryRow(ctx, `
		SELECT coalesce(sum(processed), 0), coalesce(sum(processed) FILTER (WHERE partition = $2), 0)
		  FROM userstore.projection_checkpoints WHERE projection = $1`, projection, partition).Scan(&all, &inPartition))
	return all, inPartition
}

// streamMessages reads every message of a stream, in the stream's order.
func streamMessages(t testing.TB, ctx context.Context, url, stream string) []*natsjs.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	state := s.CachedInfo().State
	var out []*natsjs.RawStreamMsg
	if state.Msgs == 0 {
		return nil
	}
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	require.Equal(t, int(state.Msgs), len(out))
	return out
}

// requireEveryEventOnce checks a stream's messages against the log: one message per event, whose
// Nats-Msg-Id and watermill UUID are the event id, with the event's envelope in its headers and the
// public body as its data; and each aggregate's messages in version order 1, 2, 3, ….
func requireEveryEventOnce(t testing.TB, events map[uuid.UUID]logEvent, msgs []*natsjs.RawStreamMsg, subject string) {
	t.Helper()
	require.Equal(t, len(events), len(msgs), "one message per event")
	seen := map[uuid.UUID]bool{}
	next := map[uuid.UUID]int64{} // per aggregate: the version expected next
	for _, m := range msgs {
		require.Equal(t, subject, m.Subject)
		id, err := uuid.Parse(m.Header.Get(nats.MsgIdHdr))
		require.NoError(t, err)
		require.Equal(t, id.String(), m.Header.Get(wnats.WatermillUUIDHdr), "watermill UUID = Nats-Msg-Id")
		require.False(t, seen[id], "message %s stored twice", id)
		seen[id] = true
		e, ok := events[id]
		require.True(t, ok, "message %s is no event of the log", id)
		require.Equal(t, e.tenant.String(), m.Header.Get(outbox.MetaTenantID))
		require.Equal(t, e.streamType, m.Header.Get(outbox.MetaAggregateType))
		require.Equal(t, e.stream.String(), m.Header.Get(outbox.MetaAggregateID))
		require.Equal(t, strconv.FormatInt(e.version, 10), m.Header.Get(outbox.MetaAggregateVersion))
		require.Equal(t, domain.OutboxType(e.eventType), m.Header.Get(outbox.MetaType))
		require.Equal(t, strconv.FormatInt(e.position, 10), m.Header.Get(outbox.MetaPosition))
		_, err = time.Parse(time.RFC3339Nano, m.Header.Get(outbox.MetaOccurredAt))
		require.NoError(t, err)
		require.True(t, json.Valid(m.Data))
		require.NotContains(t, string(m.Data), "@example.com", "no PII in the public payload")
		if next[e.stream] == 0 {
			next[e.stream] = 1
		}
		require.Equal(t, next[e.stream], e.version, "aggregate %s out of order", e.stream)
		next[e.stream]++
	}
}

// syncBuffer is a bytes.Buffer for a logger that several goroutines write to.
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

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// natsServer is a private nats-server with JetStream that a test starts and stops (the shared one of
// scripts/pg.sh is never stopped by a test). Clients log in with a user and password.
type natsServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

const (
	privateUser     = "relay"
	privatePassword = "private-nats-secret"
)

// findNATSServer returns the nats-server binary: on PATH, or where Debian's package puts it.
func findNATSServer(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("no nats-server binary on PATH or in /usr/sbin: %s", natsHint)
	return ""
}

// startNATS starts a private server on a free port, with its JetStream store in a temporary directory;
// it is stopped when the test ends.
func startNATS(t testing.TB) *natsServer {
	t.Helper()
	s := &natsServer{t: t, bin: findNATSServer(t), dir: t.TempDir(), port: freePort(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// url returns the server's URL, with the credentials.
func (s *natsServer) url() string {
	return fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", privateUser, privatePassword, s.port)
}

// start starts the server (again, on the same port and store) and waits until it answers with
// JetStream on.
func (s *natsServer) start() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "nats-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(s.t, err)
	defer logf.Close()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", filepath.Join(s.dir, "store"),
		"--user", privateUser, "--pass", privatePassword)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	require.NoError(s.t, s.cmd.Start())
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ready(s.port) {
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			log, _ := os.ReadFile(filepath.Join(s.dir, "nats-server.log"))
			s.t.Fatalf("the private nats-server does not answer on port %d:\n%s", s.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready reports whether a server on port greets with JetStream on.
func ready(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "INFO ") && strings.Contains(line, `"jetstream":true`)
}

// stop stops the server (SIGTERM, then SIGKILL after 10 seconds) and waits until it has exited.
func (s *natsServer) stop() {
	if s.cmd == nil {
		return
	}
	cmd := s.cmd
	s.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

var errCrash = errors.New("crash after publish")
