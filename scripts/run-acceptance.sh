#!/bin/sh
# run-acceptance.sh BUILD BIN — the outside black-box acceptance suite
# (../shared/acceptance beside the source tree, ISSUE 14) against the
# programs in BIN; records "passed failed skipped" in
# BUILD/results/acceptance.counts (scripts/summary.sh adds it up).
# Without ../shared/acceptance the suite is not run: said on stderr, and
# under CI=true that is one failure (CI always has it).
set -u
build=$(cd "$1" && pwd); bin=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
suite="$top/../shared/acceptance"
mkdir -p "$build/results"
counts="$build/results/acceptance.counts"
if [ ! -d "$suite" ]; then
    echo "acceptance: $suite not found: not run" >&2
    if [ "${CI:-}" = true ]; then echo "0 1 0" > "$counts"; exit 1; fi
    rm -f "$counts"
    exit 0
fi
xml="$build/results/acceptance.xml"
rm -f "$xml"
cd "$top" || exit 1
ONEHOP_BIN="$bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$xml" \
    ${PYTEST_ARGS:-} "$suite"
rc=$?
/usr/bin/python3 "$top/scripts/junit-counts.py" "$xml" "$counts" "$rc" acceptance
exit $rc
