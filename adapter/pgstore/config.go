package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

// Defaults of Config.
const (
	// MaxRetriesDefault is how many times a mutation is re-run after a serialization failure, a
	// deadlock or a lost append race, by default.
	MaxRetriesDefault = 5
	// RetryBaseDelayDefault is the default upper bound of the jittered wait before the first re-run.
	RetryBaseDelayDefault = 5 * time.Millisecond
	// RetryMaxDelayDefault is the default cap of the jittered wait between re-runs.
	RetryMaxDelayDefault = 250 * time.Millisecond
	// HorizonWarnAfterDefault is how long a transaction may hold the log's read horizon before Ready
	// warns about it, by default.
	HorizonWarnAfterDefault = time.Minute
)

// Config configures a Store. A nil *Config is valid: every zero field takes its default.
type Config struct {
	// MaxRetries bounds the re-runs of a mutation whose transaction failed for a reason that a re-run
	// may cure — a serialization failure (SQLSTATE 40001), a deadlock (40P01), an append that lost the
	// race for a stream's next version, or a concurrent request with the same idempotency key. A
	// mutation that still fails after MaxRetries re-runs returns an error matching userstore.ErrConflict.
	// Default: MaxRetriesDefault (5).
	MaxRetries int

	// RetryBaseDelay bounds the wait before the first re-run: each wait is drawn uniformly from
	// [d/2, d), where d doubles with every attempt from RetryBaseDelay up to RetryMaxDelay. Default:
	// RetryBaseDelayDefault (5ms).
	RetryBaseDelay time.Duration

	// RetryMaxDelay caps the wait between re-runs. Default: RetryMaxDelayDefault (250ms).
	RetryMaxDelay time.Duration

	// Now returns the current time, for entity timestamps (kept in UTC at microsecond precision).
	// Default: time.Now.
	Now func() time.Time

	// NewID returns new entity and event ids. Default: userstore.NewID (UUIDv7).
	NewID func() uuid.UUID

	// Logger receives a debug record per committed mutation and per re-run (operation, tenant id,
	// attempt, SQLSTATE; never a value, a query or a connection string). Default: discard.
	Logger *slog.Logger

	// HorizonWarnAfter is how long the transaction that holds the log's read horizon back may run
	// before Ready reports a "horizon" warning naming its backend. Default: HorizonWarnAfterDefault
	// (1m).
	HorizonWarnAfter time.Duration

	// afterAppend, when set (tests only, see export_test.go), runs after each Append of a unit of work,
	// inside its transaction; an error fails the mutation there.
	afterAppend func(ctx context.Context) error
}

// WithDefaults returns a copy of the config with every zero field set to its default. c may be nil.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.MaxRetries = cmp.Or(out.MaxRetries, MaxRetriesDefault)
	out.RetryBaseDelay = cmp.Or(out.RetryBaseDelay, RetryBaseDelayDefault)
	out.RetryMaxDelay = cmp.Or(out.RetryMaxDelay, RetryMaxDelayDefault)
	out.HorizonWarnAfter = cmp.Or(out.HorizonWarnAfter, HorizonWarnAfterDefault)
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.NewID == nil {
		out.NewID = userstore.NewID
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

// validate checks the fields a caller set; it names the offending field.
func (c *Config) validate() error {
	if c == nil {
		return nil
	}
	switch {
	case c.MaxRetries < 0:
		return fmt.Errorf("pgstore: Config.MaxRetries must not be negative, got %d", c.MaxRetries)
	case c.RetryBaseDelay < 0:
		return fmt.Errorf("pgstore: Config.RetryBaseDelay must not be negative, got %s", c.RetryBaseDelay)
	case c.RetryMaxDelay < 0:
		return fmt.Errorf("pgstore: Config.RetryMaxDelay must not be negative, got %s", c.RetryMaxDelay)
	case c.HorizonWarnAfter < 0:
		return fmt.Errorf("pgstore: Config.HorizonWarnAfter must not be negative, got %s", c.HorizonWarnAfter)
	}
	d := c.WithDefaults()
	if d.RetryBaseDelay > d.RetryMaxDelay {
		return fmt.Errorf("pgstore: Config.RetryBaseDelay (%s) must not exceed Config.RetryMaxDelay (%s)", d.RetryBaseDelay, d.RetryMaxDelay)
	}
	return nil
}
