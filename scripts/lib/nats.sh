# shellcheck shell=bash
# A local NATS server with JetStream, for the outbox relay's JetStream sink and its tests
# (projections/outbox/jetstream). Sourced by scripts/pg.sh after scripts/lib/pgbouncer.sh, whose
# variables it uses (PG_USER, STATE, PG_HOST, PG_PORT, PGB_PORT, PGB_SINGLE_PORT); it defines functions
# only and changes no state.
#
# One nats-server (Debian's package "nats-server") runs as the cluster's OS user, on 127.0.0.1 only:
#
#   port  USERSTORE_NATS_PORT (default: USERSTORE_PGBOUNCER_SINGLE_PORT - 1, so 54326 by default, and
#         a checkout that moves its PgBouncer ports moves NATS along with them)
#
# JetStream is on, with its store under $STATE/nats/jetstream. Clients log in as user "userstore" with
# a fixed password: a local, throwaway development credential, never used anywhere else (it is there
# so that the tests run with a URL that carries a password, as production ones may, and prove it never
# shows in an error or a log line). `scripts/pg.sh env` prints the URL as USERSTORE_NATS_URL.
#
# State: $STATE/nats/ (configuration, pid file, JetStream store), logs in $STATE/log/.

NATS_PORT="${USERSTORE_NATS_PORT:-$((PGB_SINGLE_PORT - 1))}"
case "$NATS_PORT" in
'' | *[!0-9]*) die "USERSTORE_NATS_PORT must be a port number, got '$NATS_PORT'" ;;
esac
case " $PG_PORT $PGB_PORT $PGB_SINGLE_PORT " in
*" $NATS_PORT "*)
	die "the ports must differ: USERSTORE_NATS_PORT=$NATS_PORT, USERSTORE_PG_PORT=$PG_PORT, USERSTORE_PGBOUNCER_PORT=$PGB_PORT, USERSTORE_PGBOUNCER_SINGLE_PORT=$PGB_SINGLE_PORT"
	;;
esac
NATS_USER=userstore
NATS_PASSWORD=nats-local-dev

# nats_find_bin prints the path of the nats-server binary (Debian installs it in /usr/sbin, which a
# normal user's PATH may lack; a local build may live elsewhere on PATH).
nats_find_bin() {
	local b
	for b in "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

# nats_ensure_installed sets NATS_BIN, installing Debian's nats-server package when it is missing
# (scripts/pg.sh up installs it together with PostgreSQL and PgBouncer when they are missing too).
nats_ensure_installed() {
	if NATS_BIN=$(nats_find_bin); then
		return 0
	fi
	apt_install nats-server
	nats_disable_system_service
	NATS_BIN=$(nats_find_bin) || die "nats-server was installed but no nats-server binary was found"
}

# nats_disable_system_service keeps the package's own service (port 4222) from running: apt_install
# does not start it, and on a systemd host it is disabled as well.
nats_disable_system_service() {
	if is_root && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now nats-server.service >/dev/null 2>&1 || true
	fi
}

# nats_paths sets the server's paths; pg_paths must have run.
nats_paths() {
	NATS_DIR="$STATE/nats"
	NATS_CONF="$NATS_DIR/nats-server.conf"
	NATS_PIDFILE="$NATS_DIR/nats-server.pid"
	NATS_STORE="$NATS_DIR/jetstream"
	NATS_LOG="$STATE/log/nats-server.log"
}

# nats_pid prints the pid of the running server, or fails.
nats_pid() {
	local pid
	pid=$(cat "$NATS_PIDFILE" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nats-server ] || return 1
	echo "$pid"
}

# nats_running_port prints the port of the running server: the one of the configuration it was started
# with (only nats_up rewrites it, and restarts the server when it does).
nats_running_port() { sed -n 's/^port: *//p' "$NATS_CONF" 2>/dev/null || true; }

# nats_conf_content prints the server's configuration. Sizing: the tests publish a few thousand small
# messages per run; the limits only keep a runaway test from filling the disk.
nats_conf_content() {
	cat <<-EOF
		# userstore local NATS server (scripts/pg.sh). Rewritten by every "scripts/pg.sh up".
		server_name: userstore_local_$NATS_PORT
		host: $PG_HOST
		port: $NATS_PORT
		pid_file: "$NATS_PIDFILE"
		log_file: "$NATS_LOG"
		authorization {
		  user: $NATS_USER
		  password: "$NATS_PASSWORD"
		}
		jetstream {
		  store_dir: "$NATS_STORE"
		  max_memory_store: 256MB
		  max_file_store: 4GB
		}
	EOF
}

# nats_ready succeeds when a client on the port gets the server's INFO line and it says JetStream is on.
nats_ready() {
	local line
	line=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r -t 2 line <&3 && printf "%s" "$line"' \
		"$PG_HOST" "$NATS_PORT" 2>/dev/null) || return 1
	case "$line" in INFO*'"jetstream":true'*) return 0 ;; esac
	return 1
}

# nats_stop stops the server: a graceful shutdown (SIGTERM), then SIGKILL if it is still alive after
# 15 seconds.
nats_stop() {
	local pid i
	pid=$(nats_pid) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 150); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	if [ -d "/proc/$pid" ]; then
		log "nats-server did not stop within 15s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
	fi
	[ ! -d "/proc/$pid" ] || die "nats-server (pid $pid) is still running"
	rm -f "$NATS_PIDFILE"
}

# nats_start starts the server in a session of its own (it does not daemonize itself) and waits
# (bounded) until it answers with JetStream on.
nats_start() {
	local pid i
	rm -f "$NATS_PIDFILE" # stale: the server does not run
	# 9>&-: the server must not inherit the lock of with_lock.
	if ! as_user "$PG_USER" sh -c 'setsid "$0" -c "$1" </dev/null >>"$2" 2>&1 &' \
		"$NATS_BIN" "$NATS_CONF" "$STATE/log/nats-server.start.log" 9>&-; then
		die "nats-server did not start (log: $NATS_LOG)"
	fi
	# Ready when OUR server runs (not, say, another checkout's on the same port) and answers; given
	# up when it is gone after a second, or after 20 seconds.
	for i in $(seq 200); do
		if pid=$(nats_pid); then
			if nats_ready; then
				return 0
			fi
		elif [ "$i" -gt 10 ]; then
			break
		fi
		sleep 0.1
	done
	tail -n 20 "$STATE/log/nats-server.start.log" "$NATS_LOG" >&2 2>/dev/null || true
	die "nats-server does not answer with JetStream on $PG_HOST:$NATS_PORT (log: $NATS_LOG)"
}

# nats_up starts the server when it does not run, and restarts it when its configuration changed.
# Idempotent; does nothing when it runs with the current configuration.
nats_up() {
	nats_ensure_installed
	nats_paths
	install -d -m 0700 -o "$PG_USER" "$NATS_DIR" "$NATS_STORE"
	install -d -m 0755 -o "$PG_USER" "$STATE/log"
	local changed=0
	if pgb_write "$NATS_CONF" "$(nats_conf_content)"; then
		changed=1
	fi
	if nats_pid >/dev/null; then
		[ "$changed" = 1 ] || return 0
		log "restarting nats-server (configuration changed)"
		nats_stop
	fi
	nats_start
	log "nats-server $("$NATS_BIN" --version 2>/dev/null | awk '{print $NF}') running on $PG_HOST:$NATS_PORT with JetStream (store: $NATS_STORE)"
}

# nats_down stops the server.
nats_down() {
	nats_paths
	if nats_pid >/dev/null; then
		nats_stop
		log "nats-server stopped"
	fi
}

# nats_status prints a line; it fails when the server does not run.
nats_status() {
	nats_paths
	local pid
	if pid=$(nats_pid); then
		local port
		port=$(nats_running_port)
		if [ "$port" != "$NATS_PORT" ]; then
			echo "nats-server running on port $port, not on USERSTORE_NATS_PORT=$NATS_PORT (pid $pid, config: $NATS_CONF)"
			return 3
		fi
		echo "nats-server running on $PG_HOST:$NATS_PORT with JetStream (pid $pid, config: $NATS_CONF)"
		return 0
	fi
	echo "nats-server stopped"
	return 3
}

# nats_env prints the export lines of the server's URL.
nats_env() {
	cat <<-EOF
		export USERSTORE_NATS_PORT=$NATS_PORT
		export USERSTORE_NATS_URL='nats://$NATS_USER:$NATS_PASSWORD@$PG_HOST:$NATS_PORT'
	EOF
}
