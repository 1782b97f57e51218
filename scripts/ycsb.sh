#!/usr/bin/env bash
# `pageleap ycsb` for workloads A, C and E on this machine and inside emulated-NUMA
# guests (where move_pages and AutoNUMA have a second node to move to). The guests' JSON,
# timeline data and gnuplot scripts come back over the serial console; the plots are
# drawn here.
# usage: ycsb.sh BUILD_DIR        LEAP_YCSB_GUESTS="2node 4node" (default 2node),
#   LEAP_YCSB_WORKLOADS="a c e", LEAP_YCSB_LOCAL_ARGS / LEAP_YCSB_GUEST_ARGS: extra
#   arguments of pageleap ycsb here / in the guests
# Results: BUILD_DIR/ycsb/<where>/<workload>/{ycsb.json,timeline.dat,ycsb.gp,timeline.png,.svg}
set -euo pipefail
b=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
out="$b/ycsb"
workloads=${LEAP_YCSB_WORKLOADS:-a c e}
rm -rf "$out"
mkdir -p "$out/local"
rc=0

echo "=== this machine"
for w in $workloads; do
	mkdir -p "$out/local/$w"
	# shellcheck disable=SC2086
	"$b/pageleap" ycsb --workload "$w" ${LEAP_YCSB_LOCAL_ARGS:-} --plot "$out/local/$w" \
		--save-json "$out/local/$w/ycsb.json" || rc=1
	echo
done

# Under emulation everything is 20-50x slower: a smaller tree (still many times the
# guest's caches) keeps a guest's run within minutes; the timings are emulated, and the
# tool says so, so only the ratios between methods mean anything.
for topo in ${LEAP_YCSB_GUESTS:-2node}; do
	d="$out/$topo"
	mkdir -p "$d"
	log="$d/console.log"
	start=$(date +%s)
	LEAP_VM_TIMEOUT=${LEAP_VM_TIMEOUT:-2400} LEAP_YCSB_WORKLOADS="$workloads" \
		LEAP_YCSB_ARGS="${LEAP_YCSB_GUEST_ARGS:---keys 2M --warmup 2 --after 2}" \
		bash "$here/vm/run.sh" "$b" "$topo" ycsb > "$log" || rc=1
	secs=$(( $(date +%s) - start ))
	awk '/^=== begin /{skip=1} !skip {print} /^=== end /{skip=0}' "$log"
	echo "=== guest $topo: took $((secs / 60)) min $((secs % 60)) s (boot included)"
	for w in $workloads; do
		mkdir -p "$d/$w"
		for f in ycsb-$w.json timeline.dat ycsb.gp; do
			awk -v f="$w/$f" '$0 == "=== begin " f {on=1; next} $0 == "=== end " f {on=0} on' "$log" \
				> "$d/$w/${f/ycsb-$w.json/ycsb.json}"
		done
		[ -s "$d/$w/ycsb.json" ] || { echo "ycsb.sh: the $topo guest returned no JSON for $w" >&2; rc=1; continue; }
		# the console drops empty lines: put back the two that end each method's block
		awk '/^# /{ if (n++) print "\n" } { print }' "$d/$w/timeline.dat" > "$d/$w/t" &&
			mv "$d/$w/t" "$d/$w/timeline.dat"
		# the script names the guest's paths: point it at the files here
		sed -i -e "s|^dat = .*|dat = '$d/$w/timeline.dat'|" -e "s|^out = .*|out = '$d/$w'|" "$d/$w/ycsb.gp"
		gnuplot "$d/$w/ycsb.gp" 2>&1 | grep -v -e 'no valid points' -e 'empty x range' >&2 || true
	done
done
echo
echo "results and plots: $out/*/*/ (ycsb.json, timeline.png, timeline.svg)"
exit $rc
