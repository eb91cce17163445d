package eventstore

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults of [Config].
const (
	// MaxPayloadBytesDefault is the default limit of one event's payload (and of its metadata).
	MaxPayloadBytesDefault = 1 << 20
	// MaxEventsPerAppendDefault is the default limit of events in one append.
	MaxEventsPerAppendDefault = 10_000
	// PollIntervalMinDefault is the default shortest wait of Follow between two polls.
	PollIntervalMinDefault = 10 * time.Millisecond
	// PollIntervalMaxDefault is the default longest wait of Follow between two polls.
	PollIntervalMaxDefault = time.Second
	// ReadLimitDefault is the default number of events of one ReadAll call or Follow batch.
	ReadLimitDefault = 500
)

// ReadLimitMax is the largest Limit of ReadAll and BatchSize of Follow.
const ReadLimitMax = 10_000

// Config configures a [Store]. The zero value (and a nil *Config) is valid: every zero field takes
// its default.
type Config struct {
	// MaxPayloadBytes is the largest payload of one event, in bytes; the marshalled metadata of an
	// event has the same limit. Default: MaxPayloadBytesDefault (1 MiB).
	MaxPayloadBytes int

	// MaxEventsPerAppend is the largest number of events in one append. Default:
	// MaxEventsPerAppendDefault (10,000).
	MaxEventsPerAppend int

	// PollIntervalMin is how long Follow waits after a poll that found nothing before it polls
	// again; every further empty poll doubles the wait, up to PollIntervalMax. A local append
	// (Append, or Notify after AppendTx) wakes followers at once. Default: PollIntervalMinDefault
	// (10ms).
	PollIntervalMin time.Duration

	// PollIntervalMax is the longest wait of Follow between two polls. Default:
	// PollIntervalMaxDefault (1s).
	PollIntervalMax time.Duration

	// Logger receives the store's diagnostics (never payloads, bind values or connection strings).
	// Default: a logger that discards everything.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c in which every zero field holds its default. c may be nil.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	return &Config{
		MaxPayloadBytes:    cmp.Or(c.MaxPayloadBytes, MaxPayloadBytesDefault),
		MaxEventsPerAppend: cmp.Or(c.MaxEventsPerAppend, MaxEventsPerAppendDefault),
		PollIntervalMin:    cmp.Or(c.PollIntervalMin, PollIntervalMinDefault),
		PollIntervalMax:    cmp.Or(c.PollIntervalMax, PollIntervalMaxDefault),
		Logger:             cmp.Or(c.Logger, slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
}

func (c *Config) validate() error {
	switch {
	case c.MaxPayloadBytes < 0:
		return fmt.Errorf("eventstore: Config.MaxPayloadBytes must not be negative, got %d", c.MaxPayloadBytes)
	case c.MaxEventsPerAppend < 0:
		return fmt.Errorf("eventstore: Config.MaxEventsPerAppend must not be negative, got %d", c.MaxEventsPerAppend)
	case c.PollIntervalMin < 0:
		return fmt.Errorf("eventstore: Config.PollIntervalMin must not be negative, got %s", c.PollIntervalMin)
	case c.PollIntervalMax < 0:
		return fmt.Errorf("eventstore: Config.PollIntervalMax must not be negative, got %s", c.PollIntervalMax)
	}
	d := c.WithDefaults()
	if d.PollIntervalMin > d.PollIntervalMax {
		return fmt.Errorf("eventstore: Config.PollIntervalMin (%s) must not exceed Config.PollIntervalMax (%s)",
			d.PollIntervalMin, d.PollIntervalMax)
	}
	return nil
}
