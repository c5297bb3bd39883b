#!/usr/bin/env bash
# The test command: installs and starts what the tests need (Docker engine, busybox, sshd), builds the
# FROM-scratch fixture images, then runs clippy and the whole test suite against the real engine
# (scripts/run-tests.sh: several test binaries at once; arguments are test-name filters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/build-fixtures.sh
cargo clippy --locked --all-targets -- -D warnings
exec scripts/run-tests.sh "$@"
