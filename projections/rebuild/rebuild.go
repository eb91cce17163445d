package rebuild

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore/projections"
)

// Targets of a rebuild.
const (
	// TargetReadModel is the inline read model: the nine read tables adapter/pgstore writes in its
	// mutations' transactions (projections/readmodel).
	TargetReadModel = "readmodel"
	// TargetAudit is the audit projection: userstore.audit_records, written by the asynchronous audit
	// projection (projections/audit).
	TargetAudit = "audit"
	// TargetOutbox is the outbox relay. It is named only to be refused with ErrNotRebuildable.
	TargetOutbox = "outbox"
)

// Targets returns the targets Run rebuilds.
func Targets() []string { return []string{TargetReadModel, TargetAudit} }

// ShadowSchema returns the schema of a target's shadow tables, "userstore_rebuild_<target>": created by
// Run, dropped when it ends (unless Opts.KeepShadow), and by Cleanup. A schema of its own keeps the
// shadow tables out of schema userstore, whose every tenant table readiness checks for forced row-level
// security, and makes a cleanup one DROP SCHEMA.
func ShadowSchema(target string) string { return "userstore_rebuild_" + target }

// Defaults of [Opts].
const (
	// BatchSizeDefault is the default number of rows one COPY batch writes into the shadow tables, of
	// streams one re-fold reads, and of events one audit batch projects.
	BatchSizeDefault = 1000
	// WorkersDefault is the default number of partitions the shadow audit projection works on at once.
	WorkersDefault = 4
	// LockTimeoutDefault is how long, by default, the swap waits for a lock before it gives up the
	// attempt.
	LockTimeoutDefault = 5 * time.Second
	// SwapAttemptsDefault is the default number of swap attempts.
	SwapAttemptsDefault = 5
	// CatchUpRoundsDefault is the default largest number of catch-up rounds before the swap.
	CatchUpRoundsDefault = 5
)

// cleanupTimeout bounds the cleanup after a run that failed or was cancelled.
const cleanupTimeout = time.Minute

// Params are the required parameters of Run and Cleanup.
type Params struct {
	// Owner is a pool of the owner role (userstore_owner, the role that ran the migrations and owns the
	// tables). The rebuild creates and drops its shadow schema with it — which needs CREATE on the
	// database — takes the write lock on the read tables, moves the audit checkpoints and, with
	// Opts.Force, repairs the live rows. The owner sees no row of the tenant tables itself (row-level
	// security is forced and gives it no policy), hence Projector.
	Owner *pgxpool.Pool
	// Projector is a pool of the projector role (userstore_projector), which reads every tenant's
	// events and rows: the rebuild reads the log and the live tables with it, and writes the shadow
	// tables (granted to it for the run).
	Projector *pgxpool.Pool
	// Target is TargetReadModel or TargetAudit.
	Target string
}

func (p *Params) validate() error {
	switch {
	case p == nil:
		return fmt.Errorf("%w: rebuild: Params must not be nil", projections.ErrValidation)
	case p.Owner == nil:
		return fmt.Errorf("%w: rebuild: Params.Owner must not be nil", projections.ErrValidation)
	case p.Projector == nil:
		return fmt.Errorf("%w: rebuild: Params.Projector must not be nil", projections.ErrValidation)
	}
	switch p.Target {
	case TargetReadModel, TargetAudit:
		return nil
	case TargetOutbox:
		return fmt.Errorf("%w: Params.Target %q: the outbox is a delivery, not state: what it handed over cannot be taken back", ErrNotRebuildable, p.Target)
	}
	return fmt.Errorf("%w: Params.Target %q (want %q or %q)", ErrUnknownTarget, p.Target, TargetReadModel, TargetAudit)
}

// Opts are the options of Run; nil is valid (all defaults).
type Opts struct {
	// Force swaps even when the live tables differ from the rebuild: it replaces the differing live
	// rows with the rebuilt ones (a rebuild that repairs known drift). Without it such a rebuild
	// changes nothing and returns a *DriftError. Default: false.
	Force bool

	// KeepShadow leaves the shadow schema (ShadowSchema) in place when Run returns — after a
	// *DriftError, to look at the differing rows — until Cleanup or the next Run of the target drops
	// it. Default: false.
	KeepShadow bool

	// BatchSize is the number of rows one COPY into the shadow tables writes, of streams one catch-up
	// statement re-folds, and of events one batch of the shadow audit projection applies (at most
	// eventstore.ReadLimitMax there). Default: BatchSizeDefault (1000).
	BatchSize int

	// Workers is the number of partitions the shadow audit projection works on at once (one
	// connection of the Projector pool each, plus one). Default: WorkersDefault (4).
	Workers int

	// LockTimeout bounds each wait of the swap for a lock: for the read tables' write lock (the
	// readmodel target), for the audit projection's partitions (the audit target), and for the
	// exclusive lock of a repair; and the audit swap's last catch-up, during which the live audit
	// projection stands still. An attempt that times out changes nothing and is retried, after another
	// catch-up round. Default: LockTimeoutDefault (5s).
	LockTimeout time.Duration

	// SwapAttempts is the number of swap attempts; after the last one times out, Run returns
	// ErrLocked. Default: SwapAttemptsDefault (5).
	SwapAttempts int

	// CatchUpRounds bounds the catch-up rounds between the copy and the swap. A round re-folds what
	// was appended during the previous one; the rounds stop early once a round saw at most BatchSize
	// events. Default: CatchUpRoundsDefault (5).
	CatchUpRounds int

	// Progress, when set, is called with the run's progress: at each phase's start, after each batch
	// of the copy and catch-up phases (the read model: every BatchSize rows or streams; the audit
	// projection: every 250ms), and at the swap's steps. Calls never overlap. It must return quickly.
	// Default: none.
	Progress func(Progress)

	// Logger receives a line per phase (counts and durations; never a value, a query or a connection
	// string). Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every zero field set to its default. o may be nil.
func (o *Opts) WithDefaults() *Opts {
	out := Opts{}
	if o != nil {
		out = *o
	}
	out.BatchSize = cmp.Or(out.BatchSize, BatchSizeDefault)
	out.Workers = cmp.Or(out.Workers, WorkersDefault)
	out.LockTimeout = cmp.Or(out.LockTimeout, LockTimeoutDefault)
	out.SwapAttempts = cmp.Or(out.SwapAttempts, SwapAttemptsDefault)
	out.CatchUpRounds = cmp.Or(out.CatchUpRounds, CatchUpRoundsDefault)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

func (o *Opts) validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.BatchSize < 0:
		return fmt.Errorf("%w: rebuild: Opts.BatchSize must not be negative, got %d", projections.ErrValidation, o.BatchSize)
	case o.Workers < 0:
		return fmt.Errorf("%w: rebuild: Opts.Workers must not be negative, got %d", projections.ErrValidation, o.Workers)
	case o.LockTimeout < 0:
		return fmt.Errorf("%w: rebuild: Opts.LockTimeout must not be negative, got %s", projections.ErrValidation, o.LockTimeout)
	case o.LockTimeout > 0 && o.LockTimeout < time.Millisecond:
		return fmt.Errorf("%w: rebuild: Opts.LockTimeout must be at least 1ms, got %s", projections.ErrValidation, o.LockTimeout)
	case o.SwapAttempts < 0:
		return fmt.Errorf("%w: rebuild: Opts.SwapAttempts must not be negative, got %d", projections.ErrValidation, o.SwapAttempts)
	case o.CatchUpRounds < 0:
		return fmt.Errorf("%w: rebuild: Opts.CatchUpRounds must not be negative, got %d", projections.ErrValidation, o.CatchUpRounds)
	}
	return nil
}

// Phase is a step of a rebuild.
type Phase string

// The phases, in order. Verify and swap repeat when a swap attempt is retried.
const (
	// PhaseCopy folds the log as one snapshot sees it into the empty shadow tables (the audit target:
	// projects it, below the log's horizon).
	PhaseCopy Phase = "copy"
	// PhaseCatchUp folds what was appended since, round after round, while the live tables serve.
	PhaseCatchUp Phase = "catch-up"
	// PhaseSwap takes the locks and folds the last events (the readmodel target: writers wait now).
	PhaseSwap Phase = "swap"
	// PhaseVerify compares the live tables with the shadow ones, under the swap's locks.
	PhaseVerify Phase = "verify"
)

// Progress is a progress report of a rebuild (Opts.Progress).
type Progress struct {
	Target string
	Phase  Phase
	// Done is the number of events the phase has folded or projected so far.
	Done int64
	// Total is an estimate of Done at the end of the phase; 0 when there is none (catch-up, swap).
	Total int64
	// Attempt is the swap attempt, from 1 (swap and verify phases).
	Attempt int
}

// Result describes a rebuild that succeeded.
type Result struct {
	Target string
	// CopyEvents and CatchUpEvents are the events folded (projected) by the copy and by the catch-up
	// (the swap's last one included).
	CopyEvents    int64
	CatchUpEvents int64
	// Tables compares each table's live rows with the rebuilt ones, as the swap found them (for the
	// audit table: the rebuilt records within the range the live table held).
	Tables []TableResult
	// Repaired is set when Opts.Force replaced differing live rows.
	Repaired bool
	// SwapAttempts is the number of swap attempts made.
	SwapAttempts int
	// CopyDuration, CatchUpDuration and SwapDuration are the phases' wall times (the swap's: all
	// attempts); Duration is the whole run's.
	CopyDuration, CatchUpDuration, SwapDuration, Duration time.Duration
	// LockDuration is how long the successful swap held its locks: the readmodel target's writers
	// waited that long; the audit target paused the live audit projection that long.
	LockDuration time.Duration
}

// Events returns the events folded (projected) in all.
func (r *Result) Events() int64 { return r.CopyEvents + r.CatchUpEvents }

// TableResult compares a live table with its rebuild.
type TableResult struct {
	Table string
	// LiveRows and LiveChecksum describe the live table; ShadowRows and ShadowChecksum the rebuilt
	// one (the audit table's: within the live table's range). The checksum is order-independent, over
	// the columns that are a function of the log (not users.guard_seq, not audit_records.projected_at).
	LiveRows       int64
	LiveChecksum   string
	ShadowRows     int64
	ShadowChecksum string
	// Deleted and Inserted are the live rows the swap deleted and inserted: a repair's (Opts.Force),
	// or the records the audit swap appended that the live projection had not written yet.
	Deleted, Inserted int64
}

// Match reports whether the live table equals its rebuild.
func (t TableResult) Match() bool {
	return t.LiveRows == t.ShadowRows && t.LiveChecksum == t.ShadowChecksum
}

// Run rebuilds a target from position zero of the log into shadow tables while the live tables keep
// serving, verifies the live tables against the rebuild, and swaps (docs/adr/0009):
//
//   - copy: the log as one snapshot sees it, folded into the shadow tables;
//   - catch-up: rounds that fold what was appended since, while nothing waits;
//   - swap: in one transaction that holds the target's write locks, the last events are folded, every
//     table's row count and checksum are compared, and the live target takes over the rebuild — for
//     the read model, whose live rows must already be equal, that changes nothing unless Opts.Force
//     repairs drift; for the audit table, the records the live projection had not written yet are
//     appended and its checkpoints handed over.
//
// Differences refuse the swap with a *DriftError (errors.Is ErrDrift) unless Opts.Force. The shadow
// tables are dropped when Run returns, also after an error or a cancellation (unless Opts.KeepShadow);
// a run that died leaves them to the next run or to Cleanup. Two runs of one target exclude each other
// (ErrRunning); runs of different targets are independent.
func Run(ctx context.Context, params *Params, opts *Opts) (res *Result, err error) {
	if err := params.validate(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	r := newRun(params, opts.WithDefaults())
	start := time.Now()
	unlock, err := r.lockTarget(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.cleanup(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if r.o.KeepShadow {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := r.cleanup(cctx); cerr != nil {
			if err == nil {
				res, err = nil, cerr
				return
			}
			r.log.WarnContext(ctx, "rebuild: cleanup failed", slog.String("target", r.p.Target), slog.String("error", cerr.Error()))
		}
	}()
	r.log.InfoContext(ctx, "rebuild: started", slog.String("target", r.p.Target), slog.String("shadow_schema", r.schema),
		slog.Bool("force", r.o.Force))
	switch r.p.Target {
	case TargetReadModel:
		err = r.readModel(ctx)
	case TargetAudit:
		err = r.audit(ctx)
	}
	r.res.Duration = time.Since(start)
	if err != nil {
		r.log.WarnContext(ctx, "rebuild: failed", slog.String("target", r.p.Target), slog.String("error", err.Error()))
		return nil, err
	}
	r.log.InfoContext(ctx, "rebuild: done", slog.String("target", r.p.Target), slog.Int64("events", r.res.Events()),
		slog.Duration("duration", r.res.Duration), slog.Duration("lock_duration", r.res.LockDuration),
		slog.Bool("repaired", r.res.Repaired))
	return r.res, nil
}

// Cleanup drops what a rebuild of the target left behind — its shadow schema and, for the audit target,
// the shadow projection's checkpoints (its parked dead letters are marked skipped) — after a run with
// Opts.KeepShadow or one that died. It returns ErrRunning while a rebuild of the target runs.
func Cleanup(ctx context.Context, params *Params) error {
	if err := params.validate(); err != nil {
		return err
	}
	r := newRun(params, (*Opts)(nil).WithDefaults())
	unlock, err := r.lockTarget(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return r.cleanup(ctx)
}

// run is one rebuild.
type run struct {
	p      *Params
	o      *Opts
	log    *slog.Logger
	schema string
	res    *Result
	// lock is the transaction that holds the target's lock (lockTarget).
	lock pgx.Tx
	// mu serializes the Progress calls.
	mu sync.Mutex
}

func newRun(p *Params, o *Opts) *run {
	return &run{p: p, o: o, log: o.Logger, schema: ShadowSchema(p.Target), res: &Result{Target: p.Target}}
}

// progress reports progress to Opts.Progress.
func (r *run) progress(ph Phase, done, total int64, attempt int) {
	if r.o.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.o.Progress(Progress{Target: r.p.Target, Phase: ph, Done: done, Total: total, Attempt: attempt})
}

// lockTarget takes the target's lock: pg_try_advisory_xact_lock(LockKey("rebuild.<target>", 1), -1)
// in a transaction of the owner pool that stays open, idle and without a transaction id (so it holds
// back neither the log's horizon nor vacuum) until the returned function ends it. Transaction-scoped,
// it cannot leak into the pool, works through PgBouncer in transaction mode, and vanishes with a
// process that dies. The second key, -1, is no partition (0..63), so it never meets a projection's
// partition lock.
func (r *run) lockTarget(ctx context.Context) (func(), error) {
	tx, err := r.p.Owner.Begin(ctx)
	if err != nil {
		return nil, translate("begin the lock transaction", err)
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}
	var (
		off    string
		locked bool
	)
	key := projections.LockKey("rebuild."+r.p.Target, 1)
	if err := tx.QueryRow(ctx, sqlTryTargetLock, key, int32(-1)).Scan(&off, &locked); err != nil {
		release()
		return nil, translate("take the target's lock", err)
	}
	if !locked {
		release()
		return nil, fmt.Errorf("rebuild: %s: %w", r.p.Target, ErrRunning)
	}
	r.lock = tx
	return release, nil
}

// checkLock verifies that the transaction holding the target's lock is still alive.
func (r *run) checkLock(ctx context.Context) error {
	if _, err := r.lock.Exec(ctx, sqlPing); err != nil {
		if ctx.Err() != nil {
			return translate("check the target's lock", err)
		}
		return fmt.Errorf("rebuild: %s: %w (%s)", r.p.Target, ErrLostLock, translate("check the target's lock", err).Error())
	}
	return nil
}

// cleanup drops the shadow schema and, for the audit target, the shadow projection's bookkeeping.
func (r *run) cleanup(ctx context.Context) error {
	if _, err := r.p.Owner.Exec(ctx, `DROP SCHEMA IF EXISTS `+quote(r.schema)+` CASCADE`); err != nil {
		return translate("drop the shadow schema", err)
	}
	if r.p.Target != TargetAudit {
		return nil
	}
	if _, err := r.p.Owner.Exec(ctx, sqlDeleteCheckpoints, shadowAuditName); err != nil {
		return translate("delete the shadow projection's checkpoints", err)
	}
	if _, err := r.p.Projector.Exec(ctx, sqlSkipParked, shadowAuditName); err != nil {
		return translate("resolve the shadow projection's dead letters", err)
	}
	return nil
}

// swapAttempts runs swap until it succeeds, fails for another reason than a lock conflict, or
// Opts.SwapAttempts attempts timed out; between attempts it waits a little (jittered) and runs between.
func (r *run) swapAttempts(ctx context.Context, swap func(attempt int) error, between func() error) error {
	start := time.Now()
	defer func() { r.res.SwapDuration = time.Since(start) }()
	for attempt := 1; ; attempt++ {
		r.res.SwapAttempts = attempt
		err := swap(attempt)
		if err == nil || !lockConflict(err) {
			return err
		}
		if attempt >= r.o.SwapAttempts {
			return fmt.Errorf("rebuild: %s: %w within %s in %d attempts (%s)", r.p.Target, ErrLocked, r.o.LockTimeout,
				attempt, err.Error())
		}
		r.log.InfoContext(ctx, "rebuild: swap attempt gave up on a lock; trying again", slog.String("target", r.p.Target),
			slog.Int("attempt", attempt), slog.String("error", err.Error()))
		d := time.Duration(attempt) * 100 * time.Millisecond
		if err := sleep(ctx, d/2+rand.N(d/2+1)); err != nil {
			return translate("wait between swap attempts", err)
		}
		if err := between(); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rollback ends a transaction that did not commit (a no-op after a commit).
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

// millis is a duration as the text of a lock_timeout in milliseconds.
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
