#!/usr/bin/env bash
# scripts/check-doc-tests.sh — the tests the documents cite exist, and no PENDING marker is left.
#
#   scripts/check-doc-tests.sh            check every .md file under docs/
#   scripts/check-doc-tests.sh FILE.md…   check these files only
#
# A citation is a word that starts with Test, Fuzz or Benchmark followed by an upper-case letter, a digit
# or an underscore (so "Tests", "Testing" and "Benchmarks" are prose, not citations), optionally followed
# by subtest names after slashes: TestConformance/Users/DuplicateIDRefused. The check fails (exit 1) and
# lists, with file and line:
#
#   - a cited Test/Fuzz/Benchmark function that no *_test.go file of the repository defines
#     (func TestX( at the start of a line);
#   - a cited subtest name that appears in no .go file as a string literal ("Users", or with its
#     underscores as spaces, as go test renames them) — names built at run time cannot be cited;
#   - every "PENDING(" marker: a requirement whose test is still being written.
#
# Exit status: 0 when everything cited exists and no marker is left, 1 otherwise, 2 on a usage error.
# Needs bash 4, GNU grep and find; reads the repository only.
set -euo pipefail
export LC_ALL=C

SCRIPT_NAME=check-doc-tests
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }

# The files to check: the arguments (relative to the working directory), or every Markdown file under
# docs/. They are reported relative to the repository when they are in it.
files=()
if [ $# -gt 0 ]; then
	for f in "$@"; do
		if [ ! -f "$f" ]; then
			say "no such file: $f" >&2
			exit 2
		fi
		f="$(cd "$(dirname "$f")" && pwd -P)/$(basename "$f")"
		files+=("${f#"$ROOT"/}")
	done
	cd "$ROOT"
else
	cd "$ROOT"
	while IFS= read -r f; do files+=("$f"); done < <(find docs -type f -name '*.md' | sort)
fi
if [ ${#files[@]} -eq 0 ]; then
	say "no Markdown files to check" >&2
	exit 2
fi

# go_files lists the repository's Go files (test files with -t), outside VCS, local service state and
# vendored code.
go_files() {
	local pattern='*.go'
	[ "${1:-}" = -t ] && pattern='*_test.go'
	find . \( -name .git -o -name .pg -o -name vendor -o -name node_modules -o -name testdata \) -prune -o \
		-type f -name "$pattern" -print0
}

# Every Test/Fuzz/Benchmark function defined at the top level of a test file.
declare -A defined=()
while IFS= read -r name; do
	if [ -n "$name" ]; then defined["$name"]=1; fi
done < <(go_files -t | xargs -0 -r grep -ahoE '^func (Test|Fuzz|Benchmark)[A-Za-z0-9_]*\(' |
	sed -E 's/^func //; s/\($//' | sort -u)

# Every string literal of the Go files, for the subtest names: go test names a subtest after the string
# given to t.Run (spaces become underscores), and the names the documents cite are written literally in
# the tests or in adapter/storetest's tables.
declare -A literals=()
while IFS= read -r lit; do
	if [ -n "$lit" ]; then literals["$lit"]=1; fi
done < <(go_files | xargs -0 -r grep -ahoE '"[^"\\]*"' | sed -E 's/^"//; s/"$//; s/ /_/g' | sort -u)

citation_re='\b(Test|Fuzz|Benchmark)[A-Z0-9_][A-Za-z0-9_]*(/[A-Za-z0-9_.-]*[A-Za-z0-9_])*'

missing=0
pending=0
citations=0
declare -A cited=()
for f in "${files[@]}"; do
	while IFS=: read -r line match; do
		[ -n "$match" ] || continue
		citations=$((citations + 1))
		name=${match%%/*}
		cited["$name"]=1
		if [ -z "${defined[$name]+x}" ]; then
			say "$f:$line: $name is not defined in any *_test.go file"
			missing=$((missing + 1))
			continue
		fi
		rest=${match#"$name"}
		while [ -n "$rest" ]; do
			rest=${rest#/}
			seg=${rest%%/*}
			rest=${rest#"$seg"}
			if [ -z "${literals[$seg]+x}" ]; then
				say "$f:$line: $match: no Go file names the subtest \"$seg\""
				missing=$((missing + 1))
				break
			fi
		done
	done < <(grep -noE "$citation_re" "$f" || true)

	while IFS=: read -r line marker; do
		say "$f:$line: PENDING marker left: $marker"
		pending=$((pending + 1))
	done < <(grep -noE 'PENDING\([^)]*\)?' "$f" || true)
done

if [ $missing -gt 0 ] || [ $pending -gt 0 ]; then
	say "FAIL: $missing citation(s) of tests that do not exist, $pending PENDING marker(s), in ${#files[@]} file(s)"
	exit 1
fi
say "ok: $citations citation(s) of ${#cited[@]} test(s) in ${#files[@]} file(s), all defined; no PENDING marker"
