#!/usr/bin/env bash
# Records the real berth binary on the demo stack and renders the screens the README opens with:
#   assets/demo.svg              the screens in turn (an animated SVG, CSS only)
#   assets/screen-*.svg          each screen alone
# How: scripts/demo.sh up starts the stack; berth runs in a detached tmux window of 160x45; keys
# are sent as a user would type them; `tmux capture-pane -e` takes each screen with its colours;
# scripts/ansi2svg.py draws them. Needs tmux and python3 (scripts/ensure-deps.sh installs tmux).
# Re-run it to refresh the pictures after changing a view: the suite fails when a recorded view's
# snapshot (assets/recorded-screens.txt) changed since the recording (assets/recorded-fingerprint).
#   scripts/record-demo.sh [path/to/berth]   (default: builds and uses target/release/berth)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
command -v tmux >/dev/null || { echo "record-demo: needs tmux (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "record-demo: needs python3" >&2; exit 1; }

bin="${1:-}"
if [ -z "$bin" ]; then
  echo "record-demo: building berth (release) …"
  cargo build --release --quiet
  bin="$here/target/release/berth"
fi
scripts/demo.sh up
# Container names differ between compose v1 (berth-demo_web_1), v2 and the docker run fallback
# (berth-demo-web-1): ask the engine by compose labels.
replica() {
  docker ps -a --filter label=com.docker.compose.project=berth-demo \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.container-number=$2" \
    --format '{{.Names}}' | head -1
}
web1="$(replica web 1)"; worker1="$(replica worker 1)"
[ -n "$web1" ] && [ -n "$worker1" ] || { echo "record-demo: the demo stack is not up" >&2; exit 1; }

work="$(mktemp -d)"
session="berth-record-$$"
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/home" assets
# A clean HOME: no config of the user's, the dark theme, the local engine.
tmux new-session -d -s "$session" -x 160 -y 45 \
  "env -u DOCKER_HOST -u DOCKER_CONTEXT HOME='$work/home' TERM=xterm-256color COLORTERM=truecolor '$bin' -s local"

screen() { tmux capture-pane -t "$session" -e -p; }
# Waits (at most 15 s) until the screen shows $1.
wait_for() {
  for _ in $(seq 1 75); do
    if screen | grep -q -- "$1"; then return 0; fi
    sleep 0.2
  done
  echo "record-demo: the screen never showed '$1'; last screen:" >&2
  screen >&2
  exit 1
}
keys() { tmux send-keys -t "$session" "$@"; sleep 0.4; }
shot() { sleep "${2:-0.6}"; screen > "$work/$1.ans"; frames+=("$work/$1.ans"); echo "record-demo: $1"; }
frames=()

wait_for "berth-demo"
wait_for "worker-1"
# Only the demo project: other containers on this engine stay out of the picture.
keys "/"; keys "berth-demo" Enter
shot list 2.5                                  # stats need two readings for rates
keys ":" ; keys "inspect $web1" Enter
wait_for "Health checks"
shot details
keys Escape
keys ":" ; keys "logs $worker1" Enter
wait_for "level=INFO"
shot logs 2
keys Escape
keys "a"                                       # stopped containers too: the migrate one-off that exited
shot all 0.8
keys "a"
keys "g"; keys "j"; keys "j"                  # the project's first rows: a web replica
keys "B"
wait_for "Roll web to"
shot rollback-pick
keys Enter
wait_for "go ahead"
shot rollback-plan
keys Escape
keys "q"

for f in "${frames[@]}"; do
  name="$(basename "$f" .ans)"
  python3 scripts/ansi2svg.py "assets/screen-$name.svg" "$f"
done
python3 scripts/ansi2svg.py --animate 3.5 assets/demo.svg "${frames[@]}"
# What the pictures were recorded from: the suite fails once these screens change without a
# new recording (readme::the_pictures_are_of_the_current_screens).
scripts/screens-fingerprint.sh > assets/recorded-fingerprint
echo "record-demo: wrote assets/demo.svg, assets/screen-*.svg and assets/recorded-fingerprint"
