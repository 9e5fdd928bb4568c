#!/bin/sh
# run-fuzz.sh MODE FUZZ_BUILD RESULTS_DIR TARGET... — run libFuzzer targets.
#   MODE smoke: replay each target's seed corpus (tests/fuzz/corpus/NAME), then
#               mutate for FUZZ_SMOKE_SECONDS (default 5) — part of make check
#   MODE N:     fuzz each target for N seconds and print its executions count
# The working corpus grows in FUZZ_BUILD/corpus-work/NAME, never in the repo.
# Records "passed failed 0" (one per target) in RESULTS_DIR/fuzz.counts.
set -u
mode=$1; fb=$2; results=$3; shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$results"
passed=0; failed=0
for t in "$@"; do
    name=$(basename "$t"); name=${name#fuzz_}
    seeds="$top/tests/fuzz/corpus/$name"
    work="$fb/corpus-work/$name"
    mkdir -p "$work" "$fb/artifacts"
    [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null
    if [ "$mode" = smoke ]; then secs=${FUZZ_SMOKE_SECONDS:-5}; else secs=$mode; fi
    log="$fb/fuzz_$name.log"
    "$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$fb/artifacts/$name-" "$work" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok   fuzz_$name: ${execs:-?} executions in ${secs}s"
    else
        failed=$((failed + 1)); tail -n 30 "$log"; echo "FAIL fuzz_$name (log: $log)"
    fi
done
echo "$passed $failed 0" > "$results/fuzz.counts"
echo "fuzz ($mode): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
