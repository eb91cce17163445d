#!/usr/bin/env bash
# scripts/fuzz.sh — run every Go fuzz target of the module for a while each, one after another.
#
#   scripts/fuzz.sh                 every Fuzz target of every package, FUZZTIME (20s) each
#   scripts/fuzz.sh ./domain/...    only the targets of these packages (go list patterns)
#
# Targets are discovered, not listed here: the packages whose test files define a func Fuzz…, and in
# each the names `go test -list '^Fuzz'` reports — a new target is run without editing this script.
# Each target runs as
#
#   go test -run '^Name$' -fuzz '^Name$' -fuzztime FUZZTIME -fuzzminimizetime FUZZMINIMIZETIME pkg
#
# which first runs the target's seeds (f.Add and testdata/fuzz/Name/), then fuzzes. The script stops at
# the first failure and exits 1; go test has then written the failing input to the package's
# testdata/fuzz/Name/ — keep it there as a regression seed once the defect is fixed. At the end it prints
# one line per target with its executions and new interesting inputs.
#
# One failure is not a finding: Go's fuzzing coordinator (go1.26 and older, golang/go#75804) may report a
# bare "context deadline exceeded" when -fuzztime ends while a worker is busy — on a loaded machine
# especially. When a run fails that way, wrote no new input and its seeds pass again (go test -run), the
# script notes it as a flake and goes on.
#
# Environment:
#   FUZZTIME          time per target: seconds (20) or a Go duration (1m, 500x for executions); default 20
#   FUZZMINIMIZETIME  time to minimize an input (go's default, 60s, stalls short runs); default 5s
#   FUZZPARALLEL      fuzzing workers per target (go test -parallel); default: the number of CPUs
#   GO                the go command; default go
# Packages whose tests use PostgreSQL need the environment of `scripts/pg.sh env`; when
# USERSTORE_DATABASE_URL is unset the script loads it (the cluster must be up: scripts/pg.sh up).
set -euo pipefail
export LC_ALL=C

SCRIPT_NAME=fuzz
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }

GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-20}"
case "$FUZZTIME" in
*[!0-9]*) ;;             # a Go duration or an execution count (500x)
*) FUZZTIME="${FUZZTIME}s" ;; # plain seconds
esac
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-5s}"
FUZZPARALLEL="${FUZZPARALLEL:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}"

if [ -z "${USERSTORE_DATABASE_URL:-}" ] && [ -x scripts/pg.sh ]; then
	eval "$(scripts/pg.sh env)"
fi

patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=(./...)

# Packages with a func Fuzz… in a test file (internal or external test package).
mapfile -t candidates < <(
	"$GO" list -f '{{.ImportPath}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' "${patterns[@]}" |
		while read -r pkg files; do
			[ -n "${files:-}" ] || continue
			# shellcheck disable=SC2086 # files is a list of paths without spaces (go list output)
			if grep -qE '^func Fuzz[A-Za-z0-9_]*\(' $files; then
				echo "$pkg"
			fi
		done
)
if [ ${#candidates[@]} -eq 0 ]; then
	say "no fuzz targets in ${patterns[*]}"
	exit 0
fi

# The targets, as "package name" lines, from go test -list (which compiles the test binary and so
# sees exactly the functions go test would run).
targets=()
for pkg in "${candidates[@]}"; do
	list="$("$GO" test -list '^Fuzz' "$pkg")" || {
		say "cannot list the fuzz targets of $pkg:"
		printf '%s\n' "$list"
		exit 1
	}
	while read -r name; do
		targets+=("$pkg $name")
	done < <(printf '%s\n' "$list" | grep -E '^Fuzz[A-Za-z0-9_]*$' || true)
done
say "${#targets[@]} targets in ${#candidates[@]} packages, $FUZZTIME each (minimize $FUZZMINIMIZETIME, $FUZZPARALLEL workers)"

# corpus lists the files of a target's committed corpus (none: nothing).
corpus() {
	local dir
	dir="$("$GO" list -f '{{.Dir}}' "$1")/testdata/fuzz/$2"
	[ -d "$dir" ] && find "$dir" -type f | sort || true
}

summary=()
flakes=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	pkg="${t% *}"
	name="${t#* }"
	say "$pkg $name"
	before="$(corpus "$pkg" "$name")"
	if ! "$GO" test -run "^${name}\$" -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" \
		-parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1; then
		after="$(corpus "$pkg" "$name")"
		if [ "$before" = "$after" ] && [ "$(grep -cE '^\s+context deadline exceeded$' "$log")" -gt 0 ] &&
			! grep -qE 'Failing input written|panic:' "$log" &&
			"$GO" test -count=1 -run "^${name}\$" "$pkg" >/dev/null 2>&1; then
			say "flake: $name ended with Go's fuzzing deadline race (golang/go#75804): no input written, its seeds pass"
			flakes=$((flakes + 1))
		else
			cat "$log"
			say "FAIL: $pkg $name (a failing input is kept under the package's testdata/fuzz/$name/)"
			exit 1
		fi
	fi
	# The last progress line: "fuzz: elapsed: 20s, execs: 123456 (6172/sec), new interesting: 7 (total: 42)".
	last="$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)"
	execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")"
	interesting="$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")"
	summary+=("$(printf '%-60s %-28s execs %10s  new interesting %4s' "$pkg" "$name" "${execs:-?}" "${interesting:-?}")")
done

say "all ${#targets[@]} targets passed ($flakes ended by Go's deadline race):"
printf '  %s\n' "${summary[@]}"
