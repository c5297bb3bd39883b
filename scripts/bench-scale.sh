#!/usr/bin/env bash
# `berth scale` of a replicated service from 3 to 5 tasks next to `docker service scale` (which
# waits for convergence, as berth does), alternating on the same service: for each, the tasks it
# restarted (running before, not running after: the target is 0) and the time from the command's
# start to its end, with every task running (healthy: the web fixture has a health check).
# Between runs the service goes back to 3 tasks (not timed).
# The swarm is a dockerd of this script's own in network and UTS namespaces of its own (as the
# tests' `common::dockerd`), so the shared engine never joins a swarm; it goes at the end.
# Usage: scripts/bench-scale.sh [RUNS]   (default 3 of each)
#        BERTH=path/to/berth scripts/bench-scale.sh   (skip the release build, use that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${BERTH:-}" ]; then
  cargo build --release --locked --quiet
  BERTH="$PWD/target/release/berth"
fi

dir="$(mktemp -d /tmp/bsXXXXXX)"
ns="berth-bench-$(basename "$dir" | tr 'A-Z' 'a-z')"
host="unix://$dir/d.sock"
unshare --net --uts sh -c 'hostname "$0" && ip link set lo up && exec dockerd "$@"' bench-mgr \
  --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/d.pid" -H "$host" \
  --bridge none --iptables=false --ip-masq=false \
  --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
  >"$dir/dockerd.log" 2>&1 &
engine=$!
cleanup() {
  kill -TERM "$engine" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$engine" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$engine" 2>/dev/null || true
  # The engine's data root and the ingress namespace stay mounted after it stopped.
  grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 120); do docker -H "$host" version >/dev/null 2>&1 && break; sleep 0.5; done
docker save berth-test/web:v1 | docker -H "$host" load >/dev/null
docker -H "$host" swarm init --advertise-addr 127.0.0.1 >/dev/null

RUNS="${1:-3}" BERTH="$BERTH" DOCKER_HOST="$host" python3 - <<'PY'
import os, statistics, subprocess, tempfile, time

berth, runs = os.environ["BERTH"], int(os.environ["RUNS"])
name = "berth-bench-scale"
env = dict(os.environ, BERTH_DATA_DIR=tempfile.mkdtemp())

def sh(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True, env=env).stdout.strip()

def running():
    out = sh("docker", "service", "ps", "--no-trunc", "--filter", "desired-state=running",
             "--format", "{{.ID}} {{.CurrentState}}", name)
    return {l.split()[0] for l in out.splitlines() if l.split()[1:2] == ["Running"]}

def wait_running(n):
    deadline = time.monotonic() + 120
    while len(running()) != n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} never ran {n} tasks")
        time.sleep(0.3)

sh("docker", "service", "create", "--detach=false", "--quiet", "--no-resolve-image", "--name", name,
   "--replicas", "3", "--stop-grace-period", "1s", "berth-test/web:v1")
wait_running(3)
times = {"berth scale": [], "docker service scale": []}
restarted = {"berth scale": [], "docker service scale": []}
for i in range(runs * 2):
    tool = "berth scale" if i % 2 == 0 else "docker service scale"
    cmd = [berth, "scale", f"{name}=5", "--yes"] if i % 2 == 0 else \
          ["docker", "service", "scale", "--detach=false", f"{name}=5"]
    before = running()
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise SystemExit(f"{tool} failed: {r.stdout}{r.stderr}")
    # docker service scale returns once the tasks run; both are read once more after.
    wait_running(5)
    dt_all = time.monotonic() - t
    lost = len(before - running())
    times[tool].append(dt_all)
    restarted[tool].append(lost)
    print(f"  run {i // 2 + 1}: {tool}: {dt_all:.2f} s to 5 running (command {dt:.2f} s), {lost} task(s) restarted")
    sh("docker", "service", "scale", "--detach=false", f"{name}=3")
    wait_running(3)
print(f"3 → 5 replicas, {runs} runs each, medians (min–max):")
for tool, ts in times.items():
    print(f"  {tool:<22} {statistics.median(ts):6.2f} s  ({min(ts):.2f}–{max(ts):.2f}), "
          f"tasks restarted: {sum(restarted[tool])} in {len(ts)} runs")
subprocess.run(["docker", "service", "rm", name], capture_output=True, env=env)
PY
