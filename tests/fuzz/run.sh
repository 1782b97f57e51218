#!/bin/sh
# run.sh - run the fuzz harnesses (docs/fuzz.md).
#   sh tests/fuzz/run.sh FB SECONDS        both harnesses at once, SECONDS each, from the
#                                          kept corpus into FB/corpus/ (grown there);
#                                          then executions, coverage and findings, and
#                                          llvm-cov line coverage of src/ (FB/fuzz_api_cov)
#   sh tests/fuzz/run.sh --ci FB SECONDS   each harness SECONDS in turn from the kept
#                                          corpus (a scratch copy); exit 1 on any finding
# Findings (crash-, leak-, timeout-, oom- files) go to FB/findings/.
set -u
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; fi
fb=$1 secs=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$fb/findings"
# hangs: a step waits 20 ms at most, a CLI child 0.5 s (+2 s to stop): 60 s is a hang
common="-timeout=60 -rss_limit_mb=4096 -print_final_stats=1 -max_total_time=$secs"
api_flags="-max_len=4096"
cli_flags="-max_len=512 -dict=$here/cli.dict"

run() { # name corpus-dir log
	"$fb/fuzz_$1" $common $(eval echo \$${1}_flags) -artifact_prefix="$fb/findings/$1-" \
		"$2" >"$3" 2>&1
}

summary() { # name log rc
	st=$(grep -E '^stat::number_of_executed_units' "$2" | awk '{print $2}')
	last=$(grep -E '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE|DONE|INITED)' "$2" | tail -1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
	eps=$(grep -E '^stat::average_exec_per_sec' "$2" | awk '{print $2}')
	echo "fuzz_$1: ${st:-?} executions (${eps:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}, exit $3"
}

if [ $ci = 1 ]; then
	fail=0
	for h in api cli; do
		rm -rf "$fb/ci/$h" && mkdir -p "$fb/ci/$h"
		cp "$here/corpus/$h/"* "$fb/ci/$h/" 2>/dev/null
		run $h "$fb/ci/$h" "$fb/ci-$h.log"
		rc=$?
		summary $h "$fb/ci-$h.log" $rc
		if [ $rc != 0 ]; then
			fail=1
			grep -E 'ERROR|invariant|fuzz_cli:|Test unit written' "$fb/ci-$h.log" | head -20
		fi
	done
	exit $fail
fi

for h in api cli; do
	mkdir -p "$fb/corpus/$h"
	cp -n "$here/corpus/$h/"* "$fb/corpus/$h/" 2>/dev/null
done
start=$(date +%s)
run api "$fb/corpus/api" "$fb/fuzz-api.log" & pa=$!
run cli "$fb/corpus/cli" "$fb/fuzz-cli.log" & pc=$!
wait $pa; ra=$?
wait $pc; rc=$?
echo "== fuzzing: $(( $(date +%s) - start )) s"
summary api "$fb/fuzz-api.log" $ra
summary cli "$fb/fuzz-cli.log" $rc
echo "findings: $(ls "$fb/findings" | wc -l) in $fb/findings/"
ls "$fb/findings"
# line coverage of src/ by the API corpus (the harness without libFuzzer, replayed once)
if [ -x "$fb/fuzz_api_cov" ] && command -v llvm-profdata >/dev/null; then
	rm -f "$fb"/cov-*.profraw
	LLVM_PROFILE_FILE="$fb/cov-%p.profraw" "$fb/fuzz_api_cov" "$fb/corpus/api" >/dev/null 2>&1
	llvm-profdata merge -o "$fb/cov.profdata" "$fb"/cov-*.profraw &&
		llvm-cov report "$fb/fuzz_api_cov" -instr-profile="$fb/cov.profdata" src/ |
		tee "$fb/coverage.txt"
fi
[ $ra = 0 ] && [ $rc = 0 ]
