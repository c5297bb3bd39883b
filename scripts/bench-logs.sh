#!/usr/bin/env bash
# Log figures: ingest lines/s next to `docker logs` and `docker logs -t` on 7-byte lines (`seq`) and
# on realistic ~150-byte lines with a timestamp-like prefix, in the same run; following a live
# writer (fails unless every line arrives); frame time of the log view with a filter; search over
# 100 000 lines; RSS per retained line. LINES=N sets the lines per run (default 1 000 000),
# ONLY=ingest,live,frames,search,rss picks sections. Release build (cargo bench); PROFILE=dist
# measures the shipped build (fat LTO, one codegen unit: several minutes to build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
cargo bench --locked --profile "${PROFILE:-bench}" --bench logs
