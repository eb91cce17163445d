package crashtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore/adapter/pgstore"
	"github.com/netkingdom/userstore/migrations"
)

// The private cluster's roles, as scripts/pg.sh creates them (without passwords: the cluster is
// reached through its unix socket only, which trusts every local user).
const (
	roleSuper     = "postgres"
	roleOwner     = "userstore_owner"
	roleApp       = "userstore_app"
	roleProjector = "userstore_projector"
)

// Application names of the harness' connections; the backend killer picks its victims by appApplication.
const (
	appApplication       = "crashtest-app"
	projectorApplication = "crashtest-projector"
	adminApplication     = "crashtest-admin"
)

// portFirst..portLast is the range of port numbers the private clusters use. They only name the
// unix socket (the clusters listen on no TCP port), and a lock file per port keeps two test
// processes apart; the range also stays clear of scripts/pg.sh's defaults (54327-54329).
const (
	portFirst = 54400
	portLast  = 54599
)

// cluster is a private PostgreSQL cluster in a temporary directory.
type cluster struct {
	bin     string // directory of initdb, pg_ctl, postgres
	osUser  string // the OS user that runs the server; "" when it is the current user
	dir     string // state directory: data/, run/ (the socket), postgres.log
	data    string
	sock    string
	port    int
	logFile string
	lock    *os.File  // held while the cluster exists: the port is ours
	reaper  *exec.Cmd // stops the cluster and deletes dir if the test binary dies
}

// newCluster initializes and starts a private cluster and registers its stop and deletion with
// t.Cleanup. It fails (never skips) when no PostgreSQL server binaries are installed.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{}
	var err error
	c.bin, err = findBinDir()
	require.NoError(t, err)
	c.osUser, err = serviceUser()
	require.NoError(t, err)

	c.dir, err = os.MkdirTemp(c.tempBase(), "userstore-crashtest-")
	require.NoError(t, err)
	c.data = filepath.Join(c.dir, "data")
	c.sock = filepath.Join(c.dir, "run")
	c.logFile = filepath.Join(c.dir, "postgres.log")
	t.Cleanup(func() { c.destroy(t) })
	require.NoError(t, os.Chmod(c.dir, 0o755))
	require.NoError(t, os.Mkdir(c.sock, 0o755))
	require.NoError(t, c.chown(c.dir, c.sock))

	c.port, c.lock, err = lockPort()
	require.NoError(t, err)
	c.startReaper(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --no-sync: the harness crashes PostgreSQL, never the machine, so the OS keeps what initdb wrote.
	if out, err := c.run(ctx, "initdb", "-D", c.data, "-U", roleSuper, "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		t.Fatalf("crashtest: initdb failed: %v\n%s", err, out)
	}
	conf := strings.Join([]string{
		"",
		"# userstore crashtest: a private cluster, reached through its unix socket only.",
		"listen_addresses = ''",
		"unix_socket_directories = '" + c.sock + "'",
		"port = " + strconv.Itoa(c.port),
		"max_connections = 200",
		"shared_buffers = 16MB",
		// The durability settings are PostgreSQL's defaults, spelled out: the harness tests them.
		"fsync = on",
		"synchronous_commit = on",
		"full_page_writes = on",
		"restart_after_crash = on",
		"log_min_messages = warning",
		"log_min_error_statement = panic",
		"log_line_prefix = '%m [%p] %q%u@%d %a '",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(conf)
	require.NoError(t, errors.Join(err, f.Close()))
	require.NoError(t, c.start(ctx))

	admin := c.connect(t, ctx, roleSuper, "postgres")
	defer admin.Close(context.Background())
	for _, stmt := range []string{
		"CREATE ROLE " + roleOwner + " LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS",
		"CREATE ROLE " + roleApp + " LOGIN NOSUPERUSER NOBYPASSRLS",
		"CREATE ROLE " + roleProjector + " LOGIN NOSUPERUSER NOBYPASSRLS",
		"GRANT pg_read_all_stats TO " + roleProjector,
	} {
		_, err := admin.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	t.Logf("crashtest: private PostgreSQL cluster in %s (socket port %d)", c.dir, c.port)
	return c
}

// findBinDir returns the directory of the newest PostgreSQL server binaries, as scripts/pg.sh finds it.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("crashtest: no PostgreSQL server binaries (initdb, pg_ctl) found; " +
		"install them once with `scripts/pg.sh up` (or apt-get install postgresql)")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

// serviceUser returns the OS user that runs the server: PostgreSQL refuses to run as root, so as root
// it is "postgres" (or the "userstore-svc" user that scripts/pg.sh creates where there is none).
func serviceUser() (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	for _, name := range []string{"postgres", "userstore-svc"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", errors.New("crashtest: running as root and there is no \"postgres\" OS user to run PostgreSQL; " +
		"run `scripts/pg.sh up` once (it installs PostgreSQL and creates one)")
}

// tempBase returns the directory for the cluster's state: $TMPDIR, unless the service user cannot
// enter it or it would make the socket's path too long for a unix socket (about 107 bytes); then /tmp.
func (c *cluster) tempBase() string {
	base := os.TempDir()
	if len(base) > 60 {
		return "/tmp"
	}
	if c.osUser != "" && exec.Command("runuser", "-u", c.osUser, "--", "test", "-x", base).Run() != nil {
		return "/tmp"
	}
	return base
}

// chown hands paths to the service user.
func (c *cluster) chown(paths ...string) error {
	if c.osUser == "" {
		return nil
	}
	u, err := user.Lookup(c.osUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	for _, p := range paths {
		if err := os.Chown(p, uid, -1); err != nil {
			return err
		}
	}
	return nil
}

// command returns the command that runs a server binary as the service user.
func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.osUser == "" {
		cmd = exec.CommandContext(ctx, bin, args...)
	} else {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.osUser, "--", bin}, args...)...)
	}
	cmd.Dir = "/"
	return cmd
}

// run runs a server binary as the service user and returns its combined output.
func (c *cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return c.command(ctx, name, args...).CombinedOutput()
}

// start starts the server and waits until it accepts connections (after crash recovery, if any).
func (c *cluster) start(ctx context.Context) error {
	cmd := c.command(ctx, "pg_ctl", "start", "-D", c.data, "-l", c.logFile, "-w", "-t", "120", "-s")
	// The server must not keep our stdout/stderr open (go test waits for them to close).
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("crashtest: pg_ctl start: %w\n%s", err, c.logTail())
	}
	return nil
}

// stopImmediate stops the server with `pg_ctl stop -m immediate`: every process exits at once,
// without a checkpoint; the next start runs crash recovery.
func (c *cluster) stopImmediate(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.data, "-m", "immediate", "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("crashtest: pg_ctl stop -m immediate: %w\n%s", err, out)
	}
	return nil
}

// running reports whether the postmaster runs.
func (c *cluster) running(ctx context.Context) bool {
	return c.command(ctx, "pg_ctl", "status", "-D", c.data).Run() == nil
}

// logTail returns the end of the server's log, for failure messages.
func (c *cluster) logTail() string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// lockPort takes the first free port number of the range: its lock file is not locked by another
// process, and nothing listens on it on the loopback address.
func lockPort() (int, *os.File, error) {
	dir := filepath.Join(os.TempDir(), "userstore-crashtest-locks")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, err
	}
	_ = os.Chmod(dir, 0o1777)
	for port := portFirst; port <= portLast; port++ {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if portInUse(port) {
			f.Close()
			continue
		}
		return port, f, nil
	}
	return 0, nil, fmt.Errorf("crashtest: no free port number in %d-%d", portFirst, portLast)
}

// portInUse reports whether a PostgreSQL socket of that port number exists in the default socket
// directories or something listens on it on 127.0.0.1.
func portInUse(port int) bool {
	for _, d := range []string{"/tmp", "/var/run/postgresql"} {
		if _, err := os.Stat(filepath.Join(d, ".s.PGSQL."+strconv.Itoa(port))); err == nil {
			return true
		}
	}
	out, err := exec.Command("sh", "-c", "command -v ss >/dev/null && ss -Hltn sport = :"+strconv.Itoa(port)).Output()
	return err == nil && len(strings.TrimSpace(string(out))) > 0
}

// startReaper starts a watchdog, in a process group of its own, that stops the cluster and deletes
// its directory once this test process has gone — when a timeout or a crash kills it before its
// cleanups ran. destroy ends the watchdog first.
func (c *cluster) startReaper(t *testing.T) {
	t.Helper()
	pgCtl := filepath.Join(c.bin, "pg_ctl")
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$4" ]; then runuser -u "$4" -- "$2" stop -D "$3/data" -m immediate -w -t 30 >/dev/null 2>&1
else "$2" stop -D "$3/data" -m immediate -w -t 30 >/dev/null 2>&1; fi
rm -rf "$3"`
	cmd := exec.Command("sh", "-c", script, "crashtest-reaper", strconv.Itoa(os.Getpid()), pgCtl, c.dir, c.osUser)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	c.reaper = cmd
}

// destroy stops the cluster (immediately: nothing in it is kept), deletes its directory, ends the
// watchdog and releases the port.
func (c *cluster) destroy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if c.data != "" {
		if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil && c.running(ctx) {
			if err := c.stopImmediate(ctx); err != nil {
				t.Errorf("crashtest: stop the private cluster: %v", err)
			}
		}
	}
	if t.Failed() {
		if tail := c.logTail(); tail != "" {
			t.Logf("crashtest: end of the private cluster's log:\n%s", tail)
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			t.Errorf("crashtest: delete %s: %v", c.dir, err)
		}
	}
	if c.reaper != nil {
		_ = c.reaper.Process.Kill()
		_ = c.reaper.Wait()
	}
	if c.lock != nil {
		c.lock.Close()
	}
}

// connConfig returns the pgx configuration of a connection to database as role, over the socket.
func (c *cluster) connConfig(role, database, application string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		panic(err)
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database, cfg.Password = c.sock, uint16(c.port), role, database, ""
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = 5 * time.Second
	cfg.RuntimeParams = map[string]string{"application_name": application}
	return cfg
}

// connect opens one connection as role and closes it when the test ends.
func (c *cluster) connect(t *testing.T, ctx context.Context, role, database string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(ctx, c.connConfig(role, database, adminApplication))
	require.NoError(t, err)
	return conn
}

// poolConfig returns a pool configuration for database as role, over the socket.
func (c *cluster) poolConfig(role, database, application string, maxConns int32) *pgxpool.Config {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		panic(err)
	}
	cfg.ConnConfig = c.connConfig(role, database, application)
	cfg.MaxConns = maxConns
	return cfg
}

// storePool opens a pool as a runtime role (the app or the projector) the way a provider does, with
// pgstore.NewPool and a short connect timeout so that requests fail fast while the server is down.
func (c *cluster) storePool(t *testing.T, ctx context.Context, role, database, application string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	pool, err := pgstore.NewPool(ctx, &pgstore.ConnectConfig{
		Host: c.sock, Port: uint16(c.port), Database: database, User: role,
		ApplicationName: application, MaxConns: maxConns, ConnectTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newDatabase creates a database owned by the owner role, migrates it with migrations.Up as the owner
// and returns its name. The cluster is deleted as a whole, so the database is never dropped.
func (c *cluster) newDatabase(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	admin := c.connect(t, ctx, roleSuper, "postgres")
	defer admin.Close(context.Background())
	_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+roleOwner)
	require.NoError(t, err)
	owner, err := pgxpool.NewWithConfig(ctx, c.poolConfig(roleOwner, name, adminApplication, 2))
	require.NoError(t, err)
	defer owner.Close()
	_, err = migrations.Up(ctx, owner)
	require.NoError(t, err)
	return name
}

// adminPool opens a superuser pool on database (it bypasses row-level security: the checks read every
// tenant's rows) and closes it when the test ends.
func (c *cluster) adminPool(t *testing.T, ctx context.Context, database string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(ctx, c.poolConfig(roleSuper, database, adminApplication, 4))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
