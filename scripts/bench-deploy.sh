#!/usr/bin/env bash
# A roll forward of a two-replica compose service without a fixed host port, as a client inside
# the project's network sees it: a probe container GETs http://web:8080/health every 50 ms (the
# compose service name, which every replica answers to, as a proxy in front would), and the
# failed probes and the duration are counted during `berth deploy web --to v2` (the tag only in a
# local registry, so berth pulls it first), next to `docker pull` + `docker-compose up -d` by hand
# onto the other tag, in the same run on the same service.
# Usage: scripts/bench-deploy.sh          (BERTH=path/to/berth to use another build; default the debug one)
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
  -c 'while true; do if wget -q -O /dev/null http://web:8080/health 2>/dev/null; then echo ok; else echo fail; fi; sleep 0.05; done' >/dev/null
sleep 2
count() { docker logs "$project-probe" 2>/dev/null | sed -n "$(( $1 + 1 )),\$p" | grep -c "$2" || true; }
lines() { docker logs "$project-probe" 2>/dev/null | wc -l; }
measure() { # label, command...
  local label="$1"; shift
  local before t0 t1 ms
  before="$(lines)"
  t0="$(date +%s%N)"
  "$@" >"$work/out.log" 2>&1 || { echo "$label failed:"; tail -5 "$work/out.log"; exit 1; }
  t1="$(date +%s%N)"
  sleep 0.5
  ms=$(( (t1 - t0) / 1000000 ))
  printf '%-44s %6.1f s   failed probes %3s of %4s\n' "$label" "$(awk "BEGIN{print $ms/1000}")" "$(count "$before" fail)" "$(( $(lines) - before ))"
}
cfg="$work/berth.toml"
printf '[runbook]\nhealth_interval_ms = 500\n' > "$cfg"
measure "berth deploy web --to v2 (pull + 2 replicas)" \
  env BERTH_DATA_DIR="$work/berth-data" "$BERTH" --config "$cfg" deploy web -p "$project" --to v2 --yes
grep -E '^(OK|FAILED):' "$work/out.log" | cut -c1-240
hand() {
  docker pull -q "$reg/$project/web:v1" >/dev/null
  echo "WEB_IMAGE=$reg/$project/web:v1" > "$work/.env"
  (cd "$work" && docker-compose -p "$project" up -d --scale web=2)
}
docker rmi "$reg/$project/web:v1" >/dev/null 2>&1 || true
measure "docker pull + docker-compose up -d (to v1)" hand
