"""`onehop qshape [--json] [deferred|active|hold|all]` (SPEC 1, issue 11
item 8) on an `onehop start` instance: mail deferred by 451 peers for two
domains, a message held, a recipient delivered; the table counts each
message once per domain it still has pending recipients in (never a
delivered one) and once in TOTAL, rows by total, in Postfix qshape's
layout; the queue names select by message state; with the instance
stopped, new mail counts as active from its file. The age buckets are the
unit test's (tests/unit/test_qshape.c): every message here is minutes old.
"""

import re

from test_control import deferring_peers, instance, rcpt_states, send, wait_deferred, wait_until
from test_master import master_bin  # noqa: F401 (a fixture)

HEADINGS = ["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"]


def table(mta, *args):
    """The text table as {domain: [T, 10 buckets]}, checking its layout."""
    r = mta.cmd("qshape", *args)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split() == HEADINGS, r.out
    assert len(lines[0]) <= 80 and lines[0].endswith("1280+"), r.out
    rows = {}
    for line in lines[1:]:
        assert len(line) == len(lines[0]), (line, r.out)  # right-aligned columns
        fields = line.split()
        rows[fields[0]] = [int(x) for x in fields[1:]]
        assert len(rows[fields[0]]) == 11
    assert lines[1].split()[0] == "TOTAL"
    return rows, [l.split()[0] for l in lines[1:]]


def test_qshape_by_domain_and_state(onehop, master_bin, smtp_peers):
    b, c = deferring_peers(smtp_peers, "mx.b.test", "mx.c.test")
    d = smtp_peers.start("mx.d.test")
    mta = instance(onehop, master_bin, [b, c, d], smtp_peers)
    mta.start()
    q1 = send(mta, ["bob@b.test", "carol@c.test"], "tok-1")
    q2 = send(mta, ["dave@b.test", "erin@B.TEST"], "tok-2")
    q3 = send(mta, ["frank@c.test"], "tok-3")
    q4 = send(mta, ["ok@d.test", "zed@b.test"], "tok-4")
    for q, a in ((q1, "bob@b.test"), (q1, "carol@c.test"), (q2, "dave@b.test"),
                 (q3, "frank@c.test"), (q4, "zed@b.test")):
        wait_deferred(mta, q, a)
    wait_until(lambda: rcpt_states(mta, q4)["ok@d.test"]["state"] == "delivered", 20,
               "ok@d.test delivered", mta)
    assert mta.cmd("hold", q3).rc == 0

    rows, order = table(mta, "deferred")
    assert rows["TOTAL"][:2] == [3, 3] and sum(rows["TOTAL"][2:]) == 0, rows
    assert rows["b.test"][:2] == [3, 3]  # q2's two b.test recipients: once
    assert rows["c.test"][:2] == [1, 1]
    assert "d.test" not in rows  # delivered: not pending
    assert order == ["TOTAL", "b.test", "c.test"]

    rows, order = table(mta, "hold")
    assert rows == {"TOTAL": [1, 1] + [0] * 9, "c.test": [1, 1] + [0] * 9}, rows

    rows, order = table(mta)  # all, the default
    assert rows["TOTAL"][0] == 4 and rows["b.test"][0] == 3 and rows["c.test"][0] == 2, rows
    assert order == ["TOTAL", "b.test", "c.test"]
    assert table(mta, "all")[0] == rows

    rows, _ = table(mta, "active")
    assert rows == {"TOTAL": [0] * 11}, rows

    j = mta.json("qshape", "--json", "deferred")
    assert j["queue"] == "deferred" and j["columns"] == HEADINGS
    assert j["rows"][0] == {"domain": "TOTAL", "total": 3, "buckets": [3] + [0] * 9}
    assert {r["domain"]: r["total"] for r in j["rows"][1:]} == {"b.test": 3, "c.test": 1}


def test_qshape_while_stopped_and_usage(onehop, master_bin, smtp_peers):
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers)
    rows, _ = table(mta)
    assert rows == {"TOTAL": [0] * 11}  # no queue yet: empty
    r = mta.sendmail("-f", "alice@a.test", "x@b.test", "y@c.test", data=b"Subject: s\n\nbody\n")
    assert r.rc == 0, r
    rows, order = table(mta, "active")  # incoming, from its file
    assert rows["TOTAL"][:2] == [1, 1] and rows["b.test"][0] == 1 and rows["c.test"][0] == 1
    assert table(mta, "deferred")[0] == {"TOTAL": [0] * 11}
    for args in (["bogus"], ["hold", "deferred"], ["--xml"]):
        r = mta.cmd("qshape", *args)
        assert r.rc == 2 and re.search(r"usage: onehop .*qshape", r.err), (args, r)
