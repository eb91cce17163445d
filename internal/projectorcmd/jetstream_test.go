package projectorcmd

import (
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/internal/pgtest"
)

// natsURL returns the local nats-server's URL (scripts/pg.sh env prints it), failing with instructions
// when it is missing.
func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(EnvNATSURL)
	require.NotEmpty(t, u, "%s is not set: run `scripts/pg.sh up && eval \"$(scripts/pg.sh env)\"` (make test does)", EnvNATSURL)
	return u
}

// TestJetStreamProjection: -projections selects the JetStream sink beside the defaults; status reports
// it and run delivers every event to its stream once; a NATS server that refuses the connection is a
// connection error (exit 2) whose text holds no password.
func TestJetStreamProjection(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	db := pgtest.NewDatabase(t, nil)
	history(t, ctx, db, 2)
	events := countEvents(t, ctx, db)

	// A stream and subject of this test's own, so that parallel tests never share one.
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	subject, stream := "userstore.test."+suffix, "USERSTORE_TEST_"+suffix
	vars := map[string]string{
		EnvProjectorDatabaseURL: dsn(t, pgtest.EnvProjectorURL, db),
		EnvNATSURL:              natsURL(t),
	}
	args := []string{"-projections", "audit,outbox,outbox.jetstream", "-nats-subject", subject, "-nats-stream", stream,
		"-nats-create-stream"}

	r := startRun(t, ctx, vars, args...)
	nc, err := nats.Connect(natsURL(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	require.NoError(t, err)
	waitFor(t, "every event in the JetStream stream", func() bool {
		info, err := js.StreamInfo(stream)
		return err == nil && int64(info.State.Msgs) == events
	})
	require.Equal(t, ExitOK, r.stop(t))
	t.Cleanup(func() { _ = js.DeleteStream(stream) })

	res := runMain(t, ctx, vars, append([]string{"status"}, args[:len(args)-1]...)...)
	require.Equal(t, ExitOK, res.code)
	require.Regexp(t, `(?m)^outbox\.jetstream\s+1\s+0\s+`, res.stdout)
	info, err := js.StreamInfo(stream)
	require.NoError(t, err)
	require.Equal(t, uint64(events), info.State.Msgs, "a second run adds nothing")

	const canary = "nats-canary-4f1c"
	vars[EnvNATSURL] = "nats://relay:" + canary + "@127.0.0.1:1"
	res = runMain(t, ctx, vars, append([]string{"status"}, args...)...)
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "NATS unavailable")
	require.NotContains(t, res.stdout+res.stderr, canary)

	res = runMain(t, ctx, vars, "status", "-projections", "outbox.jetstream", "-nats-stream", "no spaces")
	require.Equal(t, ExitUsage, res.code)
	require.Contains(t, res.stderr, "-nats-stream")
}
