#!/usr/bin/env bash
# Runs the whole test suite: every test binary cargo builds, several binaries at once.
#
# Most tests wait on the engine, sshd or a pseudo-terminal rather than on a core, so running
# test binaries side by side (cargo test runs them one after another) cuts the suite's wall time
# without changing what any test checks. Binaries that change the engine for everyone, or that
# measure CPU, run alone afterwards.
#
# Usage: scripts/run-tests.sh [filter...]   (a filter is passed to every binary, as with cargo test)
#   BERTH_TEST_JOBS     test binaries at once (default 3; 1 runs them one after another)
#   BERTH_TEST_THREADS  tests at once inside one binary (default 2)
set -uo pipefail
cd "$(dirname "$0")/.."

jobs="${BERTH_TEST_JOBS:-3}"
threads="${BERTH_TEST_THREADS:-2}"
# swarm: its tests run on swarms of their own (namespaced engines), but two read a busy task's CPU.
# stats: reads a busy loop's CPU against the kernel's count, which wants the cores it asks for.
alone=(swarm stats)
# The longest binaries start first, so the last one to finish is not a long one started late.
longest_first=(fault_matrix e2e_pty runbook_paths fleet_console runbook e2e_ssh logs registry notify)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! cargo test --locked --no-run --message-format=json-render-diagnostics >"$work/artifacts.json"; then
    echo "run-tests: the test build failed (see above)" >&2
    exit 101
fi
# One test executable per line of cargo's JSON: its path; the name is the file name without the hash.
grep '"profile":{[^}]*"test":true}' "$work/artifacts.json" |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | sort -u >"$work/executables"
[ -s "$work/executables" ] || { echo "run-tests: cargo built no test executable" >&2; exit 101; }

name_of() { basename "$1" | sed 's/-[0-9a-f]\{16\}$//'; }

# The library's and the binary's unit tests are both named `berth`: a run is keyed by its file name.
ordered=() solo=()
for n in "${longest_first[@]}"; do
    while read -r exe; do [ "$(name_of "$exe")" = "$n" ] && ordered+=("$exe"); done <"$work/executables"
done
while read -r exe; do
    case " ${longest_first[*]} " in *" $(name_of "$exe") "*) continue ;; esac
    case " ${alone[*]} " in
    *" $(name_of "$exe") "*) solo+=("$exe") ;;
    *) ordered+=("$exe") ;;
    esac
done <"$work/executables"

# Runs one binary with its output kept whole, then prints it in one piece (no interleaving).
run_one() {
    local exe="$1" name rc start
    name="$(basename "$exe")"
    start=$EPOCHREALTIME
    # shellcheck disable=SC2086 # the filters are words
    "$exe" --test-threads="$threads" $BERTH_TEST_FILTERS >"$work/$name.log" 2>&1
    rc=$?
    awk -v n="${name%-*}" -v rc="$rc" -v a="$start" -v b="$EPOCHREALTIME" \
        'BEGIN { printf "%s %s %.1f\n", n, rc, b - a }' >>"$work/results"
    {
        flock 9
        echo "──── ${name%-*} (exit $rc) ────"
        cat "$work/$name.log"
    } 9>"$work/print.lock"
}
export -f run_one
export work threads
export BERTH_TEST_FILTERS="$*"

suite_start=$(date +%s)
printf '%s\0' "${ordered[@]}" | xargs -0 -n 1 -P "$jobs" bash -c 'run_one "$0"'
for exe in "${solo[@]}"; do run_one "$exe"; done
suite_end=$(date +%s)

echo
echo "──── test binaries: exit code, seconds ────"
sort -k3 -n -r "$work/results" | awk '{ printf "%-18s %3s %7s s\n", $1, $2, $3 }'
passed=$(cat "$work"/*.log | grep -o '^test result: [a-zA-Z]*\. [0-9]* passed' | awk '{ s += $4 } END { print s + 0 }')
failed=$(cat "$work"/*.log | grep -o '; [0-9]* failed' | awk '{ s += $2 } END { print s + 0 }')
ignored=$(cat "$work"/*.log | grep -o '; [0-9]* ignored' | awk '{ s += $2 } END { print s + 0 }')
ran=$(wc -l <"$work/results")
echo "suite: $ran binaries, $passed passed, $failed failed, $ignored ignored, in $((suite_end - suite_start)) s ($jobs binaries at once, $threads threads each)"
bad=$(awk '$2 != 0 { print $1 }' "$work/results" | tr '\n' ' ')
built=$(wc -l <"$work/executables")
if [ "$ran" -ne "$built" ]; then
    echo "run-tests: $built test binaries were built but $ran ran" >&2
    exit 1
fi
if [ -n "$bad" ]; then
    echo "run-tests: failed: $bad" >&2
    exit 1
fi
