#!/usr/bin/env bash
# Times `scripts/demo.sh` from its start until the console shows the demo's list (the berth-demo
# project's web replicas on screen), in a 200×50 tmux pane polled every 0.2 s.
#   CLEAN=1   build into an empty target directory, as on a fresh machine (the crates are taken
#             from cargo's download cache if they are there; remove ~/.cargo/registry to count
#             their download too)
#   DOWN=1    remove the demo stack first, so its images and containers are made again
# Prints the seconds to the first screen and the build's share of them.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
command -v tmux >/dev/null || { echo "bench-demo: needs tmux (apt-get install tmux)" >&2; exit 1; }
session="berth-bench-demo-$$"
envs=()
if [ "${CLEAN:-0}" = 1 ]; then
  target="$(mktemp -d)"
  envs+=("CARGO_TARGET_DIR=$target")
  trap 'tmux kill-session -t "$session" 2>/dev/null; rm -rf "$target"' EXIT
else
  trap 'tmux kill-session -t "$session" 2>/dev/null' EXIT
fi
[ "${DOWN:-0}" = 1 ] && "$here/scripts/demo.sh" down >/dev/null
log="$(mktemp)"
start=$EPOCHREALTIME
tmux new-session -d -s "$session" -x 200 -y 50 \
  "env ${envs[*]} bash -c '\"$here/scripts/demo.sh\" 2>&1 | tee $log; sleep 600'"
# The demo's console is up when its list shows a web replica of the demo project.
shown=""
for _ in $(seq 1 6000); do   # at most 20 minutes
  screen="$(tmux capture-pane -p -t "$session" 2>/dev/null || true)"
  if grep -q "● live" <<<"$screen" && grep -q "web-1" <<<"$screen"; then shown=1; break; fi
  sleep 0.2
done
end=$EPOCHREALTIME
[ -n "$shown" ] || { echo "bench-demo: the list never showed; the demo said:" >&2; cat "$log" >&2; exit 1; }
awk -v a="$start" -v b="$end" 'BEGIN { printf "demo: first screen after %.1f s\n", b - a }'
grep -o "Finished .*" "$log" | tail -1 || true
rm -f "$log"
