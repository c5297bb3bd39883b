#!/usr/bin/env bash
# A roll forward of a two-replica compose service without a fixed host port, as a client inside
# the project's network sees it: a probe container GETs http://web:8080/health every 50 ms (the
# compose service name, which every replica answers to, as a proxy in front would; a request
# without an answer in 2 s counts as failed, so a hang is not hidden), and the
# failed probes and the duration are counted during `berth deploy web --to TAG` (the tag untagged
# on the server first, so berth pulls it from a local registry), next to `docker pull` +
# `docker-compose up -d` by hand onto the other tag, in the same run on the same service: RUNS
# rounds (default 5), each one berth deploy and one by hand, then the medians and the ratio.
# berth's figures include its end-state check (`postcondition_ms`, printed per run).
# Usage: scripts/bench-deploy.sh [RUNS]   (BERTH=path/to/berth to use another build; default the debug one)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh >/dev/null
scripts/build-fixtures.sh >/dev/null
if [ -z "${BERTH:-}" ]; then
  cargo build --quiet
  BERTH="$PWD/target/debug/berth"
fi
work="$(mktemp -d)"
project="berth-bench-deploy-$$"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
reg="127.0.0.1:$port"
cleanup() {
  docker rm -f "$project-probe" >/dev/null 2>&1 || true
  (cd "$work" && docker-compose -p "$project" down -t 1 >/dev/null 2>&1) || true
  docker ps -aq --filter "name=$project" | xargs -r docker rm -f >/dev/null 2>&1 || true
  [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null || true
  docker images -q "$reg/$project/web" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\n' "$work" "$reg" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 1 100); do python3 -c "import urllib.request as u,sys; u.urlopen(\"http://$reg/v2/\", timeout=1)" 2>/dev/null && break; python3 -c 'import time; time.sleep(0.1)'; done
for v in v1 v2; do
  printf 'FROM berth-test/web:%s\nRUN echo %s-%s > /bench-marker\n' "$v" "$project" "$v" \
    | DOCKER_BUILDKIT=0 docker build -q -t "$reg/$project/web:$v" - >/dev/null
  docker push -q "$reg/$project/web:$v" >/dev/null
  docker rmi "$reg/$project/web:$v" >/dev/null
done
cat > "$work/docker-compose.yml" <<YML
version: "2.4"
services:
  web:
    image: \${WEB_IMAGE}
    stop_signal: SIGKILL
    stop_grace_period: 1s
YML
echo "WEB_IMAGE=$reg/$project/web:v1" > "$work/.env"
(cd "$work" && docker-compose -p "$project" pull -q && docker-compose -p "$project" up -d --scale web=2 >/dev/null 2>&1)
for _ in $(seq 1 60); do
  [ "$(docker ps --filter "label=com.docker.compose.project=$project" --filter health=healthy -q | wc -l)" = 2 ] && break
  sleep 0.5
done
docker run -d --name "$project-probe" --network "${project}_default" --entrypoint sh "berth-test/web:v1" \
  -c 'while true; do if timeout 2 wget -q -O /dev/null http://web:8080/health 2>/dev/null; then echo ok; else echo fail; fi; sleep 0.05; done' >/dev/null
sleep 2
runs="${1:-5}"
lines() { docker logs "$project-probe" 2>/dev/null | wc -l; }
count() { docker logs "$project-probe" 2>/dev/null | sed -n "$(( $1 + 1 )),\$p" | grep -c "$2" || true; }
results="$work/results"
: > "$results"
measure() { # kind, label, command...
  local kind="$1" label="$2"; shift 2
  local before t0 t1 ms failed total post
  before="$(lines)"
  t0="$(date +%s%N)"
  "$@" >"$work/out.log" 2>&1 || { echo "$label failed:"; tail -5 "$work/out.log"; exit 1; }
  t1="$(date +%s%N)"
  sleep 0.5
  ms=$(( (t1 - t0) / 1000000 ))
  failed="$(count "$before" fail)"
  total="$(( $(lines) - before ))"
  post="$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except Exception: continue
    if e.get("event") == "done": print(e["result"]["metrics"].get("postcondition_ms", "-")); break
else: print("-")' "$work/out.log")"
  echo "$kind $ms $failed $total $post" >> "$results"
  printf '%-46s %6.1f s   failed probes %3s of %4s   end-state check %s ms\n' "$label" "$(awk "BEGIN{print $ms/1000}")" "$failed" "$total" "$post"
}
cfg="$work/berth.toml"
: > "$cfg"   # no health interval: berth polls the image's own HEALTHCHECK interval (1 s)
hand() { # to
  docker pull -q "$reg/$project/web:$1" >/dev/null
  echo "WEB_IMAGE=$reg/$project/web:$1" > "$work/.env"
  (cd "$work" && docker-compose -p "$project" up -d --scale web=2)
}
for i in $(seq 1 "$runs"); do
  to=v2; back=v1   # berth rolls forward from what compose runs; by hand goes back for the next round
  docker rmi -f "$reg/$project/web:$to" >/dev/null 2>&1 || true
  measure berth "berth deploy web --to $to (pull + 2 replicas)" \
    env BERTH_DATA_DIR="$work/berth-data" "$BERTH" --config "$cfg" deploy web -p "$project" --to "$reg/$project/web:$to" --yes --json
  docker rmi -f "$reg/$project/web:$back" >/dev/null 2>&1 || true
  measure hand "docker pull + docker-compose up -d (to $back)" hand "$back"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def of(kind, col): return [int(r[col]) for r in rows if r[0] == kind]
b, h = of("berth", 1), of("hand", 1)
print(f"berth deploy:       median {statistics.median(b)/1000:.1f} s (runs {', '.join(f'{x/1000:.1f}' for x in b)}), failed probes {sum(of('berth', 2))} of {sum(of('berth', 3))}")
print(f"pull + compose up:  median {statistics.median(h)/1000:.1f} s (runs {', '.join(f'{x/1000:.1f}' for x in h)}), failed probes {sum(of('hand', 2))} of {sum(of('hand', 3))}")
print(f"berth / by hand:    {statistics.median(b)/statistics.median(h):.2f}x (target <= 1.5x)")
post = [r[4] for r in rows if r[0] == "berth" and r[4] != "-"]
if post: print(f"end-state check:    {', '.join(post)} ms per deploy")
PY
