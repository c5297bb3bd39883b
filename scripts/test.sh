#!/usr/bin/env bash
# The test command: installs and starts what the tests need (Docker engine, busybox, sshd), builds the
# FROM-scratch fixture images, then runs clippy and the whole test suite against the real engine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/build-fixtures.sh
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-fail-fast -- --test-threads="${BERTH_TEST_THREADS:-2}"
