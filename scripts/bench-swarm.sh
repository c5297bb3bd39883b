#!/usr/bin/env bash
# A swarm service's rollback to its previous spec: `berth rollback SERVICE` next to
# `docker service rollback SERVICE` (which waits for convergence, as berth does), alternating on the
# same service. Before each timed rollback the service is updated v1 → v2 (not timed), so both
# roll back the same change. Both use the service's rollback config (the swarm default:
# parallelism 1, stop-first, monitor 5 s); berth's time runs from process start to its final line,
# with every task running (healthy) and the update status rollback_completed.
# The engine is made a single-node swarm manager if it is not one, and left again at the end only
# then.
# Then the cost of watching: a 50-task service (WATCH_TASKS) shown in berth's swarm view (Z, which
# re-reads the swarm every 3 s) in a 160×50 pty for 60 s (WATCH_SECS): berth's CPU (utime+stime
# over the window, % of one core) and RSS (peak and at the end), every task verified on screen
# first. WATCH_TASKS=0 skips it.
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
    subprocess.run(["docker", "service", "rm", name], capture_output=True)

    watch_tasks, watch_secs = int(os.environ.get("WATCH_TASKS", "50")), int(os.environ.get("WATCH_SECS", "60"))
    if watch_tasks > 0:
        import fcntl, pty, struct, termios, threading
        many = f"{name}-watch"
        sh("docker", "service", "create", "--detach=false", "--quiet", "--name", many,
           "--replicas", str(watch_tasks), "--stop-grace-period", "1s", "berth-test/logger:latest")
        screen = bytearray()
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["TERM"] = "xterm-256color"
            os.environ["BERTH_DATA_DIR"] = env["BERTH_DATA_DIR"]
            os.execv(berth, [berth])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        def read():
            while True:
                try:
                    b = os.read(fd, 65536)
                except OSError:
                    return
                if not b:
                    return
                screen.extend(b)
        threading.Thread(target=read, daemon=True).start()
        time.sleep(3)
        os.write(fd, b"Z")
        deadline = time.monotonic() + 30
        want = f"{watch_tasks}/{watch_tasks}".encode()
        while want not in screen and time.monotonic() < deadline:
            time.sleep(0.2)
        if want not in screen:
            raise SystemExit(f"the swarm view never showed {want.decode()}")
        tick = os.sysconf("SC_CLK_TCK")
        def cpu():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        def rss_mb():
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
            return 0.0
        c0, t0, peak = cpu(), time.monotonic(), 0.0
        while time.monotonic() - t0 < watch_secs:
            peak = max(peak, rss_mb())
            time.sleep(1)
        c1, t1, end = cpu(), time.monotonic(), rss_mb()
        os.write(fd, b"q")
        os.waitpid(pid, 0)
        subprocess.run(["docker", "service", "rm", many], capture_output=True)
        print(f"watching a {watch_tasks}-task service in the swarm view for {watch_secs} s: "
              f"berth CPU {100 * (c1 - c0) / (t1 - t0):.2f} % of a core, RSS peak {peak:.1f} MB, at the end {end:.1f} MB")
finally:
    for n in (name, f"{name}-watch"):
        subprocess.run(["docker", "service", "rm", n], capture_output=True)
    if created:
        time.sleep(1)
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True)
PY
