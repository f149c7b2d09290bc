#!/usr/bin/env bash
# Debian packages the benchmarks drive as load generators and baselines: wrk (HTTP load),
# FreeRADIUS 3 with its PostgreSQL driver (the RADIUS baseline, sqlippool) and radclient.
# The freeradius package's own service is never used: the benchmark starts FreeRADIUS with a
# configuration of its own on ports of its own.
set -euo pipefail

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v freeradius >/dev/null 2>&1 || need+=(freeradius)
[ -e /usr/lib/freeradius/rlm_sql_postgresql.so ] || need+=(freeradius-postgresql)
command -v radclient >/dev/null 2>&1 || need+=(freeradius-utils)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install these Debian packages for the benchmarks: ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's package may start its own daemon on 1812/1813 where an init system exists; the
# benchmarks and the tests need those ports free.
if command -v service >/dev/null 2>&1; then service freeradius stop >/dev/null 2>&1 || true; fi
pkill -x freeradius 2>/dev/null || true
