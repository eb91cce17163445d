#!/usr/bin/env bash
# scripts/pg.sh — a throwaway local PostgreSQL cluster, with PgBouncer in front, for development, tests and CI.
#
#   scripts/pg.sh up       install PostgreSQL, PgBouncer and nats-server if missing (apt-get), create the cluster
#                          under .pg/, start it, the bouncers and NATS, create the database and roles;
#                          idempotent, fast when running
#   scripts/pg.sh down     stop NATS, the bouncers and the cluster; leaves no process behind
#   scripts/pg.sh status   exit 0 when all run, 3 when the cluster, a bouncer or NATS is stopped, 4 when no cluster exists
#   scripts/pg.sh env      print export lines for the connection URLs (eval "$(scripts/pg.sh env)")
#   scripts/pg.sh reset    stop everything and delete the cluster's data (and NATS's store)
#
# Environment: USERSTORE_PG_PORT (default 54329), USERSTORE_PGBOUNCER_PORT (default 54328),
# USERSTORE_PGBOUNCER_SINGLE_PORT (default USERSTORE_PGBOUNCER_PORT - 1), USERSTORE_NATS_PORT (default
# USERSTORE_PGBOUNCER_SINGLE_PORT - 1), USERSTORE_PG_DIR (state directory, default .pg/).
#
# The cluster listens on 127.0.0.1 and on a unix socket. Socket connections are trusted (used by
# this script as the superuser); TCP connections need a password (scram-sha-256). The roles get fixed
# passwords: they are local, throwaway development credentials, never used anywhere else.
#
#   userstore_owner      LOGIN CREATEDB      owns the schema, runs migrations, creates test databases
#   userstore_app        LOGIN               the library's runtime role: owns nothing, no BYPASSRLS
#   userstore_projector  LOGIN               reads all tenants (RLS policy); pg_read_all_stats
#   postgres             superuser           for tests that must act as superuser
#
# Two PgBouncers in transaction pooling mode forward any database name to the cluster, for the three
# userstore_* roles (SCRAM): one on USERSTORE_PGBOUNCER_PORT (up to 20 server connections per database
# and user), one on USERSTORE_PGBOUNCER_SINGLE_PORT with exactly one. See scripts/lib/pgbouncer.sh.
#
# A nats-server with JetStream on USERSTORE_NATS_PORT serves the outbox relay's JetStream sink and its
# tests (USERSTORE_NATS_URL). See scripts/lib/nats.sh.
set -euo pipefail

SCRIPT_NAME=pg.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

PG_PORT="${USERSTORE_PG_PORT:-54329}"
PG_HOST=127.0.0.1
PG_DATABASE=userstore
PG_SUPERUSER=postgres

# Local development passwords (see the header).
PG_ADMIN_PASSWORD=admin-local-dev
PG_OWNER_PASSWORD=owner-local-dev
PG_APP_PASSWORD=app-local-dev
PG_PROJECTOR_PASSWORD=projector-local-dev

case "$PG_PORT" in
'' | *[!0-9]*) die "USERSTORE_PG_PORT must be a port number, got '$PG_PORT'" ;;
esac

# shellcheck source=scripts/lib/pgbouncer.sh
. "$ROOT/scripts/lib/pgbouncer.sh"
# shellcheck source=scripts/lib/nats.sh
. "$ROOT/scripts/lib/nats.sh"

# pg_find_bindir prints the directory of the newest PostgreSQL server binaries: initdb on PATH
# (following symlinks), else /usr/lib/postgresql/*/bin (Debian does not put initdb on PATH).
pg_find_bindir() {
	local d
	if d=$(command -v initdb 2>/dev/null); then
		dirname "$(readlink -f "$d")"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# pg_ensure_installed sets PG_BIN, installing Debian's postgresql package when no initdb exists, and
# pgbouncer and nats-server when their binaries are missing (in one apt-get run).
pg_ensure_installed() {
	local pkgs=()
	PG_BIN=$(pg_find_bindir) || pkgs+=(postgresql)
	pgb_find_bin >/dev/null || pkgs+=(pgbouncer)
	nats_find_bin >/dev/null || pkgs+=(nats-server)
	[ ${#pkgs[@]} -gt 0 ] || return 0
	if [ -z "$PG_BIN" ] && is_root; then
		# Debian's package would create and start a system cluster ("main", port 5432) that we do
		# not want running: switch that off before installing.
		mkdir -p /etc/postgresql-common
		if [ -f /etc/postgresql-common/createcluster.conf ]; then
			sed -i -E 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
				/etc/postgresql-common/createcluster.conf
		else
			echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
		fi
	fi
	apt_install "${pkgs[@]}"
	case " ${pkgs[*]} " in *" pgbouncer "*) pgb_disable_system_service ;; esac
	case " ${pkgs[*]} " in *" nats-server "*) nats_disable_system_service ;; esac
	PG_BIN=$(pg_find_bindir) || die "PostgreSQL was installed but no initdb was found under /usr/lib/postgresql/*/bin"
}

# pg_paths sets the service user and every path of the cluster. It needs no server binaries.
pg_paths() {
	PG_USER=$(ensure_service_user)
	STATE=$(state_base "$PG_USER")
	PGDATA_DIR="$STATE/data"
	PG_LOG="$STATE/log/postgres.log"
	# A unix socket path is limited to 107 bytes; with a long checkout path use /tmp instead.
	SOCK_DIR="$STATE/run"
	if [ $((${#SOCK_DIR} + ${#PG_PORT} + 12)) -gt 100 ]; then
		SOCK_DIR="/tmp/userstore-pg-$PG_PORT"
	fi
}

pg() { as_user "$PG_USER" "$PG_BIN/$1" "${@:2}"; }

# psql_super runs psql as the superuser over the unix socket (trusted).
psql_super() {
	as_user "$PG_USER" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" \
		-U "$PG_SUPERUSER" "$@"
}

# pg_running succeeds when the postmaster of our data directory is alive.
pg_running() {
	[ -f "$PGDATA_DIR/PG_VERSION" ] || return 1
	pg pg_ctl status -D "$PGDATA_DIR" >/dev/null 2>&1
}

# pg_running_port prints the port the running postmaster listens on (line 4 of postmaster.pid).
pg_running_port() { sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; }

pg_init() {
	log "creating a cluster in $PGDATA_DIR"
	mkdir -p "$STATE"
	chmod 0755 "$STATE"
	install -d -m 0700 -o "$PG_USER" "$PGDATA_DIR"
	install -d -m 0755 -o "$PG_USER" "$STATE/log"
	local pwfile locale=C
	pwfile=$(mktemp)
	printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwfile"
	chown "$PG_USER" "$pwfile"
	if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
		locale=C.UTF-8
	fi
	if ! pg initdb -D "$PGDATA_DIR" -U "$PG_SUPERUSER" --pwfile="$pwfile" -E UTF8 --locale="$locale" \
		--auth-local=trust --auth-host=scram-sha-256 >"$STATE/log/initdb.log" 2>&1; then
		rm -f "$pwfile"
		cat "$STATE/log/initdb.log" >&2
		die "initdb failed"
	fi
	rm -f "$pwfile"
	as_user "$PG_USER" tee "$PGDATA_DIR/pg_hba.conf" >/dev/null <<-'EOF'
		# userstore local cluster (scripts/pg.sh): socket trusted, TCP with a password.
		# TYPE  DATABASE  USER  ADDRESS        METHOD
		local   all       all                  trust
		host    all       all   127.0.0.1/32   scram-sha-256
	EOF
	echo "include 'userstore.conf'" | as_user "$PG_USER" tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
}

# pg_write_conf writes the cluster's settings; rewritten at every start, so changes here apply to
# existing clusters on their next start.
pg_write_conf() {
	as_user "$PG_USER" tee "$PGDATA_DIR/userstore.conf" >/dev/null <<-'EOF'
		# userstore local cluster (scripts/pg.sh). Port and socket directory come from the command line.
		listen_addresses = '127.0.0.1'
		max_connections = 500
		password_encryption = 'scram-sha-256'
		synchronous_commit = on
		log_min_messages = warning
		log_min_error_statement = panic
		log_line_prefix = '%m [%p] %q%u@%d '
	EOF
}

pg_start() {
	install -d -m 0755 -o "$PG_USER" "$SOCK_DIR" "$STATE/log"
	pg_write_conf
	# 9>&-: the server must not inherit the lock file descriptor of with_lock.
	if ! pg pg_ctl start -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 -s \
		-o "-p $PG_PORT -k $SOCK_DIR" >/dev/null 2>&1 9>&-; then
		tail -n 20 "$PG_LOG" >&2 || true
		die "PostgreSQL did not start (log: $PG_LOG)"
	fi
}

# pg_provision creates the database and roles, and (re)sets the passwords. Idempotent.
pg_provision() {
	psql_super -d postgres <<-EOF
		SET client_min_messages = warning;
		SELECT format('CREATE ROLE %I', r)
		  FROM unnest(ARRAY['userstore_owner', 'userstore_app', 'userstore_projector']) AS r
		 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
		ALTER ROLE userstore_owner     LOGIN NOSUPERUSER CREATEDB   NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_OWNER_PASSWORD';
		ALTER ROLE userstore_app       LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_APP_PASSWORD';
		ALTER ROLE userstore_projector LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$PG_PROJECTOR_PASSWORD';
		ALTER ROLE $PG_SUPERUSER PASSWORD '$PG_ADMIN_PASSWORD';
		GRANT pg_read_all_stats TO userstore_projector;
		SELECT 'CREATE DATABASE $PG_DATABASE OWNER userstore_owner'
		 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE') \gexec
	EOF
}

cmd_up() {
	# Install first: the package creates the "postgres" OS user that runs the server.
	pg_ensure_installed
	pg_paths
	if pg_running; then
		local port
		port=$(pg_running_port)
		if [ "$port" != "$PG_PORT" ]; then
			die "the cluster in $PGDATA_DIR runs on port $port, not $PG_PORT; run '$0 down' first"
		fi
	else
		[ -f "$PGDATA_DIR/PG_VERSION" ] || pg_init
		pg_start
		log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') running on $PG_HOST:$PG_PORT (data: $PGDATA_DIR)"
	fi
	pg_provision
	pgb_up
	nats_up
}

cmd_down() {
	PG_BIN=$(pg_find_bindir) || return 0 # not installed: nothing can be running
	pg_paths
	nats_down
	pgb_down
	pg_running || return 0
	pg pg_ctl stop -D "$PGDATA_DIR" -m fast -w -t 60 -s >/dev/null ||
		pg pg_ctl stop -D "$PGDATA_DIR" -m immediate -w -t 30 -s >/dev/null
	if pg_running; then
		die "PostgreSQL is still running (data: $PGDATA_DIR)"
	fi
	log "PostgreSQL stopped"
}

cmd_status() {
	if ! PG_BIN=$(pg_find_bindir); then
		echo "PostgreSQL is not installed"
		return 4
	fi
	pg_paths
	if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
		echo "no cluster in $PGDATA_DIR"
		return 4
	fi
	local status=0
	if pg_running; then
		local port
		port=$(pg_running_port)
		if [ "$port" != "$PG_PORT" ]; then
			echo "running on port $port, not on USERSTORE_PG_PORT=$PG_PORT (data: $PGDATA_DIR)"
			status=3
		else
			echo "running on $PG_HOST:$port (socket: $SOCK_DIR, data: $PGDATA_DIR)"
		fi
	else
		echo "stopped (data: $PGDATA_DIR)"
		status=3
	fi
	pgb_status || status=3
	nats_status || status=3
	return $status
}

cmd_reset() {
	cmd_down
	PG_BIN=$(pg_find_bindir) || return 0
	pg_paths
	log "deleting $STATE"
	rm -rf "$STATE"
}

url() { printf 'postgres://%s:%s@%s:%s/%s?sslmode=disable' "$1" "$2" "$PG_HOST" "${4:-$PG_PORT}" "$3"; }

# The USERSTORE_PGBOUNCER_* URLs reach the same roles through the pooled PgBouncer; the same URLs
# with port USERSTORE_PGBOUNCER_SINGLE_PORT reach the single-connection one. Use them with pgx's
# QueryExecModeExec (no named prepared statements in transaction pooling mode).
cmd_env() {
	cat <<-EOF
		export USERSTORE_PG_PORT=$PG_PORT
		export USERSTORE_DATABASE_URL='$(url userstore_owner "$PG_OWNER_PASSWORD" "$PG_DATABASE")'
		export USERSTORE_APP_DATABASE_URL='$(url userstore_app "$PG_APP_PASSWORD" "$PG_DATABASE")'
		export USERSTORE_PROJECTOR_DATABASE_URL='$(url userstore_projector "$PG_PROJECTOR_PASSWORD" "$PG_DATABASE")'
		export USERSTORE_ADMIN_DATABASE_URL='$(url "$PG_SUPERUSER" "$PG_ADMIN_PASSWORD" postgres)'
		export USERSTORE_PGBOUNCER_PORT=$PGB_PORT
		export USERSTORE_PGBOUNCER_SINGLE_PORT=$PGB_SINGLE_PORT
		export USERSTORE_PGBOUNCER_DATABASE_URL='$(url userstore_owner "$PG_OWNER_PASSWORD" "$PG_DATABASE" "$PGB_PORT")'
		export USERSTORE_PGBOUNCER_APP_DATABASE_URL='$(url userstore_app "$PG_APP_PASSWORD" "$PG_DATABASE" "$PGB_PORT")'
		export USERSTORE_PGBOUNCER_PROJECTOR_DATABASE_URL='$(url userstore_projector "$PG_PROJECTOR_PASSWORD" "$PG_DATABASE" "$PGB_PORT")'
	EOF
	nats_env
}

# with_lock runs a command while holding the state lock, so that concurrent "up"s (two terminals, two
# make runs) do not race on initdb or CREATE ROLE.
with_lock() {
	local lockdir="/tmp/userstore-pg-locks"
	mkdir -p "$lockdir"
	chmod 1777 "$lockdir" 2>/dev/null || true
	exec 9>"$lockdir/$PG_PORT.lock"
	flock 9
	"$@"
}

main() {
	local cmd=${1:-}
	case "$cmd" in
	up) with_lock cmd_up ;;
	down) with_lock cmd_down ;;
	reset) with_lock cmd_reset ;;
	status) cmd_status ;;
	env) cmd_env ;;
	*)
		sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
}

main "$@"
