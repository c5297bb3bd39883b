#!/usr/bin/env bash
# Console figures: launch → first frame (30 containers), event → screen, idle CPU/RSS over 30 s with
# 33 containers, next to oxker (run with `-d 2000`, berth's stats interval) when it is installed
# (OXKER=path, `oxker` on PATH, or the one `scripts/bench-stats.sh --install-oxker` builds).
# Terminal 200×60 (a pty); release build (cargo bench); PROFILE=dist measures the shipped build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${OXKER:-}" ]; then
  for p in "$(command -v oxker || true)" /tmp/oxker-root/bin/oxker "$HOME/.cargo/bin/oxker"; do
    [ -n "$p" ] && [ -x "$p" ] && export OXKER="$p" && break
  done
fi
cargo bench --locked --profile "${PROFILE:-bench}" --bench console
