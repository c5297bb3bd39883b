#!/usr/bin/env bash
# Backup and restore of a PostgreSQL database of SIZE_MB (default 1024) with berth, next to the same
# dump and restore run by hand through `docker exec` in the same run, on the same database,
# alternating: `pg_dump -Fc` into a file on the server, and `pg_restore --clean --if-exists
# --no-owner --single-transaction` from it (the commands berth runs). berth's restore runs with
# --no-safety-backup and the database is the project's only service, so both restore the same
# bytes and stop nothing else. The database is berth-test/postgres (the host's PostgreSQL).
# Usage: scripts/bench-backup.sh [SIZE_MB] [RUNS]   (default 1024 MB, 2 runs of each)
#        BERTH=path/to/berth scripts/bench-backup.sh   (skip the release build, use that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${BERTH:-}" ]; then
  cargo build --release --locked --quiet
  BERTH="$PWD/target/release/berth"
fi
SIZE_MB="${1:-1024}" RUNS="${2:-2}" BERTH="$BERTH" python3 - <<'PY'
import json, os, shutil, statistics, subprocess, tempfile, time

berth, runs, size_mb = os.environ["BERTH"], int(os.environ["RUNS"]), int(os.environ["SIZE_MB"])
project = f"berth-bench-bk-{os.getpid()}"
work = tempfile.mkdtemp()
dumps = os.path.join(work, "backups")
os.makedirs(dumps)
config = os.path.join(work, "config.toml")
with open(config, "w") as f:
    f.write(f'[backup]\ndir = "{dumps}"\nkeep = {runs + 1}\n')
with open(os.path.join(work, "docker-compose.yml"), "w") as f:
    f.write("""version: "2.4"
services:
  db:
    image: berth-test/postgres
    environment:
      POSTGRES_PASSWORD: bench-secret
      POSTGRES_USER: app
      POSTGRES_DB: shop
    stop_grace_period: 5s
""")

def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout.strip()

def compose(*a):
    return sh("docker-compose", "-p", project, "-f", os.path.join(work, "docker-compose.yml"), *a)

def container():
    return f"{project}_db_1"

def psql(sql):
    return sh("docker", "exec", "-e", "PGPASSWORD=bench-secret", container(),
              "psql", "-qAt", "-U", "app", "-d", "shop", "-c", sql)

def wait_healthy():
    for _ in range(300):
        s = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container()],
                           capture_output=True, text=True).stdout.strip()
        if s == "healthy":
            return
        time.sleep(0.2)
    raise SystemExit("the database did not become healthy")

def timed(*a, stdin=None, stdout=None):
    t = time.monotonic()
    subprocess.run(a, check=True, stdin=stdin, stdout=stdout or subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.monotonic() - t

try:
    compose("up", "-d")
    wait_healthy()
    psql("CREATE TABLE items (id bigint, body text)")
    batch = 0
    while int(psql("SELECT pg_database_size('shop')")) < size_mb * 1024 * 1024:
        psql(f"INSERT INTO items SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) "
             f"FROM generate_series({batch * 1_000_000 + 1}, {(batch + 1) * 1_000_000}) g")
        batch += 1
    db_bytes = int(psql("SELECT pg_database_size('shop')"))
    rows = psql("SELECT count(*), sum(id) FROM items")
    hand_file = os.path.join(work, "by-hand.dump")
    env = ["-e", "PGPASSWORD=bench-secret"]
    figures = {"berth backup": [], "pg_dump by hand": [], "berth restore": [], "pg_restore by hand": []}
    sizes = {}
    for _ in range(runs):
        with open(hand_file, "wb") as out:
            figures["pg_dump by hand"].append(timed(
                "docker", "exec", *env, container(), "pg_dump", "-Fc", "-U", "app", "-d", "shop",
                stdout=out))
        sizes["pg_dump by hand"] = os.path.getsize(hand_file)
        figures["berth backup"].append(timed(berth, "--config", config, "backup", "db", "-p", project))
        listed = [json.loads(l) for l in sh(berth, "--config", config, "backup", "--list", "--json",
                                              "db", "-p", project).splitlines() if l.strip()]
        newest = max(listed, key=lambda m: m["id"])
        sizes["berth backup"] = newest["size"]
        with open(hand_file, "rb") as src:
            figures["pg_restore by hand"].append(timed(
                "docker", "exec", "-i", *env, container(), "pg_restore", "--clean", "--if-exists",
                "--no-owner", "--single-transaction", "-U", "app", "-d", "shop", stdin=src))
        assert psql("SELECT count(*), sum(id) FROM items") == rows, "the hand restore kept the rows"
        figures["berth restore"].append(timed(
            berth, "--config", config, "restore", "db", "-p", project, "--from", newest["id"],
            "--no-safety-backup", "--yes"))
        assert psql("SELECT count(*), sum(id) FROM items") == rows, "berth's restore kept the rows"
    print(f"database: {db_bytes / 1e6:.0f} MB ({rows.split('|')[0]} rows), dump: "
          f"{sizes['berth backup'] / 1e6:.1f} MB by berth, {sizes['pg_dump by hand'] / 1e6:.1f} MB by hand; "
          f"{runs} run(s) of each, alternating")
    print(f"{'':22}{'median':>10}{'min':>10}{'max':>10}")
    for name, ts in figures.items():
        print(f"{name:22}{statistics.median(ts):>9.2f}s{min(ts):>9.2f}s{max(ts):>9.2f}s")
finally:
    subprocess.run(["docker-compose", "-p", project, "-f", os.path.join(work, "docker-compose.yml"),
                    "down", "-v", "-t", "5"], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
PY
