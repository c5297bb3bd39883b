#!/usr/bin/env bash
# Speed of the SSH transport over loopback (real sshd, real engine) against the local socket:
# connect to first answer, /_ping latency x200, one log stream's throughput.
# Usage: scripts/bench-ssh.sh [--release]   (default: the dev profile: dependencies unoptimised but for the crypto crates)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
[ "${1:-}" = "--release" ] && profile=(--release)
# Then `berth -s HOST ps` (streamlocal, dial-stdio) next to `ssh HOST docker ps`, and `berth forward`
# next to `ssh -L`, in the same run.
exec cargo test "${profile[@]}" --test suite -- ssh_bench:: ssh_ps_bench:: --ignored --nocapture --test-threads 1
