#!/bin/sh
# run-unit.sh BUILD TEST_BINARY... — run every cmocka unit test binary, print
# each one's verdict, and record "passed failed skipped" in BUILD/results/unit.counts.
# A binary that crashes or prints no cmocka summary counts as one failure.
set -u
build=$1; shift
mkdir -p "$build/results"
passed=0; failed=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -ne 0 ]; then
        printf '%s\n' "$out" | tail -n 40
        echo "FAIL $(basename "$t"): $p passed, $f failed"
    else
        echo "ok   $(basename "$t"): $p passed"
    fi
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed $failed 0" > "$build/results/unit.counts"
echo "unit ($build): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
