package projectorcmd

import (
	"strings"
	"time"

	"github.com/netkingdom/userstore/projections"
	"github.com/netkingdom/userstore/projections/audit"
	"github.com/netkingdom/userstore/projections/outbox"
	"github.com/netkingdom/userstore/projections/outbox/jetstream"
	"github.com/netkingdom/userstore/projections/rebuild"
)

// Environment variables. The database URLs hold passwords: the program never prints them.
const (
	EnvProjectorDatabaseURL  = "USERSTORE_PROJECTOR_DATABASE_URL"
	EnvProjectorPasswordFile = "USERSTORE_PROJECTOR_DATABASE_PASSWORD_FILE"
	EnvOwnerDatabaseURL      = "USERSTORE_DATABASE_URL"
	EnvOwnerPasswordFile     = "USERSTORE_DATABASE_PASSWORD_FILE"

	EnvListen           = "USERSTORE_PROJECTOR_LISTEN"
	EnvProjections      = "USERSTORE_PROJECTOR_PROJECTIONS"
	EnvOutboxTopic      = "USERSTORE_PROJECTOR_OUTBOX_TOPIC"
	EnvNATSURL          = "USERSTORE_NATS_URL"
	EnvNATSSubject      = "USERSTORE_PROJECTOR_NATS_SUBJECT"
	EnvNATSStream       = "USERSTORE_PROJECTOR_NATS_STREAM"
	EnvNATSCreateStream = "USERSTORE_PROJECTOR_NATS_CREATE_STREAM"
	EnvBatchSize        = "USERSTORE_PROJECTOR_BATCH_SIZE"
	EnvWorkers          = "USERSTORE_PROJECTOR_WORKERS"
	EnvPollIntervalMin  = "USERSTORE_PROJECTOR_POLL_INTERVAL_MIN"
	EnvPollIntervalMax  = "USERSTORE_PROJECTOR_POLL_INTERVAL_MAX"
	EnvRetryBackoffMin  = "USERSTORE_PROJECTOR_RETRY_BACKOFF_MIN"
	EnvRetryBackoffMax  = "USERSTORE_PROJECTOR_RETRY_BACKOFF_MAX"
	EnvRetryAttempts    = "USERSTORE_PROJECTOR_RETRY_ATTEMPTS"
	EnvTxIdleTimeout    = "USERSTORE_PROJECTOR_TX_IDLE_TIMEOUT"
	EnvReadyMaxLag      = "USERSTORE_PROJECTOR_READY_MAX_LAG"
	EnvHorizonWarnAfter = "USERSTORE_PROJECTOR_HORIZON_WARN_AFTER"
	EnvWait             = "USERSTORE_PROJECTOR_WAIT"
	EnvWaitInterval     = "USERSTORE_PROJECTOR_WAIT_INTERVAL"
	EnvStatusMaxAge     = "USERSTORE_PROJECTOR_STATUS_MAX_AGE"
	EnvShutdownTimeout  = "USERSTORE_PROJECTOR_SHUTDOWN_TIMEOUT"
	EnvLogLevel         = "USERSTORE_PROJECTOR_LOG_LEVEL"
	EnvLogFormat        = "USERSTORE_PROJECTOR_LOG_FORMAT"

	// The rebuild's tuning (-force and -keep-shadow have no variable: each run decides them).
	EnvRebuildBatchSize     = "USERSTORE_PROJECTOR_REBUILD_BATCH_SIZE"
	EnvRebuildWorkers       = "USERSTORE_PROJECTOR_REBUILD_WORKERS"
	EnvRebuildLockTimeout   = "USERSTORE_PROJECTOR_REBUILD_LOCK_TIMEOUT"
	EnvRebuildSwapAttempts  = "USERSTORE_PROJECTOR_REBUILD_SWAP_ATTEMPTS"
	EnvRebuildCatchUpRounds = "USERSTORE_PROJECTOR_REBUILD_CATCH_UP_ROUNDS"
)

// Defaults of the program's own settings (the runner's are projections.XxxDefault).
const (
	ListenDefault           = ":9464"
	ReadyMaxLagDefault      = time.Minute
	HorizonWarnAfterDefault = time.Minute
	WaitIntervalDefault     = 5 * time.Second
	StatusMaxAgeDefault     = 2 * time.Second
	ShutdownTimeoutDefault  = 10 * time.Second
	// ConnectTimeoutDefault bounds a connection attempt when the URL sets no connect_timeout.
	ConnectTimeoutDefault = 10 * time.Second
	// ApplicationNameDefault is the application_name of the connections when the URL sets none: it
	// names the projector in pg_stat_activity (and so in the horizon holder metric).
	ApplicationNameDefault = "userstore-projector"
)

// projectionsDefault lists the projections the program runs unless told otherwise, in that order.
var projectionsDefault = audit.Name + "," + outbox.Name

// projectionsKnown lists every projection the program knows: the defaults, and the JetStream sink of
// the outbox, which runs only when named (it needs a NATS server).
var projectionsKnown = projectionsDefault + "," + jetstream.Name

// dbOptions locate a database.
type dbOptions struct {
	url          string
	passwordFile string
	// source names the URL's flag and variable, for messages.
	source string
}

// database adds -database-url and -database-password-file, for the role whose variables are given.
func (f *flagSet) database(o *dbOptions, urlEnv, passwordFileEnv, role string) {
	f.Secret(&o.url, "database-url", urlEnv,
		"PostgreSQL URL or key=value connection string of the "+role+" role; prefer the environment variable, "+
			"a command line is visible to other users of the machine")
	f.String(&o.passwordFile, "database-password-file", passwordFileEnv, "",
		"file holding the password (read for every new connection; it replaces a password in the URL)")
	o.source = f.source("database-url")
}

// ownerDatabase adds -owner-database-url and -owner-database-password-file (USERSTORE_DATABASE_URL,
// USERSTORE_DATABASE_PASSWORD_FILE): the owner role's database, for a command that connects as the
// projector role as well (-database-url).
func (f *flagSet) ownerDatabase(o *dbOptions) {
	f.Secret(&o.url, "owner-database-url", EnvOwnerDatabaseURL,
		"PostgreSQL URL or key=value connection string of the owner role (userstore_owner); prefer the "+
			"environment variable, a command line is visible to other users of the machine")
	f.String(&o.passwordFile, "owner-database-password-file", EnvOwnerPasswordFile, "",
		"file holding the owner role's password (read for every new connection; it replaces a password in the URL)")
	o.source = f.source("owner-database-url")
}

// logOptions configure the logger.
type logOptions struct {
	level  string
	format string
}

func (f *flagSet) logging(o *logOptions) {
	f.String(&o.level, "log-level", EnvLogLevel, "info", "log level: debug, info, warn or error")
	f.String(&o.format, "log-format", EnvLogFormat, "auto",
		"log format: json, text, or auto (JSON when stderr is not a terminal, text when it is)")
}

// projectionOptions select the projections a command works with (see projectionsFor).
type projectionOptions struct {
	names       string
	outboxTopic string
	// The JetStream sink's settings (projection outbox.jetstream).
	natsURL          string
	natsSubject      string
	natsStream       string
	natsCreateStream bool
}

func (f *flagSet) projections(o *projectionOptions, selectable bool) {
	if selectable {
		f.String(&o.names, "projections", EnvProjections, projectionsDefault,
			"comma-separated projections (to run, or to report), of "+projectionsKnown)
	} else {
		o.names = projectionsDefault
	}
	f.String(&o.outboxTopic, "outbox-topic", EnvOutboxTopic, outbox.DefaultTopic,
		"watermill topic of the outbox relay; its table userstore.\"watermill_<topic>\" must exist")
	f.Secret(&o.natsURL, "nats-url", EnvNATSURL,
		"NATS server URL(s) of the "+jetstream.Name+" projection (default "+jetstream.URLDefault+"); credentials in it are never printed")
	f.String(&o.natsSubject, "nats-subject", EnvNATSSubject, jetstream.SubjectDefault,
		"NATS subject the "+jetstream.Name+" projection publishes to")
	f.String(&o.natsStream, "nats-stream", EnvNATSStream, jetstream.StreamDefault,
		"JetStream stream that must capture -nats-subject")
	f.Bool(&o.natsCreateStream, "nats-create-stream", EnvNATSCreateStream, false,
		"create the stream when it does not exist (otherwise an operator creates it; see docs/outbox.md)")
}

func (o *projectionOptions) list() []string {
	var out []string
	for n := range strings.SplitSeq(o.names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// runOptions are the settings of the run command.
type runOptions struct {
	db     dbOptions
	log    logOptions
	proj   projectionOptions
	runner projections.Config

	listen           string
	readyMaxLag      time.Duration
	horizonWarnAfter time.Duration
	wait             bool
	waitInterval     time.Duration
	statusMaxAge     time.Duration
	shutdownTimeout  time.Duration
}

func parseRun(args []string, env *Env) (*runOptions, error) {
	o := &runOptions{}
	f := newFlagSet("run", "run [flags]", env.Getenv, env.Stderr)
	f.database(&o.db, EnvProjectorDatabaseURL, EnvProjectorPasswordFile, "projector (userstore_projector)")
	f.logging(&o.log)
	f.projections(&o.proj, true)
	f.String(&o.listen, "listen", EnvListen, ListenDefault,
		"address of the HTTP server of /metrics, /healthz and /readyz; empty: no server")
	f.Int(&o.runner.BatchSize, "batch-size", EnvBatchSize, projections.BatchSizeDefault,
		"events per batch transaction")
	f.Int(&o.runner.Workers, "workers", EnvWorkers, projections.WorkersDefault,
		"partitions processed at once (each on a connection of its own)")
	f.Duration(&o.runner.PollIntervalMin, "poll-interval-min", EnvPollIntervalMin, projections.PollIntervalMinDefault,
		"shortest wait between two polls of the log")
	f.Duration(&o.runner.PollIntervalMax, "poll-interval-max", EnvPollIntervalMax, projections.PollIntervalMaxDefault,
		"longest wait between two polls of the log (also the takeover time of a dead process's partitions)")
	f.Duration(&o.runner.RetryBackoffMin, "retry-backoff-min", EnvRetryBackoffMin, projections.RetryBackoffMinDefault,
		"wait before the first automatic retry of a dead letter")
	f.Duration(&o.runner.RetryBackoffMax, "retry-backoff-max", EnvRetryBackoffMax, projections.RetryBackoffMaxDefault,
		"longest wait between automatic retries of a dead letter")
	f.Int(&o.runner.RetryAttempts, "retry-attempts", EnvRetryAttempts, projections.RetryAttemptsDefault,
		"failed attempts after which a dead letter waits for an operator")
	f.Duration(&o.runner.TxIdleTimeout, "tx-idle-timeout", EnvTxIdleTimeout, projections.TxIdleTimeoutDefault,
		"longest idle time of a batch transaction (idle_in_transaction_session_timeout)")
	f.Duration(&o.readyMaxLag, "ready-max-lag", EnvReadyMaxLag, ReadyMaxLagDefault,
		"/readyz fails while a projection's oldest unprocessed event is older than this")
	f.Duration(&o.horizonWarnAfter, "horizon-warn-after", EnvHorizonWarnAfter, HorizonWarnAfterDefault,
		"/readyz warns (stays ready) when a transaction has held the log's horizon back this long")
	f.Bool(&o.wait, "wait", EnvWait, true,
		"wait for the database and the schema version at start (not ready meanwhile); false: exit instead")
	f.Duration(&o.waitInterval, "wait-interval", EnvWaitInterval, WaitIntervalDefault,
		"how often to check the database and the schema version while waiting")
	f.Duration(&o.statusMaxAge, "status-max-age", EnvStatusMaxAge, StatusMaxAgeDefault,
		"how long /metrics and /readyz reuse one status query (it costs O(lag))")
	f.Duration(&o.shutdownTimeout, "shutdown-timeout", EnvShutdownTimeout, ShutdownTimeoutDefault,
		"how long the HTTP server may take to finish its requests at shutdown")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.waitInterval <= 0:
		return nil, usagef("-wait-interval must be positive, got %s", o.waitInterval)
	case o.readyMaxLag < 0:
		return nil, usagef("-ready-max-lag must not be negative, got %s", o.readyMaxLag)
	case o.horizonWarnAfter <= 0:
		return nil, usagef("-horizon-warn-after must be positive, got %s", o.horizonWarnAfter)
	case o.statusMaxAge < 0:
		return nil, usagef("-status-max-age must not be negative, got %s", o.statusMaxAge)
	case o.shutdownTimeout <= 0:
		return nil, usagef("-shutdown-timeout must be positive, got %s", o.shutdownTimeout)
	case o.runner.BatchSize <= 0:
		return nil, usagef("-batch-size must be positive, got %d", o.runner.BatchSize)
	case o.runner.Workers <= 0:
		return nil, usagef("-workers must be positive, got %d", o.runner.Workers)
	case o.runner.RetryAttempts <= 0:
		return nil, usagef("-retry-attempts must be positive, got %d", o.runner.RetryAttempts)
	}
	return o, nil
}

// migrateOptions are the settings of the migrate command.
type migrateOptions struct {
	db  dbOptions
	log logOptions
}

func parseMigrate(args []string, env *Env) (*migrateOptions, error) {
	o := &migrateOptions{}
	f := newFlagSet("migrate", "migrate [flags]", env.Getenv, env.Stderr)
	f.database(&o.db, EnvOwnerDatabaseURL, EnvOwnerPasswordFile, "owner (userstore_owner, the migrator)")
	f.logging(&o.log)
	return o, f.Parse(args)
}

// statusOptions are the settings of the status command.
type statusOptions struct {
	db   dbOptions
	log  logOptions
	proj projectionOptions
	json bool
}

func parseStatus(args []string, env *Env) (*statusOptions, error) {
	o := &statusOptions{}
	f := newFlagSet("status", "status [flags]", env.Getenv, env.Stderr)
	f.database(&o.db, EnvProjectorDatabaseURL, EnvProjectorPasswordFile, "projector (userstore_projector)")
	f.logging(&o.log)
	f.projections(&o.proj, true)
	f.Bool(&o.json, "json", "", false, "print JSON instead of text")
	return o, f.Parse(args)
}

// deadLetterOptions are the settings of the dead-letters subcommands.
type deadLetterOptions struct {
	db   dbOptions
	log  logOptions
	proj projectionOptions
	json bool

	projection string
	tenant     string
	status     string
	limit      int
	event      string
	by         string
}

func parseDeadLetters(sub string, args []string, env *Env) (*deadLetterOptions, error) {
	o := &deadLetterOptions{}
	synopsis := map[string]string{
		"list":  "dead-letters list [-projection P] [-tenant T] [-status S] [-limit N] [flags]",
		"retry": "dead-letters retry -projection P -tenant T -by NAME [flags]",
		"skip":  "dead-letters skip -projection P -tenant T -event E -by NAME [flags]",
	}[sub]
	f := newFlagSet("dead-letters "+sub, synopsis, env.Getenv, env.Stderr)
	f.database(&o.db, EnvProjectorDatabaseURL, EnvProjectorPasswordFile, "projector (userstore_projector)")
	f.logging(&o.log)
	f.projections(&o.proj, false)
	f.Bool(&o.json, "json", "", false, "print JSON instead of text")
	switch sub {
	case "list":
		f.String(&o.projection, "projection", "", "", "only this projection's dead letters")
		f.String(&o.tenant, "tenant", "", "", "only this tenant's dead letters (a UUID)")
		f.String(&o.status, "status", "", string(projections.StatusParked), "parked, retried, skipped or all")
		f.Int(&o.limit, "limit", "", projections.DeadLettersLimitDefault,
			"at most this many (up to 10000)")
	case "retry", "skip":
		f.String(&o.projection, "projection", "", "", "the projection (required)")
		f.String(&o.tenant, "tenant", "", "", "the tenant, a UUID (required)")
		f.String(&o.by, "by", "", "", "the operator's name, recorded with the dead letters (required)")
		if sub == "skip" {
			f.String(&o.event, "event", "", "", "the parked event never to apply, a UUID (required)")
		}
	}
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	if sub == "list" && o.status == "all" {
		o.status = ""
	}
	var missing []string
	if sub != "list" {
		for _, m := range []struct{ name, value string }{
			{"projection", o.projection}, {"tenant", o.tenant}, {"by", o.by}} {
			if m.value == "" {
				missing = append(missing, "-"+m.name)
			}
		}
		if sub == "skip" && o.event == "" {
			missing = append(missing, "-event")
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return nil, usagef("dead-letters %s: %s is required", sub, missing[0])
	default:
		return nil, usagef("dead-letters %s: %s are required", sub, strings.Join(missing, ", "))
	}
	return o, nil
}

// rebuildOptions are the settings of the rebuild command.
type rebuildOptions struct {
	owner dbOptions
	db    dbOptions
	log   logOptions
	// target is the command's argument: one of rebuild.Targets() (checked by the command).
	target  string
	cleanup bool
	rebuild rebuild.Opts
}

// parseRebuild parses `rebuild [flags] <target>`; the target may also come first, before the flags.
func parseRebuild(args []string, env *Env) (*rebuildOptions, error) {
	o := &rebuildOptions{}
	f := newFlagSet("rebuild", "rebuild [flags] <"+strings.Join(rebuild.Targets(), "|")+">", env.Getenv, env.Stderr)
	f.ownerDatabase(&o.owner)
	f.database(&o.db, EnvProjectorDatabaseURL, EnvProjectorPasswordFile, "projector (userstore_projector)")
	f.logging(&o.log)
	f.Bool(&o.rebuild.Force, "force", "", false,
		"swap even when the live tables differ from the rebuild: replace the differing live rows with the rebuilt ones")
	f.Bool(&o.rebuild.KeepShadow, "keep-shadow", "", false,
		"leave the shadow schema in place at the end (to inspect a drift) until -cleanup or the next rebuild")
	f.Bool(&o.cleanup, "cleanup", "", false,
		"rebuild nothing: drop what a failed or -keep-shadow rebuild of the target left behind")
	f.Int(&o.rebuild.BatchSize, "batch-size", EnvRebuildBatchSize, rebuild.BatchSizeDefault,
		"rows per COPY into the shadow tables, streams per re-fold, events per audit batch (0: the default)")
	f.Int(&o.rebuild.Workers, "workers", EnvRebuildWorkers, rebuild.WorkersDefault,
		"partitions the audit rebuild projects at once, a projector connection each (0: the default)")
	f.Duration(&o.rebuild.LockTimeout, "lock-timeout", EnvRebuildLockTimeout, rebuild.LockTimeoutDefault,
		"longest wait of a swap attempt for a lock, and for the audit swap's last catch-up (0: the default)")
	f.Int(&o.rebuild.SwapAttempts, "swap-attempts", EnvRebuildSwapAttempts, rebuild.SwapAttemptsDefault,
		"swap attempts before giving up on the locks (0: the default)")
	f.Int(&o.rebuild.CatchUpRounds, "catch-up-rounds", EnvRebuildCatchUpRounds, rebuild.CatchUpRoundsDefault,
		"largest number of catch-up rounds before the swap (0: the default)")

	// flag stops at the first argument that is not a flag: take the target from the front or the end.
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		o.target, args = args[0], args[1:]
	case len(args) > 0 && !strings.HasPrefix(args[len(args)-1], "-"):
		o.target, args = args[len(args)-1], args[:len(args)-1]
	}
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	if o.target == "" {
		return nil, usagef("rebuild: name the target: %s", strings.Join(rebuild.Targets(), " or "))
	}
	r := &o.rebuild
	switch {
	case r.BatchSize < 0:
		return nil, usagef("-batch-size must not be negative, got %d", r.BatchSize)
	case r.Workers < 0:
		return nil, usagef("-workers must not be negative, got %d", r.Workers)
	case r.LockTimeout < 0:
		return nil, usagef("-lock-timeout must not be negative, got %s", r.LockTimeout)
	case r.LockTimeout > 0 && r.LockTimeout < time.Millisecond:
		return nil, usagef("-lock-timeout must be at least 1ms, got %s", r.LockTimeout)
	case r.SwapAttempts < 0:
		return nil, usagef("-swap-attempts must not be negative, got %d", r.SwapAttempts)
	case r.CatchUpRounds < 0:
		return nil, usagef("-catch-up-rounds must not be negative, got %d", r.CatchUpRounds)
	case o.cleanup && (r.Force || r.KeepShadow):
		return nil, usagef("-cleanup rebuilds nothing: it takes neither -force nor -keep-shadow")
	}
	return o, nil
}
