package projectorcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
)

// projectionsFor returns the projections the program runs, in order, as o selects them, and a function
// that releases what they hold (the JetStream sink's NATS connection), which the caller must call. It is
// the one place that knows the program's projections and their settings: a new projection, or another
// outbox sink, is added here.
func projectionsFor(ctx context.Context, o *projectionOptions, log *slog.Logger) (_ []projections.Projection, _ func(), err error) {
	names := o.list()
	if len(names) == 0 {
		return nil, nil, usagef("-projections must name at least one of %s", projectionsKnown)
	}
	var (
		out     []projections.Projection
		closers []func() error
	)
	release := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return nil, nil, usagef("-projections names %s twice", name)
		}
		switch name {
		case audit.Name:
			out = append(out, audit.New(nil))
		case outbox.Name:
			relay, err := outbox.New(&outbox.Config{Topic: o.outboxTopic})
			if err != nil {
				return nil, nil, usagef("-outbox-topic: %s", strings.TrimPrefix(err.Error(), projections.ErrValidation.Error()+": "))
			}
			out = append(out, relay)
		case jetstream.Name:
			relay, err := jetstream.Connect(ctx, &jetstream.Config{
				URL: o.natsURL, Subject: o.natsSubject, Stream: o.natsStream, CreateStream: o.natsCreateStream, Logger: log,
			})
			if err != nil {
				return nil, nil, natsError(err)
			}
			closers = append(closers, relay.Close)
			out = append(out, relay)
		default:
			return nil, nil, usagef("-projections: unknown projection %q (known: %s)", name, projectionsKnown)
		}
	}
	return out, release, nil
}

// natsError classifies an error of jetstream.Connect (whose text never holds credentials): a setting
// is a usage error, an unreachable or refusing server a connection error (both exit with ExitUsage).
func natsError(err error) error {
	var cfg *jetstream.ConfigError
	switch {
	case errors.As(err, &cfg):
		flag := map[string]string{"URL": "-nats-url", "Subject": "-nats-subject", "Stream": "-nats-stream"}[cfg.Field]
		if flag == "" {
			flag = "the " + jetstream.Name + " projection's " + cfg.Field
		}
		return usagef("%s: %s", flag, cfg.Reason)
	case errors.Is(err, jetstream.ErrUnavailable), errors.Is(err, jetstream.ErrRejected):
		return &connectError{where: "the " + jetstream.Name + " projection's server", service: "NATS", reason: err.Error()}
	}
	return fmt.Errorf("%s projection: %w", jetstream.Name, err)
}
