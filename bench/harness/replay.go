package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/replay"
)

// --- 7. Replay: audit reconstruction over the preloaded log, in a child process -------------------

// ReplayChildCommand is the first argument that makes userstore-bench run one replay (ReplayChild)
// instead of the benchmarks: measurement 7 measures the replay's peak RSS in a process of its own.
const ReplayChildCommand = "replay-child"

// childResult is what a replay child prints (JSON, one line).
type childResult struct {
	Events  int64   `json:"events"`
	Seconds float64 `json:"seconds"`
	// VmHWMKiB is the child's peak resident set size (/proc/self/status VmHWM), CPUSeconds its user and
	// system CPU time.
	VmHWMKiB   int64   `json:"vmhwm_kib"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// ReplayChild runs one replay of every tenant given, as the projector role on the database given,
// and prints a childResult: -mode audit runs replay.Replayer.Audit (decode, audit record, hash chain),
// -mode raw reads the same events with the same cursor query and decodes nothing (the baseline).
func ReplayChild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(ReplayChildCommand, flag.ContinueOnError)
	var (
		db      = fs.String("db", "", "database name")
		mode    = fs.String("mode", "audit", "audit or raw")
		tenants = fs.String("tenants", "", "comma-separated tenant ids")
		cpuOut  = fs.String("cpuprofile", "", "write a CPU profile of the replay to this file")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var ids []uuid.UUID
	for _, s := range strings.Split(*tenants, ",") {
		id, err := uuid.Parse(s)
		if err != nil {
			return fmt.Errorf("-tenants: %w", err)
		}
		ids = append(ids, id)
	}
	cfg, err := parse(EnvProjectorURL, *db)
	if err != nil {
		return err
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.RuntimeParams["application_name"] = "userstore-bench/replay-child"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return safe(err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return safe(err)
	}
	var res childResult
	start := time.Now()
	switch *mode {
	case "audit":
		r, err := replay.New(pool, nil)
		if err != nil {
			return err
		}
		for _, id := range ids {
			out, err := r.Audit(ctx, &replay.AuditParams{TenantID: id}, func(*userstore.AuditRecord) error { return nil })
			if err != nil {
				return err
			}
			res.Events += out.Events
		}
	case "raw":
		for _, id := range ids {
			n, err := rawTenantRead(ctx, pool, id)
			if err != nil {
				return err
			}
			res.Events += n
		}
	default:
		return fmt.Errorf("-mode: want audit or raw, got %q", *mode)
	}
	res.Seconds = time.Since(start).Seconds()
	res.VmHWMKiB = vmHWM()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// rawTenantSQL is replay's cursor query over a tenant's events below the horizon (replay/queries.go:
// sqlTenantLog with eventColumns).
const rawTenantSQL = `SELECT ev.global_position, ev.transaction_id::text AS transaction_id_text, ev.tenant_id,
       ev.stream_type, ev.stream_id, ev.stream_version, ev.partition, ev.event_id, ev.event_type,
       ev.event_version, ev.payload::text AS payload_text, ev.metadata::text AS metadata_text, ev.recorded_at
  FROM userstore.events AS ev
 WHERE ev.tenant_id = $1::uuid AND ev.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY ev.transaction_id, ev.global_position`

// rawTenantRead reads a tenant's events as replay does — one REPEATABLE READ READ ONLY transaction, a
// cursor, FETCH of replay.BatchSizeDefault rows — and only scans the columns.
func rawTenantRead(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) (int64, error) {
	var n int64
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DECLARE raw NO SCROLL CURSOR FOR "+rawTenantSQL, tenant); err != nil {
			return err
		}
		fetch := "FETCH " + strconv.Itoa(replay.BatchSizeDefault) + " FROM raw"
		var (
			pos, version      int64
			xid, stype, etype string
			tid, sid, eid     [16]byte
			part, ever        int16
			payload, metadata []byte
			recorded          time.Time
		)
		for {
			rows, err := tx.Query(ctx, fetch)
			if err != nil {
				return err
			}
			got := 0
			for rows.Next() {
				if err := rows.Scan(&pos, &xid, &tid, &stype, &sid, &version, &part, &eid, &etype, &ever, &payload, &metadata, &recorded); err != nil {
					rows.Close()
					return err
				}
				got++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			n += int64(got)
			if got == 0 {
				return nil
			}
		}
	})
	return n, err
}

// vmHWM returns the process's peak resident set size in KiB (0 when unknown).
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// childJob runs a replay child in mode on the fixture's tenants.
func childJob(f *logFixture, mode string) Job {
	return func(ctx context.Context) (RunStats, error) {
		exe, err := os.Executable()
		if err != nil {
			return RunStats{}, err
		}
		ids := make([]string, len(f.tenants))
		for i, t := range f.tenants {
			ids[i] = t.ID.String()
		}
		var stdout, stderr bytes.Buffer
		args := []string{ReplayChildCommand, "-db", f.db.Name, "-mode", mode, "-tenants", strings.Join(ids, ",")}
		if dir := os.Getenv("BENCH_CHILD_CPUPROFILE"); dir != "" {
			// For diagnosis: each child writes <dir>/replay-<mode>-<n>.prof.
			args = append(args, "-cpuprofile", filepath.Join(dir, fmt.Sprintf("replay-%s-%d.prof", mode, time.Now().UnixNano())))
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return RunStats{}, fmt.Errorf("replay child (%s): %w: %s", mode, err, strings.TrimSpace(stderr.String()))
		}
		var res childResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return RunStats{}, fmt.Errorf("replay child (%s): %w", mode, err)
		}
		if res.Events == 0 {
			return RunStats{}, errors.New("replay child read no event")
		}
		return RunStats{Units: int(res.Events), Seconds: res.Seconds, Extra: map[string]float64{
			"peak_rss_mb": float64(res.VmHWMKiB) / 1024, "cpu_s": res.CPUSeconds, "events": float64(res.Events),
		}}, nil
	}
}

// replayCase is measurement 7: replay.Replayer.Audit of every tenant of the preloaded log in a child
// process (its peak RSS is the replay's alone), against the child reading the same events with the
// same cursor and decoding nothing.
func (l *Lab) replayCase(ctx context.Context) (*Case, error) {
	f, err := l.logDB(ctx)
	if err != nil {
		return nil, err
	}
	return &Case{
		ID: "replay/audit", Unit: "events", Workers: 1, NoRoundTrips: true,
		What:     fmt.Sprintf("7. replay: audit reconstruction of %d tenants over a log of %s events, child process", len(f.tenants), count3(f.events)),
		GoalText: "≥ 100k events/s; peak RSS < 256 MB",
		Meets: func(r *Result) bool {
			peak := maxOver(r.Pairs, func(p Pair) float64 { return p.Ours.Extra["peak_rss_mb"] })
			if r.OursExtra == nil {
				r.OursExtra = map[string]float64{}
			}
			r.OursExtra["peak_rss_mb_max"] = peak
			return r.OursPerSecond >= 100_000 && peak < 256
		},
		Ours:     Side{Name: "replay.Replayer.Audit (decode, audit record, hash chain)", Job: childJob(f, "audit")},
		Baseline: Side{Name: "the same cursor read, columns scanned, nothing decoded", Job: childJob(f, "raw")},
	}, nil
}
