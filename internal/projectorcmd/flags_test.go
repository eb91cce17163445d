package projectorcmd

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
)

// TestRunFlagsAndEnvironment: a flag wins over its environment variable, which wins over the default;
// an invalid variable is a usage error naming it.
func TestRunFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		EnvProjectorDatabaseURL: "postgres://projector@db.example:5432/userstore",
		EnvBatchSize:            "50",
		EnvWorkers:              "2",
		EnvReadyMaxLag:          "30s",
		EnvWait:                 "false",
	}
	env := &Env{Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return vars[k] }}
	o, err := parseRun([]string{"-workers", "3", "-poll-interval-max", "2s"}, env)
	require.NoError(t, err)
	require.Equal(t, vars[EnvProjectorDatabaseURL], o.db.url)
	require.Equal(t, 50, o.runner.BatchSize)
	require.Equal(t, 3, o.runner.Workers)
	require.Equal(t, 2*time.Second, o.runner.PollIntervalMax)
	require.Equal(t, projections.PollIntervalMinDefault, o.runner.PollIntervalMin)
	require.Equal(t, 30*time.Second, o.readyMaxLag)
	require.False(t, o.wait)
	require.Equal(t, ListenDefault, o.listen)
	require.Equal(t, []string{audit.Name, outbox.Name}, o.proj.list())
	require.Equal(t, outbox.DefaultTopic, o.proj.outboxTopic)

	vars[EnvBatchSize] = "many"
	_, err = parseRun(nil, env)
	var u *usageError
	require.ErrorAs(t, err, &u)
	require.ErrorContains(t, err, EnvBatchSize)

	_, err = parseRun([]string{"-workers", "0"}, &Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	require.ErrorAs(t, err, &u)
	_, err = parseRun([]string{"extra"}, &Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	require.ErrorAs(t, err, &u)
}

// TestUsage: exit codes and messages of usage errors, and help that never shows a variable's value.
func TestUsage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const canary = "canary-help-s3cret"
	vars := map[string]string{EnvProjectorDatabaseURL: "postgres://projector:" + canary + "@db.example/userstore"}

	require.Equal(t, ExitUsage, runMain(t, ctx, nil).code)
	require.Equal(t, ExitUsage, runMain(t, ctx, nil, "bogus").code)
	res := runMain(t, ctx, nil, "help")
	require.Equal(t, ExitOK, res.code)
	require.Contains(t, res.stdout, "dead-letters retry")

	for _, args := range [][]string{{"run", "-h"}, {"status", "-h"}, {"dead-letters", "list", "-h"}, {"migrate", "-h"}} {
		res := runMain(t, ctx, vars, args...)
		require.Equal(t, ExitOK, res.code, args)
		require.Contains(t, res.stderr, "-database-url", args)
		require.NotContains(t, res.stderr+res.stdout, canary, args)
	}
	res = runMain(t, ctx, vars, "run", "-h")
	require.Contains(t, res.stderr, EnvProjectorDatabaseURL)
	require.Contains(t, res.stderr, EnvReadyMaxLag)
	require.Contains(t, runMain(t, ctx, vars, "migrate", "-h").stderr, EnvOwnerDatabaseURL)

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "no database: set -database-url or " + EnvProjectorDatabaseURL},
		{[]string{"status"}, "no database"},
		{[]string{"migrate"}, "no database: set -database-url or " + EnvOwnerDatabaseURL},
		{[]string{"run", "-no-such-flag"}, "flag provided but not defined"},
		{[]string{"run", "-log-level", "loud"}, "-log-level"},
		{[]string{"run", "-log-format", "xml"}, "-log-format"},
		{[]string{"status", "-projections", "audit,nope"}, `unknown projection "nope"`},
		{[]string{"status", "-projections", "audit,audit"}, "twice"},
		{[]string{"status", "-outbox-topic", "bad topic"}, "-outbox-topic"},
		{[]string{"dead-letters"}, "usage: projector dead-letters"},
		{[]string{"dead-letters", "purge"}, `unknown dead-letters subcommand "purge"`},
		{[]string{"dead-letters", "retry", "-projection", "audit"}, "-tenant, -by are required"},
		{[]string{"dead-letters", "skip", "-projection", "audit", "-tenant", "x", "-by", "me"}, "-event is required"},
		{[]string{"dead-letters", "retry", "-projection", "audit", "-tenant", "x", "-by", "me"}, "-tenant must be a UUID"},
	}
	for _, c := range cases {
		res := runMain(t, ctx, nil, c.args...)
		require.Equal(t, ExitUsage, res.code, c.args)
		require.Contains(t, res.stderr, c.want, c.args)
	}
}

// TestLogFormat: auto logs JSON when stderr is not a terminal (a buffer); text and json on request.
func TestLogFormat(t *testing.T) {
	t.Parallel()
	for format, isJSON := range map[string]bool{"auto": true, "json": true, "text": false} {
		var buf bytes.Buffer
		log, err := newLogger(&logOptions{level: "info", format: format}, &buf)
		require.NoError(t, err)
		log.Debug("hidden")
		log.Info("shown", "key", "value")
		line := bytes.TrimSpace(buf.Bytes())
		require.NotContains(t, string(line), "hidden")
		var m map[string]any
		if isJSON {
			require.NoError(t, json.Unmarshal(line, &m), format)
			require.Equal(t, "shown", m["msg"])
		} else {
			require.Error(t, json.Unmarshal(line, &m), format)
			require.Contains(t, string(line), "key=value")
		}
	}
}
