#!/usr/bin/env bash
# Run the test suite inside every emulated-NUMA guest, one after another (each takes
# 2-3 GiB of memory and a core), and fail if any guest fails or does not report.
# usage: check.sh BUILD_DIR    (LEAP_VM_TOPOS="2node 4node memonly" to choose)
set -uo pipefail
b=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
failed=()
for spec in ${LEAP_VM_TOPOS:-2node:6.12 4node:6.12 memonly:6.12}; do
	topo=${spec%%:*} kver=${spec#*:}
	bash "$here/run.sh" "$b" "$topo" check "$kver" || failed+=("$topo/$kver")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "emulated-NUMA guests FAILED: ${failed[*]}"
	exit 1
fi
echo "emulated-NUMA guests: all passed"
