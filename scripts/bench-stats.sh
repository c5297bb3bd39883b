#!/usr/bin/env bash
# What watching container stats costs the server: dockerd + containerd + the runc shims, and the
# watcher itself, while 33 idle containers run. Phases of $SECS seconds each:
#   baseline      nothing watches
#   berth-cgroup  the berth console showing all 33, stats every 2 s read from the cgroup files
#   berth-api     the same, with `[stats] method = "api"` (one one-shot request per container)
#   berth-ssh     berth over SSH to a throwaway sshd on 127.0.0.1: every reading goes through one
#                 `sh` kept open on the server (one session and login for the whole run); the
#                 sshd process tree counts as server cost, its finished children included
#   oxker         oxker 0.13 (one stats stream per container), if OXKER points at its binary
# CPU is read from /proc/<pid>/stat (utime + stime) before and after each phase and given in
# percent of one core. The consoles run in tmux (a real terminal, 100 rows: every row visible).
#
# Usage: scripts/bench-stats.sh [--release]
#   SECS=30 COUNT=33 ROUNDS=3 OXKER=/tmp/oxker-root/bin/oxker scripts/bench-stats.sh --release
# Installing oxker without touching the repository:
#   CARGO_TARGET_DIR=/tmp/oxker-target cargo install oxker --version '^0.13' --locked --root /tmp/oxker-root
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-30}
COUNT=${COUNT:-33}
SETTLE=${SETTLE:-8}
ROUNDS=${ROUNDS:-3}
OXKER=${OXKER:-/tmp/oxker-root/bin/oxker}
PREFIX="berth-bench-$$"
profile=debug
build=(cargo build --bin berth)
if [ "${1:-}" = "--release" ]; then
    profile=release
    build+=(--release)
fi

command -v tmux >/dev/null || { echo "bench-stats: tmux is needed to give the consoles a terminal" >&2; exit 1; }
"${build[@]}" >&2
BERTH="$PWD/target/$profile/berth"
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d)
SESSION="bench-stats-$$"

cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    local ids
    ids=$(docker ps -aq --filter "label=berth.bench=$PREFIX")
    [ -n "$ids" ] && docker rm -f $ids >/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# Ticks (utime + stime) of the given pids; pids that vanished count nothing.
ticks() {
    local sum=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # The command name may hold spaces: fields start after the last ')'.
        rest=${line##*) }
        set -- $rest
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}

# Ticks of a process tree, finished children included (utime + stime + cutime + cstime): the
# short-lived commands the kept shell runs for each reading are reaped into their parents' counters.
tree_ticks() {
    local root=$1 sum=0 pid line rest kids
    local queue=("$root")
    while [ ${#queue[@]} -gt 0 ]; do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }
        set -- $rest
        sum=$((sum + ${12} + ${13} + ${14} + ${15}))
        mapfile -t kids < <(pgrep -P "$pid" 2>/dev/null || true)
        queue+=("${kids[@]}")
    done
    echo "$sum"
}

daemon_pids() {
    { pgrep -x dockerd; pgrep -x containerd; pgrep -f 'containerd-shim' ; } 2>/dev/null | sort -u
}

pct() { # ticks over SECS → percent of one core, two decimals
    awk -v t="$1" -v hz="$HZ" -v s="$SECS" 'BEGIN { printf "%.2f", t * 100 / hz / s }'
}

echo "starting $COUNT idle containers…" >&2
for i in $(seq 1 "$COUNT"); do
    if [ $((i % 2)) = 0 ]; then
        docker run -d --name "$PREFIX-web-$i" --label "berth.bench=$PREFIX" --no-healthcheck \
            berth-test/web:v1 >/dev/null
    else
        docker run -d --name "$PREFIX-sleep-$i" --label "berth.bench=$PREFIX" \
            berth-test/logger sleep 3600 >/dev/null
    fi
done
sleep 10

# Runs one phase: $1 name, $2 command for tmux (empty: nothing watches), $3 keys to type once it
# runs. Prints a result line.
phase() {
    local name=$1 cmd=$2 keys=${3:-} watcher_pid="" pids d0 d1 w0=0 w1=0 s0=0 s1=0
    if [ -n "$cmd" ]; then
        tmux new-session -d -s "$SESSION" -x 200 -y 100 "exec $cmd"
        watcher_pid=$(tmux list-panes -t "$SESSION" -F '#{pane_pid}')
        sleep 3
        [ -n "$keys" ] && tmux send-keys -t "$SESSION" "$keys"
        sleep "$SETTLE"
    fi
    mapfile -t pids < <(daemon_pids)
    d0=$(ticks "${pids[@]}")
    [ -n "$watcher_pid" ] && w0=$(ticks "$watcher_pid")
    [ -n "${SSHD_PID:-}" ] && s0=$(tree_ticks "$SSHD_PID")
    sleep "$SECS"
    d1=$(ticks "${pids[@]}")
    [ -n "$watcher_pid" ] && w1=$(ticks "$watcher_pid")
    [ -n "${SSHD_PID:-}" ] && s1=$(tree_ticks "$SSHD_PID")
    d1=$((d1 + s1 - s0))
    if [ -n "$cmd" ]; then
        tmux capture-pane -p -t "$SESSION" > "$WORK/$name.screen" || true
        tmux kill-session -t "$SESSION" 2>/dev/null || true
        sleep 2
    fi
    printf '%s %s %s\n' "$name" "$(pct $((d1 - d0)))" "$(pct $((w1 - w0)))"
}

printf '[stats]\ninterval = "2s"\nmethod = "cgroup"\n' > "$WORK/cgroup.toml"
printf '[stats]\ninterval = "2s"\nmethod = "api"\n' > "$WORK/api.toml"

# berth over SSH to a throwaway sshd (as the test harness runs it).
SSH_TARGET=""
if [ -x /usr/sbin/sshd ] && mkdir -p /run/sshd 2>/dev/null; then
    SSH_DIR="$WORK/sshd"
    mkdir -p "$SSH_DIR" "$WORK/home/.ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host" -C host
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/home/.ssh/id_ed25519" -C bench
    cp "$WORK/home/.ssh/id_ed25519.pub" "$SSH_DIR/authorized_keys"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $SSH_DIR/host" \
        "PidFile $SSH_DIR/pid" "AuthorizedKeysFile $SSH_DIR/authorized_keys" "StrictModes no" \
        "UsePAM no" "PermitRootLogin yes" "PasswordAuthentication no" \
        "AllowStreamLocalForwarding yes" > "$SSH_DIR/config"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$SSH_DIR/host.pub")" > "$WORK/home/.ssh/known_hosts"
    /usr/sbin/sshd -f "$SSH_DIR/config"
    sleep 1
    SSH_TARGET="ssh://$(id -un)@127.0.0.1:$port"
else
    echo "no /usr/sbin/sshd: the ssh phase is skipped" >&2
fi
[ -x "$OXKER" ] || echo "oxker not found at $OXKER: that phase is skipped" >&2

# Other work on the machine moves the daemons' numbers: every phase runs ROUNDS times,
# interleaved, and the medians are reported.
results=()
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS…" >&2
    results+=("$(phase baseline "")")
    # `c` opens the stats pane (its charts are drawn at every reading, as a user would see them).
    results+=("$(phase berth-cgroup "env BERTH_CONFIG=$WORK/cgroup.toml HOME=$WORK $BERTH" c)")
    results+=("$(phase berth-api "env BERTH_CONFIG=$WORK/api.toml HOME=$WORK $BERTH" c)")
    if [ -n "$SSH_TARGET" ]; then
        SSHD_PID=$(cat "$SSH_DIR/pid")
        results+=("$(phase berth-ssh "env BERTH_CONFIG=$WORK/cgroup.toml HOME=$WORK/home $BERTH -s $SSH_TARGET" c)")
        unset SSHD_PID
    fi
    if [ -x "$OXKER" ]; then results+=("$(phase oxker "env HOME=$WORK $OXKER")"); fi
done
[ -n "$SSH_TARGET" ] && kill "$(cat "$SSH_DIR/pid")" 2>/dev/null || true

shown=$(grep "$PREFIX" "$WORK/berth-cgroup.screen" | grep -c running || true)
method=$(grep -o 'every 2s · [^─]*' "$WORK/berth-cgroup.screen" | head -1 || true)
api_method=$(grep -o 'every 2s · [^─]*' "$WORK/berth-api.screen" | head -1 || true)
ssh_method=$(grep -o 'every 2s · [^─]*' "$WORK/berth-ssh.screen" 2>/dev/null | head -1 || true)
echo
echo "$COUNT idle containers, $ROUNDS rounds of $SECS s per phase, medians; CPU in % of one core ($(nproc) cores), berth $profile build"
echo "berth showed $shown of them"
echo "  cgroup phase: ${method:-?}"
echo "  api phase:    ${api_method:-?}"
echo "  ssh phase:    ${ssh_method:-?}"
printf '%s\n' "${results[@]}" | awk '
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { if (!($1 in d)) order[++k] = $1; d[$1] = d[$1] " " $2; w[$1] = w[$1] " " $3; all[$1] = all[$1] " " $2 "+" $3 }
    END {
        base = median(d["baseline"])
        printf "%-14s %10s %10s %14s %14s   %s\n", "phase", "daemons", "watcher", "daemons-base", "added total", "rounds (daemons+watcher)"
        for (i = 1; i <= k; i++) {
            n = order[i]; dm = median(d[n]); wm = median(w[n])
            printf "%-14s %10.2f %10.2f %14.2f %14.2f  %s\n", n, dm, wm, dm - base, dm - base + wm, all[n]
        }
    }'
