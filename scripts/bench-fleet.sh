#!/usr/bin/env bash
# Time to the first full fleet: `berth fleet --json` (every row filled) for 10 and 50 servers, each
# an ssh alias of one real sshd on 127.0.0.1 (throwaway host and client keys) in front of the real
# engine. Prints one line per size, median of 3 runs. Then the console (tests/suite/fleet_bench.rs, the
# real binary in a pty): the time to the first fleet screen with every row filled for the same
# sizes, and berth's CPU and RSS watching 10 servers in the fleet view and in 10 separate consoles
# over the same 60 s (each side's sshd sessions counted apart, dockerd's CPU over the window).
# Usage: scripts/bench-fleet.sh [--release]   (SIZES="10 50", FLEET_WATCH_SECS=60, CONNECT_TIMEOUT=30s)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = "--release" ]; then cargo build -q --release; profile=release; else cargo build -q; fi
berth="$PWD/target/$profile/berth"
work="$(mktemp -d)"
trap 'kill "$(cat "$work/sshd.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p /run/sshd "$work/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$work/home/.ssh/id_ed25519"
cp "$work/home/.ssh/id_ed25519.pub" "$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $work/host_ed25519
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
AllowStreamLocalForwarding yes
MaxStartups 200
MaxSessions 50
LogLevel ERROR
CFG
"$(command -v sshd || echo /usr/sbin/sshd)" -f "$work/sshd_config"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host_ed25519.pub")" > "$work/home/.ssh/known_hosts"
for n in ${SIZES:-10 50}; do
  : > "$work/home/.ssh/config"
  # A loaded 2-core box can take over the default 10 s for one of 50 debug-build handshakes: the
  # bench waits longer so every run fills every row (CONNECT_TIMEOUT=10s measures with the default).
  printf '[fleet]\nconnect_timeout = "%s"\n' "${CONNECT_TIMEOUT:-30s}" > "$work/config.toml"
  for i in $(seq 1 "$n"); do
    printf 'Host s%03d\n  HostName 127.0.0.1\n  Port %s\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n' "$i" "$port" >> "$work/home/.ssh/config"
    printf '[servers.s%03d]\ntarget = "s%03d"\n' "$i" "$i" >> "$work/config.toml"
  done
  times=()
  for _ in 1 2 3; do
    start=$(date +%s.%N)
    HOME="$work/home" SSH_AUTH_SOCK='' BERTH_DATA_DIR="$work/data" "$berth" --config "$work/config.toml" fleet --json </dev/null > "$work/out.json" || true
    end=$(date +%s.%N)
    up=$(grep -c '"reachable": true' "$work/out.json" || true)
    [ "$up" = "$n" ] || { echo "only $up of $n servers answered:"; grep -m3 error_detail "$work/out.json"; exit 1; }
    times+=("$(echo "$end - $start" | bc)")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
  echo "fleet of $n servers ($profile): all rows filled in ${median}s (median of 3: ${times[*]})"
done
cargo_profile=()
[ "$profile" = release ] && cargo_profile=(--release)
FLEET_SIZES="${SIZES:-10 50}" FLEET_CONNECT_TIMEOUT="${CONNECT_TIMEOUT:-30s}" \
  cargo test "${cargo_profile[@]}" --test suite -- fleet_bench:: --ignored --nocapture --test-threads 1 2>&1 \
  | grep -oE '(console, fleet of|over the same|panicked).*'
