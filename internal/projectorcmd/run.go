package projectorcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/projections"
)

// readHeaderTimeout bounds the reading of a request's headers by the HTTP server.
const readHeaderTimeout = 10 * time.Second

// runCommand is `projector run`: it serves /metrics, /healthz and /readyz, waits for the database and
// its schema version, and runs the projections until ctx ends. Then it stops taking batches (a batch in
// progress is rolled back: nothing is half-applied), waits for the runner's goroutines, shuts the HTTP
// server down and returns nil.
func runCommand(ctx context.Context, args []string, env *Env) error {
	o, err := parseRun(args, env)
	if err != nil {
		return err
	}
	log, err := newLogger(&o.log, env.Stderr)
	if err != nil {
		return err
	}
	projs, release, err := projectionsFor(ctx, &o.proj, log)
	if err != nil {
		return err
	}
	defer release()
	// Workers batch connections, one to poll, and two for /metrics and /readyz.
	pool, err := openPool(ctx, &o.db, int32(o.runner.Workers)+3)
	if err != nil {
		return err
	}
	defer pool.Close()

	rcfg := o.runner
	rcfg.Logger = log
	store, err := eventstore.New(pool, &eventstore.Config{Logger: log})
	if err != nil {
		return err
	}
	runner, err := projections.New(pool, store, projs, &rcfg)
	if err != nil {
		return usagef("%s", err)
	}
	cache := &statusCache{status: runner.Status, maxAge: o.statusMaxAge}
	collector, err := projections.NewCollector(runner, &projections.CollectorConfig{StatusFunc: cache.get})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collector)
	rd := &readiness{
		pool:     pool,
		storeCfg: &pgstore.Config{Logger: log, HorizonWarnAfter: o.horizonWarnAfter},
		status:   cache.get,
		maxLag:   o.readyMaxLag,
	}

	stopServer := func() {}
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", o.listen, err)
		}
		srv := &http.Server{
			Handler:           newHandler(reg, rd, log),
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		log.InfoContext(ctx, "projector: serving /metrics, /healthz and /readyz", slog.String("address", ln.Addr().String()))
		if env.listening != nil {
			env.listening(ln.Addr())
		}
		stopServer = sync.OnceFunc(func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.WarnContext(sctx, "projector: HTTP server did not shut down in time; closing it",
					slog.String("error", err.Error()))
				_ = srv.Close()
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.WarnContext(sctx, "projector: HTTP server failed", slog.String("error", err.Error()))
			}
		})
	}
	defer func() { stopServer() }()

	if err := waitForSchema(ctx, rd, o, log); err != nil {
		return err
	}
	if ctx.Err() == nil {
		rd.setPhase(phaseRunning)
		log.InfoContext(ctx, "projector: running", slog.Any("projections", o.proj.list()),
			slog.Int("workers", rcfg.Workers), slog.Int("batch_size", rcfg.BatchSize))
		if err := runner.Run(ctx); err != nil {
			return err
		}
	}
	rd.setPhase(phaseStopping)
	log.InfoContext(ctx, "projector: stopping")
	stopServer()
	log.InfoContext(ctx, "projector: stopped")
	return nil
}

// waitForSchema returns once the database is reachable and its schema version is this build's, or
// ctx ended (nil). With -wait=false it returns the reason at once instead of waiting: a connection
// error (exit code 2) or a schema mismatch (exit code 1).
func waitForSchema(ctx context.Context, rd *readiness, o *runOptions, log *slog.Logger) error {
	last := ""
	for {
		_, err := rd.checkStore(ctx)
		switch {
		case err == nil, ctx.Err() != nil:
			return nil
		case !o.wait && errors.Is(err, userstore.ErrSchemaMismatch):
			return fmt.Errorf("%w; run `projector migrate` as the owner role", err)
		case !o.wait:
			return err
		}
		if reason := err.Error(); reason != last {
			log.WarnContext(ctx, "projector: waiting for the database and its schema version",
				slog.String("reason", reason), slog.String("check_interval", o.waitInterval.String()))
			last = reason
		}
		t := time.NewTimer(o.waitInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
