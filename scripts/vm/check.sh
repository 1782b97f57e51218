#!/usr/bin/env bash
# Run the test suite inside every emulated-NUMA guest, one after another (each takes
# 2-3 GiB of memory and a core), and fail if any guest fails or does not report.
# usage: check.sh BUILD_DIR    (LEAP_VM_TOPOS="2node 4node memonly" to choose)
set -uo pipefail
b=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
failed=()
# The 2-node guest runs the mapping-bound test at full size (256 MiB, 10,000 migrations
# between nodes); the others at 64 MiB and 3,000 to keep the run short. It alone also runs
# tests/fio.sh (LEAP_VM_FIO=1: fio's buffers moving between its nodes, on its virtio
# disk): fio and its ~62 libraries make its initramfs several times larger.
for spec in ${LEAP_VM_TOPOS:-2node:6.12 4node:6.12 memonly:6.12 2node:6.1}; do
	topo=${spec%%:*} kver=${spec#*:}
	env= fio=0
	[ "$spec" = 2node:6.12 ] && env=LEAP_VMA_MB=256,LEAP_VMA_ITER=10000 fio=1
	LEAP_GUEST_ENV=$env LEAP_VM_FIO=$fio bash "$here/run.sh" "$b" "$topo" check "$kver" ||
		failed+=("$topo/$kver")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "emulated-NUMA guests FAILED: ${failed[*]}"
	exit 1
fi
echo "emulated-NUMA guests: all passed"
