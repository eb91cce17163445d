package projectorcmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/projections"
)

// The projector's own readiness checks, reported after pgstore's (connectivity, schema_version, rls,
// role, synchronous_commit, server_version, horizon).
const (
	// CheckRunner fails while the runner is not running: waiting for the database and the schema at
	// start, or shutting down.
	CheckRunner = "runner"
	// CheckLag fails while a projection's oldest unprocessed event is older than -ready-max-lag.
	CheckLag = "lag"
	// CheckDeadLetters warns (never fails) while dead letters are parked.
	CheckDeadLetters = "dead_letters"
)

// phase is where the run command is.
type phase int32

const (
	phaseWaiting phase = iota
	phaseRunning
	phaseStopping
)

// readiness evaluates /readyz. The database checks are pgstore's Ready, on the projector's pool: a
// pgstore.Store is made once the schema matches (pgstore.New refuses a mismatched schema), and until
// then the checks are reported from pgstore.New's error.
type readiness struct {
	pool     *pgxpool.Pool
	storeCfg *pgstore.Config
	status   func(context.Context) (*projections.StatusResult, error)
	maxLag   time.Duration
	phase    atomic.Int32

	mu    sync.Mutex
	store *pgstore.Store
}

func (r *readiness) setPhase(p phase) { r.phase.Store(int32(p)) }

// checkStore returns the store once the database is reachable and its schema is this build's; the
// error says why not, without secrets: a *connectError, or pgstore's (a *userstore.SchemaMismatchError,
// or one matching userstore.ErrUnavailable).
func (r *readiness) checkStore(ctx context.Context) (*pgstore.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		return r.store, nil
	}
	// A ping first: its error names the server, role and database (pgstore's does not).
	if err := r.pool.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, describeConnect(r.pool.Config().ConnConfig, err)
	}
	s, err := pgstore.New(ctx, r.pool, r.storeCfg)
	if err != nil {
		return nil, err
	}
	r.store = s
	return s, nil
}

// check evaluates every readiness check.
func (r *readiness) check(ctx context.Context) *userstore.Readiness {
	res := &userstore.Readiness{}
	add := func(name string, ok, warning bool, reason string) {
		c := userstore.Check{Name: name, OK: ok}
		if !ok {
			c.Warning, c.Reason = warning, reason
		}
		res.Checks = append(res.Checks, c)
	}
	notChecked := func(reason string, names ...string) {
		for _, n := range names {
			add(n, false, false, "not checked: "+reason)
		}
	}

	schemaOK := false
	store, err := r.checkStore(ctx)
	switch {
	case err == nil:
		rd, err := store.Ready(ctx)
		if err != nil {
			// Only an ended context makes Ready fail.
			add(pgstore.CheckConnectivity, false, false, "readiness check cancelled: "+err.Error())
			break
		}
		res.Checks = append(res.Checks, rd.Checks...)
		for _, c := range rd.Checks {
			if c.Name == pgstore.CheckSchemaVersion {
				schemaOK = c.OK
			}
		}
	case errors.Is(err, userstore.ErrSchemaMismatch):
		add(pgstore.CheckConnectivity, true, false, "")
		add(pgstore.CheckSchemaVersion, false, false, err.Error()+"; run `projector migrate` as the owner role")
		notChecked("the schema version does not match", pgstore.CheckRowLevelSecurity, pgstore.CheckRole,
			pgstore.CheckSynchronousCommit, pgstore.CheckServerVersion)
	default:
		add(pgstore.CheckConnectivity, false, false, err.Error())
		notChecked("the database is unreachable", pgstore.CheckSchemaVersion, pgstore.CheckRowLevelSecurity,
			pgstore.CheckRole, pgstore.CheckSynchronousCommit, pgstore.CheckServerVersion)
	}

	switch phase(r.phase.Load()) {
	case phaseWaiting:
		add(CheckRunner, false, false, "waiting for the database and its schema version")
	case phaseRunning:
		add(CheckRunner, true, false, "")
	case phaseStopping:
		add(CheckRunner, false, false, "shutting down")
	}

	if !schemaOK {
		notChecked("the schema version does not match or was not read", CheckLag)
	} else if st, err := r.status(ctx); err != nil {
		add(CheckLag, false, false, "cannot read the projections' status: "+err.Error())
	} else {
		var behind, parked []string
		for _, p := range st.Projections {
			if p.EventsBehind > 0 && p.Behind >= r.maxLag {
				behind = append(behind, fmt.Sprintf("%s is %s behind (%d events)", p.Name, p.Behind.Round(time.Millisecond), p.EventsBehind))
			}
			if p.Parked > 0 {
				parked = append(parked, fmt.Sprintf("%s has %d parked", p.Name, p.Parked))
			}
		}
		add(CheckLag, len(behind) == 0, false, strings.Join(behind, "; ")+fmt.Sprintf(" (threshold %s)", r.maxLag))
		add(CheckDeadLetters, len(parked) == 0, true,
			strings.Join(parked, "; ")+" (see `projector dead-letters list`)")
	}

	res.Ready = true
	for _, c := range res.Checks {
		if !c.OK && !c.Warning {
			res.Ready = false
		}
	}
	return res
}

// statusCache shares one Runner.Status query (O(lag)) between /metrics and /readyz for maxAge.
// Concurrent callers wait for the query in flight instead of starting their own.
type statusCache struct {
	status func(context.Context) (*projections.StatusResult, error)
	maxAge time.Duration

	mu  sync.Mutex
	at  time.Time
	res *projections.StatusResult
}

func (c *statusCache) get(ctx context.Context) (*projections.StatusResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res != nil && time.Since(c.at) < c.maxAge {
		return c.res, nil
	}
	res, err := c.status(ctx)
	if err != nil {
		return nil, err
	}
	c.res, c.at = res, time.Now()
	return res, nil
}
