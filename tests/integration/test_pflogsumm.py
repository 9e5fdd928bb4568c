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

Known gaps (pflogsumm's parser, /usr/sbin/pflogsumm, against SPEC 8's
lines), each a strict xfail so that the fix makes it fail and is noticed:
  * sendmail submissions are not counted as received: pflogsumm counts a
    message received on smtpd's `QID: client=` line or on a pickup line
    (`onehop/pickup[PID]: QID: uid=UID from=<SENDER>`); onehop's sendmail
    path logs only the queue's `from=<..>, size=, nrcpt=` line;
  * bytes received and senders stay 0: pflogsumm adds a message's size and
    sender only when its `from=, size=` line comes after its `client=` (or
    pickup) line, as Postfix logs them (smtpd, then qmgr); onehop logs the
    queue's from= line at the commit, before smtpd's client= line.
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
    # received: smtpd's client= lines, one per message received by SMTP
    assert totals["received"] >= known["smtp messages"], text
    clients = [l for l in mta.log("smtpd") if "client" in l.fields]
    assert len(clients) == known["smtp messages"], mta.log_tail(80)


@pytest.mark.xfail(strict=True, reason="gap: no pickup-style `uid= from=` line for sendmail "
                   "submissions, so pflogsumm does not count them as received")
def test_pflogsumm_counts_sendmail_submissions_as_received(mixed_load):
    mta, known = mixed_load
    totals, text = pflogsumm(mta.log_path)
    assert totals["received"] == known["smtp messages"] + known["sendmail messages"], text


@pytest.mark.xfail(strict=True, reason="gap: the queue's from=, size= line comes before "
                   "smtpd's client= line, so pflogsumm adds no bytes received nor senders")
def test_pflogsumm_counts_bytes_received_and_senders(mixed_load):
    mta, known = mixed_load
    totals, text = pflogsumm(mta.log_path)
    assert totals["senders"] == 1 and totals["bytes received"] > 0, text
