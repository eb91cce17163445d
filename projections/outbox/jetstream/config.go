package jetstream

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/outbox"
)

// Defaults of [Config].
const (
	// URLDefault is the NATS server the relay connects to unless configured otherwise.
	URLDefault = nats.DefaultURL
	// SubjectDefault is the subject the relay publishes to: the watermill-sql sink's topic,
	// outbox.DefaultTopic ("userstore.events"), which is a valid NATS subject as it is.
	SubjectDefault = outbox.DefaultTopic
	// StreamDefault is the JetStream stream that must capture the subject.
	StreamDefault = "USERSTORE_EVENTS"
	// DuplicateWindowDefault is the shortest duplicate window the stream must have — JetStream's own
	// default for new streams.
	DuplicateWindowDefault = 2 * time.Minute
	// AckTimeoutDefault is the default longest wait for the stream's acknowledgement of one message.
	AckTimeoutDefault = 5 * time.Second
	// ConnectTimeoutDefault is the default longest wait for the connection to a server.
	ConnectTimeoutDefault = 5 * time.Second
	// ConnectionNameDefault is the default name of the relay's connection, as the server shows it.
	ConnectionNameDefault = "userstore-outbox-relay"
)

// Config configures the JetStream relay. The zero value (and a nil *Config) is valid: every zero field
// takes its default.
type Config struct {
	// URL is the NATS server's URL, or several separated by commas (a cluster): nats://, tls://, ws://
	// or wss://. It may carry credentials (nats://user:password@host:4222, nats://token@host:4222); they
	// are never printed — errors and logs show the URL with its user information replaced (see
	// [RedactURL]). Prefer credentials in NatsOptions (nats.UserCredentials, nats.UserInfo, nats.Token)
	// from a secret source. Default: URLDefault (nats://127.0.0.1:4222).
	URL string

	// NatsOptions are further options of the connection: credentials, TLS, reconnect timing. They are
	// applied after the relay's own (Name, Timeout, ReconnectBufSize(-1), MaxReconnects(-1), the
	// handlers that log), so they may override them. Default: none.
	NatsOptions []nats.Option

	// Subject is the NATS subject every message is published to: tokens of [A-Za-z0-9_-] separated by
	// dots, at most 255 characters, no wildcards. Default: SubjectDefault ("userstore.events").
	Subject string

	// Stream is the JetStream stream that must capture Subject; every publish expects it
	// (Nats-Expected-Stream), so a message never lands in another stream. 1 to 64 characters of
	// [A-Za-z0-9_-]. Default: StreamDefault ("USERSTORE_EVENTS").
	Stream string

	// CreateStream makes Connect create Stream when it does not exist: file storage, one replica,
	// limits retention with no limits, Subject as its only subject and DuplicateWindow as its duplicate
	// window. Off, the stream must exist (created by the operator, who owns its retention, storage and
	// replicas), and Connect fails with ErrStreamNotFound when it does not. The relay never changes an
	// existing stream. Default: false.
	CreateStream bool

	// DuplicateWindow is the shortest duplicate window the stream may have: within it JetStream drops a
	// message whose Nats-Msg-Id (the event id) it has stored already, which is how a batch that is
	// published again after a failure leaves no duplicates. Connect fails with ErrStreamMismatch when
	// the stream's window is shorter. It must cover the longest time between a publish and its
	// republication (a projector's restart); beyond it a republished message is stored twice and
	// consumers dedupe by the event id. Default: DuplicateWindowDefault (2m).
	DuplicateWindow time.Duration

	// AckTimeout is the longest wait for the stream's acknowledgement of one message; when it passes,
	// the batch fails (and is tried again). Each message of a batch waits in turn, so a Flush takes at
	// most AckTimeout beyond a healthy one before it fails: keep it well below
	// projections.Config.TxIdleTimeout. Default: AckTimeoutDefault (5s).
	AckTimeout time.Duration

	// ConnectTimeout is the longest wait for the connection to one server, in Connect and in every
	// reconnect. Default: ConnectTimeoutDefault (5s).
	ConnectTimeout time.Duration

	// ConnectionName names the connection in the server's monitoring. Default: ConnectionNameDefault
	// ("userstore-outbox-relay").
	ConnectionName string

	// Logger receives the relay's diagnostics: disconnects, reconnects and asynchronous errors of the
	// connection (never a payload or credentials). Default: a logger that discards everything.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c in which every zero field holds its default. c may be nil.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	return &Config{
		URL:             cmp.Or(c.URL, URLDefault),
		NatsOptions:     c.NatsOptions,
		Subject:         cmp.Or(c.Subject, SubjectDefault),
		Stream:          cmp.Or(c.Stream, StreamDefault),
		CreateStream:    c.CreateStream,
		DuplicateWindow: cmp.Or(c.DuplicateWindow, DuplicateWindowDefault),
		AckTimeout:      cmp.Or(c.AckTimeout, AckTimeoutDefault),
		ConnectTimeout:  cmp.Or(c.ConnectTimeout, ConnectTimeoutDefault),
		ConnectionName:  cmp.Or(c.ConnectionName, ConnectionNameDefault),
		Logger:          cmp.Or(c.Logger, slog.New(slog.DiscardHandler)),
	}
}

// ConfigError is an invalid field of [Config]. It wraps projections.ErrValidation. Its text never
// carries credentials: a URL in it is redacted.
type ConfigError struct {
	// Field is the name of the Config field, e.g. "Subject".
	Field string
	// Reason tells what is wrong with it.
	Reason string
}

func (e *ConfigError) Error() string {
	return "outbox/jetstream: Config." + e.Field + ": " + e.Reason
}

func (e *ConfigError) Unwrap() error { return projections.ErrValidation }

var (
	// subjectRE: dot-separated tokens of the characters NATS recommends; no wildcards (* >), no
	// whitespace, no empty token, no "$" (the server's reserved subjects start with it).
	subjectRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	// streamRE: JetStream stream names may not contain dots, wildcards, whitespace or path separators.
	streamRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// subjectMax bounds a subject's length (the server accepts longer ones; no reason to).
const subjectMax = 255

// validate checks c, whose defaults are filled in.
func (c *Config) validate() error {
	if err := validateURL(c.URL); err != nil {
		return err
	}
	switch {
	case len(c.Subject) > subjectMax || !subjectRE.MatchString(c.Subject):
		return &ConfigError{Field: "Subject", Reason: fmt.Sprintf(
			"%q must be tokens of [A-Za-z0-9_-] separated by dots, at most %d characters, without wildcards", c.Subject, subjectMax)}
	case !streamRE.MatchString(c.Stream):
		return &ConfigError{Field: "Stream", Reason: fmt.Sprintf("%q must be 1 to 64 characters of [A-Za-z0-9_-]", c.Stream)}
	case c.DuplicateWindow < time.Second:
		return &ConfigError{Field: "DuplicateWindow", Reason: fmt.Sprintf("must be at least 1s, got %s", c.DuplicateWindow)}
	case c.AckTimeout < time.Millisecond:
		return &ConfigError{Field: "AckTimeout", Reason: fmt.Sprintf("must be at least 1ms, got %s", c.AckTimeout)}
	case c.ConnectTimeout < time.Millisecond:
		return &ConfigError{Field: "ConnectTimeout", Reason: fmt.Sprintf("must be at least 1ms, got %s", c.ConnectTimeout)}
	case strings.ContainsFunc(c.ConnectionName, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return &ConfigError{Field: "ConnectionName", Reason: "must not contain control characters"}
	}
	return nil
}

// validateURL checks each server URL of a comma-separated list. Its errors quote the URL redacted only:
// url.Parse's own errors quote the input, credentials included, so they are never passed on.
func validateURL(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil {
			return &ConfigError{Field: "URL", Reason: fmt.Sprintf("%q is not a valid URL", RedactURL(part))}
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return &ConfigError{Field: "URL", Reason: fmt.Sprintf("%q must start with nats://, tls://, ws:// or wss://", RedactURL(part))}
		}
		if u.Hostname() == "" {
			return &ConfigError{Field: "URL", Reason: fmt.Sprintf("%q has no host", RedactURL(part))}
		}
	}
	return nil
}

// redacted replaces the user information of a URL.
const redacted = "REDACTED"

// RedactURL returns s, one NATS URL or several separated by commas, with the user information of each
// (user and password, or a token) replaced by "REDACTED": nats://alice:secret@host:4222 becomes
// nats://REDACTED@host:4222. It works on the text, so it also redacts what url.Parse would refuse.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, part := range parts {
		at := strings.LastIndex(part, "@")
		if at < 0 {
			continue
		}
		start := 0
		if scheme := strings.Index(part, "://"); scheme >= 0 && scheme < at {
			start = scheme + len("://")
		}
		parts[i] = part[:start] + redacted + part[at:]
	}
	return strings.Join(parts, ",")
}
