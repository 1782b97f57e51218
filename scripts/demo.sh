#!/usr/bin/env bash
# The main job for now: show a region's pages moving between NUMA nodes, on this machine
# and inside emulated-NUMA guests (2 nodes; and 2 nodes plus a memory-only node).
# usage: demo.sh BUILD_DIR
set -euo pipefail
b=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "=== this machine"
"$b/pageleap" topo
"$b/pageleap" demo
rc=0
for topo in 2node memonly; do
	echo
	bash "$here/vm/run.sh" "$b" "$topo" demo | grep -v -E '^(SeaBIOS|iPXE|Press Ctrl-B|Booting from ROM|$)|\x1b' || rc=1
done
exit $rc
