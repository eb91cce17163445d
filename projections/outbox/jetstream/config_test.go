package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// TestConfigValidation: an invalid field fails Connect before any I/O with a *ConfigError that names
// it and wraps projections.ErrValidation; a URL in it is redacted.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const secret = "hunter2-secret"
	for _, tc := range []struct {
		field string
		cfg   jetstream.Config
	}{
		{"URL", jetstream.Config{URL: "http://alice:" + secret + "@127.0.0.1:4222"}},
		{"URL", jetstream.Config{URL: "nats://alice:" + secret + "@127.0.0.1:4222, nats://bob:" + secret + "@:4222"}},
		{"URL", jetstream.Config{URL: "nats://alice:" + secret + "%zz@127.0.0.1:4222"}},
		{"URL", jetstream.Config{URL: "nats://" + secret + "@host:port"}},
		{"Subject", jetstream.Config{Subject: "userstore.*"}},
		{"Subject", jetstream.Config{Subject: "userstore..events"}},
		{"Subject", jetstream.Config{Subject: "user store"}},
		{"Subject", jetstream.Config{Subject: "$JS.API.x"}},
		{"Subject", jetstream.Config{Subject: "events>"}},
		{"Subject", jetstream.Config{Subject: strings.Repeat("a", 256)}},
		{"Stream", jetstream.Config{Stream: "userstore.events"}},
		{"Stream", jetstream.Config{Stream: "a/b"}},
		{"Stream", jetstream.Config{Stream: strings.Repeat("S", 65)}},
		{"DuplicateWindow", jetstream.Config{DuplicateWindow: time.Millisecond}},
		{"DuplicateWindow", jetstream.Config{DuplicateWindow: -time.Minute}},
		{"AckTimeout", jetstream.Config{AckTimeout: -time.Second}},
		{"ConnectTimeout", jetstream.Config{ConnectTimeout: time.Microsecond}},
		{"ConnectionName", jetstream.Config{ConnectionName: "relay\n"}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := jetstream.Connect(ctx, &tc.cfg)
			t.Log(err)
			require.ErrorIs(t, err, projections.ErrValidation)
			var ce *jetstream.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.field, ce.Field)
			require.Contains(t, err.Error(), "Config."+tc.field)
			require.NotContains(t, err.Error(), secret)
			for e := err; e != nil; e = errors.Unwrap(e) {
				require.NotContains(t, fmt.Sprintf("%+v", e), secret)
			}
		})
	}
	require.Equal(t, jetstream.SubjectDefault, "userstore.events")
	d := (*jetstream.Config)(nil).WithDefaults()
	require.Equal(t, jetstream.URLDefault, d.URL)
	require.Equal(t, jetstream.StreamDefault, d.Stream)
	require.Equal(t, jetstream.DuplicateWindowDefault, d.DuplicateWindow)
	require.NotNil(t, d.Logger)
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                                   "nats://127.0.0.1:4222",
		"nats://alice:secret@127.0.0.1:4222":                      "nats://REDACTED@127.0.0.1:4222",
		"tls://s3cr3t-token@nats.example:4222":                    "tls://REDACTED@nats.example:4222",
		"nats://a:p@x@h:1":                                        "nats://REDACTED@h:1",
		"alice:secret@h:1":                                        "REDACTED@h:1",
		"nats://a:secret@h1:4222,nats://h2:4222,nats://b:pw@h3:1": "nats://REDACTED@h1:4222,nats://h2:4222,nats://REDACTED@h3:1",
	} {
		require.Equal(t, want, jetstream.RedactURL(in), in)
	}
}

// TestConnectErrors: a server that cannot be reached is ErrUnavailable, wrong credentials ErrRejected,
// a missing stream ErrStreamNotFound, a stream that does not fit ErrStreamMismatch — none of them with
// the URL's password.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	url := natsURL(t)
	pass := password(t, url)

	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		const secret = "closed-port-secret"
		_, err := jetstream.Connect(ctx, &jetstream.Config{
			URL: fmt.Sprintf("nats://relay:%s@127.0.0.1:%d", secret, freePort(t)), ConnectTimeout: time.Second})
		t.Log(err)
		require.ErrorIs(t, err, jetstream.ErrUnavailable)
		require.ErrorContains(t, err, "nats://REDACTED@127.0.0.1:")
		require.NotContains(t, err.Error(), secret)
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		wrong := strings.Replace(url, ":"+pass+"@", ":not-"+pass+"@", 1)
		_, err := jetstream.Connect(ctx, &jetstream.Config{URL: wrong})
		t.Log(err)
		require.ErrorIs(t, err, jetstream.ErrRejected)
		require.ErrorContains(t, err, "authorization")
		require.NotContains(t, err.Error(), pass)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := jetstream.Connect(cctx, &jetstream.Config{URL: url})
		t.Log(err)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("stream not found", func(t *testing.T) {
		t.Parallel()
		cfg := streamConfig(t, url)
		cfg.CreateStream = false
		_, err := jetstream.Connect(ctx, cfg)
		t.Log(err)
		require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
		require.ErrorContains(t, err, cfg.Stream)
		require.NotContains(t, err.Error(), pass)
	})
	t.Run("stream mismatch", func(t *testing.T) {
		t.Parallel()
		cfg := streamConfig(t, url)
		cfg.DuplicateWindow = time.Minute
		p := connect(t, ctx, cfg) // creates the stream, with a 1m window
		require.Equal(t, time.Minute, p.DuplicateWindow())

		other := *cfg
		other.Subject += ".other"
		_, err := jetstream.Connect(ctx, &other)
		t.Log(err)
		require.ErrorIs(t, err, jetstream.ErrStreamMismatch)
		require.ErrorContains(t, err, "Config.Subject")

		longer := *cfg
		longer.DuplicateWindow = 5 * time.Minute
		_, err = jetstream.Connect(ctx, &longer)
		t.Log(err)
		require.ErrorIs(t, err, jetstream.ErrStreamMismatch)
		require.ErrorContains(t, err, "Config.DuplicateWindow")

		// An existing stream is used as it is: CreateStream changes nothing.
		again, err := jetstream.Connect(ctx, cfg)
		require.NoError(t, err)
		require.NoError(t, again.Close())
	})
}
