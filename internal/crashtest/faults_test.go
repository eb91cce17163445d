package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// faultKind is a way of crashing PostgreSQL.
type faultKind int

const (
	// faultImmediateStop stops the whole cluster with `pg_ctl stop -m immediate` (every process exits
	// at once, as in a power cut of the server; the OS keeps its page cache) and starts it again after
	// an outage: the start runs crash recovery.
	faultImmediateStop faultKind = iota
	// faultKillBackend kills one backend that runs a writer's transaction with SIGKILL: the postmaster
	// then terminates every other backend and runs crash recovery (restart_after_crash) by itself.
	faultKillBackend
	// faultTerminateBackend ends one backend that runs a writer's transaction with
	// pg_terminate_backend (SIGTERM: the backend reports FATAL 57P01 and exits; the others go on).
	faultTerminateBackend
)

func (k faultKind) String() string {
	switch k {
	case faultImmediateStop:
		return "immediate-stop"
	case faultKillBackend:
		return "kill-backend"
	case faultTerminateBackend:
		return "terminate-backend"
	}
	return fmt.Sprintf("faultKind(%d)", int(k))
}

// faultRecord describes one injected fault, for the test log.
type faultRecord struct {
	Kind faultKind
	// At is when the fault was injected, since the start of the run.
	At time.Duration
	// Outage is how long the cluster took to accept connections again.
	Outage time.Duration
	// Victim is the killed backend's pid and state (faultKillBackend).
	Victim string
}

func (f faultRecord) String() string {
	s := fmt.Sprintf("%s at %s, back after %s", f.Kind, f.At.Round(time.Millisecond), f.Outage.Round(time.Millisecond))
	if f.Victim != "" {
		s += " (" + f.Victim + ")"
	}
	return s
}

// injector crashes a private cluster. admin is a superuser pool on it (used to find backends and to
// tell when the cluster is back); it recovers from the crashes like every other pool. Fault times are
// recorded since start.
type injector struct {
	c     *cluster
	admin *pgxpool.Pool
	start time.Time

	mu     sync.Mutex
	faults []faultRecord
}

func newInjector(c *cluster, admin *pgxpool.Pool, start time.Time) *injector {
	return &injector{c: c, admin: admin, start: start}
}

// records returns the faults injected so far.
func (in *injector) records() []faultRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]faultRecord(nil), in.faults...)
}

// inject injects one fault of kind and returns once the cluster accepts connections again.
func (in *injector) inject(ctx context.Context, rng *rand.Rand, kind faultKind) error {
	rec := faultRecord{Kind: kind, At: time.Since(in.start)}
	t0 := time.Now()
	switch kind {
	case faultImmediateStop:
		if err := in.c.stopImmediate(ctx); err != nil {
			return err
		}
		// The outage: writers fail fast (no socket) and keep retrying meanwhile.
		if err := sleep(ctx, time.Duration(20+rng.IntN(280))*time.Millisecond); err != nil {
			return err
		}
		if err := in.c.start(ctx); err != nil {
			return err
		}
	case faultKillBackend, faultTerminateBackend:
		victim, err := in.killBackend(ctx, rng, kind == faultTerminateBackend)
		if err != nil {
			return err
		}
		rec.Victim = victim
	default:
		return fmt.Errorf("crashtest: unknown fault %d", kind)
	}
	if err := in.awaitUp(ctx); err != nil {
		return err
	}
	rec.Outage = time.Since(t0)
	in.mu.Lock()
	in.faults = append(in.faults, rec)
	in.mu.Unlock()
	return nil
}

// sqlVictims lists the app's client backends: whether each is inside a transaction (xact_start is set
// from BEGIN to COMMIT) and whether it is committing right now (its current statement is COMMIT).
const sqlVictims = `
SELECT pid, coalesce(state, ''), xact_start IS NOT NULL,
       state = 'active' AND upper(left(ltrim(query), 6)) = 'COMMIT'
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND application_name = $1 AND pid <> pg_backend_pid()`

// killBackend sends SIGKILL to one backend of the app role (or, with terminate, ends it with
// pg_terminate_backend). It samples pg_stat_activity for a while to catch one in the middle of a
// COMMIT (the case where a commit may be durable yet unacknowledged); failing that it takes one inside a
// transaction, and failing that any.
func (in *injector) killBackend(ctx context.Context, rng *rand.Rand, terminate bool) (string, error) {
	type backend struct {
		pid        int32
		state      string
		inTx, cmit bool
	}
	start := time.Now()
	for {
		var committing, inTx, any []backend
		rows, err := in.admin.Query(ctx, sqlVictims, appApplication)
		if err == nil {
			for rows.Next() {
				var b backend
				if err = rows.Scan(&b.pid, &b.state, &b.inTx, &b.cmit); err != nil {
					break
				}
				any = append(any, b)
				if b.inTx {
					inTx = append(inTx, b)
				}
				if b.cmit {
					committing = append(committing, b)
				}
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			return "", fmt.Errorf("crashtest: list the app's backends: %w", err)
		}
		waited := time.Since(start)
		pick := committing
		if len(pick) == 0 && waited > 300*time.Millisecond {
			pick = inTx
		}
		if len(pick) == 0 && waited > 5*time.Second {
			pick = any
		}
		if len(pick) > 0 {
			b := pick[rng.IntN(len(pick))]
			if terminate {
				if _, err := in.admin.Exec(ctx, "SELECT pg_terminate_backend($1)", b.pid); err != nil {
					return "", fmt.Errorf("crashtest: terminate backend %d: %w", b.pid, err)
				}
			} else if err := syscall.Kill(int(b.pid), syscall.SIGKILL); err != nil {
				return "", fmt.Errorf("crashtest: kill -9 backend %d: %w", b.pid, err)
			}
			what := "idle"
			switch {
			case b.cmit:
				what = "committing"
			case b.inTx:
				what = "in a transaction (" + b.state + ")"
			}
			return fmt.Sprintf("pid %d, %s", b.pid, what), nil
		}
		if waited > 15*time.Second {
			return "", fmt.Errorf("crashtest: no backend of %s to kill", appApplication)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return "", err
		}
	}
}

// awaitUp waits until the cluster runs queries again: after a SIGKILL the postmaster first ends every
// backend and replays the WAL, and it refuses connections meanwhile.
func (in *injector) awaitUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Let the postmaster notice the death first, so that an old, still-open backend cannot answer.
	if err := sleep(ctx, 20*time.Millisecond); err != nil {
		return err
	}
	// Every connection of the harness' own pool died with the server: drop them all at once.
	in.admin.Reset()
	for {
		var one int
		err := in.admin.QueryRow(ctx, "SELECT 1 WHERE NOT pg_is_in_recovery()").Scan(&one)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("crashtest: the cluster did not come back: %w\n%s", err, in.c.logTail())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx ends.
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
