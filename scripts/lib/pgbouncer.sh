# shellcheck shell=bash
# PgBouncer in front of the local cluster, for tests that must run through a transaction-pooling
# bouncer. Sourced by scripts/pg.sh, whose variables it uses (PG_USER, STATE, PG_BIN, PG_HOST,
# PG_PORT, the role passwords); it defines functions only and changes no state.
#
# Two instances run as the cluster's OS user, on 127.0.0.1 only, in transaction pooling mode, and
# forward ANY database name (a wildcard entry) to the same database of the local cluster:
#
#   pgbouncer          port USERSTORE_PGBOUNCER_PORT (default 54328): the pooled bouncer tests use
#   pgbouncer-single   port USERSTORE_PGBOUNCER_SINGLE_PORT (default: USERSTORE_PGBOUNCER_PORT - 1):
#                      exactly ONE server connection per (database, user), so that consecutive
#                      transactions of every client of a role share one server session — for tests
#                      that prove nothing leaks from one transaction into the next
#
# Clients authenticate with SCRAM-SHA-256 as userstore_owner, userstore_app or userstore_projector
# (the passwords of the cluster). The auth file holds those fixed local passwords in clear text, mode
# 0600 in the state directory, so that PgBouncer can itself log in to the cluster with SCRAM: a SCRAM
# verifier copied from pg_authid would stop working for the server login whenever provisioning
# re-salts the password.
#
# State: $STATE/pgbouncer/ (configuration, auth file, pid files), logs in $STATE/log/.

PGB_PORT="${USERSTORE_PGBOUNCER_PORT:-54328}"
case "$PGB_PORT" in
'' | *[!0-9]*) die "USERSTORE_PGBOUNCER_PORT must be a port number, got '$PGB_PORT'" ;;
esac
PGB_SINGLE_PORT="${USERSTORE_PGBOUNCER_SINGLE_PORT:-$((PGB_PORT - 1))}"
case "$PGB_SINGLE_PORT" in
'' | *[!0-9]*) die "USERSTORE_PGBOUNCER_SINGLE_PORT must be a port number, got '$PGB_SINGLE_PORT'" ;;
esac
if [ "$PGB_PORT" = "$PG_PORT" ] || [ "$PGB_SINGLE_PORT" = "$PG_PORT" ] || [ "$PGB_PORT" = "$PGB_SINGLE_PORT" ]; then
	die "the ports must differ: USERSTORE_PG_PORT=$PG_PORT, USERSTORE_PGBOUNCER_PORT=$PGB_PORT, USERSTORE_PGBOUNCER_SINGLE_PORT=$PGB_SINGLE_PORT"
fi

# The instances, by name.
PGB_INSTANCES="pgbouncer pgbouncer-single"

# pgb_find_bin prints the path of the pgbouncer binary (Debian installs it in /usr/sbin, which a
# normal user's PATH may lack).
pgb_find_bin() {
	local b
	for b in "$(command -v pgbouncer 2>/dev/null || true)" /usr/sbin/pgbouncer /usr/local/sbin/pgbouncer /usr/local/bin/pgbouncer; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

# pgb_ensure_installed sets PGB_BIN, installing Debian's pgbouncer package when it is missing
# (scripts/pg.sh up installs it together with PostgreSQL when both are missing).
pgb_ensure_installed() {
	if PGB_BIN=$(pgb_find_bin); then
		return 0
	fi
	apt_install pgbouncer
	pgb_disable_system_service
	PGB_BIN=$(pgb_find_bin) || die "pgbouncer was installed but no pgbouncer binary was found"
}

# pgb_disable_system_service keeps the package's own service (port 6432, /etc/pgbouncer) from
# running: apt_install does not start it, and on a systemd host it is disabled as well, so that
# nothing but our instances ever runs.
pgb_disable_system_service() {
	if is_root && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now pgbouncer.service pgbouncer.socket >/dev/null 2>&1 || true
	fi
}

# pgb_paths sets the paths shared by the instances; pg_paths must have run.
pgb_paths() {
	PGB_DIR="$STATE/pgbouncer"
	PGB_AUTH="$PGB_DIR/userlist.txt"
}

pgb_ini() { echo "$PGB_DIR/$1.ini"; }
pgb_pidfile() { echo "$PGB_DIR/$1.pid"; }
pgb_log() { echo "$STATE/log/$1.log"; }
pgb_port() { if [ "$1" = pgbouncer ]; then echo "$PGB_PORT"; else echo "$PGB_SINGLE_PORT"; fi; }

# pgb_pid prints the pid of a running instance, or fails.
pgb_pid() {
	local pid
	pid=$(cat "$(pgb_pidfile "$1")" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pgbouncer ] || return 1
	echo "$pid"
}

pgb_auth_content() {
	cat <<-EOF
		"userstore_owner" "$PG_OWNER_PASSWORD"
		"userstore_app" "$PG_APP_PASSWORD"
		"userstore_projector" "$PG_PROJECTOR_PASSWORD"
	EOF
}

# pgb_conf_content NAME prints an instance's configuration. Sizing (2 cores): the pooled instance
# accepts up to 1000 client connections (each test package opens pools of up to 32 per role) and
# keeps at most 20 server connections per (database, user) — a transaction-mode pool needs few, and
# the cluster allows 500 in all; the single instance keeps exactly one, with no reserve.
pgb_conf_content() {
	local name=$1 port pool clients
	port=$(pgb_port "$name")
	if [ "$name" = pgbouncer ]; then
		pool=20 clients=1000
	else
		pool=1 clients=200
	fi
	cat <<-EOF
		;; userstore local PgBouncer "$name" (scripts/pg.sh). Rewritten by every "scripts/pg.sh up".
		[databases]
		;; Any database name (pgtest creates one per test package) goes to the same database of the cluster.
		* = host=$PG_HOST port=$PG_PORT pool_size=$pool

		[pgbouncer]
		listen_addr = $PG_HOST
		listen_port = $port
		unix_socket_dir =
		auth_type = scram-sha-256
		auth_file = $PGB_AUTH
		pool_mode = transaction
		max_client_conn = $clients
		default_pool_size = $pool
		min_pool_size = 0
		reserve_pool_size = 0
		server_tls_sslmode = disable
		client_tls_sslmode = disable
		ignore_startup_parameters = extra_float_digits
		query_wait_timeout = 60
		server_idle_timeout = 60
		autodb_idle_timeout = 300
		log_connections = 0
		log_disconnections = 0
		pidfile = $(pgb_pidfile "$name")
		logfile = $(pgb_log "$name")
	EOF
}

# pgb_write FILE CONTENT writes a file as the service user, mode 0600, when its content differs. It
# succeeds when the file changed and fails when it was already up to date.
pgb_write() {
	local file=$1 content=$2
	if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
		return 1
	fi
	printf '%s\n' "$content" | as_user "$PG_USER" sh -c 'umask 077 && cat >"$1.tmp" && mv -f "$1.tmp" "$1"' sh "$file"
}

# pgb_stop NAME stops an instance: a safe shutdown (SIGINT), then SIGKILL if it is still alive
# after 15 seconds.
pgb_stop() {
	local name=$1 pid i
	pid=$(pgb_pid "$name") || return 0
	kill -INT "$pid" 2>/dev/null || true
	for i in $(seq 150); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	if [ -d "/proc/$pid" ]; then
		log "$name did not stop within 15s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
	fi
	[ ! -d "/proc/$pid" ] || die "$name (pid $pid) is still running"
	rm -f "$(pgb_pidfile "$name")"
}

# pgb_start NAME starts an instance and waits (bounded) until a client can run a query through it.
pgb_start() {
	local name=$1 port pid i
	port=$(pgb_port "$name")
	rm -f "$(pgb_pidfile "$name")" # stale: the instance does not run
	# The service user's soft open-files limit is often 1024: raise it (within the hard limit) so
	# that max_client_conn fits. 9>&-: the daemon must not inherit the lock of with_lock.
	if ! as_user "$PG_USER" sh -c 'ulimit -S -n 4096 2>/dev/null || true; exec "$0" -d -q "$1"' \
		"$PGB_BIN" "$(pgb_ini "$name")" >>"$STATE/log/$name.start.log" 2>&1 9>&-; then
		tail -n 20 "$STATE/log/$name.start.log" "$(pgb_log "$name")" >&2 2>/dev/null || true
		die "$name did not start (log: $(pgb_log "$name"))"
	fi
	# Ready when OUR daemon runs (not, say, another checkout's bouncer on the same port) and a query
	# goes through it; given up when the daemon is gone after a second, or after 20 seconds.
	for i in $(seq 200); do
		if pid=$(pgb_pid "$name"); then
			if PGPASSWORD=$PG_APP_PASSWORD PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -t -A -w -h "$PG_HOST" \
				-p "$port" -U userstore_app -d "$PG_DATABASE" -c 'SELECT 1' >/dev/null 2>&1; then
				return 0
			fi
		elif [ "$i" -gt 10 ]; then
			break
		fi
		sleep 0.1
	done
	tail -n 20 "$(pgb_log "$name")" >&2 2>/dev/null || true
	die "$name does not accept connections on $PG_HOST:$port (log: $(pgb_log "$name"))"
}

# pgb_up starts the instances that are not running, and restarts those whose configuration
# changed. Idempotent; does nothing when all run with the current configuration. The cluster must
# run (its roles authenticate the clients).
pgb_up() {
	pgb_ensure_installed
	pgb_paths
	install -d -m 0700 -o "$PG_USER" "$PGB_DIR"
	install -d -m 0755 -o "$PG_USER" "$STATE/log"
	local auth_changed=0 name changed
	if pgb_write "$PGB_AUTH" "$(pgb_auth_content)"; then
		auth_changed=1
	fi
	for name in $PGB_INSTANCES; do
		changed=$auth_changed
		if pgb_write "$(pgb_ini "$name")" "$(pgb_conf_content "$name")"; then
			changed=1
		fi
		if pgb_pid "$name" >/dev/null; then
			[ "$changed" = 1 ] || continue
			log "restarting $name (configuration changed)"
			pgb_stop "$name"
		fi
		pgb_start "$name"
		log "$name ($("$PGB_BIN" --version 2>/dev/null | awk 'NR == 1 {print $2}')) running on $PG_HOST:$(pgb_port "$name"), transaction pooling (config: $(pgb_ini "$name"))"
	done
}

# pgb_down stops the instances.
pgb_down() {
	pgb_paths
	local name
	for name in $PGB_INSTANCES; do
		if pgb_pid "$name" >/dev/null; then
			pgb_stop "$name"
			log "$name stopped"
		fi
	done
}

# pgb_status prints a line per instance; it fails when one does not run.
pgb_status() {
	pgb_paths
	local name pid status=0
	for name in $PGB_INSTANCES; do
		if pid=$(pgb_pid "$name"); then
			echo "$name running on $PG_HOST:$(pgb_port "$name") (pid $pid, config: $(pgb_ini "$name"))"
		else
			echo "$name stopped"
			status=3
		fi
	done
	return $status
}
