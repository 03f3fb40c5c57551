#!/usr/bin/env bash
# make fuzz: a fuzzing campaign over every fuzz target of the module, one
# target at a time, FUZZTIME each (default 10m; FUZZPARALLEL workers,
# default all cores). A target's failing input is written to its package's
# testdata/fuzz/<FuzzName>/ by go test, to be kept as a regression once
# fixed. Prints one line per target (package, target, result, executions)
# and exits 1 if any target failed. docs/fuzzing.md records the campaigns.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
time=${FUZZTIME:-10m}
par=()
[ -n "${FUZZPARALLEL:-}" ] && par=(-parallel "$FUZZPARALLEL")
only=${1:-}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
		[ -n "$only" ] && ! [[ $name =~ $only ]] && continue
		"$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$time" "${par[@]}" "$dir" >"$log" 2>&1
		rc=$?
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
		if [ $rc -eq 0 ]; then
			printf '%-16s %-24s ok    %s execs in %s\n' "${dir#./}" "$name" "${execs:-?}" "$time"
		else
			failed=1
			printf '%-16s %-24s FAIL  after %s execs\n' "${dir#./}" "$name" "${execs:-?}"
			grep -v '^fuzz: elapsed' "$log" | head -20
		fi
	done
done
exit $failed
