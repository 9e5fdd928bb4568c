"""junit-counts.py XML OUT RC NAME — turn a pytest JUnit XML report into the
"passed failed skipped" line of OUT (a *.counts file of scripts/summary.sh)
and print "NAME: N passed, N failed, N skipped". A pytest run that failed
(RC not 0) with no failed test in the report (a collection error, a session
hook) counts as one failure; a missing or unreadable report likewise."""
import sys
import xml.etree.ElementTree as ET

path, out, rc, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t = f = e = s = 0
try:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for su in suites:
        t += int(su.get("tests", 0))
        f += int(su.get("failures", 0))
        e += int(su.get("errors", 0))
        s += int(su.get("skipped", 0))
except (OSError, ET.ParseError):
    pass
failed = f + e
if rc != 0 and failed == 0:
    failed = 1
with open(out, "w") as fh:
    fh.write(f"{t - f - e - s} {failed} {s}\n")
print(f"{name}: {t - f - e - s} passed, {failed} failed, {s} skipped")
