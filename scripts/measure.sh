#!/usr/bin/env bash
# `pageleap topo --measure` on this machine, as it is: memory latency and bandwidth per CPU
# node x memory node, core-to-core latency and the coherence domains it shows, memory
# domains, and the verdict (does the machine have NUMA structure that sysfs does not
# show?). Meant to be run as-is on a multi-socket machine, bare or a VM on one; nothing
# here needs root. One measurement, written three ways.
# usage: measure.sh [OUT_DIR]      (default build/measure)
#   PAGELEAP: the tool (default build/pageleap next to this script, else pageleap on PATH)
#   LEAP_MEASURE_ARGS: more options of topo --measure (e.g. "--max-cpus 128 --rounds 9")
# Results in OUT_DIR: measure.txt (the table), measure.json, measure.png and measure.gp
#   (its gnuplot script, data inline), machine.txt (uname, lscpu, numactl -H: what the
#   verdict is to be checked against). Exit 1 if the measurement failed or gnuplot is
#   missing (the table and JSON are still written then).
set -euo pipefail
out=${1:-build/measure}
here=$(cd "$(dirname "$0")" && pwd)
tool=${PAGELEAP:-$here/../build/pageleap}
if [ ! -x "$tool" ]; then
	tool=$(command -v pageleap) ||
		{ echo "measure.sh: no pageleap: run make first, or set PAGELEAP" >&2; exit 1; }
fi
mkdir -p "$out"
rm -f "$out"/measure.txt "$out"/measure.json "$out"/measure.png "$out"/measure.gp "$out"/machine.txt
rc=0
plot=(--plot "$out/measure.png")
if ! command -v gnuplot >/dev/null; then
	echo "measure.sh: gnuplot is not installed: no measure.png (install gnuplot-nox and run" \
		"again); measuring without it" >&2
	plot=()
	rc=1
fi

{
	echo "# $(date -u +%FT%TZ)"
	uname -a
	echo
	lscpu 2>/dev/null || echo "(no lscpu)"
	echo
	numactl -H 2>/dev/null || echo "(no numactl)"
} > "$out/machine.txt"

# shellcheck disable=SC2086
"$tool" topo --measure --keep --save-json "$out/measure.json" ${plot[@]+"${plot[@]}"} \
	${LEAP_MEASURE_ARGS:-} | tee "$out/measure.txt" || rc=1
echo
files="measure.txt measure.json machine.txt"
[ ${#plot[@]} -eq 0 ] || files="$files measure.png measure.gp"
echo "measure.sh: results in $out: $files"
exit $rc
