#!/bin/sh
# run-integration.sh BUILD BIN — the black-box pytest suite in tests/integration
# against the programs in BIN; records "passed failed skipped" in
# BUILD/results/integration.counts. Under SAN=1 builds, sanitizer reports of
# every program are written to BUILD/san-reports and fail the run.
set -u
build=$(cd "$1" && pwd); bin=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/results"
xml="$build/results/integration.xml"
rm -f "$xml"
case $build in
    */san)
        rm -rf "$build/san-reports"; mkdir -p "$build/san-reports"
        ONEHOP_SAN_REPORTS="$build/san-reports"
        ASAN_OPTIONS="log_path=$build/san-reports/asan:detect_leaks=1:abort_on_error=0"
        UBSAN_OPTIONS="log_path=$build/san-reports/ubsan:print_stacktrace=1:halt_on_error=1"
        export ONEHOP_SAN_REPORTS ASAN_OPTIONS UBSAN_OPTIONS ;;
esac
export ONEHOP_BIN="$bin" ONEHOP_TOOLS="$build/tools"
cd "$top/tests/integration" || exit 1
/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$xml" ${PYTEST_ARGS:-} .
rc=$?
if [ "$rc" -eq 5 ]; then rc=0; fi      # no tests collected: not a failure
/usr/bin/python3 "$top/scripts/junit-counts.py" "$xml" "$build/results/integration.counts" "$rc" integration
exit $rc
