#!/usr/bin/env bash
# Rollback on a fixed-port compose service, as a client sees it: a probe every 50 ms counts failed
# probes and the longest gap during a berth rollback, next to the same swap made by hand through the
# engine API (stop, rename, create from the old container's config with the other image, start,
# wait healthy, remove the old: the engine's floor for what berth does), and next to
# `docker-compose up -d` with the image tag changed in the compose file, in the same run on the same
# service. berth's time is measured from process start to its final line.
# Usage: scripts/bench-rollback.sh [RUNS]   (default 4 of each, alternating v2→v1 and v1→v2)
#        BERTH=path/to/berth scripts/bench-rollback.sh   (skip the release build, use that binary)
# The fixture's httpd runs as PID 1 with no SIGTERM handler, so the file sets stop_signal SIGKILL
# for both (grace 1 s): the figures are the tools' own; a real app adds its shutdown time to both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${BERTH:-}" ]; then
  cargo build --release --locked --quiet
  BERTH="$PWD/target/release/berth"
fi
RUNS="${1:-4}" BERTH="$BERTH" python3 - <<'PY'
import http.client, json, os, re, socket, statistics, subprocess, tempfile, threading, time

berth, runs = os.environ["BERTH"], int(os.environ["RUNS"])
project = f"berth-bench-rb-{os.getpid()}"
work = tempfile.mkdtemp()
compose_file = os.path.join(work, "docker-compose.yml")

def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout.strip()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
for v in ("v1", "v2"):
    sh("docker", "tag", f"berth-test/web:{v}", f"{project}/app:{v}")

def write_compose(tag):
    with open(compose_file, "w") as f:
        f.write(f"""version: "2.4"
services:
  web:
    image: {project}/app:{tag}
    ports: ["127.0.0.1:{port}:8080"]
    stop_signal: SIGKILL
    stop_grace_period: 1s
""")

def compose(*a):
    return sh("docker-compose", "-p", project, *a, cwd=work)

def web_name():
    return sh("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
              "--filter", "label=com.docker.compose.service=web")

def wait_healthy():
    for _ in range(150):
        c = web_name().split()
        if c and sh("docker", "inspect", "-f", "{{.State.Health.Status}}", c[0]) == "healthy":
            return
        time.sleep(0.2)
    raise SystemExit("the service never became healthy")

def probe(stop, stats):
    down_since = None
    while not stop.is_set():
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05) as c:
                c.sendall(b"GET /version HTTP/1.0\r\n\r\n")
                ok = b"200" in c.recv(64)
        except OSError:
            pass
        now = time.monotonic()
        stats["probes"] += 1
        if not ok:
            stats["failed"] += 1
            if down_since is None: down_since = now
        elif down_since is not None:
            stats["gap"] = max(stats["gap"], (now - down_since) * 1000); down_since = None
        time.sleep(0.05)

def measured(action):
    stop, stats = threading.Event(), {"probes": 0, "failed": 0, "gap": 0.0}
    t = threading.Thread(target=probe, args=(stop, stats)); t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    action()
    took = (time.monotonic() - t0) * 1000
    wait_healthy()
    time.sleep(0.5); stop.set(); t.join()
    return took, stats

class EngineSocket(http.client.HTTPConnection):
    """HTTP to the engine's unix socket: the API calls a script makes, without a CLI process each."""
    def __init__(self):
        super().__init__("docker")
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        self.socket_path = host.removeprefix("unix://")
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(self.socket_path)

def api(method, path, body=None):
    c = EngineSocket()
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None

def api_swap(to):
    """berth's stop-first swap on a fixed port, by hand through the engine API, timed by measured()."""
    old = api("GET", f"/containers/{web_name().split()[0]}/json")
    name = old["Name"].lstrip("/")
    config = dict(old["Config"], Image=f"{project}/app:{to}")
    config.pop("Hostname", None)
    short = old["Id"][:12]
    endpoints = {net: {"Aliases": [a for a in (ep.get("Aliases") or []) if a != short]}
                 for net, ep in old["NetworkSettings"]["Networks"].items()}
    api("POST", f"/containers/{old['Id']}/stop?t=1")
    api("POST", f"/containers/{old['Id']}/rename?name={name}-old")
    new = api("POST", f"/containers/create?name={name}",
              dict(config, HostConfig=old["HostConfig"], NetworkingConfig={"EndpointsConfig": endpoints}))
    api("POST", f"/containers/{new['Id']}/start")
    for _ in range(600):
        if api("GET", f"/containers/{new['Id']}/json")["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(0.05)
    else:
        raise SystemExit("the API-swapped container never became healthy")
    api("DELETE", f"/containers/{old['Id']}?force=true")

conf = os.path.join(work, "config.toml")
with open(conf, "w") as f:
    f.write("[runbook]\nhealth_retries = 40\nhealth_interval_ms = 250\n")
env = {**os.environ, "BERTH_DATA_DIR": os.path.join(work, "data")}
rows_b, rows_a, rows_c = [], [], []
try:
    write_compose("v2"); compose("up", "-d"); wait_healthy()
    for i in range(runs):
        to = "v1" if i % 2 == 0 else "v2"
        def run():
            out = subprocess.run([berth, "--config", conf, "rollback", "web", "-p", project,
                                  "--to", f"{project}/app:{to}", "--yes", "--remove-old"],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise SystemExit(f"berth rollback failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            said.append(out.stdout + out.stderr)
        said = []
        took, st = measured(run)
        rows_b.append((took, st["failed"], st["gap"]))
        # berth probes the published port itself during the switch and says what clients saw:
        # printed beside this script's own probe, so the two can be compared run by run.
        own = re.search(r"clients saw ([0-9.]+) s without answer \((\d+) of (\d+) probes", "".join(said))
        own_text = (f"; berth's own probe: {float(own.group(1)) * 1000:.0f} ms, "
                    f"{own.group(2)}/{own.group(3)} failed") if own else "; berth reported no client figure"
        print(f"berth rollback → {to}: {took:.0f} ms to its final line, "
              f"{st['failed']}/{st['probes']} probes failed, longest gap {st['gap']:.0f} ms{own_text}")
    for i in range(runs):
        to = "v1" if i % 2 == 0 else "v2"
        took, st = measured(lambda: api_swap(to))
        rows_a.append((took, st["failed"], st["gap"]))
        print(f"engine API swap → {to}: {took:.0f} ms to healthy and the old removed, "
              f"{st['failed']}/{st['probes']} probes failed, longest gap {st['gap']:.0f} ms")
    for i in range(runs):
        to = "v1" if i % 2 == 0 else "v2"
        def run():
            write_compose(to); compose("up", "-d")
        took, st = measured(run)
        rows_c.append((took, st["failed"], st["gap"]))
        print(f"docker-compose up -d → {to}: {took:.0f} ms, "
              f"{st['failed']}/{st['probes']} probes failed, longest gap {st['gap']:.0f} ms")
finally:
    subprocess.run(["docker-compose", "-p", project, "down"], cwd=work, capture_output=True)
    for c in sh("docker", "ps", "-aq", "--filter", f"name={project}").split():
        subprocess.run(["docker", "rm", "-f", c], capture_output=True)
    subprocess.run(["docker", "rmi", f"{project}/app:v1", f"{project}/app:v2"], capture_output=True)
med = lambda rows, k: statistics.median(r[k] for r in rows)
if rows_b and rows_a and rows_c:
    print(f"\nmedians over {len(rows_b)} runs each, probe every 50 ms: "
          f"berth rollback {med(rows_b,1):.0f} failed probes, longest gap {med(rows_b,2):.0f} ms, "
          f"{med(rows_b,0):.0f} ms to its final line (health verified); "
          f"engine API swap {med(rows_a,1):.0f} failed probes, longest gap {med(rows_a,2):.0f} ms, "
          f"{med(rows_a,0):.0f} ms (health verified); berth adds {med(rows_b,0) - med(rows_a,0):.0f} ms; "
          f"docker-compose up -d {med(rows_c,1):.0f} failed probes, longest gap {med(rows_c,2):.0f} ms, "
          f"{med(rows_c,0):.0f} ms (no health check)")
PY
