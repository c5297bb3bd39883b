#!/usr/bin/env bash
# A swarm service's rollback to its previous spec: `berth rollback SERVICE` next to
# `docker service rollback SERVICE` (which waits for convergence, as berth does), alternating on the
# same service. Before each timed rollback the service is updated v1 → v2 (not timed), so both
# roll back the same change. Both use the service's rollback config (the swarm default:
# parallelism 1, stop-first, monitor 5 s); berth's time runs from process start to its final line,
# with every task running (healthy) and the update status rollback_completed.
# The engine is made a single-node swarm manager if it is not one, and left again at the end only
# then.
# Usage: scripts/bench-swarm.sh [RUNS] [REPLICAS]   (default 3 of each, 2 replicas)
#        BERTH=path/to/berth scripts/bench-swarm.sh   (skip the release build, use that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${BERTH:-}" ]; then
  cargo build --release --locked --quiet
  BERTH="$PWD/target/release/berth"
fi
RUNS="${1:-3}" REPLICAS="${2:-2}" BERTH="$BERTH" python3 - <<'PY'
import os, statistics, subprocess, tempfile, time

berth, runs, replicas = os.environ["BERTH"], int(os.environ["RUNS"]), os.environ["REPLICAS"]
name = f"berth-bench-sw-{os.getpid()}"
env = dict(os.environ, BERTH_DATA_DIR=tempfile.mkdtemp())

def sh(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout.strip()

created = sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}") != "active"
if created:
    sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
try:
    sh("docker", "service", "create", "--detach=false", "--quiet", "--name", name,
       "--replicas", replicas, "--stop-grace-period", "1s", "berth-test/web:v1")
    times = {"berth rollback": [], "docker service rollback": []}
    for i in range(runs * 2):
        sh("docker", "service", "update", "--detach=false", "--quiet", "--image", "berth-test/web:v2", name)
        tool = "berth rollback" if i % 2 == 0 else "docker service rollback"
        cmd = [berth, "rollback", name, "--yes"] if i % 2 == 0 else \
              ["docker", "service", "rollback", "--detach=false", "--quiet", name]
        t = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        dt = time.monotonic() - t
        if r.returncode != 0:
            raise SystemExit(f"{tool} failed: {r.stdout}{r.stderr}")
        image = sh("docker", "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", name)
        if not image.startswith("berth-test/web:v1"):
            raise SystemExit(f"{tool} left {image}")
        times[tool].append(dt)
        print(f"  run {i // 2 + 1}: {tool}: {dt:.2f} s")
    print(f"{replicas} replicas, {runs} runs each, medians (min–max):")
    for tool, ts in times.items():
        print(f"  {tool:<24} {statistics.median(ts):6.2f} s  ({min(ts):.2f}–{max(ts):.2f})")
finally:
    subprocess.run(["docker", "service", "rm", name], capture_output=True)
    if created:
        time.sleep(1)
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True)
PY
