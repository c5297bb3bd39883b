#!/usr/bin/env bash
# Runs the whole test suite: the library's and the binary's unit tests and the integration tests
# (one harness binary, tests/suite/), test by test.
#
# With cargo-nextest installed (the default Rust machine has it) each test runs in a process of its
# own and is scheduled on its own (.config/nextest.toml: threads, groups, the longest first), so a
# long test starts as soon as a slot frees. Without it, each test binary runs under libtest with
# the same number of threads.
#
# Usage: scripts/run-tests.sh [filter...]   (a filter is a test-name substring, as with cargo test)
#   BERTH_TEST_THREADS  tests at once (default 10)
set -uo pipefail
cd "$(dirname "$0")/.."

threads="${BERTH_TEST_THREADS:-10}"
started=$(date +%s)

if cargo nextest --version >/dev/null 2>&1; then
    # shellcheck disable=SC2068 # each filter is a word
    cargo nextest run --locked --test-threads "$threads" --no-fail-fast $@
    rc=$?
    echo "run-tests: nextest ended with $rc in $(($(date +%s) - started)) s ($threads tests at once)"
    exit "$rc"
fi

echo "run-tests: cargo-nextest is not installed; running each test binary under libtest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! cargo test --locked --no-run --message-format=json-render-diagnostics >"$work/artifacts.json"; then
    echo "run-tests: the test build failed (see above)" >&2
    exit 101
fi
grep '"profile":{[^}]*"test":true}' "$work/artifacts.json" |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | sort -u >"$work/executables"
[ -s "$work/executables" ] || { echo "run-tests: cargo built no test executable" >&2; exit 101; }

bad=()
while read -r exe; do
    name="$(basename "$exe" | sed 's/-[0-9a-f]\{16\}$//')"
    echo "──── $name ────"
    # shellcheck disable=SC2068
    "$exe" --test-threads="$threads" $@ || bad+=("$name")
done <"$work/executables"
echo "run-tests: ended in $(($(date +%s) - started)) s ($threads tests at once)"
if [ ${#bad[@]} -gt 0 ]; then
    echo "run-tests: failed: ${bad[*]}" >&2
    exit 1
fi
