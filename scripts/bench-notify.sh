#!/usr/bin/env bash
# What a [[notify]] webhook costs a runbook action: `berth restart` of one fixture container with no
# webhook, with a receiver that answers 204 at once, and with one that accepts and never answers.
# For each: the run's own duration (its audit line) and the whole command's wall time, median of
# 3 runs. The run must not grow with the receiver; the command waits at most 10 s at exit for a
# receiver that hangs. Usage: scripts/bench-notify.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = "--release" ]; then cargo build -q --release; profile=release; else cargo build -q; fi
berth="$PWD/target/$profile/berth"
scripts/build-fixtures.sh >/dev/null
work="$(mktemp -d)"
name="berth-bench-notify-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ok_port=$(free_port)
python3 - "$ok_port" <<'PY' &
import sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
hang_port=$(free_port)
python3 - "$hang_port" <<'PY' &
import sys, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
end = time.time() + 900
while time.time() < end:
    c, _ = s.accept(); held.append(c)
PY
pids+=($!)
docker run -d --name "$name" --stop-timeout 1 berth-test/web:v1 >/dev/null
for _ in $(seq 1 100); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" = healthy ] && break
  sleep 0.2
done
fast='[runbook]
health_retries = 20
health_interval_ms = 500
'
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in none ok hang; do
  case $mode in
    none) hook='' ;;
    ok) hook="[[notify]]
kind = \"generic\"
url = \"http://127.0.0.1:$ok_port/hook\"" ;;
    hang) hook="[[notify]]
kind = \"generic\"
url = \"http://127.0.0.1:$hang_port/hook\"" ;;
  esac
  printf '%s%s\n' "$fast" "$hook" > "$work/config-$mode.toml"
  runs=() walls=()
  for i in 1 2 3; do
    data="$work/data-$mode-$i"
    t0=$(date +%s%N)
    BERTH_DATA_DIR="$data" "$berth" --config "$work/config-$mode.toml" restart "$name" --yes >/dev/null 2>"$work/err"
    t1=$(date +%s%N)
    walls+=($(( (t1 - t0) / 1000000 )))
    runs+=($(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"action\":\"restart\"" in l][-1]["duration_ms"])' "$data/audit.jsonl"))
  done
  run_ms=$(printf '%s\n' "${runs[@]}" | median)
  wall_ms=$(printf '%s\n' "${walls[@]}" | median)
  printf 'webhook=%-5s run %6s ms   command %6s ms   (median of 3)\n' "$mode" "$run_ms" "$wall_ms"
done
