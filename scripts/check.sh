#!/bin/sh
# check.sh — what `make check` runs: dependencies, the build boundaries of
# the include lines (scripts/check-includes.py), the normal build with its
# unit and integration tests and a fuzz smoke run, then the whole tree again
# under AddressSanitizer + UndefinedBehaviorSanitizer with the same tests.
# Every stage runs even when an earlier one failed, so the closing line
# ("N passed, N failed, N skipped") counts everything; a build that fails
# counts as one failure. Exit 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
MAKE=${MAKE:-make}
scripts/deps.sh test || exit 1
rm -rf build/normal/results build/san/results
mkdir -p build/normal/results build/san/results

stage() {   # stage RESULTS NAME COMMAND...: a failing build is one failure
    results=$1; name=$2; shift 2
    echo "== $name"
    if ! "$@"; then
        [ -f "$results/$name.counts" ] || echo "0 1 0" > "$results/$name.counts"
    fi
}
jobs=-j$(nproc 2>/dev/null || echo 2)
stage build/normal/results includes $MAKE check-includes
stage build/normal/results build $MAKE $jobs all
stage build/normal/results unit $MAKE $jobs unit
stage build/normal/results integration $MAKE integration
stage build/normal/results fuzz $MAKE $jobs fuzz-smoke
stage build/san/results build $MAKE $jobs SAN=1 all
stage build/san/results unit $MAKE $jobs SAN=1 unit
stage build/san/results integration $MAKE SAN=1 integration
echo "== summary"
scripts/summary.sh build/normal/results build/san/results
