#!/usr/bin/env bash
# Install the Debian packages pageleap needs to build, test and run its emulated-NUMA guests.
# Idempotent and quiet when everything is already there (no apt-get update then).
set -euo pipefail
pkgs=(build-essential clang libnuma-dev numactl qemu-system-x86 busybox-static cpio gzip
      gnuplot-nox liburing-dev fio)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
