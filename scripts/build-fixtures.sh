#!/usr/bin/env bash
# Builds the test fixture images FROM scratch with Debian's static busybox (no registry needed):
#   berth-test/web:v1, :v2   httpd on 8080 with /health (healthy), /version says v1 / v2
#   berth-test/web:bad       same server but /health answers 404, so its HEALTHCHECK fails
#   berth-test/logger:latest writes "seq=N level=… msg=…" lines; LOG_INTERVAL (seconds) sets the pace
#   berth-test/postgres:latest the host's PostgreSQL (Debian's postgresql) with its shared libraries,
#                            POSTGRES_USER/PASSWORD/DB as in the official image
#   berth-test/sqlite:latest the host's sqlite3 with its shared libraries
#   berth-test/mariadb:latest the host's MariaDB (Debian's mariadb-server) with its shared
#                            libraries, MARIADB_ROOT_PASSWORD/DATABASE/USER/PASSWORD as in the
#                            official image
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

# Copies binaries and every shared library they load (ldd) into a root filesystem, same paths.
copy_with_libs() {
  local root="$1"; shift
  local f
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    ldd "$f" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
  done
}
base_root() {
  mkdir -p "$1/bin" "$1/etc" "$1/tmp"
  cp "$busybox" "$1/bin/busybox"
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\n' > "$1/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' > "$1/etc/group"
}

sqliteroot="$ctx/sqliteroot"
base_root "$sqliteroot"
copy_with_libs "$sqliteroot" "$(command -v sqlite3)"
build berth-test/sqlite:latest sqlite.Dockerfile

pgversion="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)"
[ -n "$pgversion" ] || { echo "build-fixtures: no PostgreSQL in /usr/lib/postgresql: apt-get install postgresql" >&2; exit 1; }
pgbin="/usr/lib/postgresql/$pgversion/bin"
pgroot="$ctx/pgroot"
base_root "$pgroot"
copy_with_libs "$pgroot" "$pgbin"/{postgres,initdb,pg_ctl,pg_dump,pg_restore,psql,pg_isready} \
  "/usr/lib/postgresql/$pgversion/lib"/{plpgsql.so,dict_snowball.so}
mkdir -p "$pgroot/usr/share/postgresql" "$pgroot/usr/share"
cp -r "/usr/share/postgresql/$pgversion" "$pgroot/usr/share/postgresql/"
cp -r /usr/share/zoneinfo "$pgroot/usr/share/"
cp "$ctx/postgres-entrypoint.sh" "$pgroot/entrypoint.sh"
build berth-test/postgres:latest postgres.Dockerfile --build-arg PGBIN="$pgbin"

command -v mariadbd >/dev/null 2>&1 || { echo "build-fixtures: no mariadbd: apt-get install mariadb-server" >&2; exit 1; }
myroot="$ctx/myroot"
base_root "$myroot"
printf 'mysql:x:998:998:mysql:/var/lib/mysql:/bin/sh\n' >> "$myroot/etc/passwd"
printf 'mysql:x:998:\n' >> "$myroot/etc/group"
copy_with_libs "$myroot" "$(command -v mariadbd)" "$(command -v mariadb)" "$(command -v mariadb-dump)" \
  "$(command -v mariadb-admin)" "$(command -v my_print_defaults)"
cp /usr/bin/mariadb-install-db "$myroot/usr/bin/"
ln -s mariadb "$myroot/usr/bin/mysql"
ln -s mariadb-dump "$myroot/usr/bin/mysqldump"
mkdir -p "$myroot/usr/share"
cp -r /usr/share/mysql "$myroot/usr/share/"
cp "$ctx/mariadb-entrypoint.sh" "$myroot/entrypoint.sh"
build berth-test/mariadb:latest mariadb.Dockerfile

echo "fixture images ready: berth-test/web:v1 v2 bad, berth-test/logger, berth-test/postgres, berth-test/sqlite, berth-test/mariadb"
