#!/usr/bin/env bash
# Fetch a Debian guest kernel image for the emulated-NUMA runs: the vmlinuz, and the
# modules the guest's virtual disk needs (Debian builds virtio_blk, and in 6.1 the virtio
# PCI transport too, as modules). Both come from the same package, so they always match.
# usage: kernel.sh 6.12|6.1 OUTDIR   -> prints the path of the vmlinuz
# The modules lie next to it, in OUTDIR/modules-VERSION/: uncompressed .ko files (busybox
# insmod in the guest reads no .xz) and `load`, their names in the order to insmod them
# (dependencies first). A vmlinuz without that folder (an older cache) is fetched again.
# The 6.12 meta package (bookworm-security / backports) changes its image package name with
# each security update, so resolve it with apt-cache instead of pinning a name.
set -euo pipefail
ver=${1:?kernel version 6.12 or 6.1}
out=${2:?output dir}
mkdir -p "$out"
dst="$out/vmlinuz-$ver"
mods="$out/modules-$ver"
[ -s "$dst" ] && [ -f "$mods/load" ] && { echo "$dst"; exit 0; }
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
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
	'./lib/modules/*/modules.builtin' './lib/modules/*/kernel/drivers/virtio/*' \
	'./lib/modules/*/kernel/drivers/block/virtio_blk.ko*'
kdir=$(ls -d "$tmp"/lib/modules/*)

# The disk needs the virtio PCI transport and the virtio block driver. The package holds
# no modules.dep (depmod makes it on install), so follow each module's own "depends="
# (its .modinfo) and skip what modules.builtin says is built in.
mkdir "$tmp/mods"
: > "$tmp/mods/load"
add() { # NAME: add the module and, first, what it depends on
	local name=$1 f d
	grep -q "/$name\.ko\$" "$kdir/modules.builtin" && return 0
	grep -qx "$name.ko" "$tmp/mods/load" && return 0
	f=$(find "$kdir/kernel" -name "$name.ko" -o -name "$name.ko.xz" | head -n 1)
	[ -n "$f" ] || { echo "kernel.sh: $img has no module $name" >&2; exit 1; }
	case $f in
	*.xz) xz -dc "$f" > "$tmp/mods/$name.ko" ;;
	*) cp "$f" "$tmp/mods/$name.ko" ;;
	esac
	for d in $(tr '\0' '\n' < "$tmp/mods/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
		add "$d"
	done
	echo "$name.ko" >> "$tmp/mods/load"
}
add virtio_pci
add virtio_blk

rm -rf "$mods"
mv "$tmp/mods" "$mods"
cp "$tmp"/boot/vmlinuz-* "$dst.tmp"
mv "$dst.tmp" "$dst"
echo "$dst"
