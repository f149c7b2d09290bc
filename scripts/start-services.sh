#!/usr/bin/env bash
# Starts PostgreSQL (trust auth over TCP for postgres) and Redis on this machine when they are
# down: the tests (`.ci/run`) and the benchmarks (`make bench`) both need them.
set -euo pipefail

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    pg_createcluster "$version" main >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  # The tests connect over TCP as postgres without a password.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "simplane-ci" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # simplane-ci' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
fi

if ! port_open 6379; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do port_open 6379 && break; sleep 1; done
fi
