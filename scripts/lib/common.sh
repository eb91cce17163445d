# shellcheck shell=bash
# Helpers shared by the scripts that run local services (scripts/pg.sh with PostgreSQL and PgBouncer; NATS later).
# Source it; it defines functions only and changes no state.

# log prints a progress line on stderr, prefixed with the calling script's name.
log() { printf '%s: %s\n' "${SCRIPT_NAME:-scripts}" "$*" >&2; }

# die prints an error on stderr and exits 1.
die() {
	log "error: $*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install installs Debian packages non-interactively. It needs root (CI runs as root on a clean
# machine); as a normal user it tells what to install instead. The packages' own services are not
# started: while it installs, a policy-rc.d that denies every start is put in place (unless the
# machine has one already, as Docker images do) — the scripts run the servers they need themselves.
apt_install() {
	if ! is_root; then
		die "missing packages: $*; install them (sudo apt-get install $*) or run this as root"
	fi
	command -v apt-get >/dev/null 2>&1 || die "missing packages: $*; and apt-get is not available"
	log "installing $* with apt-get (once per machine)"
	export DEBIAN_FRONTEND=noninteractive
	local policy=/usr/sbin/policy-rc.d added=0 status=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# Put in place by the userstore scripts while apt-get installs: start no service.\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		added=1
	fi
	{
		apt-get update -q >&2 &&
			apt-get install -y -q --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2
	} || status=$?
	if [ "$added" = 1 ]; then
		rm -f "$policy"
	fi
	[ "$status" -eq 0 ] || die "apt-get install $* failed (status $status)"
}

# ensure_service_user prints the name of the unprivileged OS user that runs local servers. Servers
# such as postgres refuse to run as root; when we are root we use the Debian "postgres" user if it
# exists, or create a system user once. As a normal user, servers run as that user.
ensure_service_user() {
	if ! is_root; then
		id -un
		return
	fi
	if id postgres >/dev/null 2>&1; then
		echo postgres
		return
	fi
	if ! id userstore-svc >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin userstore-svc >&2
	fi
	echo userstore-svc
}

# as_user USER CMD... runs CMD as USER (directly when we already are that user). It runs from /,
# which USER can always enter; every path handed to it is absolute.
as_user() {
	local user=$1
	shift
	if [ "$(id -un)" = "$user" ]; then
		"$@"
	else
		(cd / && runuser -u "$user" -- "$@")
	fi
}

# state_base USER prints the directory that holds the local services' state: .pg/ in the checkout,
# unless USER cannot reach the checkout (e.g. a clone under /root, which is mode 0700), in which case a
# directory under /tmp derived from the checkout path is used instead, so two checkouts never share
# state.
state_base() {
	local user=$1 base="$ROOT/.pg"
	if [ -n "${USERSTORE_PG_DIR:-}" ]; then
		mkdir -p "$USERSTORE_PG_DIR"
		(cd "$USERSTORE_PG_DIR" && pwd -P)
		return
	fi
	if is_root && [ "$user" != root ] && ! runuser -u "$user" -- test -x "$ROOT" 2>/dev/null; then
		base="/tmp/userstore-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)/.pg"
	fi
	echo "$base"
}
