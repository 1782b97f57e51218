#!/usr/bin/env bash
# The main job: `pageleap bench` on this machine and inside emulated-NUMA guests, each
# printing its side-by-side table; the guests' JSON and CSV come back over the serial
# console and every result set gets its plots (gnuplot).
# usage: bench.sh BUILD_DIR [--full]      (LEAP_BENCH_GUESTS="2node 4node" to choose)
# Results: BUILD_DIR/bench/<where>/{bench.json,bench.csv,*.png,*.svg}
set -euo pipefail
b=${1:-build}
mode=${2:---quick}
case $mode in --quick | --full) ;; *) echo "bench.sh: unknown mode $mode" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
out="$b/bench"
rm -rf "$out"
mkdir -p "$out/local"
rc=0

echo "=== this machine"
"$b/pageleap" bench "$mode" --plot "$out/local" --save-json "$out/local/bench.json" || rc=1

# the guests print the JSON and CSV between "=== begin F" and "=== end F"
for topo in ${LEAP_BENCH_GUESTS:-2node}; do
	echo
	d="$out/$topo"
	mkdir -p "$d"
	log="$d/console.log"
	# the full run is scaled down under emulation (pageleap bench --help) and took 8-10
	# minutes a guest on a 2-core host; the hour leaves room for a slower or busier host
	timeout=1500
	[ "$mode" = --full ] && timeout=3600
	# --row-log: one line per row with its time, kept in console.log (not printed), so a
	# guest that runs out of time still shows how far it got and where the time went
	start=$(date +%s)
	LEAP_VM_TIMEOUT=${LEAP_VM_TIMEOUT:-$timeout} LEAP_BENCH_ARGS="$mode --row-log" \
		bash "$here/vm/run.sh" "$b" "$topo" bench > "$log" || rc=1
	secs=$(( $(date +%s) - start ))
	# the console, less the data blocks (kept as files) and the row log
	awk '/^=== begin /{skip=1} !skip && !/^bench: row /{print} /^=== end /{skip=0}' "$log"
	echo "=== guest $topo: $mode took $((secs / 60)) min $((secs % 60)) s (boot included)"
	for f in bench.json bench.csv; do
		awk -v f="$f" '$0 == "=== begin " f {on=1; next} $0 == "=== end " f {on=0} on' "$log" > "$d/$f"
		[ -s "$d/$f" ] || { echo "bench.sh: the $topo guest returned no $f" >&2; rc=1; }
	done
	if [ -s "$d/bench.csv" ]; then
		"$b/pageleap" plot "$d/bench.csv" "$d" \
			--title "$topo guest (QEMU emulated NUMA: not hardware timings)" || rc=1
	fi
done
echo
echo "results and plots: $out/*/ (bench.json, bench.csv, throughput_vs_size, throughput_vs_writers, stalls)"
exit $rc
