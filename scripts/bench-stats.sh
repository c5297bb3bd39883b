#!/usr/bin/env bash
# What watching container stats costs the server: dockerd + containerd + the runc shims, and the
# watcher itself, while COUNT (33) idle containers run. Phases of $SECS seconds each:
#   baseline      nothing watches
#   berth-cgroup  the berth console showing all of them, stats every 2 s read from the cgroup files
#   berth-api     the same, with `[stats] method = "api"` (one one-shot stats request per container)
#   berth-ssh     berth over SSH to a throwaway sshd on 127.0.0.1: every reading goes through one
#                 `sh` kept open on the server (one session and login for the whole run); the
#                 sshd process tree counts as server cost, its finished children included
#   oxker         oxker with `-d 2000` (berth's 2 s interval), if OXKER points at its binary. oxker
#                 polls: every interval it lists all containers and, for each running one, asks the
#                 engine for one stats reading (`stream=false`, not one-shot: the engine takes two
#                 samples about 1 s apart to compute the CPU%), up to two requests in flight each
# CPU is read from /proc/<pid>/stat (utime + stime) before and after each phase and given in
# percent of one core. The consoles run in tmux (a real terminal, 200×100: every row visible). The
# phases run interleaved, ROUNDS times; the table gives the median and the spread (min–max).
# Each console phase checks what it claims and the script fails when it does not: berth's stats
# pane must name the method of the phase, and every one of the COUNT containers must be on the
# screen (berth and oxker alike). Other containers on the engine are counted and reported.
#
# Usage: scripts/bench-stats.sh [--release] [--install-oxker]
#   SECS=30 COUNT=33 ROUNDS=3 scripts/bench-stats.sh --release --install-oxker
#   BERTH=path/to/berth scripts/bench-stats.sh   (skip the build, measure that binary)
# --install-oxker builds oxker from crates.io into /tmp/oxker-root (outside the repository) when
# OXKER is not already an executable; OXKER_VERSION picks the version (default: the newest).
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
install_oxker=0
for arg in "$@"; do
    case $arg in
        --release) profile=release; build+=(--release) ;;
        --install-oxker) install_oxker=1 ;;
        *) echo "bench-stats: unknown argument $arg (use --release, --install-oxker)" >&2; exit 2 ;;
    esac
done
if [ "$install_oxker" = 1 ] && [ ! -x "$OXKER" ]; then
    echo "installing oxker${OXKER_VERSION:+ $OXKER_VERSION} into /tmp/oxker-root…" >&2
    CARGO_TARGET_DIR=/tmp/oxker-target cargo install oxker ${OXKER_VERSION:+--version "$OXKER_VERSION"} \
        --locked --root /tmp/oxker-root >&2
    OXKER=/tmp/oxker-root/bin/oxker
fi
OXKER_LABEL=""
[ -x "$OXKER" ] && OXKER_LABEL=$("$OXKER" --version 2>/dev/null | head -1)

command -v tmux >/dev/null || { echo "bench-stats: tmux is needed to give the consoles a terminal" >&2; exit 1; }
# BERTH=path/to/berth skips the build and measures that binary.
[ -n "${BERTH:-}" ] || "${build[@]}" >&2
BERTH="${BERTH:-${CARGO_TARGET_DIR:-$PWD/target}/$profile/berth}"
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
# runs, $4 a regex berth's stats pane must show (the method of the phase; empty: not berth).
# Prints a result line: name, daemons %, watcher %, bench containers on screen, other containers.
# Fails (non-zero, reason on stderr) when the screen does not show what the phase claims.
phase() {
    local name=$1 cmd=$2 keys=${3:-} method_re=${4:-} watcher_pid="" pids d0 d1 w0=0 w1=0 s0=0 s1=0
    local shown=0 others
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
    # Containers on the engine that are not ours: the shared engine may run other work.
    others=$(( $(docker ps -q | wc -l) - COUNT ))
    if [ -n "$cmd" ]; then
        local screen="$WORK/$name.screen"
        tmux capture-pane -p -t "$SESSION" > "$screen" || true
        tmux kill-session -t "$SESSION" 2>/dev/null || true
        cp "$screen" "$WORK/$name.last.screen"
        # Distinct bench containers named on the screen (the names carry their number). oxker's
        # panel has fewer rows than that, but it polls every container whatever it shows: there
        # the check is the count in its "Containers i/N" title.
        shown=$(grep -o "$PREFIX-[a-z]*-[0-9]*" "$screen" | sort -u | wc -l)
        if [ "$name" = oxker ]; then
            shown=$(grep -o 'Containers [0-9]*/[0-9]*' "$screen" | head -1 | cut -d/ -f2)
            shown=$(( ${shown:-0} - others ))
        fi
        if [ "$shown" -lt "$COUNT" ]; then
            echo "bench-stats: phase $name shows $shown of the $COUNT containers; screen:" >&2
            cat "$screen" >&2
            return 1
        fi
        if [ -n "$method_re" ] && ! grep -Eq "$method_re" "$screen"; then
            echo "bench-stats: phase $name does not show its method /$method_re/; screen:" >&2
            cat "$screen" >&2
            return 1
        fi
        sleep 2
    fi
    printf '%s %s %s %s %s\n' "$name" "$(pct $((d1 - d0)))" "$(pct $((w1 - w0)))" "$shown" "$others"
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
# interleaved, and the medians are reported with the spread.
results=()
run_phase() {
    local r
    r=$(phase "$@") || { echo "bench-stats: phase $1 failed its check; no figures" >&2; exit 1; }
    results+=("$r")
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS…" >&2
    run_phase baseline ""
    # `c` opens the stats pane (its charts are drawn at every reading, as a user would see them).
    run_phase berth-cgroup "env BERTH_CONFIG=$WORK/cgroup.toml HOME=$WORK $BERTH" c \
        'every 2s · cgroup v[12].*read from /sys/fs/cgroup'
    run_phase berth-api "env BERTH_CONFIG=$WORK/api.toml HOME=$WORK $BERTH" c \
        'every 2s · engine API one-shot'
    if [ -n "$SSH_TARGET" ]; then
        SSHD_PID=$(cat "$SSH_DIR/pid")
        run_phase berth-ssh "env BERTH_CONFIG=$WORK/cgroup.toml HOME=$WORK/home $BERTH -s $SSH_TARGET" c \
            'every 2s · cgroup v[12].*kept ssh shell'
        unset SSHD_PID
    fi
    if [ -x "$OXKER" ]; then run_phase oxker "env HOME=$WORK $OXKER -d 2000"; fi
done
[ -n "$SSH_TARGET" ] && kill "$(cat "$SSH_DIR/pid")" 2>/dev/null || true

method=$(grep -o 'every 2s · [^─│]*' "$WORK/berth-cgroup.last.screen" | head -1 || true)
api_method=$(grep -o 'every 2s · [^─│]*' "$WORK/berth-api.last.screen" | head -1 || true)
ssh_method=$(grep -o 'every 2s · [^─│]*' "$WORK/berth-ssh.last.screen" 2>/dev/null | head -1 || true)
echo
echo "$COUNT idle containers (half busybox httpd, half sleep), $ROUNDS interleaved rounds of $SECS s per phase"
echo "machine: $(nproc) cores, $(uname -r), Docker $(docker version --format '{{.Server.Version}}'), cgroup $( [ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1 ); terminal 200×100 (tmux)"
echo "berth $profile build, stats every 2 s; ${OXKER_LABEL:-oxker not run} with -d 2000"
echo "  cgroup phase: ${method:-?}"
echo "  api phase:    ${api_method:-?}"
echo "  ssh phase:    ${ssh_method:-?}"
echo "CPU in % of one core; median (min–max) over the rounds; 'added' = daemons above the baseline median + the watcher"
printf '%s\n' "${results[@]}" | awk '
    function sorted(list, a,    n, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n
    }
    function median(list,    n, a) {
        n = sorted(list, a)
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function spread(list,    n, a) { n = sorted(list, a); return sprintf("%.2f–%.2f", a[1], a[n]) }
    {
        if (!($1 in d)) order[++k] = $1
        d[$1] = d[$1] " " $2; w[$1] = w[$1] " " $3; sum[$1] = sum[$1] " " ($2 + $3)
        if (!($1 in shown) || $4 < shown[$1]) shown[$1] = $4
        if (!($1 in others) || $5 > others[$1]) others[$1] = $5
    }
    END {
        base = median(d["baseline"])
        printf "%-13s %20s %20s %10s %8s %8s\n", "phase", "daemons", "watcher", "added", "shown", "others"
        for (i = 1; i <= k; i++) {
            n = order[i]; dm = median(d[n]); wm = median(w[n])
            printf "%-13s %6.2f (%11s) %6.2f (%11s) %10.2f %8s %8s\n", n, dm, spread(d[n]), wm, spread(w[n]), dm - base + wm, shown[n], others[n]
        }
    }'
