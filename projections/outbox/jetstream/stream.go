package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ensureStream checks that the configured stream exists and fits — it captures the subject,
// acknowledges publishes and dedupes for at least Config.DuplicateWindow — creating it first when it is
// missing and Config.CreateStream is on. It returns the stream's duplicate window. It never changes an
// existing stream: its retention, storage and replicas are the operator's.
func ensureStream(ctx context.Context, nc *nats.Conn, cfg *Config) (time.Duration, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return 0, translate("jetstream", err)
	}
	s, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) && cfg.CreateStream {
		s, err = js.CreateStream(ctx, natsjs.StreamConfig{
			Name:        cfg.Stream,
			Description: "userstore public integration events (outbox relay, projections/outbox/jetstream)",
			Subjects:    []string{cfg.Subject},
			Retention:   natsjs.LimitsPolicy,
			Storage:     natsjs.FileStorage,
			Replicas:    1,
			Duplicates:  cfg.DuplicateWindow,
		})
		if errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) { // created meanwhile, by another relay
			s, err = js.Stream(ctx, cfg.Stream)
		}
	}
	switch {
	case errors.Is(err, natsjs.ErrStreamNotFound):
		return 0, fmt.Errorf("%w: %s (create it, or set Config.CreateStream)", ErrStreamNotFound, cfg.Stream)
	case err != nil:
		return 0, translate("stream "+cfg.Stream, err)
	}
	sc := s.CachedInfo().Config
	subjects := sc.Subjects
	if len(subjects) == 0 {
		subjects = []string{sc.Name} // a stream without subjects captures its own name
	}
	if !captures(subjects, cfg.Subject) {
		return 0, fmt.Errorf("%w: stream %s does not capture Config.Subject %s (its subjects: %s)",
			ErrStreamMismatch, cfg.Stream, cfg.Subject, strings.Join(subjects, ", "))
	}
	if sc.NoAck {
		return 0, fmt.Errorf("%w: stream %s does not acknowledge publishes (no_ack)", ErrStreamMismatch, cfg.Stream)
	}
	if sc.Duplicates < cfg.DuplicateWindow {
		return 0, fmt.Errorf("%w: the duplicate window of stream %s (%s) is shorter than Config.DuplicateWindow (%s)",
			ErrStreamMismatch, cfg.Stream, sc.Duplicates, cfg.DuplicateWindow)
	}
	return sc.Duplicates, nil
}

// captures reports whether one of a stream's subjects (which may hold the wildcards * and >) matches
// subject (which holds none).
func captures(filters []string, subject string) bool {
	for _, f := range filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether the NATS subject filter matches subject: tokens are compared one by
// one, "*" matches any one token and ">", as the last token, any one or more.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" && i == len(ft)-1 {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}
