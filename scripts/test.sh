#!/usr/bin/env bash
# The test command: installs and starts what the tests need (Docker engine, busybox, sshd), builds the
# FROM-scratch fixture images and the tests, then runs the whole suite against the real engine
# (scripts/run-tests.sh; arguments are test-name filters). Each phase's time is printed at the end.
#
# Clippy shares the test build: berth's own crates are compiled by clippy-driver (the rustc that
# `cargo clippy` runs, with its lints), so `-D warnings` fails the build itself and no second
# check of every dependency competes with the tests for the machine's cores.
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
if [ -n "${CI:-}" ]; then
    # A clean build happens once: incremental compilation only adds work to it.
    export CARGO_INCREMENTAL=0
fi
if clippy_driver="$(command -v clippy-driver)"; then
    export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
    # How cargo-clippy hands its arguments to clippy-driver.
    export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    lint="clippy (in the build)"
else
    lint=""
fi
if ! cargo fmt --version >/dev/null 2>&1; then
    echo "test: rustfmt is not installed (rustup component add rustfmt): formatting not checked" >&2
elif ! cargo fmt --check >/dev/null; then
    echo "test: the code is not formatted: run cargo fmt" >&2
    exit 1
fi
# Every target (benches too, as cargo clippy --all-targets checks them); the run below reuses it.
if ! cargo test --locked --no-run --all-targets --quiet; then
    report
    echo "test: the build failed${lint:+, or clippy found warnings (-D warnings)}: see above" >&2
    exit 101
fi
phase build
clippy_rc=0
if [ -z "$lint" ]; then
    echo "test: clippy-driver not found: running cargo clippy on its own" >&2
    cargo clippy --locked --all-targets --quiet -- -D warnings || clippy_rc=$?
    phase clippy
fi

tests_rc=0
scripts/run-tests.sh "$@" || tests_rc=$?
phase tests
report
if [ "$clippy_rc" -ne 0 ]; then
    echo "test: cargo clippy --all-targets -- -D warnings failed (see above)" >&2
fi
[ "$tests_rc" -eq 0 ] && [ "$clippy_rc" -eq 0 ]
