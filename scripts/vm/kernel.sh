#!/usr/bin/env bash
# Fetch a Debian guest kernel image (vmlinuz only) for the emulated-NUMA runs.
# usage: kernel.sh 6.12|6.1 OUTDIR   -> prints the path of the vmlinuz
# The 6.12 meta package (bookworm-security / backports) changes its image package name with
# each security update, so resolve it with apt-cache instead of pinning a name.
set -euo pipefail
ver=${1:?kernel version 6.12 or 6.1}
out=${2:?output dir}
mkdir -p "$out"
dst="$out/vmlinuz-$ver"
[ -s "$dst" ] && { echo "$dst"; exit 0; }
case "$ver" in
6.12) meta=linux-image-6.12-amd64 ;;
6.1) meta=linux-image-amd64 ;;
*) echo "kernel.sh: unknown version $ver" >&2; exit 2 ;;
esac
resolve() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
img=$(resolve)
if [ -z "$img" ]; then
	apt-get update -qq >&2
	img=$(resolve)
fi
[ -n "$img" ] || { echo "kernel.sh: cannot resolve $meta to an image package" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "$img" >&2)
deb=$(ls "$tmp"/*.deb)
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
cp "$tmp"/boot/vmlinuz-* "$dst.tmp"
mv "$dst.tmp" "$dst"
echo "$dst"
