#!/usr/bin/env bash
# Rollback figures on the local engine: the time a rollback adds beyond the health-check wait itself,
# and the downtime of a fixed-port service as an outside client sees it (a probe every 20 ms), next
# to the same swap done by hand with the docker CLI under the same probe (the floor).
# Usage: scripts/bench-rollback.sh [RUNS]   (default 6, alternating v2→v1 and v1→v2)
# The fixture's httpd runs as PID 1 and ignores SIGTERM, so the service stops with SIGKILL here: the
# figures are berth's own; a real app adds its own shutdown time to the gap.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
cargo build --release --locked --quiet
RUNS="${1:-6}" BERTH="$PWD/target/release/berth" python3 - <<'PY'
import json, os, socket, statistics, subprocess, tempfile, threading, time

berth, runs = os.environ["BERTH"], int(os.environ["RUNS"])
tag = f"berth-bench-rb-{os.getpid()}"
name, port = f"{tag}-web-1", None

def sh(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout.strip()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
sh("docker", "tag", "berth-test/web:v1", f"{tag}/app:v1")
sh("docker", "tag", "berth-test/web:v2", f"{tag}/app:v2")
sh("docker", "run", "-d", "--name", name, "--stop-timeout", "1",
   "--label", f"com.docker.compose.project={tag}", "--label", "com.docker.compose.service=web",
   "--label", "com.docker.compose.container-number=1",
   "--stop-signal", "SIGKILL", "-p", f"127.0.0.1:{port}:8080", f"{tag}/app:v2")

def healthy():
    return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", name) == "healthy"
for _ in range(100):
    if healthy(): break
    time.sleep(0.2)

def probe(stop, gaps):
    down_since = None
    while not stop.is_set():
        ok = False
        try:
            # A short timeout: a request caught by the old proxy as it goes must not hide the new one.
            with socket.create_connection(("127.0.0.1", port), timeout=0.05) as c:
                c.sendall(b"GET /version HTTP/1.0\r\n\r\n")
                ok = b"200" in c.recv(64)
        except OSError:
            pass
        now = time.monotonic()
        if not ok and down_since is None: down_since = now
        if ok and down_since is not None:
            gaps.append((now - down_since) * 1000); down_since = None
        time.sleep(0.02)

conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
conf.write("[runbook]\nhealth_retries = 30\nhealth_interval_ms = 250\n"); conf.close()
data = tempfile.mkdtemp()
rows = []
try:
    for i in range(runs):
        to = "v1" if i % 2 == 0 else "v2"
        stop, gaps = threading.Event(), []
        t = threading.Thread(target=probe, args=(stop, gaps)); t.start()
        out = subprocess.run([berth, "--config", conf.name, "rollback", "web", "-p", tag, "--to", to,
                              "--yes", "--remove-old", "--json"],
                             capture_output=True, text=True, env={**os.environ, "BERTH_DATA_DIR": data})
        time.sleep(0.3); stop.set(); t.join()
        done = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        res = next((d["result"] for d in done if d.get("event") == "done"), None)
        if not res or not res["ok"]:
            print("run failed:", out.stdout[-2000:], out.stderr[-2000:]); break
        total, wait = res["duration_ms"], res["metrics"].get("health_wait_ms", 0)
        rows.append((total, wait, total - wait, res["metrics"].get("gap_ms"), max(gaps, default=0)))
        print(f"run {i+1} → {to}: total {total} ms, health wait {wait} ms, added {total-wait} ms, "
              f"gap (berth) {res['metrics'].get('gap_ms')} ms, downtime seen by the probe {max(gaps, default=0):.0f} ms")
    # The floor: the same swap done by hand with the docker CLI (stop, rename, run) under the same
    # probe. A client hammering the port also waits for the kernel to resolve the new container's
    # address, so this is what any fixed-port swap costs on this host.
    floor = []
    for i in range(min(runs, 4)):
        image = f"{tag}/app:v1" if i % 2 == 0 else f"{tag}/app:v2"
        stop, gaps = threading.Event(), []
        t = threading.Thread(target=probe, args=(stop, gaps)); t.start()
        time.sleep(0.2)
        sh("docker", "stop", name); sh("docker", "rename", name, f"{name}-floor-old")
        sh("docker", "run", "-d", "--name", name, "--stop-signal", "SIGKILL",
           "--label", f"com.docker.compose.project={tag}", "--label", "com.docker.compose.service=web",
           "-p", f"127.0.0.1:{port}:8080", image)
        for _ in range(200):
            if any(gaps): break
            time.sleep(0.02)
        time.sleep(0.3); stop.set(); t.join()
        subprocess.run(["docker", "rm", "-f", f"{name}-floor-old"], capture_output=True)
        floor.append(max(gaps, default=0))
finally:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    for c in sh("docker", "ps", "-aq", "--filter", f"name={tag}").split():
        subprocess.run(["docker", "rm", "-f", c], capture_output=True)
    subprocess.run(["docker", "rmi", f"{tag}/app:v1", f"{tag}/app:v2"], capture_output=True)
if rows:
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"\nmedian over {len(rows)} runs: added beyond the health wait {med(2):.0f} ms "
          f"(total {med(0):.0f} ms, health wait {med(1):.0f} ms); downtime on the fixed port: "
          f"berth's gap {med(3):.0f} ms, probe {med(4):.0f} ms")
if floor:
    print(f"the same swap by the docker CLI under the same probe (the floor): "
          f"{statistics.median(floor):.0f} ms")
PY
