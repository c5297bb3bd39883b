#!/usr/bin/env bash
# Starts the berth-demo stack on the local Docker engine and opens berth on it.
#   scripts/demo.sh          build berth, start the stack (if needed), open the console
#   scripts/demo.sh up       start the stack only
#   scripts/demo.sh down     remove the stack (containers, network; images are kept for rollback)
# With `docker compose` or `docker-compose` installed the stack is deployed from
# scripts/demo/compose.yaml (real compose labels, working dir and config files); else with docker run.
# The stack: project "berth-demo" with a web service (2 replicas, /health, images :v1 and :v2, running
# :v2 so a rollback has somewhere to go), a worker that logs steadily, and a migrate one-off that exited.
# Images are built FROM scratch with the local static busybox: no registry is needed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
project=berth-demo
net="${project}_default"

labels() { # service number
  echo --label "com.docker.compose.project=$project" --label "com.docker.compose.service=$1" \
       --label "com.docker.compose.container-number=$2" --label "com.docker.compose.oneoff=False"
}

need_engine() {
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then "$here/scripts/ensure-deps.sh" --demo >/dev/null; else
      echo "demo: no Docker engine answers; start dockerd (or run scripts/ensure-deps.sh as root)" >&2; exit 1; fi
  fi
  [ -x /bin/busybox ] || { echo "demo: needs a static busybox: sudo apt-get install busybox-static" >&2; exit 1; }
}

# `docker compose` (v2) or `docker-compose` (v1, Debian's package), whichever is installed.
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then echo "docker-compose"
  else return 1; fi
}

up() {
  need_engine
  echo "demo: building the demo images (FROM scratch, with the local busybox) …"
  ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' RETURN
  cp /bin/busybox "$ctx/busybox"; cp -r "$here/tests/fixtures/." "$ctx/"
  build() { DOCKER_BUILDKIT=0 docker build -q -t "$1" -f "$ctx/$2" "${@:3}" "$ctx" >/dev/null 2>&1 || { echo "demo: building $1 failed" >&2; exit 1; }; }
  build berth-demo/web:v1 web.Dockerfile --build-arg VERSION=v1
  build berth-demo/web:v2 web.Dockerfile --build-arg VERSION=v2
  build berth-demo/worker:latest logger.Dockerfile
  if compose=$(compose_cmd); then
    echo "demo: deploying scripts/demo/compose.yaml with $compose"
    $compose -p "$project" -f "$here/scripts/demo/compose.yaml" up -d --remove-orphans >/dev/null 2>"$ctx/compose.log" \
      || { echo "demo: $compose up failed:" >&2; cat "$ctx/compose.log" >&2; exit 1; }
    echo "demo: project $project is up (web on http://127.0.0.1:18080/health)"
    return
  fi
  echo "demo: no docker compose / docker-compose here: starting the same stack with docker run"
  docker network inspect "$net" >/dev/null 2>&1 || docker network create --label "com.docker.compose.project=$project" "$net" >/dev/null
  run() { local name=$1; shift; docker inspect "$name" >/dev/null 2>&1 || docker run -d --name "$name" --network "$net" "$@" >/dev/null; }
  run "$project-web-1" $(labels web 1) --network-alias web -p 127.0.0.1:18080:8080 \
      -e DATABASE_URL=postgres://shop:demo-password@db:5432/shop -e SECRET_KEY=not-so-secret --restart unless-stopped berth-demo/web:v2
  run "$project-web-2" $(labels web 2) --network-alias web -e SECRET_KEY=not-so-secret --restart unless-stopped berth-demo/web:v2
  run "$project-worker-1" $(labels worker 1) -e LOG_INTERVAL=0.5 --restart unless-stopped berth-demo/worker:latest
  if ! docker inspect "$project-migrate-1" >/dev/null 2>&1; then
    docker run --name "$project-migrate-1" --network "$net" $(labels migrate 1) berth-demo/worker:latest \
      sh -c 'echo "applying 3 migrations"; echo "0003_add_orders ... ok"; exit 0' >/dev/null
  fi
  echo "demo: project $project is up (web on http://127.0.0.1:18080/health)"
}

down() {
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  docker network rm "$net" >/dev/null 2>&1 || true
  echo "demo: project $project removed (images berth-demo/* kept; docker rmi them to reclaim space)"
}

case "${1:-run}" in
  up) up ;;
  down) down ;;
  run)
    # The build and the stack go up side by side: the images and containers take seconds of the
    # build's minutes.
    need_engine
    echo "demo: building berth (release profile; the first build compiles every dependency: about 4 minutes on 2 cores) …"
    cargo build --release --quiet --manifest-path "$here/Cargo.toml" &
    build=$!
    trap 'kill "$build" 2>/dev/null' EXIT
    up
    wait "$build" || { echo "demo: cargo build --release failed (see above)" >&2; exit 1; }
    trap - EXIT
    exec "${CARGO_TARGET_DIR:-$here/target}/release/berth" "${@:2}"
    ;;
  *) echo "usage: scripts/demo.sh [run|up|down]" >&2; exit 2 ;;
esac
