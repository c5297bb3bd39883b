#!/usr/bin/env bash
# Speed of the SSH transport over loopback (real sshd, real engine) against the local socket:
# connect to first answer, /_ping latency x200, one log stream's throughput.
# Usage: scripts/bench-ssh.sh [--release]   (default: the dev profile, whose dependencies build at opt-level 1)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
[ "${1:-}" = "--release" ] && profile=(--release)
exec cargo test "${profile[@]}" --test suite -- ssh_bench:: --ignored --nocapture --test-threads 1
