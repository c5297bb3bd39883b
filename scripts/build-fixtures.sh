#!/usr/bin/env bash
# Builds the test fixture images FROM scratch with Debian's static busybox (no registry needed):
#   berth-test/web:v1, :v2   httpd on 8080 with /health (healthy), /version says v1 / v2
#   berth-test/web:bad       same server but /health answers 404, so its HEALTHCHECK fails
#   berth-test/logger:latest writes "seq=N level=… msg=…" lines; LOG_INTERVAL (seconds) sets the pace
# Idempotent: an image that exists is rebuilt from cache in well under a second.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
busybox="${BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || { echo "build-fixtures: $busybox missing: apt-get install busybox-static" >&2; exit 1; }
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$busybox" "$ctx/busybox"
cp -r "$here/tests/fixtures/." "$ctx/"
build() { local out; out=$(DOCKER_BUILDKIT=0 docker build -q -t "$1" -f "$ctx/$2" "${@:3}" "$ctx" 2>&1) || { echo "$out" >&2; exit 1; }; }
build berth-test/web:v1 web.Dockerfile --build-arg VERSION=v1
build berth-test/web:v2 web.Dockerfile --build-arg VERSION=v2
build berth-test/web:bad web.Dockerfile --build-arg VERSION=bad --build-arg HEALTHY=no
build berth-test/logger:latest logger.Dockerfile
echo "fixture images ready: berth-test/web:v1 v2 bad, berth-test/logger"
