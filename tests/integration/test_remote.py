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

import injproto
from fixtures.dnscache import DnsCache
from fixtures.paths import tool_path
from fixtures.smtppeer import CLOSE, Delay
from test_master import master_bin, new_instance  # noqa: F401 (master_bin: a fixture)

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

    def inject_utf8(self, *rcpts, sender=SENDER, body=b"Subject: test\n\nhello\n"):
        """Queue one message through onehop-queue's inject protocol, which
        takes UTF-8 addresses (as smtpd gives them after SMTPUTF8; the
        sendmail command line refuses them); its queue id."""
        before = {m["id"] for m in self.mta.queue()["messages"]}
        rc, replies, err = injproto.inject(self.mta.program("onehop-queue"), self.mta.dir,
                                           sender=sender, rcpts=rcpts, data=body)
        assert rc == 0, (rc, replies, err)
        (qid,) = {m["id"] for m in self.mta.queue()["messages"]} - before
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
    assert res["tls"] == "none" and res["flags"] == 0
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


# ------------------------------------------------- D4, one row at a time
#
# Each case: the peer's script, the class every recipient gets, and a
# piece of the reason. The next hop is the peer's own address, so the
# classification of that one session decides.

D4_CASES = [
    ("greeting 421", dict(greeting="421 4.3.2 busy"), "temporary", "421 4.3.2 busy"),
    ("greeting 4xx", dict(greeting="450 4.7.1 later"), "temporary", "refused to talk to me"),
    ("greeting 5xx: next address, never a bounce", dict(greeting="554 5.7.1 your IP is denied"),
     "temporary", "554 5.7.1 your IP is denied"),
    ("greeting lost", dict(greeting=CLOSE), "temporary", "lost connection"),
    ("greeting timeout", dict(greeting=Delay(6, None)), "temporary", "timed out"),
    ("EHLO 421", dict(ehlo="421 4.3.2 closing"), "temporary", "in reply to EHLO command"),
    ("EHLO and HELO refused", dict(ehlo="502 5.5.1 no", helo="550 5.7.1 go away"), "temporary",
     "in reply to HELO command"),
    ("MAIL 4xx", dict(mail="451 4.3.0 try later"), "temporary", "in reply to MAIL FROM command"),
    ("MAIL 5xx", dict(mail="553 5.7.1 sender refused"), "permanent", "553 5.7.1 sender refused"),
    ("MAIL timeout", dict(mail=Delay(6, None)), "temporary", "timed out"),
    ("MAIL 421", dict(mail="421 4.3.2 bye"), "temporary", "421 4.3.2 bye"),
    ("RCPT 4xx", dict(rcpt="452 4.2.2 mailbox full"), "temporary", "in reply to RCPT TO command"),
    ("RCPT 5xx", dict(rcpt="550 5.1.1 no such user"), "permanent", "550 5.1.1 no such user"),
    ("RCPT 421", dict(rcpt="421 4.3.2 bye"), "temporary", "421 4.3.2 bye"),
    ("RCPT lost", dict(rcpt=CLOSE), "temporary", "lost connection"),
    ("DATA 4xx", dict(data_cmd="451 4.3.0 not now"), "temporary", "in reply to DATA command"),
    ("DATA 5xx", dict(data_cmd="554 5.5.1 no valid recipients"), "permanent",
     "in reply to DATA command"),
    ("lost mid-DATA: possibly delivered", dict(in_data=CLOSE), "temporary",
     "may have been delivered"),
    ("final dot 4xx", dict(data="451 4.3.0 queue full"), "temporary",
     "in reply to end of DATA command"),
    ("final dot 5xx", dict(data="554 5.6.0 content refused"), "permanent",
     "554 5.6.0 content refused"),
    ("final dot timeout: possibly delivered", dict(data=Delay(8, None)), "temporary",
     "may have been delivered"),
    ("final dot lost: possibly delivered", dict(data=CLOSE), "temporary",
     "may have been delivered"),
    ("final dot 421", dict(data="421 4.3.2 shutting down"), "temporary",
     "421 4.3.2 shutting down"),
    ("EHLO timeout", dict(ehlo=Delay(6, None)), "temporary", "reply to EHLO"),
    ("EHLO lost", dict(ehlo=CLOSE), "temporary", "lost connection"),
    ("EHLO 4xx then HELO 4xx", dict(ehlo="451 4.3.0 later", helo="450 4.7.1 not you"),
     "temporary", "450 4.7.1 not you (in reply to HELO command)"),
    ("HELO timeout", dict(ehlo="502 5.5.1 no", helo=Delay(6, None)), "temporary",
     "reply to HELO"),
    ("HELO lost", dict(ehlo="502 5.5.1 no", helo=CLOSE), "temporary", "lost connection"),
    ("HELO 421", dict(ehlo="502 5.5.1 no", helo="421 4.3.2 bye"), "temporary",
     "421 4.3.2 bye"),
    ("MAIL lost", dict(mail=CLOSE), "temporary", "lost connection"),
    ("RCPT timeout", dict(rcpt=Delay(6, None)), "temporary", "reply to RCPT TO"),
    ("DATA timeout", dict(data_cmd=Delay(6, None)), "temporary", "reply to DATA"),
    ("DATA lost", dict(data_cmd=CLOSE), "temporary", "lost connection"),
    ("DATA 421", dict(data_cmd="421 4.3.2 bye"), "temporary", "421 4.3.2 bye"),
]


@pytest.mark.parametrize("name,script,cls,reason", D4_CASES, ids=[c[0] for c in D4_CASES])
def test_d4_row_end_to_end(remote, smtp_peers, name, script, cls, reason):
    peer = smtp_peers.start("peer", **script)
    r = remote({"smtp_greeting_timeout": "2s", "smtp_command_timeout": "2s",
                "smtp_data_timeout": "2s"})
    qid = r.inject("bob@b.test", "carol@b.test")
    results = r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port), timeout=30)
    assert set(results) == {"bob@b.test", "carol@b.test"}
    for res in results.values():
        assert res["class"] == cls, res
        assert reason in res["reply"], res
        assert res["relay"] == "%s[%s]:%d" % (peer.ip, peer.ip, smtp_peers.port)
    expect = {"temporary": "deferred", "permanent": "bounced"}[cls]
    lines = [l for l in r.mta.log(service="remote", qid=qid) if l.status]
    assert sorted(l.fields["to"] for l in lines) == ["<bob@b.test>", "<carol@b.test>"]
    assert all(l.status == expect for l in lines)
    if cls == "temporary" and "delivered" not in reason:
        assert peer.received() == []


def test_connect_refused_is_temporary_with_relay_none(remote, smtp_peers):
    dead = smtp_peers.refusing()
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s [%s]:%d" % (qid, dead, smtp_peers.port))["bob@b.test"]
    assert res["class"] == "temporary" and res["relay"] == "none"
    assert res["reply"] == "connect to %s[%s]:%d: Connection refused" % (dead, dead,
                                                                          smtp_peers.port)
    (line,) = [l for l in r.mta.log(service="remote", qid=qid) if l.status]
    assert line.status == "deferred" and line.fields["relay"] == "none"


class SilentListener:
    """127.0.0.80:PORT listening with an accept queue that connections made
    here have filled: the kernel drops every further SYN unanswered, so a
    connection there times out (the connect row of D4 for a timeout)."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.80", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.80", self.port))
            except BlockingIOError:
                pass
            self.fill.append(c)
        time.sleep(0.2)

    def close(self):
        for c in self.fill:
            c.close()
        self.sock.close()


def test_connect_timeout_is_temporary(remote):
    silent = SilentListener()
    r = remote({"smtp_connect_timeout": "2s"})
    qid = r.inject("bob@b.test")
    t0 = time.monotonic()
    try:
        res = r.one("%s [127.0.0.80]:%d" % (qid, silent.port))["bob@b.test"]
    finally:
        silent.close()
    assert res["class"] == "temporary" and res["relay"] == "none", res
    assert res["reply"] == "connect to 127.0.0.80[127.0.0.80]:%d: Connection timed out" % (
        silent.port)
    assert time.monotonic() - t0 >= 1.9


def test_connect_error_other_than_refused_is_temporary(remote):
    """A connect the kernel itself refuses (the limited broadcast address:
    ENETUNREACH, no packet is sent): the connect row "reset / other
    error"."""
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s [255.255.255.255]:2525" % qid)["bob@b.test"]
    assert res["class"] == "temporary" and res["relay"] == "none", res
    assert res["reply"].startswith("connect to 255.255.255.255[255.255.255.255]:2525: "), res
    assert "refused" not in res["reply"], res


def test_ehlo_refused_falls_back_to_helo(remote, smtp_peers):
    peer = smtp_peers.start("old", ehlo="500 5.5.1 what is EHLO")
    r = remote()
    qid = r.inject("bob@b.test")
    assert r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port))["bob@b.test"]["class"] == "ok"
    cmds = [c for _, c, _ in peer.commands]
    assert cmds[:3] == ["EHLO", "HELO", "MAIL"]
    (msg,) = peer.wait(1)
    assert "BODY=8BITMIME" not in msg.mail_options  # HELO: no extensions used


def test_some_recipients_succeed_while_others_fail(remote, smtp_peers):
    peer = smtp_peers.start("mixed", rcpt={"gone@b.test": "550 5.1.1 no such user",
                                           "full@b.test": "452 4.2.2 mailbox full",
                                           "*": "250 2.1.5 ok"})
    r = remote()
    qid = r.inject("ok1@b.test", "gone@b.test", "full@b.test", "ok2@b.test")
    res = r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port))
    assert res["ok1@b.test"]["class"] == res["ok2@b.test"]["class"] == "ok"
    assert res["gone@b.test"]["class"] == "permanent"
    assert "550 5.1.1 no such user" in res["gone@b.test"]["reply"]
    assert res["full@b.test"]["class"] == "temporary"
    (msg,) = peer.wait(1)
    assert sorted(msg.rcpt_tos) == ["ok1@b.test", "ok2@b.test"]
    assert peer.connections == 1


def test_size_over_the_server_limit_is_permanent_for_that_host(remote, smtp_peers):
    small = smtp_peers.start("small", size_limit=200)
    big = smtp_peers.start("big")
    r = remote()
    qid = r.inject("bob@b.test", body="Subject: big\n\n" + "x" * 70 + "\n" * 10)
    hop_small = "[%s]:%d" % (small.ip, smtp_peers.port)
    res = r.one("%s %s" % (qid, hop_small))["bob@b.test"]
    assert res["class"] == "permanent" and "exceeds size limit 200" in res["reply"]
    assert small.received() == []
    # another host after it takes the message in the same attempt
    res = r.one("%s %s,[%s]:%d" % (qid, hop_small, big.ip, smtp_peers.port))["bob@b.test"]
    assert res["class"] == "ok"
    (msg,) = big.wait(1)
    assert any(o.startswith("SIZE=") for o in msg.mail_options)


# ------------------------------------------------------ MX and addresses


def test_three_mx_refuse_554_good_delivered_by_the_third(remote, dns, smtp_peers):
    dead = smtp_peers.refusing()
    denied = smtp_peers.start("mx2", greeting="554 5.7.1 your IP is denied")
    good = smtp_peers.start("mx3")
    dns.mx("b.test", [(10, "mx1.b.test"), (20, "mx2.b.test"), (30, "mx3.b.test")], ttl=60)
    dns.a("mx1.b.test", dead)
    dns.a("mx2.b.test", denied.ip)
    dns.a("mx3.b.test", good.ip)
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s b.test" % qid)["bob@b.test"]
    assert res["class"] == "ok"
    assert res["relay"] == "mx3.b.test[%s]:%d" % (good.ip, smtp_peers.port)
    assert denied.connections == 1 and good.connections == 1
    assert len(good.wait(1)) == 1


def test_every_mx_down_all_temporary(remote, dns, smtp_peers):
    one, two = smtp_peers.refusing(), smtp_peers.refusing()
    dns.mx("b.test", [(10, "mx1.b.test"), (20, "mx2.b.test")])
    dns.a("mx1.b.test", one)
    dns.a("mx2.b.test", two)
    r = remote()
    qid = r.inject("bob@b.test", "carol@b.test")
    res = r.one("%s b.test" % qid)
    assert [v["class"] for v in res.values()] == ["temporary", "temporary"]
    assert all("Connection refused" in v["reply"] and "mx2.b.test" in v["reply"]
               for v in res.values())
    # SPEC 5 rule 5: the router may take the site path next
    assert [v["flags"] for v in res.values()] == [ALL_MX_TEMP, ALL_MX_TEMP]


ALL_MX_TEMP = 1  # common/remote_proto.h RP_FLAG_ALL_MX_TEMP


def test_all_mx_temp_only_for_what_every_mx_host_deferred(remote, dns, smtp_peers):
    """The flag is a fact per recipient: one that an MX host accepted or
    refused for good has none; one that every MX host deferred has it, also
    when a next hop after the MX hop deferred it as well; a next hop that
    delivers after the MX hop clears it (the result is not temporary)."""
    script = dict(rcpt={"full@b.test": "452 4.2.2 mailbox full",
                        "gone@b.test": "550 5.1.1 no such user", "*": "250 2.1.5 ok"})
    one, two = smtp_peers.start("mx1", **script), smtp_peers.start("mx2", **script)
    dns.mx("b.test", [(10, "mx1.b.test"), (20, "mx2.b.test")])
    dns.a("mx1.b.test", one.ip)
    dns.a("mx2.b.test", two.ip)
    dead = smtp_peers.refusing()
    r = remote()
    qid = r.inject("ok@b.test", "full@b.test", "gone@b.test")
    res = r.one("%s b.test" % qid)
    assert {a: (v["class"], v["flags"]) for a, v in res.items()} == {
        "ok@b.test": ("ok", 0), "full@b.test": ("temporary", ALL_MX_TEMP),
        "gone@b.test": ("permanent", 0)}
    assert one.connections == 1 and two.connections == 1  # full@ went on to mx2
    qid = r.inject("full@b.test")
    res = r.one("%s b.test,[%s]:%d" % (qid, dead, smtp_peers.port))["full@b.test"]
    assert (res["class"], res["flags"]) == ("temporary", ALL_MX_TEMP), res
    assert "Connection refused" in res["reply"]  # the last outcome is the reason
    good = smtp_peers.start("hub")
    res = r.one("%s b.test,[%s]:%d" % (qid, good.ip, smtp_peers.port))["full@b.test"]
    assert (res["class"], res["flags"]) == ("ok", 0), res


def test_all_mx_temp_not_without_an_mx_host_tried(remote, dns, smtp_peers):
    """No MX host failed: a `[host]` or `[ip]` next hop, a DNS failure, and
    a loop (D5) give temporary results without the flag."""
    dead = smtp_peers.refusing()
    dns.a("relay.test", dead)
    dns.mode("sf.test", "servfail")
    dns.mx("self.test", [(10, "mta.onehop.test")])  # our myhostname
    dns.a("mta.onehop.test", "127.0.0.1")
    r = remote()
    qid = r.inject("bob@b.test")
    for hop in ("[relay.test]:%d" % smtp_peers.port, "[%s]:%d" % (dead, smtp_peers.port),
                "sf.test", "self.test"):
        res = r.one("%s %s" % (qid, hop), timeout=40)["bob@b.test"]
        assert (res["class"], res["flags"]) == ("temporary", 0), (hop, res)


def test_one_mx_host_nxdomain_another_fine(remote, dns, smtp_peers):
    good = smtp_peers.start("mx2")
    dns.mx("b.test", [(10, "gone.b.test"), (20, "mx2.b.test")])
    dns.a("mx2.b.test", good.ip)
    r = remote()
    qid = r.inject("bob@b.test")
    assert r.one("%s b.test" % qid)["bob@b.test"]["class"] == "ok"
    assert len(good.wait(1)) == 1


def test_every_mx_host_nxdomain_is_permanent(remote, dns):
    """D4 (b): every MX host NXDOMAIN bounces (one of them NXDOMAIN does not,
    test_one_mx_host_nxdomain_another_fine)."""
    dns.mx("b.test", [(10, "gone1.b.test"), (20, "gone2.b.test")])
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s b.test" % qid)["bob@b.test"]
    assert res["class"] == "permanent" and "Host not found" in res["reply"], res
    assert res["relay"] == "none" and res["flags"] == 0


@pytest.mark.parametrize("setup,cls,reason", [
    ("null_mx", "permanent", "null MX"),
    ("nxdomain", "permanent", "Host not found"),
    ("servfail", "temporary", "try again"),
    ("timeout", "temporary", "try again"),
])
def test_dns_failures(remote, dns, setup, cls, reason):
    if setup == "null_mx":
        dns.null_mx("b.test")
    elif setup == "nxdomain":
        dns.a("other.test", "127.0.0.9")  # b.test itself does not exist
        dns.mode("b.test", "nxdomain")
    else:
        dns.mode("b.test", setup)
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s b.test" % qid, timeout=40)["bob@b.test"]
    assert res["class"] == cls and reason in res["reply"], res
    assert res["relay"] == "none"
    (line,) = [l for l in r.mta.log(service="remote", qid=qid) if l.status]
    assert line.status == {"permanent": "bounced", "temporary": "deferred"}[cls]


def test_mx_loops_back_to_myself(remote, dns, smtp_peers):
    dns.mx("b.test", [(10, "mta.onehop.test")])  # our myhostname
    dns.a("mta.onehop.test", "127.0.0.1")
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s b.test" % qid)["bob@b.test"]
    assert res["class"] == "temporary" and "loops back to myself" in res["reply"]


def test_only_better_preferences_than_ours(remote, dns, smtp_peers):
    better = smtp_peers.start("better")
    dns.mx("b.test", [(10, "better.b.test"), (20, "mta.onehop.test")])
    dns.a("better.b.test", better.ip)
    dns.a("mta.onehop.test", "127.0.0.1")
    r = remote()
    qid = r.inject("bob@b.test")
    assert r.one("%s b.test" % qid)["bob@b.test"]["class"] == "ok"


def test_smtp_max_addresses_bounds_the_attempt(remote, dns, smtp_peers):
    peers = [smtp_peers.start("mx%d" % i, greeting="421 4.3.2 busy") for i in range(3)]
    dns.mx("b.test", [(10 * (i + 1), "mx%d.b.test" % i) for i in range(3)])
    for i, p in enumerate(peers):
        dns.a("mx%d.b.test" % i, p.ip)
    r = remote({"smtp_max_addresses": "2"})
    qid = r.inject("bob@b.test")
    res = r.one("%s b.test" % qid)["bob@b.test"]
    assert res["class"] == "temporary"
    assert [p.connections for p in peers] == [1, 1, 0]
    # the hosts past the cut are never reached by a direct attempt: the
    # flag is set, so that the router may take the site path (rule 5)
    assert res["flags"] == ALL_MX_TEMP


def test_host_next_hop_uses_addresses_only(remote, dns, smtp_peers):
    peer = smtp_peers.start("relay")
    dns.a("relay.test", peer.ip)
    dns.mx("relay.test", [(10, "elsewhere.test")])  # must not be used
    r = remote()
    qid = r.inject("bob@b.test")
    res = r.one("%s [relay.test]" % qid)["bob@b.test"]
    assert res["class"] == "ok"
    assert res["relay"] == "relay.test[%s]:%d" % (peer.ip, smtp_peers.port)
    assert dns.count("relay.test", "MX") == 0


def test_large_mx_answers_over_tcp(remote, dns, smtp_peers):
    good = smtp_peers.start("mx")
    r = remote({"dns_lookup_timeout": "20s", "dns_timeout": "8s"})
    for domain, n in (("big.test", 40), ("huge.test", 900)):
        # the good host first; then n more with long names: > 1,500 bytes / ~60 KB
        hosts = [(0, "mx.%s" % domain)] + [
            (10 + i, "host-%04d-%s.%s" % (i, "x" * 40, domain)) for i in range(n)]
        dns.mx(domain, hosts)
        dns.a("mx.%s" % domain, good.ip)
        qid = r.inject("bob@%s" % domain)
        res = r.one("%s %s" % (qid, domain), timeout=40)["bob@%s" % domain]
        assert res["class"] == "ok", res
        assert dns.count(domain, "MX", "tcp") >= 1
    assert len(good.wait(2)) == 2


def test_equal_preferences_and_addresses_spread(remote, dns, smtp_peers):
    a, b = smtp_peers.start("a"), smtp_peers.start("b")
    dns.mx("b.test", [(10, "mxa.b.test"), (10, "mxb.b.test")])
    dns.a("mxa.b.test", a.ip)
    dns.a("mxb.b.test", b.ip)
    c, d = smtp_peers.start("c"), smtp_peers.start("d")
    dns.mx("c.test", [(10, "mx.c.test")])
    dns.a("mx.c.test", [c.ip, d.ip])
    r = remote()
    qid_b = r.inject("bob@b.test")
    qid_c = r.inject("carl@c.test")
    results, done = r.drive(["%s b.test" % qid_b] * 60 + ["%s c.test" % qid_c] * 60,
                            timeout=120)
    assert len(done) == 120 and all(x["class"] == "ok" for x in results)
    for one, two in ((a, b), (c, d)):
        n1, n2 = len(one.received()), len(two.received())
        assert n1 + n2 == 60 and n1 >= 12 and n2 >= 12, (n1, n2)


# ------------------------------------------------------------- SMTPUTF8

NO_SMTPUTF8 = "250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000"
UTF8_RCPT = "j\u00f6rg@b.test"


def test_smtputf8_used_when_the_envelope_needs_it(remote, smtp_peers):
    peer = smtp_peers.start("utf8")  # aiosmtpd offers SMTPUTF8
    r = remote()
    qid = r.inject_utf8(UTF8_RCPT, "bob@b.test")
    res = r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port))
    assert res[UTF8_RCPT]["class"] == res["bob@b.test"]["class"] == "ok", res
    (msg,) = peer.wait(1)
    assert "SMTPUTF8" in msg.mail_options
    assert sorted(msg.rcpt_tos) == sorted([UTF8_RCPT, "bob@b.test"])
    # an ASCII envelope and header: no SMTPUTF8
    qid = r.inject("carol@b.test")
    r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port))
    assert "SMTPUTF8" not in peer.wait(2)[1].mail_options


def test_utf8_recipient_to_a_server_without_smtputf8(remote, smtp_peers):
    """RFC 6531 3.4: 5.6.7 for that host only; the ASCII recipients go on in
    the same session, and a next host that offers SMTPUTF8 takes the other."""
    plain = smtp_peers.start("plain", ehlo=NO_SMTPUTF8)
    utf8 = smtp_peers.start("utf8")
    r = remote()
    qid = r.inject_utf8(UTF8_RCPT, "bob@b.test")
    hop_plain = "[%s]:%d" % (plain.ip, smtp_peers.port)
    res = r.one("%s %s" % (qid, hop_plain))
    assert res["bob@b.test"]["class"] == "ok"
    assert res[UTF8_RCPT]["class"] == "permanent", res
    assert res[UTF8_RCPT]["reply"] == (
        "5.6.7 SMTPUTF8 is required, but was not offered by host %s[%s]:%d" % (
            plain.ip, plain.ip, smtp_peers.port))
    (msg,) = plain.wait(1)
    assert msg.rcpt_tos == ["bob@b.test"] and "SMTPUTF8" not in msg.mail_options
    assert plain.connections == 1
    (line,) = [l for l in r.mta.log(service="remote", qid=qid)
               if l.status and "rg@" in l.fields["to"]]
    assert line.status == "bounced"
    res = r.one("%s %s,[%s]:%d" % (qid, hop_plain, utf8.ip, smtp_peers.port))
    assert res[UTF8_RCPT]["class"] == "ok", res
    (msg,) = utf8.wait(1)
    assert msg.rcpt_tos == [UTF8_RCPT] and "SMTPUTF8" in msg.mail_options


def test_utf8_sender_to_a_server_without_smtputf8(remote, smtp_peers):
    plain = smtp_peers.start("plain", ehlo=NO_SMTPUTF8)
    r = remote()
    qid = r.inject_utf8("bob@b.test", "carol@b.test", sender="j\u00f6rg@a.test")
    res = r.one("%s [%s]:%d" % (qid, plain.ip, smtp_peers.port))
    assert [v["class"] for v in res.values()] == ["permanent", "permanent"], res
    assert all("5.6.7 SMTPUTF8 is required" in v["reply"] for v in res.values())
    assert plain.received() == []
    assert "MAIL" not in [c for _, c, _ in plain.commands]


def test_utf8_header_only(remote, smtp_peers):
    """UTF-8 in the header (RFC 6532) with an ASCII envelope: SMTPUTF8 where
    offered, else delivered as 8-bit text (as Postfix does)."""
    utf8 = smtp_peers.start("utf8")
    plain = smtp_peers.start("plain", ehlo=NO_SMTPUTF8)
    r = remote()
    body = "Subject: caf\u00e9\n\nhello\n".encode()
    qid = r.inject("bob@b.test", body=body)
    for peer, want in ((utf8, True), (plain, False)):
        res = r.one("%s [%s]:%d" % (qid, peer.ip, smtp_peers.port))["bob@b.test"]
        assert res["class"] == "ok", res
        (msg,) = peer.wait(1)
        assert ("SMTPUTF8" in msg.mail_options) == want
        assert "caf\u00e9".encode() in msg.data
    # 8-bit bytes in the body only are not a reason for SMTPUTF8
    qid = r.inject("bob@b.test", body="Subject: x\n\ncaf\u00e9\n".encode())
    r.one("%s [%s]:%d" % (qid, utf8.ip, smtp_peers.port))
    assert "SMTPUTF8" not in utf8.wait(2)[1].mail_options


# ------------------------------------------------------------ the master


def test_started_by_the_master_says_ready_and_stops(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    procs = {p["name"]: p for p in mta.status()["processes"]}
    assert procs["remote"]["state"] == "running", procs
    pid = procs["remote"]["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[0].endswith(b"onehop-remote")
    mta.stop()
    lines = [l.text for l in mta.log(service="remote")]
    assert any(t.startswith("started:") for t in lines), lines
    assert any(t.startswith("stopping (master)") for t in lines), lines
    assert lines[-1] == "stopped"


# ------------------------------------------------------ the SMTP dialogue


class RawPeer:
    """A hand-written SMTP server on 127.0.0.77 (one connection), to see
    what arrives in which read: with PIPELINING, MAIL, every RCPT and DATA
    must all be there before the first reply (one round trip)."""

    EHLO = (b"250-raw.test\r\n250-PIPELINING\r\n250-DSN\r\n250-8BITMIME\r\n"
            b"250 SIZE 1000000\r\n")

    def __init__(self, ehlo=EHLO):
        import socket
        import threading
        self.ehlo = ehlo
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.77", 0))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.envelope_burst = b""  # what was there when MAIL arrived, after a pause
        self.data = b""
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(10)
            f = conn.makefile("rb")
            conn.sendall(b"220 raw.test ESMTP\r\n")
            assert f.readline().startswith(b"EHLO ")
            conn.sendall(self.ehlo)
            first = f.readline()
            assert first.startswith(b"MAIL FROM:"), first
            time.sleep(0.5)  # everything pipelined has arrived by now
            conn.setblocking(False)
            rest = b""
            try:
                rest = f.read1(65536) or b""
            except BlockingIOError:
                pass
            conn.setblocking(True)
            conn.settimeout(10)
            self.envelope_burst = first + rest
            pending = [l + b"\r\n" for l in self.envelope_burst.split(b"\r\n") if l]
            in_data = False
            while True:
                line = pending.pop(0) if pending else f.readline()
                if not line:
                    break
                if in_data:
                    self.data += line
                    if line == b".\r\n":
                        conn.sendall(b"250 2.0.0 raw ok\r\n")
                        in_data = False
                elif line.startswith(b"DATA"):
                    conn.sendall(b"354 go\r\n")
                    in_data = True
                elif line.startswith(b"QUIT"):
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 2.1.5 ok\r\n")
            conn.close()
        except Exception as e:  # reported by the test
            self.error = e

    def close(self):
        self.thread.join(20)
        self.sock.close()
        assert self.error is None, self.error


def test_pipelining_one_round_trip_for_mail_rcpts_and_data(remote):
    peer = RawPeer()
    r = remote()
    rcpts = ["u%02d@b.test" % i for i in range(20)]
    qid = r.inject(*rcpts, body="Subject: 8bit\n\ncaf\xc3\xa9\n".encode("latin-1"))
    res = r.one("%s [127.0.0.77]:%d" % (qid, peer.port))
    peer.close()
    assert sorted(res) == rcpts and all(v["class"] == "ok" for v in res.values())
    lines = peer.envelope_burst.decode().split("\r\n")
    assert lines[0].startswith("MAIL FROM:<%s> SIZE=" % SENDER)
    assert lines[0].endswith(" BODY=8BITMIME")
    assert [l for l in lines[1:] if l] == ["RCPT TO:<%s>" % a for a in rcpts] + ["DATA"]
    assert peer.data.endswith(b"caf\xc3\xa9\r\n.\r\n")
    size = int(lines[0].split("SIZE=")[1].split()[0])
    assert size == len(peer.data) - 3  # the announced size: the content with CRLF


def test_without_pipelining_one_command_at_a_time(remote):
    peer = RawPeer(ehlo=b"250 raw.test\r\n")
    r = remote()
    qid = r.inject("a@b.test", "c@b.test")
    res = r.one("%s [127.0.0.77]:%d" % (qid, peer.port))
    peer.close()
    assert peer.envelope_burst.decode() == "MAIL FROM:<%s>\r\n" % SENDER
    assert all(v["class"] == "ok" for v in res.values())


def test_dsn_notify_and_orcpt_when_offered(remote):
    peer = RawPeer()
    r = remote()
    qid = r.inject("bob@b.test", args=("-N", "success,failure"))
    r.one("%s [127.0.0.77]:%d" % (qid, peer.port))
    peer.close()
    rcpt = [l for l in peer.envelope_burst.decode().split("\r\n") if l.startswith("RCPT")]
    assert rcpt == ["RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE"] or \
        rcpt[0].startswith("RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT="), rcpt


def timed_jobs(remote, conf, hop, n):
    """Seconds n jobs of one message to hop took, all delivered."""
    r = remote(conf)
    qid = r.inject("bob@b.test")
    t0 = time.monotonic()
    results, done = r.drive(["%s %s" % (qid, hop)] * n)
    assert len(done) == n and all(x["class"] == "ok" for x in results)
    return time.monotonic() - t0


def test_concurrency_per_destination(remote, smtp_peers):
    slow = smtp_peers.start("slow", data=Delay(0.6, "250 2.0.0 slow"))
    hop = "[%s]:%d" % (slow.ip, smtp_peers.port)
    one_at_a_time = timed_jobs(remote, {"remote_destination_concurrency": "1"}, hop, 4)
    at_once = timed_jobs(remote, {"remote_destination_concurrency": "20"}, hop, 4)
    assert one_at_a_time >= 4 * 0.6, one_at_a_time
    assert at_once < 2 * 0.6 + 1.0, at_once
    # overall: remote_concurrency bounds it the same way
    overall = timed_jobs(remote, {"remote_concurrency": "1"}, hop, 4)
    assert overall >= 4 * 0.6, overall


# ------------------------------------------------- connection reuse (D7)


def test_ten_messages_to_one_next_hop_one_connection(remote, smtp_peers):
    peer = smtp_peers.start("reuse")
    hop = "[%s]:%d" % (peer.ip, smtp_peers.port)
    r = remote({"remote_destination_concurrency": "1"})
    qids = [r.inject("bob@b.test") for _ in range(10)]
    results, done = r.drive(["%s %s" % (q, hop) for q in qids])
    assert len(done) == 10 and all(x["class"] == "ok" for x in results)
    assert len(peer.wait(10)) == 10
    assert peer.connections == 1 and peer.transactions == [10]
    uses = sorted(int(l.fields.get("conn_use", "1")) for l in r.mta.log(service="remote")
                  if l.status == "sent")
    assert uses == list(range(1, 11))
    assert [c for _, c, _ in peer.commands].count("RSET") >= 9


def test_reuse_limit_and_idle_time(remote, smtp_peers):
    peer = smtp_peers.start("limited")
    hop = "[%s]:%d" % (peer.ip, smtp_peers.port)
    r = remote({"remote_destination_concurrency": "1", "smtp_connection_reuse_limit": "3"})
    qids = [r.inject("bob@b.test") for _ in range(7)]
    results, done = r.drive(["%s %s" % (q, hop) for q in qids])
    assert len(done) == 7 and all(x["class"] == "ok" for x in results)
    peer.wait(7)
    assert peer.transactions == [3, 3, 1]
    one = smtp_peers.start("no-reuse")
    r1 = remote({"remote_destination_concurrency": "1", "smtp_connection_reuse_limit": "1"})
    qid = r1.inject("bob@b.test")
    r1.drive(["%s [%s]:%d" % (qid, one.ip, smtp_peers.port)] * 3)
    one.wait(3)
    assert one.connections == 3


def test_reuse_keeps_equal_preference_spreading(remote, dns, smtp_peers):
    a, b = smtp_peers.start("a"), smtp_peers.start("b")
    dns.mx("b.test", [(10, "mxa.b.test"), (10, "mxb.b.test")])
    dns.a("mxa.b.test", a.ip)
    dns.a("mxb.b.test", b.ip)
    r = remote({"remote_destination_concurrency": "2"})
    qid = r.inject("bob@b.test")
    results, done = r.drive(["%s b.test" % qid] * 60, timeout=120)
    assert len(done) == 60 and all(x["class"] == "ok" for x in results)
    n1, n2 = len(a.received()), len(b.received())
    assert n1 + n2 == 60 and n1 >= 12 and n2 >= 12, (n1, n2)
    assert a.connections + b.connections < 20  # connections were reused


def test_host_next_hop_follows_a_changed_address_after_its_ttl(remote, dns, smtp_peers):
    """D2: `[relay.test]:PORT` (as relayhost gives it) is asked again once
    its TTL (2 s) is over; nothing is resolved once and kept."""
    old, new = smtp_peers.start("old"), smtp_peers.start("new")
    dns.a("relay.test", old.ip, ttl=2)
    r = remote()
    qid = r.inject("bob@b.test")
    hop = "%s [relay.test]:%d" % (qid, smtp_peers.port)
    assert r.one(hop)["bob@b.test"]["relay"].startswith("relay.test[%s]" % old.ip)
    dns.remove("relay.test", "A")
    dns.a("relay.test", new.ip, ttl=2)
    assert r.one(hop)["bob@b.test"]["relay"].startswith("relay.test[%s]" % old.ip)  # cached
    time.sleep(2.5)
    assert r.one(hop)["bob@b.test"]["relay"].startswith("relay.test[%s]" % new.ip)
    assert len(old.received()) == 2 and len(new.wait(1)) == 1


# ------------------------------------------- per-destination concurrency


class LoopbackServer:
    """A TCP server on one 127.0.0.N for the hand-written peers below: each
    accepted connection goes to self.serve(conn, n) (n counts from 1), in a
    thread of its own; close() stops accepting and joins every thread."""

    def __init__(self, ip):
        import socket
        import threading
        self.lock = threading.Lock()
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind((ip, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self):
        import socket
        import threading
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with self.lock:
                self.accepted += 1
                n = self.accepted
                self.accepting(n)
            t = threading.Thread(target=self._serve_closing, args=(conn, n), daemon=True)
            t.start()
            self.threads.append(t)

    def accepting(self, n):
        """Called under self.lock as connection n is accepted."""

    def _serve_closing(self, conn, n):
        try:
            conn.settimeout(10)
            self.serve(conn, n)
        except OSError:
            pass
        finally:
            conn.close()
            self.closed(n)

    def closed(self, n):
        """Called once connection n is closed."""

    def close(self):
        self.stopping = True
        self.accepter.join(5)
        for t in self.threads:
            t.join(10)
        self.sock.close()


def smtp_session(conn, ehlo, after_data=None, on_starttls=None):
    """Serve one SMTP session on conn after its greeting: EHLO gets ehlo()
    (bytes); STARTTLS gets on_starttls(conn), the socket to go on with or
    None to stop; DATA gets 354, the data up to the dot, after_data(), 250;
    QUIT gets 221; anything else 250. The number of messages received."""
    f = conn.makefile("rb")
    messages = 0
    while True:
        line = f.readline()
        if not line or line.startswith(b"QUIT"):
            break
        if line.startswith(b"EHLO"):
            conn.sendall(ehlo())
        elif line.startswith(b"STARTTLS") and on_starttls:
            conn = on_starttls(conn)
            if conn is None:
                return messages
            f = conn.makefile("rb")
        elif line.startswith(b"DATA"):
            conn.sendall(b"354 go\r\n")
            while f.readline() not in (b".\r\n", b""):
                pass
            if after_data:
                after_data()
            messages += 1
            conn.sendall(b"250 2.0.0 ok\r\n")
        else:
            conn.sendall(b"250 ok\r\n")
    conn.sendall(b"221 bye\r\n")
    return messages


class CountingPeer(LoopbackServer):
    """SMTP on 127.0.0.78 that answers every fourth connection with `421
    too many connections` and counts the connections open at each accept."""

    def __init__(self, delay=0.3):
        self.delay = delay
        self.open = 0
        self.seen = []  # connections open (this one included) at each accept, in order
        super().__init__("127.0.0.78")

    def accepting(self, n):
        self.open += 1
        self.seen.append(self.open)

    def closed(self, n):
        with self.lock:
            self.open -= 1

    def serve(self, conn, n):
        if n % 4 == 0:
            # after the delay: the first burst opens whole before the
            # client hears its first 421, however slowly it runs
            time.sleep(self.delay)
            conn.sendall(b"421 4.7.0 too many connections\r\n")
            return
        conn.sendall(b"220 counting.test\r\n")
        smtp_session(conn, lambda: b"250 counting.test\r\n",
                     after_data=lambda: time.sleep(self.delay))


def test_421_shrinks_the_destination_concurrency_and_nothing_bounces(remote):
    peer = CountingPeer()
    r = remote({"remote_destination_concurrency": "20", "smtp_connection_reuse_limit": "1"})
    qid = r.inject("bob@b.test")
    try:
        results, done = r.drive(["%s [127.0.0.78]:%d" % (qid, peer.port)] * 40, timeout=90)
    finally:
        peer.close()
    assert len(done) == 40
    classes = [x["class"] for x in results]
    assert "permanent" not in classes
    assert classes.count("ok") >= 25 and classes.count("temporary") >= 1
    assert all("421 4.7.0 too many connections" in x["reply"]
               for x in results if x["class"] == "temporary")
    first_burst, later = peer.seen[:20], peer.seen[25:]
    assert max(first_burst) >= 10, peer.seen  # the ceiling of 20 at first
    # then the window it learned (the peer counts a connection until its
    # thread has closed it, so a finished one may still be counted)
    assert later and max(later) <= 8 and sorted(later)[len(later) // 2] <= 4, peer.seen
    assert any("concurrency window down to 1" in l for l in r.mta.log_lines())


def test_destination_rate_spaces_messages_evenly(remote, smtp_peers):
    peer = smtp_peers.start("rated")
    hop = "[%s]:%d" % (peer.ip, smtp_peers.port)
    r = remote({"remote_destination_rate": "4"})  # one start every 250 ms
    qid = r.inject("bob@b.test")
    t0 = time.monotonic()
    results, done = r.drive(["%s %s" % (qid, hop)] * 8)
    took = time.monotonic() - t0
    assert len(done) == 8 and all(x["class"] == "ok" for x in results)
    times = sorted(m.time for m in peer.wait(8))
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.15, gaps  # no burst
    assert took >= 7 * 0.25 - 0.05, took
    # another destination is not held back by this one's rate
    other = smtp_peers.start("other")
    results, done = r.drive(["%s %s" % (qid, hop)] * 4 +
                            ["%s [%s]:%d" % (qid, other.ip, smtp_peers.port)] * 4)
    assert len(done) == 8
    times = sorted(m.time for m in other.wait(4))
    assert times[-1] - times[0] < 7 * 0.25, times


# -------------------------------------------------------------- STARTTLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate made for the test (openssl req)."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=tls.test"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TLSPeer(LoopbackServer):
    """SMTP with STARTTLS on 127.0.0.79: offer (offer=False: do not), and
    after the 220 either do the TLS handshake or (broken=True) send bytes
    that are no TLS. Records per connection whether TLS was used (its
    version) and whether a message was delivered."""

    def __init__(self, certificate, offer=True, broken=False):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*map(str, certificate))
        self.offer, self.broken = offer, broken
        self.sessions = []  # (tls version or None, delivered), in connection order
        super().__init__("127.0.0.79")

    def serve(self, conn, n):
        version = []

        def ehlo():
            offer = b"250-STARTTLS\r\n" if self.offer and not version else b""
            return b"250-tls.test\r\n" + offer + b"250 8BITMIME\r\n"

        def starttls(plain):
            plain.sendall(b"220 2.0.0 go ahead\r\n")
            if self.broken:
                plain.sendall(b"this is not TLS\r\n" * 20)
                return None
            wrapped = self.ctx.wrap_socket(plain, server_side=True)
            version.append(wrapped.version())
            return wrapped

        conn.sendall(b"220 tls.test\r\n")
        delivered = smtp_session(conn, ehlo, on_starttls=starttls) > 0
        with self.lock:
            if delivered or version or self.broken:
                self.sessions.append((version[0] if version else None, delivered))


@pytest.mark.parametrize("policy", ["may", "encrypt"])
def test_starttls_used_when_offered(remote, certificate, policy):
    peer = TLSPeer(certificate)
    r = remote({"smtp_tls": policy})
    qid = r.inject("bob@b.test")
    try:
        res = r.one("%s [127.0.0.79]:%d" % (qid, peer.port))["bob@b.test"]
    finally:
        peer.close()
    assert res["class"] == "ok", res
    assert res["tls"].startswith("TLSv1."), res
    assert peer.sessions == [(res["tls"].split()[0], True)]
    assert any(re.search(r"TLS connection established to .*: TLSv1\.\d \S+", l)
               for l in r.mta.log_lines())


def test_encrypt_without_starttls_is_temporary(remote, certificate):
    peer = TLSPeer(certificate, offer=False)
    r = remote({"smtp_tls": "encrypt"})
    qid = r.inject("bob@b.test")
    try:
        res = r.one("%s [127.0.0.79]:%d" % (qid, peer.port))["bob@b.test"]
    finally:
        peer.close()
    assert res["class"] == "temporary" and "did not offer STARTTLS" in res["reply"], res
    assert peer.sessions == []  # nothing was sent in clear text


def test_may_retries_in_clear_text_once_after_a_failed_handshake(remote, certificate):
    peer = TLSPeer(certificate, broken=True)
    r = remote({"smtp_tls": "may"})
    qid = r.inject("bob@b.test")
    try:
        res = r.one("%s [127.0.0.79]:%d" % (qid, peer.port))["bob@b.test"]
    finally:
        peer.close()
    assert res["class"] == "ok" and res["tls"] == "none", res
    # the broken handshake, then the same host in clear text
    assert len(peer.sessions) == 2 and peer.sessions[1] == (None, True), peer.sessions
    r2 = remote({"smtp_tls": "encrypt"})
    peer = TLSPeer(certificate, broken=True)
    qid = r2.inject("bob@b.test")
    try:
        res = r2.one("%s [127.0.0.79]:%d" % (qid, peer.port))["bob@b.test"]
    finally:
        peer.close()
    assert res["class"] == "temporary" and "TLS with" in res["reply"], res
    assert len(peer.sessions) == 1
