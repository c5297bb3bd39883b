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
#   berth-test/django:latest the host's python3 + Django (Debian's python3-django) running the
#                            tests/fixtures/django project on sqlite (/data/app.db), with sqlite3
#   berth-test/alembic:latest the same root with Debian's alembic running tests/fixtures/alembic
#                            on sqlite (/data/alembic.db)
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

# Django: the interpreter, its standard library (without its tests and GUI), Django without its
# translations and the admin's static files, its dependencies, and every extension's libraries.
# Its ~90 MB take seconds to copy and send: built only when its inputs changed (a key of them as
# the image's label), in a context of its own so the other builds do not send them.
py="$(readlink -f /usr/bin/python3)"
pylib="/usr/lib/$(basename "$py")"
dist=/usr/lib/python3/dist-packages
[ -d "$dist/django" ] || { echo "build-fixtures: no Django in $dist: apt-get install python3-django" >&2; exit 1; }
[ -d "$dist/alembic" ] || { echo "build-fixtures: no alembic in $dist: apt-get install python3-alembic" >&2; exit 1; }
djkey="$( (cat "$here/tests/fixtures/django.Dockerfile" "$here/tests/fixtures/alembic.Dockerfile" "$0"
  find "$here/tests/fixtures/django" "$here/tests/fixtures/alembic" -type f | sort | xargs cat
  dpkg-query -W python3-django python3-alembic python3-sqlalchemy python3-minimal sqlite3 libsqlite3-0 2>/dev/null
  echo "$py") | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "berth.fixture.key"}}' berth-test/alembic:latest 2>/dev/null)" != "$djkey" ]; then
  djctx="$ctx/djangoctx"
  djroot="$djctx/djangoroot"
  base_root "$djroot"
  copy_with_libs "$djroot" "$py" "$(command -v sqlite3)" "$pylib"/lib-dynload/*.so \
    $(find "$dist"/{sqlalchemy,markupsafe,greenlet} -name '*.so')
  ln -sf "$(basename "$py")" "$djroot/usr/bin/python3"
  ln -sf "$(basename "$py")" "$djroot/usr/bin/python"
  tar -C / --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' --exclude='*/tkinter' \
    --exclude='*/ensurepip' --exclude='*/lib-dynload' --exclude='*.mo' --exclude='*.po' --exclude='*/static' \
    -cf - "${pylib#/}" "${dist#/}"/{django,asgiref,sqlparse,pytz,alembic,sqlalchemy,mako,markupsafe,greenlet} \
    usr/share/zoneinfo | tar -C "$djroot" -xf -
  # Debian's alembic command is in the `alembic` package; its entry point, as pip would write it.
  printf '#!/usr/bin/python3\nimport sys\nfrom alembic.config import main\nsys.exit(main())\n' > "$djroot/usr/bin/alembic"
  chmod +x "$djroot/usr/bin/alembic"
  cp -r "$ctx/django" "$djroot/app"
  cp -r "$ctx/alembic" "$djroot/alembic"
  cp "$ctx/django.Dockerfile" "$djctx/"
  out=$(DOCKER_BUILDKIT=0 docker build -q -t berth-test/django:latest --label "berth.fixture.key=$djkey" \
    -f "$djctx/django.Dockerfile" "$djctx" 2>&1) || { echo "$out" >&2; exit 1; }
  out=$(DOCKER_BUILDKIT=0 docker build -q -t berth-test/alembic:latest --label "berth.fixture.key=$djkey" \
    -f "$ctx/alembic.Dockerfile" "$ctx/alembic" 2>&1) || { echo "$out" >&2; exit 1; }
  rm -rf "$djctx"
fi

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

echo "fixture images ready: berth-test/web:v1 v2 bad, berth-test/logger, berth-test/postgres, berth-test/sqlite, berth-test/mariadb, berth-test/django, berth-test/alembic"
