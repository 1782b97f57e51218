#!/bin/sh
# Test runner: runs every test program in DIR (t_*), each under a timeout, prints one line
# per test and closes with "N passed, N failed, N skipped". Exit 0 only if none failed.
# POSIX sh: the same script runs inside the busybox guests.
# usage: run.sh DIR [TIMEOUT_S]    (LEAP_TESTS="t_a t_b" or "t_a+t_b" runs only those)
dir=${1:?test dir}
limit=${2:-${LEAP_TEST_TIMEOUT:-900}}
pass=0 fail=0 skipped=0
log=${TMPDIR:-/tmp}/leap-test.$$
for t in "$dir"/t_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	case " $(echo "${LEAP_TESTS:-$name}" | tr + ' ') " in *" $name "*) ;; *) continue ;; esac
	start=$(date +%s)
	timeout "$limit" "$t" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)"; grep -E '^[a-z_]+: (measured|bound|note)|^SKIP ' "$log" | sed 's/^/     /' ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(grep -m1 SKIP "$log" | sed 's/.*SKIP: //')" ;;
	124) fail=$((fail + 1)); echo "FAIL $name (timed out after ${limit}s)"; tail -n 20 "$log" | sed 's/^/     /' ;;
	*) fail=$((fail + 1)); echo "FAIL $name (exit $rc, ${secs}s)"
	   # the failed named cases first (a long test's tail may not hold them), then the tail
	   grep -B4 -A3 -E '^FAIL |: FAIL' "$log" | head -n 40 | sed 's/^/     /'; tail -n 30 "$log" | sed 's/^/     /' ;;
	esac
done
rm -f "$log"
# the C++ header check is a build-time test; run it if it is there
if [ -x "$dir/cxx_header" ]; then
	if "$dir/cxx_header"; then pass=$((pass + 1)); echo "PASS cxx_header"; else fail=$((fail + 1)); echo "FAIL cxx_header"; fi
fi
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ $((pass + fail)) -gt 0 ]
