package projections

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/netkingdom/userstore/eventstore"
)

// Defaults of [Config].
const (
	// BatchSizeDefault is the default number of events of one batch transaction.
	BatchSizeDefault = 500
	// WorkersDefault is the default number of partitions a Runner works on at once.
	WorkersDefault = 4
	// PollIntervalMinDefault is the default shortest wait between two polls of the log.
	PollIntervalMinDefault = 10 * time.Millisecond
	// PollIntervalMaxDefault is the default longest wait between two polls of the log.
	PollIntervalMaxDefault = time.Second
	// RetryBackoffMinDefault is the default wait before the first automatic retry of a dead letter.
	RetryBackoffMinDefault = time.Second
	// RetryBackoffMaxDefault is the default longest wait between automatic retries of a dead letter.
	RetryBackoffMaxDefault = 5 * time.Minute
	// RetryAttemptsDefault is the default number of failed attempts after which a dead letter waits for
	// an operator.
	RetryAttemptsDefault = 5
	// TxIdleTimeoutDefault is the default longest idle time of a batch transaction.
	TxIdleTimeoutDefault = 30 * time.Second
)

// Config configures a [Runner]. The zero value (and a nil *Config) is valid: every zero field takes its
// default.
type Config struct {
	// BatchSize is the largest number of events one batch transaction reads and applies, at most
	// eventstore.ReadLimitMax. Smaller batches keep transactions short (a running batch holds back every
	// reader of the log, see eventstore.Store.Horizon); larger ones cost fewer round trips per event.
	// Default: BatchSizeDefault (500).
	BatchSize int

	// Workers is the number of partitions a Runner processes at once, each on a goroutine and a
	// connection of its own: the pool needs Workers connections, and one more for polling. Default:
	// WorkersDefault (4).
	Workers int

	// PollIntervalMin is how long the Runner waits after a poll that found new work before it polls
	// again; every poll that finds none doubles the wait, up to PollIntervalMax. Notify wakes it at once.
	// A partition whose lock another process holds is tried again after PollIntervalMax. Default:
	// PollIntervalMinDefault (10ms).
	PollIntervalMin time.Duration

	// PollIntervalMax is the longest wait between two polls: a process that died leaves its partitions
	// to the others within about that long (at most twice that). Default: PollIntervalMaxDefault (1s).
	PollIntervalMax time.Duration

	// RetryBackoffMin is the wait before the first automatic retry of a tenant's failed event; each
	// further failure doubles it, up to RetryBackoffMax. Default: RetryBackoffMinDefault (1s).
	RetryBackoffMin time.Duration

	// RetryBackoffMax is the longest wait between automatic retries. Default: RetryBackoffMaxDefault
	// (5m).
	RetryBackoffMax time.Duration

	// RetryAttempts is the number of failed attempts (the first failure included) after which a dead
	// letter is no longer retried automatically and waits for an operator's Retry or Skip. Default:
	// RetryAttemptsDefault (5).
	RetryAttempts int

	// TxIdleTimeout is the longest a batch transaction may sit idle, waiting for the runner between two
	// statements — PostgreSQL's idle_in_transaction_session_timeout, set for the transaction only
	// (set_config(..., true)). A process that hangs in the middle of a batch (stopped, starved, cut off
	// by the network) then loses its connection, and with it the transaction and the partition's lock,
	// after that long, instead of holding the partition until it wakes. It bounds the time a
	// projection's Apply or Flush may spend without talking to the database. Default:
	// TxIdleTimeoutDefault (30s).
	TxIdleTimeout time.Duration

	// Logger receives the runner's diagnostics (never payloads or connection strings). Default: a
	// logger that discards everything.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c in which every zero field holds its default. c may be nil.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	return &Config{
		BatchSize:       cmp.Or(c.BatchSize, BatchSizeDefault),
		Workers:         cmp.Or(c.Workers, WorkersDefault),
		PollIntervalMin: cmp.Or(c.PollIntervalMin, PollIntervalMinDefault),
		PollIntervalMax: cmp.Or(c.PollIntervalMax, PollIntervalMaxDefault),
		RetryBackoffMin: cmp.Or(c.RetryBackoffMin, RetryBackoffMinDefault),
		RetryBackoffMax: cmp.Or(c.RetryBackoffMax, RetryBackoffMaxDefault),
		RetryAttempts:   cmp.Or(c.RetryAttempts, RetryAttemptsDefault),
		TxIdleTimeout:   cmp.Or(c.TxIdleTimeout, TxIdleTimeoutDefault),
		Logger:          cmp.Or(c.Logger, slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
}

func (c *Config) validate() error {
	switch {
	case c.BatchSize < 0 || c.BatchSize > eventstore.ReadLimitMax:
		return fmt.Errorf("projections: Config.BatchSize must be between 0 and %d, got %d", eventstore.ReadLimitMax, c.BatchSize)
	case c.Workers < 0:
		return fmt.Errorf("projections: Config.Workers must not be negative, got %d", c.Workers)
	case c.PollIntervalMin < 0:
		return fmt.Errorf("projections: Config.PollIntervalMin must not be negative, got %s", c.PollIntervalMin)
	case c.PollIntervalMax < 0:
		return fmt.Errorf("projections: Config.PollIntervalMax must not be negative, got %s", c.PollIntervalMax)
	case c.RetryBackoffMin < 0:
		return fmt.Errorf("projections: Config.RetryBackoffMin must not be negative, got %s", c.RetryBackoffMin)
	case c.RetryBackoffMax < 0:
		return fmt.Errorf("projections: Config.RetryBackoffMax must not be negative, got %s", c.RetryBackoffMax)
	case c.RetryAttempts < 0:
		return fmt.Errorf("projections: Config.RetryAttempts must not be negative, got %d", c.RetryAttempts)
	case c.TxIdleTimeout < 0:
		return fmt.Errorf("projections: Config.TxIdleTimeout must not be negative, got %s", c.TxIdleTimeout)
	case c.TxIdleTimeout > 0 && c.TxIdleTimeout < time.Millisecond:
		return fmt.Errorf("projections: Config.TxIdleTimeout must be at least 1ms, got %s", c.TxIdleTimeout)
	}
	d := c.WithDefaults()
	if d.PollIntervalMin > d.PollIntervalMax {
		return fmt.Errorf("projections: Config.PollIntervalMin (%s) must not exceed Config.PollIntervalMax (%s)",
			d.PollIntervalMin, d.PollIntervalMax)
	}
	if d.RetryBackoffMin > d.RetryBackoffMax {
		return fmt.Errorf("projections: Config.RetryBackoffMin (%s) must not exceed Config.RetryBackoffMax (%s)",
			d.RetryBackoffMin, d.RetryBackoffMax)
	}
	return nil
}

// retryDelay is the wait before the next automatic retry of a dead letter that has failed attempts
// times, or false when it has no automatic attempt left.
func (c *Config) retryDelay(attempts int) (time.Duration, bool) {
	if attempts >= c.RetryAttempts {
		return 0, false
	}
	d := c.RetryBackoffMin
	for i := 1; i < attempts && d < c.RetryBackoffMax; i++ {
		d *= 2
	}
	return min(d, c.RetryBackoffMax), true
}
