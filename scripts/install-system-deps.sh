#!/usr/bin/env bash
# Debian packages the test suite drives as real peers: FreeRADIUS's radclient (RADIUS), and
# strongSwan's charon + swanctl (the generated IPSec peer configuration). Installs only what is
# missing; without root or apt-get it says what to install and carries on.
set -euo pipefail

need=()
command -v radclient >/dev/null 2>&1 || need+=(freeradius-utils)
command -v swanctl >/dev/null 2>&1 || need+=(strongswan-swanctl)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/lib/ipsec/charon ] || need+=(strongswan-charon)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: install these Debian packages for the full test suite: ${need[*]}" >&2
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
