"""onehop-remote (issue 10) against real peers: aiosmtpd servers on
127.0.0.N (fixtures/smtppeer.py), the dnslib server (fixtures/dnsserver.py)
behind a real onehop-dnscache, and tests/tools/remotedrive playing the
router: it opens a message that sendmail queued, sends jobs over the
channel of common/remote_proto.h and prints the results as JSON lines.

What is checked: the D4 classification table end to end (a row of
daemons/remote/classify.c per case), D1 order (MX preference, several MX
hosts failing in different ways, equal-preference spreading), DNS failures
(NXDOMAIN, null MX, SERVFAIL, timeout), large MX answers, SMTP details
(HELO fallback, PIPELINING round trips, SIZE, dot-stuffing and CRLF on the
wire, ORCPT/NOTIFY) and the SPEC 8 log lines.
"""

import json
import re
import subprocess
import time

import pytest

from fixtures.dnscache import DnsCache
from fixtures.paths import tool_path
from fixtures.smtppeer import CLOSE, Delay

SENDER = "alice@a.test"


@pytest.fixture
def remote(onehop, dns, smtp_peers):
    """Factory: remote(conf) -> Remote: an instance with a running dnscache."""
    made = []

    def factory(conf=None):
        settings = {"dns_timeout": "1s", "dns_lookup_timeout": "3s"}
        settings.update(conf or {})
        r = Remote(onehop(conf=settings))
        made.append(r)
        return r

    yield factory
    for r in made:
        r.close()


class Remote:
    def __init__(self, mta):
        self.mta = mta
        self.cache = DnsCache(mta).start()
        self.tool = tool_path("remotedrive")
        if self.tool is None:
            pytest.fail("remotedrive is missing: make tools (or set ONEHOP_TOOLS)",
                        pytrace=False)

    def close(self):
        self.cache.stop()

    def inject(self, *rcpts, body=None, sender=SENDER, args=()):
        """Queue one message with sendmail; its queue id."""
        before = {m["id"] for m in self.mta.queue()["messages"]}
        if body is None:
            body = "Subject: test\n\nhello\n"
        r = self.mta.sendmail("-f", sender, *args, *rcpts, data=body.encode()
                              if isinstance(body, str) else body)
        assert r.rc == 0, r
        after = {m["id"] for m in self.mta.queue()["messages"]}
        (qid,) = after - before
        return qid

    def drive(self, jobs, timeout=60, check=True):
        """Run remotedrive with job lines; (results, done records)."""
        text = "".join(j + "\n" for j in jobs)
        proc = subprocess.run([str(self.tool), str(self.mta.dir),
                               str(self.mta.program("onehop-remote")), str(timeout)],
                              input=text.encode(), capture_output=True, timeout=timeout + 20,
                              env=self.mta.env(), cwd=str(self.mta.dir))
        out = [json.loads(l) for l in proc.stdout.decode().splitlines()]
        if check:
            assert proc.returncode == 0, (proc.stderr.decode(), self.mta.log_tail())
        results = [o for o in out if "class" in o]
        done = [o for o in out if "done" in o]
        return results, done

    def one(self, job, **kw):
        """The results of a single job, indexed by recipient."""
        results, done = self.drive([job], **kw)
        assert len(done) == 1 and done[0]["done"] == len(results)
        return {r["rcpt"]: r for r in results}


# ----------------------------------------------------------------- basics


def test_delivered_by_mx_with_log_line_and_wire_form(remote, dns, smtp_peers):
    peer = smtp_peers.start("mx.b.test")
    dns.mx_to("b.test", peer.ip)
    r = remote()
    body = "Subject: dots\n\n.leading dot\nmiddle\n..two\nlast line without end"
    qid = r.inject("bob@b.test", body=body)
    res = r.one("%s b.test" % qid)["bob@b.test"]
    assert res["class"] == "ok" and res["reply"].startswith("250")
    assert res["relay"] == "mx.b.test[%s]:%d" % (peer.ip, smtp_peers.port)
    assert res["tls"] == "none"
    (msg,) = peer.wait(1)
    assert msg.mail_from == SENDER and msg.rcpt_tos == ["bob@b.test"]
    data = msg.data
    # aiosmtpd undoes the dot-stuffing: the lines arrive as they were
    assert b"\r\n.leading dot\r\nmiddle\r\n..two\r\nlast line without end" in data
    assert data.count(b"\n") == data.count(b"\r\n")  # no bare LF anywhere
    lines = [l for l in r.mta.log(service="remote", qid=qid) if l.status]
    assert len(lines) == 1
    assert lines[0].fields["to"] == "<bob@b.test>" and lines[0].status == "sent"
    assert lines[0].fields["relay"] == res["relay"] and lines[0].reason == res["reply"]
    assert float(lines[0].fields["delay"]) >= 0
