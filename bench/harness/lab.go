package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/projections/rebuild"
)

// Sizes are the amounts of work of the projector-side measurements (3 to 7).
type Sizes struct {
	// LogEvents is the preloaded log of measurements 3 (read tables), 6 (the smaller log) and 7.
	LogEvents int `json:"log_events"`
	// AuditEvents is the preloaded log of measurement 3's audit chain (its own database).
	AuditEvents int `json:"audit_events"`
	// GrowthEvents is measurement 6's larger log.
	GrowthEvents int `json:"growth_events"`
	// RelayMessages is the messages one run of measurement 4 moves.
	RelayMessages int `json:"relay_messages"`
	// GrowthBatch is the events one projector run of measurement 6 catches up.
	GrowthBatch int `json:"growth_batch"`
	// Tenants is the tenants of each preloaded log.
	Tenants int `json:"tenants"`
}

// SizesFor returns the sizes of a mode, with the environment's overrides: BENCH_LOG_EVENTS,
// BENCH_AUDIT_EVENTS, BENCH_GROWTH_EVENTS (or BENCH_GROWTH=10m), BENCH_RELAY_MESSAGES.
func SizesFor(quick bool) (Sizes, error) {
	s := Sizes{LogEvents: 1_000_000, AuditEvents: 100_000, GrowthEvents: 5_000_000, RelayMessages: 20_000,
		GrowthBatch: 20_000, Tenants: 16}
	if quick {
		s = Sizes{LogEvents: 100_000, AuditEvents: 10_000, GrowthEvents: 300_000, RelayMessages: 2_000,
			GrowthBatch: 5_000, Tenants: 16}
	}
	if g := os.Getenv("BENCH_GROWTH"); g != "" {
		n, err := parseCount(g)
		if err != nil {
			return s, fmt.Errorf("BENCH_GROWTH: %w", err)
		}
		s.GrowthEvents = n
	}
	for _, o := range []struct {
		env string
		v   *int
	}{{"BENCH_LOG_EVENTS", &s.LogEvents}, {"BENCH_AUDIT_EVENTS", &s.AuditEvents}, {"BENCH_GROWTH_EVENTS", &s.GrowthEvents},
		{"BENCH_RELAY_MESSAGES", &s.RelayMessages}} {
		if v := os.Getenv(o.env); v != "" {
			n, err := parseCount(v)
			if err != nil {
				return s, fmt.Errorf("%s: %w", o.env, err)
			}
			*o.v = n
		}
	}
	return s, nil
}

// parseCount parses 1000, 100k or 10m.
func parseCount(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1_000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive count such as 1000, 100k or 10m, got %q", s)
	}
	return n * mult, nil
}

// Lab holds the databases of measurements 3 to 7, created when a case first needs them and dropped
// by Close.
type Lab struct {
	Sizes Sizes
	// RunFor is measurement 5's run length.
	RunFor   time.Duration
	Progress func(format string, args ...any)

	log, audit, large, relayLog *logFixture
	relay                       *relayFixture
	closers                     []func(context.Context) error
}

// NewLab returns a lab; it creates nothing yet.
func NewLab(sizes Sizes, runFor time.Duration, progress func(string, ...any)) *Lab {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	return &Lab{Sizes: sizes, RunFor: runFor, Progress: progress}
}

// Close drops every database the lab created — unless BENCH_KEEP=1, which keeps them for a look with
// EXPLAIN (ANALYZE, BUFFERS) after the run (drop them by hand: they are named userstore_bench_<pid>_…).
func (l *Lab) Close(ctx context.Context) error {
	if os.Getenv("BENCH_KEEP") == "1" {
		l.Progress("BENCH_KEEP=1: the measurement databases of this run are kept")
		return nil
	}
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// logFixture is a database whose log was preloaded with synthetic events.
type logFixture struct {
	db      *DB
	synth   *synthLog
	tenants []synthTenant
	// users is the users per tenant written so far; events the events in the log.
	users  int
	events int64
	// readModel: the live read tables hold the fold of the log (a rebuild with Force ran);
	// audited: the live audit table holds the trail.
	readModel, audited bool
}

// preloaded returns a database with a log of about events synthetic events, preloading it on first use.
func (l *Lab) preloaded(ctx context.Context, slot **logFixture, label string, events int) (*logFixture, error) {
	return l.preloadedSized(ctx, slot, label, events, DBSizes{Owner: 4, App: 4, Projector: 8, Admin: 2})
}

func (l *Lab) preloadedSized(ctx context.Context, slot **logFixture, label string, events int, sizes DBSizes) (*logFixture, error) {
	if *slot != nil {
		return *slot, nil
	}
	db, err := NewDB(ctx, label, sizes)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, db.Close)
	f := &logFixture{db: db}
	if f.synth, err = newSynthLog(db.Admin); err != nil {
		return nil, err
	}
	start := time.Now()
	if f.tenants, err = f.synth.tenants(ctx, l.Sizes.Tenants, label); err != nil {
		return nil, err
	}
	f.events = int64(len(f.tenants))
	f.users = usersFor(events, len(f.tenants))
	step := int64(max(events/10, preloadChunkEvents))
	next := step
	n, err := f.synth.users(ctx, f.tenants, 0, f.users, func(done int64) {
		if done >= next {
			l.Progress("  preload %s: %d of %d events, %s", label, done, events, time.Since(start).Round(time.Second))
			next += step
		}
	})
	if err != nil {
		return nil, err
	}
	f.events += n
	loaded := time.Since(start)
	// What autovacuum would do soon after: the measurements then do not meet it half-way.
	if _, err := db.Admin.Exec(ctx, "VACUUM (ANALYZE) userstore.events"); err != nil {
		return nil, fmt.Errorf("vacuum the log: %w", err)
	}
	l.Progress("  preloaded %s: %d events in %s (%.0f events/s), vacuumed in %s", db.Name, f.events,
		loaded.Round(time.Millisecond), float64(f.events)/loaded.Seconds(), (time.Since(start) - loaded).Round(time.Millisecond))
	*slot = f
	return f, nil
}

// logDB is the log of LogEvents events (measurements 3, 6 and 7).
func (l *Lab) logDB(ctx context.Context) (*logFixture, error) {
	return l.preloaded(ctx, &l.log, "log", l.Sizes.LogEvents)
}

// ensureReadModel makes the live read tables the fold of the log: a rebuild with Force, which inserts
// every row (the preload wrote events only).
func (l *Lab) ensureReadModel(ctx context.Context, f *logFixture) error {
	if f.readModel {
		return nil
	}
	res, err := rebuild.Run(ctx, &rebuild.Params{Owner: f.db.Owner, Projector: f.db.Projector, Target: rebuild.TargetReadModel},
		&rebuild.Opts{Force: true})
	if err != nil {
		return fmt.Errorf("rebuild the read model with Force: %w", err)
	}
	l.Progress("  read tables filled by a rebuild with Force: %d events in %s", res.Events(), res.Duration.Round(time.Millisecond))
	f.readModel = true
	return nil
}

// ensureAudit fills the live audit table: a rebuild of the audit target, whose swap appends every
// record the live projection had not written.
func (l *Lab) ensureAudit(ctx context.Context, f *logFixture) error {
	if f.audited {
		return nil
	}
	res, err := rebuild.Run(ctx, &rebuild.Params{Owner: f.db.Owner, Projector: f.db.Projector, Target: rebuild.TargetAudit}, nil)
	if err != nil {
		return fmt.Errorf("rebuild the audit table: %w", err)
	}
	l.Progress("  audit table filled by a rebuild: %d events in %s", res.Events(), res.Duration.Round(time.Millisecond))
	f.audited = true
	return nil
}

// checkpointAtHead sets the checkpoints of a projection to the last event of each partition, as if it
// had processed the whole log (measurement 6 measures the runtime on new events, not the preload).
func checkpointAtHead(ctx context.Context, f *logFixture, projection string, version int) error {
	_, err := f.db.Admin.Exec(ctx, `
INSERT INTO userstore.projection_checkpoints (projection, projection_version, partition, transaction_id, global_position)
SELECT $1::text, $2::int4, p.partition, last.transaction_id, last.global_position
  FROM generate_series(0, 63) AS p(partition)
 CROSS JOIN LATERAL (
       SELECT ev.transaction_id, ev.global_position FROM userstore.events AS ev
        WHERE ev.partition = p.partition
        ORDER BY ev.transaction_id DESC, ev.global_position DESC LIMIT 1) AS last
ON CONFLICT (projection, projection_version, partition) DO UPDATE
   SET transaction_id = excluded.transaction_id, global_position = excluded.global_position`, projection, version)
	return err
}

// appendUsers appends the events of n more users per tenant to a preloaded log, as the superuser, and
// returns the events written.
func (f *logFixture) appendUsers(ctx context.Context, n int) (int64, error) {
	written, err := f.synth.users(ctx, f.tenants, f.users, f.users+n, nil)
	f.users += n
	f.events += written
	return written, err
}

// count returns the rows of a table (schema-qualified, quoted) as the role of pool.
func count(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}
