"""pflogsumm over onehop's log (issue 14 item 6; SPEC 8: Postfix-style lines
"so existing log tools work").

A real instance (onehop start) takes a short mixed load: by SMTP and by
sendmail, to a peer that accepts, one that refuses a recipient with 550 (a
bounce, its DSN delivered to the local sender), one that answers 451 to a
recipient once (deferred, then sent), and a local Maildir. Then Debian's
pflogsumm, run as an administrator would (`pflogsumm --syslog-name=onehop
LOG`), must report in its Grand Totals what the test knows happened:
delivered (one per recipient's status=sent line, the DSN included),
deferred (messages; and deferrals: status=deferred lines), bounced
(recipients), received (messages received by smtpd: one `client=` line
each), with the log's own status= lines agreeing.

What pflogsumm's parser (/usr/sbin/pflogsumm) keys on, and the lines that
give it (queue/queue_place.c writes them at the commit, in this order):
  * a message is received on smtpd's `QID: client=NAME[ADDR]` line or on a
    pickup line (`onehop/pickup[PID]: QID: uid=UID from=<SENDER>`, for a
    sendmail submission, as Postfix's pickup logs it);
  * its size and sender count (bytes received, senders) only when its
    `from=<..>, size=` line comes after that line, as Postfix logs them
    (smtpd or pickup, then qmgr): the queue writes the client= (under
    smtpd's name) or pickup line right before its own from= line.
The router's DSNs get neither (Postfix's bounce goes to cleanup, not pickup):
pflogsumm counts them delivered, not received.
Skipped when pflogsumm is not installed (scripts/deps.sh test installs it).
"""

import re
import shutil
import subprocess

import pytest

from test_local import e2e, wait_queue_empty  # noqa: F401 (e2e: a fixture)
from test_master import master_bin  # noqa: F401 (a fixture)

HOST = "mta.onehop.test"
SENDER = "alice@%s" % HOST
ROWS = ("received", "delivered", "forwarded", "deferred", "bounced", "rejected")


def pflogsumm(log_path):
    """The Grand Totals of pflogsumm --syslog-name=onehop LOG as a dict."""
    exe = shutil.which("pflogsumm")
    if exe is None:
        pytest.skip("pflogsumm is not installed (scripts/deps.sh test installs it)")
    r = subprocess.run([exe, "--syslog-name=onehop", str(log_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    totals = {}
    for row in ROWS + ("bytes received", "senders"):
        m = re.search(r"^\s*(\d+)[km ]?\s+%s\b(?:\s+\((\d+)[km ]?\s*deferrals\))?" % row,
                      r.stdout, re.M)
        assert m, "pflogsumm printed no %r row:\n%s" % (row, r.stdout)
        totals[row] = int(m.group(1))
        if m.group(2):
            totals["deferrals"] = int(m.group(2))
    totals.setdefault("deferrals", 0)
    return totals, r.stdout


def message(subject):
    return ("From: %s\nSubject: %s\n\nbody of %s\n" % (SENDER, subject, subject)).encode()


@pytest.fixture
def mixed_load(e2e, master_bin, smtp_peers):
    """The instance after the load has settled: (mta, what the test knows)."""
    ok = smtp_peers.start("mx.b.test", rcpt={"bad@b.test": "550 5.1.1 no such user",
                                              "*": None})
    once = smtp_peers.start("mx.c.test", rcpt={"carol@c.test": ["451 4.3.0 come back later"],
                                                "*": None})
    mta = e2e(routes="b.test [%s]:%d\nc.test [%s]:%d\n" % (ok.ip, smtp_peers.port, once.ip,
                                                          smtp_peers.port))
    mta.start()
    assert mta.submit(SENDER, ["x@b.test"], message("m1")) == {}
    assert mta.submit(SENDER, ["bad@b.test", "y@b.test"], message("m2")) == {}
    assert mta.submit(SENDER, ["carol@c.test"], message("m3")) == {}
    for rcpt, subject in (("bob@local.test", "s1"), ("z@b.test", "s2")):
        r = mta.sendmail("-f", SENDER, rcpt, data=message(subject))
        assert r.rc == 0, r
    for rcpt in ("x@b.test", "y@b.test", "carol@c.test", "bob@local.test", "z@b.test", SENDER):
        mta.wait_delivery(rcpt, "sent", timeout=60)
    mta.wait_delivery("bad@b.test", "bounced")
    mta.wait_delivery("carol@c.test", "deferred")
    wait_queue_empty(mta, timeout=60)
    known = {"smtp messages": 3, "sendmail messages": 2,
             "sent": 6,  # five recipients and the DSN to the local sender
             "deferred messages": 1, "bounced": 1}
    return mta, known


def test_pflogsumm_totals_match_what_happened(mixed_load):
    mta, known = mixed_load
    totals, text = pflogsumm(mta.log_path)
    sent = mta.deliveries(status="sent")
    deferred = mta.deliveries(status="deferred")
    bounced = mta.deliveries(status="bounced")
    assert len(sent) == known["sent"] and len(bounced) == known["bounced"], mta.log_tail(80)
    assert len({l.qid for l in deferred}) == known["deferred messages"], mta.log_tail(80)
    assert totals["delivered"] == known["sent"], text
    assert totals["bounced"] == known["bounced"], text
    assert totals["deferred"] == known["deferred messages"], text
    assert totals["deferrals"] == len(deferred), text
    assert totals["forwarded"] == 0 and totals["rejected"] == 0, text
    # received: smtpd's client= lines and pickup's, one per message submitted
    assert totals["received"] == known["smtp messages"] + known["sendmail messages"], text
    clients = [l for l in mta.log("smtpd") if "client" in l.fields]
    assert len(clients) == known["smtp messages"], mta.log_tail(80)


def test_each_message_is_received_by_one_line_before_its_from_line(mixed_load):
    """smtpd's client= or pickup's uid= from= line, then the queue's from=:
    one of them for every message but the DSN, in that order."""
    mta, known = mixed_load
    lines = [l for l in mta.log() if l.qid]
    origin, first_from = {}, {}
    for k, l in enumerate(lines):
        if l.service == "smtpd" and "client" in l.fields:
            origin.setdefault(l.qid, []).append(("smtpd", k))
        elif l.service == "pickup":
            assert re.search(r": uid=\d+ from=<%s>$" % re.escape(SENDER), l.raw), l.raw
            origin.setdefault(l.qid, []).append(("pickup", k))
        elif l.service == "queue" and "size" in l.fields:
            first_from.setdefault(l.qid, k)
    kinds = sorted(v[0][0] for v in origin.values())
    assert kinds == ["pickup"] * known["sendmail messages"] + ["smtpd"] * known["smtp messages"], \
        mta.log_tail(80)
    for qid, seen in origin.items():
        assert len(seen) == 1 and seen[0][1] < first_from[qid], (qid, mta.log_tail(80))
    dsn = [q for q, k in first_from.items() if q not in origin]
    assert len(dsn) == 1 and lines[first_from[dsn[0]]].sender == "", mta.log_tail(80)


def test_pflogsumm_counts_sendmail_submissions_as_received(mixed_load):
    mta, known = mixed_load
    totals, text = pflogsumm(mta.log_path)
    assert totals["received"] == known["smtp messages"] + known["sendmail messages"], text


def test_pflogsumm_counts_bytes_received_and_senders(mixed_load):
    mta, known = mixed_load
    totals, text = pflogsumm(mta.log_path)
    assert totals["senders"] == 1 and totals["bytes received"] > 0, text
