package replay

import (
	"cmp"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/eventstore"
)

// Defaults of [Config].
const (
	// BatchSizeDefault is the default number of events (or rows) read per statement.
	BatchSizeDefault = 2000
	// MaxDiffsDefault is the default number of differing rows a projection report keeps.
	MaxDiffsDefault = 10
)

// BatchSizeMax is the largest Config.BatchSize: the event log's largest read.
const BatchSizeMax = eventstore.ReadLimitMax

// Progress is how far an operation has come.
type Progress struct {
	// Done counts the events read so far.
	Done int64
	// Total is the number of events the operation will read, counted when it starts; 0 when unknown.
	Total int64
}

// Config configures a [Replayer]. The zero value (and a nil *Config) is valid.
type Config struct {
	// BatchSize is the number of events (or read-table rows) read per statement; it bounds the memory
	// an operation holds. At most BatchSizeMax. Default: BatchSizeDefault (2000).
	BatchSize int

	// ProgressFunc, when set, is called on the operation's goroutine after every batch of events.
	// Setting it makes each operation first count the events it will read (one more index scan), so
	// that Progress.Total is known. Default: none.
	ProgressFunc func(Progress)

	// MaxDiffs is the number of differing rows VerifyProjections keeps in its report (it counts them
	// all). Default: MaxDiffsDefault (10).
	MaxDiffs int
}

// WithDefaults returns a copy of c in which every zero field holds its default. c may be nil.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	return &Config{
		BatchSize:    cmp.Or(c.BatchSize, BatchSizeDefault),
		ProgressFunc: c.ProgressFunc,
		MaxDiffs:     cmp.Or(c.MaxDiffs, MaxDiffsDefault),
	}
}

func (c *Config) validate() error {
	switch {
	case c.BatchSize < 0 || c.BatchSize > BatchSizeMax:
		return invalid("Config.BatchSize", "must be between 0 and %d, got %d", BatchSizeMax, c.BatchSize)
	case c.MaxDiffs < 0:
		return invalid("Config.MaxDiffs", "must not be negative, got %d", c.MaxDiffs)
	}
	return nil
}

// Replayer reads the log and the derived tables of one database, read-only. It is safe for concurrent
// use; each operation runs in a transaction of its own.
type Replayer struct {
	pool   *pgxpool.Pool
	events *eventstore.Store
	cfg    *Config
}

// New returns a Replayer on pool, which should log in as the projector role (it reads every tenant; the
// app role sees one tenant at a time and no dead letters or checkpoints). A nil cfg is valid. New does
// no I/O.
func New(pool *pgxpool.Pool, cfg *Config) (*Replayer, error) {
	if pool == nil {
		return nil, errors.New("replay: pool must not be nil")
	}
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
	}
	es, err := eventstore.New(pool, nil)
	if err != nil {
		return nil, err
	}
	return &Replayer{pool: pool, events: es, cfg: cfg.WithDefaults()}, nil
}
