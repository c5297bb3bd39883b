#!/usr/bin/env bash
# The test command: installs and starts what the tests need (Docker engine, busybox, sshd), builds the
# FROM-scratch fixture images and the tests, then runs the whole suite against the real engine
# (scripts/run-tests.sh; arguments are test-name filters) with clippy checking the code beside it:
# the tests mostly wait on the engine, sshd and pseudo-terminals, so clippy takes cores they leave
# idle. Each phase's time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

phases=()
t=$(date +%s)
phase() { local now; now=$(date +%s); phases+=("$(printf '%-9s %4d s' "$1" $((now - t)))"); t=$now; }
report() { echo "──── phases ────"; printf '%s\n' "${phases[@]}"; }

scripts/ensure-deps.sh
phase install
scripts/build-fixtures.sh
phase fixtures
cargo test --locked --no-run --quiet
phase build

# Clippy in a target directory of its own: it does not take the test build's lock, so the tests
# start at once.
clippy_log="$(mktemp)"
trap 'rm -f "$clippy_log"' EXIT
CARGO_TARGET_DIR=target/clippy cargo clippy --locked --all-targets --quiet -- -D warnings >"$clippy_log" 2>&1 &
clippy=$!

tests_rc=0
scripts/run-tests.sh "$@" || tests_rc=$?
phase tests
clippy_rc=0
wait "$clippy" || clippy_rc=$?
phase clippy
cat "$clippy_log"
report
if [ "$clippy_rc" -ne 0 ]; then
    echo "test: cargo clippy --all-targets -- -D warnings failed (see above)" >&2
fi
[ "$tests_rc" -eq 0 ] && [ "$clippy_rc" -eq 0 ]
