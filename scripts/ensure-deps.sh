#!/usr/bin/env bash
# Installs and starts what the tests need on a fresh Debian machine: a Docker engine, a static
# busybox for the FROM-scratch fixture images, OpenSSH's sshd for the SSH tests, Debian's
# docker-compose (1.29, the same labels as v2) for the rollback tests on a real compose project,
# Debian's docker-registry (with htpasswd) for the registry tests, tmux, and PostgreSQL, MariaDB and sqlite3
# whose binaries the backup tests' database images are built from.
# Safe to run again: it only installs what is missing and starts dockerd only when no engine answers.
set -euo pipefail

# `--demo`: only what scripts/demo.sh needs (the engine, busybox, compose), so a newcomer's first
# screen does not wait for the test suite's packages.
demo_only=0
[ "${1:-}" = "--demo" ] && demo_only=1

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ "$demo_only" = 1 ]; then
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
else
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
command -v pkill >/dev/null 2>&1 || need+=(procps)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# The registry tests: Debian's distribution registry and htpasswd for its basic auth.
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
# The ProxyCommand tests dial through `nc`; the ssh config parity test runs `ssh -G` under `unshare`.
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# The README test: `man berth` after the Install steps, as a reader runs it.
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# The backup tests' database images are built from the host's PostgreSQL and sqlite3 binaries.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server mariadb-client)
# The migration tests' Django and alembic apps are built from the host's python3 and Debian's
# Django and alembic.
dpkg -s python3-django >/dev/null 2>&1 || need+=(python3-django)
dpkg -s python3-alembic >/dev/null 2>&1 || need+=(python3-alembic)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-deps: no Docker engine answers and this user cannot start one; start dockerd as root" >&2
    exit 1
  fi
  echo "ensure-deps: starting dockerd"
  (setsid dockerd >/tmp/berth-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "ensure-deps: dockerd did not start; see /tmp/berth-dockerd.log" >&2; tail -20 /tmp/berth-dockerd.log >&2; exit 1; }
fi
# Two local accounts for the SSH tests: password login (in the docker group) and a user without
# access to the Docker socket. Passwords are set by the tests themselves, fresh each run.
if [ "$(id -u)" = 0 ]; then
  getent group docker >/dev/null || groupadd docker
  id berth-ssh-pw >/dev/null 2>&1 || useradd -m -s /bin/sh -G docker berth-ssh-pw
  id berth-ssh-nodocker >/dev/null 2>&1 || useradd -m -s /bin/sh berth-ssh-nodocker
  # No password yet must not read as locked ("!"): sshd refuses key logins of locked accounts.
  for u in berth-ssh-pw berth-ssh-nodocker; do
    case "$(getent shadow "$u" | cut -d: -f2)" in '!'*) usermod -p '*' "$u" ;; esac
  done
fi
echo "ensure-deps: docker $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
