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
/usr/bin/python3 - "$xml" "$build/results/integration.counts" "$rc" <<'PY'
import sys, xml.etree.ElementTree as ET
path, out, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = f = e = s = 0
try:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for su in suites:
        t += int(su.get("tests", 0)); f += int(su.get("failures", 0))
        e += int(su.get("errors", 0)); s += int(su.get("skipped", 0))
except (OSError, ET.ParseError):
    pass
failed = f + e
if rc != 0 and failed == 0:
    failed = 1          # pytest itself failed (collection error, session hook)
with open(out, "w") as fh:
    fh.write(f"{t - f - e - s} {failed} {s}\n")
print(f"integration: {t - f - e - s} passed, {failed} failed, {s} skipped")
PY
exit $rc
