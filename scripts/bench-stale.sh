#!/usr/bin/env bash
# How fast the console admits a frozen SSH link and comes back: the real binary in a pty over a real
# sshd on loopback, ssh defaults, 3 rounds of SIGSTOP on the session. Prints each round and medians.
# Usage: scripts/bench-stale.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
[ "${1:-}" = "--release" ] && profile=(--release)
exec cargo test "${profile[@]}" --test suite -- stale_bench:: --ignored --nocapture --test-threads 1
