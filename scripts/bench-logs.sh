#!/usr/bin/env bash
# Log figures: ingest lines/s next to `docker logs` (and -t), following a live writer, frame time of
# the log view with a filter, search over 100 000 lines, RSS per retained line. LINES=N sets the
# lines per run (default 1 000 000). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
cargo bench --locked --bench logs
