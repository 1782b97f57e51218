#!/usr/bin/env bash
# Boot one emulated-NUMA guest (QEMU, software emulation) and run the tests or the demo.
# usage: run.sh BUILD_DIR TOPOLOGY MODE [KERNEL_VERSION]
#   TOPOLOGY: 2node | 4node | memonly (2 nodes with CPUs + a memory-only node, like CXL)
#   MODE: check | demo | bench | ycsb  KERNEL_VERSION: 6.12 (default) | 6.1
# LEAP_GUEST_ENV="NAME=VALUE,NAME=VALUE" is exported to the tests inside the guest.
# LEAP_BENCH_ARGS="--full ..." are the arguments of `pageleap bench` in bench mode;
# LEAP_YCSB_ARGS and LEAP_YCSB_WORKLOADS="a c e" those of `pageleap ycsb` in ycsb mode.
# LEAP_VM_FIO=1 (check mode; scripts/vm/check.sh sets it for one guest): the guest also
# runs tests/fio.sh on its virtio disk, so the host's fio, bash, the shim
# BUILD_DIR/tests/fio_shim.so (make) and every library they load go into the initramfs.
# Exit 0 only if the guest reported success; the guest's output goes to stdout.
set -euo pipefail
b=${1:?build dir}
topo=${2:?topology}
mode=${3:-check}
kver=${4:-6.12}
here=$(cd "$(dirname "$0")" && pwd)
kernel=$(bash "$here/kernel.sh" "$kver" "$b/vm")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,tests,proc,sys,dev,tmp}
# mktemp made it 0700: the unprivileged cases (t_unpriv drops to nobody) need / and /tmp
chmod 755 "$root"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
cp "$here/init" "$root/init"
cp "$here/../../tests/run.sh" "$root/run.sh"
cp "$b"/static/t_* "$root/tests/"
cp "$b/static/pageleap" "$b/static/guest-exit" "$root/bin/"
chmod +x "$root/init"
# fio.sh in the guest: the host's fio (dynamically linked, ~62 libraries) and bash, with
# the shim, the dynamic loader and each library at the path ldd gives (the loader finds
# them in its built-in directories and the RUNPATHs, with no ld.so.cache); /init runs it
if [ "${LEAP_VM_FIO:-0}" = 1 ] && [ "$mode" = check ]; then
	fio=$(command -v fio) || { echo "run.sh: LEAP_VM_FIO=1 needs fio on the host (make deps)" >&2; exit 2; }
	[ -f "$b/tests/fio_shim.so" ] || { echo "run.sh: $b/tests/fio_shim.so is missing: run make" >&2; exit 2; }
	mkdir -p "$root/usr/bin"
	cp "$fio" "$root/usr/bin/fio"
	cp "$(command -v bash)" "$root/usr/bin/bash"
	cp "$b/tests/fio_shim.so" "$root/tests/"
	cp "$here/../../tests/fio.sh" "$root/fio.sh"
	# ldd's lines "name => /path (addr)", and the loader's "/path (addr)"
	libs=$(ldd "$fio" "$(command -v bash)" "$b/tests/fio_shim.so" |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } NF == 2 && $1 ~ /^\// { print $1 }' | sort -u)
	for f in $libs; do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
fi
# the modules of the virtual disk, from the kernel's package (kernel.sh), and the order to load them
mkdir -p "$root/lib/modules"
cp "$(dirname "$kernel")/modules-$kver"/* "$root/lib/modules/"
initrd="$b/vm/initrd-$$.gz"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"
trap 'rm -rf "$root" "$initrd"' EXIT
# The tests get a real block device (virtio-blk, /dev/vda in the guest) for t_dio's
# O_DIRECT cases: the guest kernel pins the buffer pages and the device (QEMU) writes into
# them, which a file on the guest's tmpfs does not do. A sparse scratch image outside the
# initramfs, only in check mode; cache=unsafe because the host side does not matter to
# the guest and the image is thrown away (cache=none would need O_DIRECT from the host's
# file system under the build dir).
disk=()
if [ "$mode" = check ]; then
	img="$b/vm/disk-$$.img"
	truncate -s 32M "$img"
	trap 'rm -rf "$root" "$initrd" "$img"' EXIT
	disk=(-drive "file=$img,if=virtio,format=raw,cache=unsafe")
fi

case $topo in
2node)
	numa=(-smp 2 -m 2G
		-object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G
		-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
		-numa dist,src=0,dst=1,val=20) ;;
4node)
	# two "sockets" of two nodes each: near pairs 0-1 and 2-3
	numa=(-smp 4 -m 2G)
	for n in 0 1 2 3; do
		numa+=(-object memory-backend-ram,id=m$n,size=512M -numa node,nodeid=$n,cpus=$n,memdev=m$n)
	done
	numa+=(-numa dist,src=0,dst=1,val=12 -numa dist,src=0,dst=2,val=20 -numa dist,src=0,dst=3,val=22
		-numa dist,src=1,dst=2,val=22 -numa dist,src=1,dst=3,val=20 -numa dist,src=2,dst=3,val=12) ;;
memonly)
	# node 2 has memory and no CPUs; node 1 is its nearest node with CPUs
	numa=(-smp 2 -m 3G
		-object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G
		-object memory-backend-ram,id=m2,size=1G
		-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
		-numa node,nodeid=2,memdev=m2
		-numa dist,src=0,dst=1,val=20 -numa dist,src=0,dst=2,val=30 -numa dist,src=1,dst=2,val=17) ;;
*) echo "run.sh: unknown topology $topo" >&2; exit 2 ;;
esac

echo "=== guest $topo (Linux $kver, $mode): emulated NUMA under QEMU; timings are not hardware timings"
# Multi-threaded TCG occasionally crashes a guest kernel while it boots (an int3 oops as
# the kernel patches its own code, seen in the 4-vCPU guest). Such a guest never reached
# our /init; that boot, and only that, is tried again (five boots at most; a crash costs
# seconds). A guest that started the tests
# counts as it reported, whatever happened next.
log=$(mktemp)
trap 'rm -rf "$root" "$initrd" "${img:-}" "$log"' EXIT
for attempt in 1 2 3 4 5; do
	set +e
	timeout "${LEAP_VM_TIMEOUT:-1500}" qemu-system-x86_64 -machine q35 -cpu max "${numa[@]}" \
		-kernel "$kernel" -initrd "$initrd" ${disk[@]+"${disk[@]}"} \
		-append "console=ttyS0 quiet panic=-1 tsc=reliable leap.mode=$mode ${LEAP_GUEST_ENV:+leap.env=$LEAP_GUEST_ENV} ${LEAP_BENCH_ARGS:+leap.bench=$(printf '%s' "$LEAP_BENCH_ARGS" | tr ' ' '+')} ${LEAP_YCSB_ARGS:+leap.ycsb=$(printf '%s' "$LEAP_YCSB_ARGS" | tr ' ' '+')} ${LEAP_YCSB_WORKLOADS:+leap.workloads=$(printf '%s' "$LEAP_YCSB_WORKLOADS" | tr ' ' '+')}" \
		-nographic -no-reboot -monitor none -nic none -device isa-debug-exit,iobase=0xf4,iosize=0x04 |
		tr -d '\r' | sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1b[a-zA-Z]//g' -e 's/^Booting from ROM\.*//' |
		grep --line-buffered -v -E '^SeaBIOS|^$' | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	grep -q '^guest: kernel' "$log" && break
	[ "$attempt" -lt 5 ] && echo "=== guest $topo: the kernel did not reach /init (emulation fault at boot), booting again"
done
rm -f "$log"
# guest-exit CODE makes QEMU exit with (CODE << 1) | 1
case $rc in
1) echo "=== guest $topo: passed"; exit 0 ;;
124) echo "=== guest $topo: FAILED: timed out" ;;
*) if [ $((rc & 1)) -eq 1 ]; then echo "=== guest $topo: FAILED: guest reported $((rc >> 1))"
   else echo "=== guest $topo: FAILED: the guest did not report (qemu exit $rc)"; fi ;;
esac
exit 1
