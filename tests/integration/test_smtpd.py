"""onehop-smtpd black-box tests (issue 13; SPEC 1, 2, 3, 7, 8): the real
server started by `onehop start` (the master passes it the listening socket
and its channel to `onehop-queue --server`), spoken to by real clients
(Python's smtplib, swaks, msmtp, raw sockets for what no polite client
sends), relaying to scripted aiosmtpd peers through the real router and
onehop-remote.

Every message the server says 250 to must be in the queue (or delivered),
and every one it refuses must not be: each test checks both sides.
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from dnslib import PTR

from fixtures.paths import onehop_bin as onehop_bin_path

RUN_AS = "nobody" if os.geteuid() == 0 else None
CLIENT_IP = "127.0.0.9"  # outside mynetworks = 127.0.0.1/32 in the relay tests


# ----------------------------------------------------------------- helpers


@pytest.fixture
def mta(onehop, smtp_peers):
    """A started instance whose routes send relay.test and remote.test to a
    scripted peer (mta.peer)."""
    made = {}

    def make(conf=None, **kwargs):
        if not (onehop_bin_path() / "onehop-smtpd").is_file():
            pytest.fail("bin/onehop-smtpd is missing: build it first", pytrace=False)
        peer = smtp_peers.start("sink")
        routes = "relay.test [%s]\nremote.test [%s]\n" % (peer.ip, peer.ip)
        m = onehop(conf=conf, routes=routes, run_as=RUN_AS, **kwargs)
        m.peer = peer
        m.start()
        made["m"] = m
        return m

    return make


class Raw:
    """An SMTP client that sends exactly the bytes it is given."""

    def __init__(self, address, source=None, timeout=15.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if source:
            self.s.bind((source, 0))
        self.s.connect(address)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        self.s.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        """(code, text of the last line) of one reply."""
        while True:
            line = self._line()
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), line[4:].decode("latin-1")

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=10.0):
        """True once the server closed the connection (after any replies)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def logged(m, text, timeout=15.0):
    """Wait for a log line containing text (literally)."""
    return m.wait_log(re.escape(text), timeout=timeout)


def queued(m):
    """The queue's messages, each once (a listing made while the router
    moves a file from incoming/ to active/ may show it in both)."""
    seen = {}
    for msg in m.queue()["messages"]:
        seen.setdefault(msg["id"], msg)
    return list(seen.values())


def wait_queued(m, n, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = queued(m)
        if len(msgs) >= n:
            return msgs
        time.sleep(0.1)
    return queued(m)


def codes(replies):
    return [c for c, _ in replies]


# ----------------------------------------------------------------- sessions


def test_smtplib_session_with_dsn_parameters(mta):
    m = mta()
    with smtplib.SMTP(*m.smtp_address, local_hostname="client.test", timeout=15) as c:
        code, text = c.ehlo()
        assert code == 250
        for ext in (b"PIPELINING", b"SIZE 52428800", b"8BITMIME", b"ENHANCEDSTATUSCODES",
                    b"DSN", b"SMTPUTF8"):
            assert ext in text
        assert c.sendmail("alice@a.test", ["bob@local.test", "carol@local.test"],
                          b"Subject: one\r\n\r\nbody\r\n", mail_options=["RET=HDRS", "ENVID=e1"],
                          rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@local.test"]) == {}
    msgs = wait_queued(m, 1)
    assert len(msgs) == 1
    assert msgs[0]["sender"] == "alice@a.test"
    assert sorted(r["address"] for r in msgs[0]["recipients"]) == ["bob@local.test",
                                                                    "carol@local.test"]
    qid = msgs[0]["id"]
    logged(m, "%s: client=unknown[127.0.0.1]" % qid)
    logged(m, "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6")
    logged(m, "onehop/smtpd[")
    logged(m, "]: connect from unknown[127.0.0.1]")


def test_fully_pipelined_session(mta):
    m = mta()
    r = Raw(m.smtp_address)
    assert r.greeting[0] == 220
    r.send(b"EHLO client.test\r\n")
    assert r.reply()[0] == 250
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\nRCPT TO:<c@local.test>\r\nDATA\r\n")
    assert codes(r.replies(4)) == [250, 250, 250, 354]
    r.send(b"Subject: p\r\n\r\nx\r\n.\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<d@local.test>\r\n"
           b"DATA\r\n")
    got = r.replies(4)
    assert codes(got) == [250, 250, 250, 354]
    assert "queued as" in got[0][1]
    r.send(b"y\r\n.\r\nQUIT\r\n")
    assert codes(r.replies(2)) == [250, 221]
    r.close()
    assert len(wait_queued(m, 2)) == 2


def _socket_option_in(pid, local, peer, level, option):
    """getsockopt on process pid's TCP socket from local to peer (both
    (ip, port)), through pidfd_getfd(2) (root)."""
    import ctypes
    import struct as st

    def hexaddr(a):
        return "%08X:%04X" % (st.unpack("<I", socket.inet_aton(a[0]))[0], a[1])

    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == hexaddr(local) and f[2] == hexaddr(peer):
            inode = f[9]
    assert inode, "no socket %s -> %s" % (local, peer)
    fd = [int(e.name) for e in os.scandir("/proc/%d/fd" % pid)
          if os.readlink(e.path) == "socket:[%s]" % inode][0]
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        assert copy >= 0, os.strerror(ctypes.get_errno())
        try:
            s = socket.socket(fileno=copy)
            try:
                return s.getsockopt(level, option)
            finally:
                s.detach()
        finally:
            os.close(copy)
    finally:
        os.close(pidfd)


@pytest.mark.skipif(os.geteuid() != 0, reason="pidfd_getfd of the server's socket needs root")
def test_accepted_sessions_have_tcp_nodelay(mta):
    """Replies are not held back by Nagle: the listener's TCP_NODELAY
    (set once) is on every accepted session's socket."""
    m = mta()
    smtpd = [p["pid"] for p in m.status()["processes"] if p["name"] == "smtpd"][0]
    r = Raw(m.smtp_address)
    assert r.greeting[0] == 220
    server_side = r.s.getpeername()
    assert _socket_option_in(int(smtpd), server_side, r.s.getsockname(), socket.IPPROTO_TCP,
                             socket.TCP_NODELAY) != 0
    assert r.cmd("QUIT")[0] == 221
    r.close()


def test_vrfy_rset_noop_help(mta):
    m = mta()
    r = Raw(m.smtp_address)
    assert r.cmd("VRFY bob")[0] == 252
    assert r.cmd("HELP")[0] == 214
    assert r.cmd("NOOP")[0] == 250
    assert r.cmd("EHLO c.test")[0] == 250
    assert r.cmd("MAIL FROM:<a@a.test>")[0] == 250
    assert r.cmd("RCPT TO:<b@local.test>")[0] == 250
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("DATA")[0] == 503  # the transaction is gone
    assert r.cmd("RCPT TO:<b@local.test>")[0] == 503
    assert r.cmd("QUIT")[0] == 221
    r.close()
    time.sleep(0.3)
    assert queued(m) == []


def test_swaks_pipelined_and_msmtp(mta):
    m = mta()
    host, port = m.smtp_address
    p = subprocess.run(["swaks", "--server", host, "--port", str(port), "--pipeline",
                        "--from", "a@a.test", "--to", "bob@local.test", "--helo", "swaks.test",
                        "--body", "via swaks"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert b"PIPELINING" in p.stdout and b"queued as" in p.stdout
    p = subprocess.run(["msmtp", "--host", host, "--port", str(port), "--auth=off", "--tls=off",
                        "--from", "m@a.test", "bob@local.test"],
                       input=b"Subject: msmtp\r\n\r\nvia msmtp\r\n", capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    msgs = wait_queued(m, 2)
    assert sorted(x["sender"] for x in msgs) == ["a@a.test", "m@a.test"]


# ------------------------------------------------------------------- limits


def test_recipient_and_size_limits(mta):
    m = mta(conf={"smtpd_max_recipients": "2", "message_size_limit": "20000"})
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    assert r.cmd("MAIL FROM:<a@a.test> SIZE=30000")[0] == 552
    assert r.cmd("MAIL FROM:<a@a.test> SIZE=1000")[0] == 250
    assert r.cmd("RCPT TO:<b1@local.test>")[0] == 250
    assert r.cmd("RCPT TO:<b2@local.test>")[0] == 250
    code, text = r.cmd("RCPT TO:<b3@local.test>")
    assert (code, text[:5]) == (452, "4.5.3")
    assert r.cmd("DATA")[0] == 354
    r.send((b"x" * 998 + b"\r\n") * 30 + b".\r\n")  # 30 KB: over the limit
    code, text = r.reply()
    assert (code, text[:5]) == (552, "5.3.4")
    assert r.cmd("NOOP")[0] == 250  # the session goes on
    r.close()
    time.sleep(0.5)
    assert queued(m) == []


def test_timeout(mta):
    m = mta(conf={"smtpd_timeout": "1s"})
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    code, text = r.reply()  # nothing sent: the server gives up
    assert code == 421 and "4.4.2" in text
    assert r.closed()


def test_connection_limits_and_error_counter(mta):
    m = mta(conf={"smtpd_client_connection_limit": "3"})
    held = [Raw(m.smtp_address) for _ in range(3)]
    assert all(h.greeting[0] == 220 for h in held)
    extra = Raw(m.smtp_address)
    assert extra.greeting[0] == 421 and "too many connections" in extra.greeting[1]
    assert extra.closed()
    held.pop().close()
    time.sleep(0.3)
    again = Raw(m.smtp_address)
    assert again.greeting[0] == 220
    # the error counter: an abusive client gets 421 and is closed
    again.send(b"BOGUS\r\n" * 30)
    got = []
    while True:
        code, _ = again.reply()
        got.append(code)
        if code == 421:
            break
    assert got.count(502) == 20 and again.closed()  # the 20th error, then 421
    for h in held:
        h.close()


def test_total_connection_limit(mta):
    m = mta(conf={"smtpd_connection_limit": "3"})
    # three clients from three addresses: only the total limit can refuse
    held = [Raw(m.smtp_address, source="127.0.0.%d" % i) for i in (2, 3, 4)]
    assert all(h.greeting[0] == 220 for h in held)
    extra = Raw(m.smtp_address, source="127.0.0.5")
    assert extra.greeting == (421, "4.7.0 mta.onehop.test Error: too many connections")
    assert extra.closed()
    logged(m, "refused unknown[127.0.0.5]: Error: too many connections")
    assert held[0].cmd("NOOP")[0] == 250  # the others are untouched
    held.pop().close()
    deadline = time.time() + 10
    while True:  # the server notices the close on its next loop turn
        again = Raw(m.smtp_address, source="127.0.0.5")
        if again.greeting[0] == 220 or time.time() > deadline:
            break
        again.close()
        time.sleep(0.2)
    assert again.greeting[0] == 220  # a new client is served
    again.cmd("EHLO c.test")
    again.cmd("MAIL FROM:<a@a.test>")
    again.cmd("RCPT TO:<b@local.test>")
    assert again.cmd("DATA")[0] == 354
    assert again.cmd("Subject: t\r\n\r\nt\r\n.")[0] == 250
    for h in held + [again]:
        h.close()
    assert len(wait_queued(m, 1)) >= 1


def test_reload_with_sessions_open(mta):
    m = mta(conf={"message_size_limit": "100000"})
    old = Raw(m.smtp_address, source=CLIENT_IP)
    code, _ = old.cmd("EHLO before.test")
    assert code == 250
    assert old.cmd("MAIL FROM:<a@a.test>")[0] == 250
    assert old.cmd("RCPT TO:<x@remote.test>")[0] == 250  # 127.0.0.9 is in mynetworks
    assert old.cmd("DATA")[0] == 354
    old.send(b"Subject: across a reload\r\n\r\n")
    m.set_conf(mynetworks="127.0.0.1/32", message_size_limit="50000",
               smtpd_client_connection_limit="1")
    r = m.cmd("reload")
    assert r.rc == 0, r.err
    logged(m, "onehop/smtpd[")
    m.wait_log(r"onehop/smtpd\[\d+\]: reloaded", timeout=15)
    # the open session goes on and its message is taken
    old.send(b"begun before the reload\r\n.\r\n")
    code, text = old.reply()
    assert code == 250 and "queued as" in text
    # a new session gets the new settings: the SIZE, relay and per-client limits
    new = Raw(m.smtp_address, source="127.0.0.10")
    new.send(b"EHLO after.test\r\n")
    lines = []
    while True:
        line = new._line().decode()
        lines.append(line)
        if line[3:4] == " ":
            break
    assert "250-SIZE 50000" in lines
    assert new.cmd("MAIL FROM:<a@a.test>")[0] == 250
    assert new.cmd("RCPT TO:<x@remote.test>")[0] == 554  # 127.0.0.10 no longer relays
    second = Raw(m.smtp_address, source="127.0.0.10")
    assert second.greeting[0] == 421  # one connection per client now
    second.close()
    assert old.cmd("QUIT")[0] == 221  # the old session ends normally
    old.close()
    new.close()
    msg = m.peer.wait(1, timeout=30)[0]
    assert b"begun before the reload" in msg.data


def test_long_lines_and_floods(mta):
    m = mta()
    r = Raw(m.smtp_address)
    code, text = r.cmd("NOOP " + "a" * 600)  # over 512 bytes
    assert code == 500 and "5.5.0" in text
    assert r.cmd("EHLO c.test")[0] == 250  # sane afterwards
    r.send(b"x" * 100 * 1024)  # 100 KB without CRLF
    code, text = r.reply()
    assert code == 421
    assert r.closed()
    # a 2 MB header line inside DATA: refused, nothing queued
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    r.cmd("MAIL FROM:<a@a.test>")
    r.cmd("RCPT TO:<b@local.test>")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: " + b"h" * (2 << 20) + b"\r\n\r\nbody\r\n.\r\n")
    code, text = r.reply()
    assert code == 500 and "1000" in text
    assert r.cmd("NOOP")[0] == 250
    r.close()
    # a new client is served
    assert m.submit("a@a.test", "b@local.test", b"Subject: ok\r\n\r\nok\r\n") == {}
    msgs = wait_queued(m, 1)
    assert len(msgs) == 1


# -------------------------------------------------------------------- relay


def test_relay_rules_from_outside_mynetworks(mta):
    m = mta(conf={"mynetworks": "127.0.0.1/32", "relay_domains": "relay.test",
                  "local_users": "passwd"})
    r = Raw(m.smtp_address, source=CLIENT_IP)
    r.cmd("EHLO outside.test")
    assert r.cmd("MAIL FROM:<a@a.test>")[0] == 250
    for rcpt in ("x@remote.test", "x%remote.test@local.test", "@local.test:x@remote.test",
                 "x@remote.test.", "x!remote.test@local.test", '"x@remote.test"@local.test'):
        code, text = r.cmd("RCPT TO:<%s>" % rcpt)
        assert code in (501, 554), (rcpt, code, text)
        if code == 554:
            assert text.startswith("5.7.1"), (rcpt, text)
    code, text = r.cmd("RCPT TO:<nosuchuser@local.test>")
    assert (code, text[:5]) == (550, "5.1.1")
    assert r.cmd("RCPT TO:<root@local.test>")[0] == 250  # a local user
    assert r.cmd("RCPT TO:<y@relay.test>")[0] == 250  # relay_domains
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: r\r\n\r\nrelayed\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    msg = m.peer.wait(1, timeout=30)[0]
    assert msg.rcpt_tos == ["y@relay.test"]
    logged(m, "NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <x@remote.test>: Relay access "
           "denied" % CLIENT_IP)
    # the only message: nothing queued for the refused ones
    time.sleep(0.5)
    assert [x.rcpt_tos for x in m.peer.received()] == [["y@relay.test"]]
    msgs = queued(m)
    assert len(msgs) <= 1 and all(r_["address"] in ("root@local.test", "y@relay.test")
                                  for q in msgs for r_ in q["recipients"])
    # from inside mynetworks the same recipient relays
    assert m.submit("a@a.test", "x@remote.test", b"Subject: in\r\n\r\nin\r\n") == {}
    assert len(m.peer.wait(2, timeout=30)) == 2


# ---------------------------------------------------------------- smuggling

SMUGGLED = (b"MAIL FROM:<evil@evil.test>\r\nRCPT TO:<victim@remote.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled\r\n")
VARIANTS = [b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\n", b"\r\n.\r", b"\r.\n"]


@pytest.mark.parametrize("variant", VARIANTS, ids=[repr(v) for v in VARIANTS])
def test_no_smuggling(mta, variant):
    m = mta()
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@remote.test>\r\nDATA\r\n")
    assert codes(r.replies(3)) == [250, 250, 354]
    r.send(b"Subject: first\r\n\r\nline" + variant + SMUGGLED + b"\r\n.\r\n")
    code, text = r.reply()
    assert code == 250  # exactly one reply to the data ...
    assert r.cmd("QUIT")[0] == 221  # ... and the next reply is QUIT's
    got = m.peer.wait(1, timeout=30)
    time.sleep(1.0)
    assert len(m.peer.received()) == 1  # ... and one message
    data = m.peer.received()[0].data
    assert m.peer.received()[0].rcpt_tos == ["b@remote.test"]
    assert b"evil@evil.test" in data  # the smuggled text stayed content
    body = data.replace(b"\r\n", b"")
    assert b"\n" not in body and b"\r" not in body  # relayed with no bare LF or CR
    assert got[0].mail_from == "a@a.test"


def test_bare_newline_reject(mta):
    m = mta(conf={"smtpd_bare_newline": "reject"})
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    r.send(b"NOOP\n")
    assert r.reply()[0] == 500
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n")
    assert codes(r.replies(3)) == [250, 250, 354]
    r.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
    code, text = r.reply()
    assert code == 550 and "bare <LF>" in text
    assert r.cmd("NOOP")[0] == 250
    r.close()
    time.sleep(0.5)
    assert queued(m) == []


# ------------------------------------------------------ reverse DNS (SPEC 8)

REV9 = "9.0.0.127.in-addr.arpa"


def relay_from_outside(mta):
    """An instance where 127.0.0.9 is outside mynetworks, relay.test relayed."""
    return mta(conf={"mynetworks": "127.0.0.1/32", "relay_domains": "relay.test",
                     "dns_timeout": "1s", "dns_lookup_timeout": "2s"})


def test_client_name_forward_confirmed(mta, dns):
    dns.add(REV9, "PTR", PTR("client.test"))
    dns.a("client.test", ["127.0.0.9"])
    m = relay_from_outside(mta)
    r = Raw(m.smtp_address, source=CLIENT_IP)
    r.cmd("EHLO helo.test")
    assert r.cmd("MAIL FROM:<a@a.test>")[0] == 250
    assert r.cmd("RCPT TO:<x@remote.test>")[0] == 554
    assert r.cmd("RCPT TO:<x@relay.test>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    code, text = r.cmd("Subject: named\r\n\r\nbody\r\n.")
    assert code == 250
    qid = text.split()[-1]
    assert r.cmd("QUIT")[0] == 221
    r.close()
    logged(m, "connect from client.test[127.0.0.9]")
    logged(m, "NOQUEUE: reject: RCPT from client.test[127.0.0.9]: 554 5.7.1")
    logged(m, "%s: client=client.test[127.0.0.9]" % qid)
    logged(m, "disconnect from client.test[127.0.0.9] ehlo=1 mail=1 rcpt=1/2 data=1 quit=1")
    msg = m.peer.wait(1, timeout=30)[0]
    assert b"Received: from helo.test (client.test [127.0.0.9])" in msg.data
    assert dns.count(REV9, "PTR") == 1 and dns.count("client.test", "A") == 1


@pytest.mark.parametrize("case", ["mismatch", "nxdomain"])
def test_client_name_unknown(mta, dns, case):
    if case == "mismatch":
        dns.add(REV9, "PTR", PTR("liar.test"))
        dns.a("liar.test", ["127.0.0.10"])
    m = relay_from_outside(mta)
    r = Raw(m.smtp_address, source=CLIENT_IP)
    assert r.greeting[0] == 220
    r.cmd("EHLO helo.test")
    r.cmd("MAIL FROM:<a@a.test>")
    r.cmd("RCPT TO:<x@relay.test>")
    assert r.cmd("DATA")[0] == 354
    assert r.cmd("Subject: unnamed\r\n\r\nbody\r\n.")[0] == 250
    r.cmd("QUIT")
    r.close()
    logged(m, "connect from unknown[127.0.0.9]")
    if case == "mismatch":
        logged(m, "hostname liar.test does not resolve to address 127.0.0.9")
    msg = m.peer.wait(1, timeout=30)[0]
    assert b"Received: from helo.test (unknown [127.0.0.9])" in msg.data
    assert dns.count(REV9, "PTR") >= 1


def test_client_name_timeout_bounds_the_greeting_only(mta, dns):
    dns.mode(REV9, "timeout")
    m = relay_from_outside(mta)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.settimeout(15)
    slow.bind((CLIENT_IP, 0))
    started = time.monotonic()
    slow.connect(m.smtp_address)
    try:
        dns.wait_queries(1, name=REV9, timeout=5)
        # another client is served while the slow one's name is looked up
        t0 = time.monotonic()
        other = Raw(m.smtp_address)
        assert other.greeting[0] == 220 and time.monotonic() - t0 < 1.5
        assert other.cmd("QUIT")[0] == 221
        other.close()
        greeting = slow.recv(4096)
        waited = time.monotonic() - started
        assert greeting.startswith(b"220 "), greeting
        assert 1.5 <= waited < 5.0, waited  # dns_lookup_timeout = 2s
        slow.sendall(b"QUIT\r\n")
        assert slow.recv(4096).startswith(b"221")
    finally:
        slow.close()
    logged(m, "connect from unknown[127.0.0.9]")


# ------------------------------------------------------------ BDAT (RFC 3030)


def bdat(chunk, last=False):
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


def test_bdat_pipelined_chunks_relayed(mta):
    m = mta()
    r = Raw(m.smtp_address)
    code, text = r.cmd("EHLO client.test")
    assert code == 250 and text == "CHUNKING"  # the last EHLO line
    one = b"Subject: chunks\r\n\r\n.\r\n..two dots\r\nsplit line"
    two = b" goes on\r\nbare\nlf\r\n"
    three = b"QUIT\r\nMAIL FROM:<evil@evil.test>\r\nno final newline"
    # MAIL, RCPT and three chunks in one packet: every chunk read by count
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@remote.test>\r\n" + bdat(one) + bdat(two) +
           bdat(three, last=True) + b"NOOP\r\n")
    got = r.replies(6)
    assert codes(got) == [250, 250, 250, 250, 250, 250], got
    assert got[2][1] == "2.0.0 Ok: %d bytes" % len(one)
    assert "queued as" in got[4][1]
    assert r.cmd("QUIT")[0] == 221
    r.close()
    msg = m.peer.wait(1, timeout=30)[0]
    time.sleep(0.5)
    assert len(m.peer.received()) == 1
    data = msg.data
    # not dot-unstuffed, the split line joined, bare LF made CRLF, a CRLF added at the end
    assert b"\r\n.\r\n..two dots\r\nsplit line goes on\r\nbare\r\nlf\r\nQUIT\r\n" in data
    assert data.endswith(b"MAIL FROM:<evil@evil.test>\r\nno final newline\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert re.search(rb"Received: from client\.test \(unknown \[127\.0\.0\.1\]\)", data)
    logged(m, "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 bdat=3 noop=1 quit=1 "
              "commands=8")


def test_bdat_zero_last_rset_and_data_mixed(mta):
    m = mta()
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    # BDAT with DATA in one transaction: 503, and RCPT after BDAT too
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\n" + bdat(b"Subject: m\r\n") +
           b"DATA\r\nRCPT TO:<c@local.test>\r\n" + bdat(b"", last=True))
    got = r.replies(6)
    assert codes(got) == [250, 250, 250, 503, 503, 250], got
    assert "queued as" in got[5][1]
    # RSET in the middle of a BDAT transaction: nothing of it is queued
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<rset@local.test>\r\n" + bdat(b"Subject: r\r\n") +
           b"RSET\r\n" + bdat(b"more\r\n", last=True))
    got = r.replies(5)
    assert codes(got) == [250, 250, 250, 250, 503], got
    # BDAT without a transaction: its bytes are skipped, never read as commands
    r.send(bdat(b"MAIL FROM:<x@x.test>\r\n") + b"NOOP\r\n")
    assert codes(r.replies(2)) == [503, 250]
    assert r.cmd("QUIT")[0] == 221
    r.close()
    msgs = wait_queued(m, 1)
    time.sleep(0.5)
    msgs = queued(m)
    assert [x["recipients"][0]["address"] for x in msgs] == ["b@local.test"]


def test_bdat_size_limit_across_chunks(mta):
    m = mta(conf={"message_size_limit": "20000"})
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    chunk = (b"z" * 998 + b"\r\n") * 8  # 8000 bytes: the third goes over 20000
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\n" + bdat(chunk) + bdat(chunk) +
           bdat(chunk) + bdat(b"end\r\n", last=True) + b"NOOP\r\n")
    got = r.replies(7)
    assert codes(got) == [250, 250, 250, 250, 552, 503, 250], got
    assert got[4][1].startswith("5.3.4")
    # one chunk bigger than the limit on its own
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\n" +
           bdat(chunk * 3, last=True) + b"NOOP\r\n")
    assert codes(r.replies(4)) == [250, 250, 552, 250]
    r.close()
    time.sleep(0.5)
    assert queued(m) == []
    # a new client is served
    assert m.submit("a@a.test", "b@local.test", b"Subject: ok\r\n\r\nok\r\n") == {}
    assert len(wait_queued(m, 1)) == 1


def test_bdat_bare_newline_reject_and_long_line(mta):
    m = mta(conf={"smtpd_bare_newline": "reject"})
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\n" + bdat(b"Subject: x\r") +
           bdat(b"\n\r\nbare\nlf\r\n", last=True))
    got = r.replies(4)
    assert codes(got) == [250, 250, 250, 550] and "bare <LF>" in got[3][1], got
    # a 2 MB line in one chunk: refused, the session still sane
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\n" +
           bdat(b"Subject: " + b"h" * (2 << 20) + b"\r\n\r\nbody\r\n", last=True))
    got = r.replies(3)
    assert codes(got) == [250, 250, 500] and "1000" in got[2][1], got
    assert r.cmd("NOOP")[0] == 250
    # a BDAT whose size cannot be read: the session is out of step and ends
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\nBDAT 12x\r\nNOOP\r\n")
    assert codes(r.replies(4)) == [250, 250, 501, 421]
    assert r.closed()
    time.sleep(0.5)
    assert queued(m) == []


# ----------------------------------------------------------------- STARTTLS


def make_cert(directory):
    key, cert = directory / "smtpd.key", directory / "smtpd.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mta.onehop.test"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)  # read by the unprivileged instance in this test
    return cert, key


def test_starttls(mta):
    directory = Path(tempfile.mkdtemp(prefix="onehop-tls-"))
    os.chmod(directory, 0o755)  # the unprivileged instance reads the files
    cert, key = make_cert(directory)
    m = mta(conf={"smtpd_tls_cert": str(cert), "smtpd_tls_key": str(key)})
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(*m.smtp_address, local_hostname="tls.test", timeout=15) as c:
        assert c.has_extn("starttls") or c.ehlo()[0] == 250 and c.has_extn("starttls")
        c.starttls(context=ctx)
        c.ehlo()
        assert not c.has_extn("starttls")
        assert c.sendmail("a@a.test", ["t@remote.test"], b"Subject: tls\r\n\r\nsecret\r\n") == {}
    msg = m.peer.wait(1, timeout=30)[0]
    received = msg.data.split(b"\r\n\r\n")[0]
    assert b"with ESMTPS (TLSv1." in received
    # commands pipelined after STARTTLS are discarded (CVE-2011-0411)
    raw = socket.create_connection(m.smtp_address, timeout=15)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO c.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@evil.test>\r\n")
    assert f.readline().startswith(b"220")
    tls = ctx.wrap_socket(raw, server_hostname="mta.onehop.test")
    tf = tls.makefile("rb")
    tls.sendall(b"MAIL FROM:<a@a.test>\r\n")
    first = tf.readline()
    assert first.startswith(b"503"), first  # no EHLO yet inside TLS; the injected MAIL is gone
    tls.sendall(b"QUIT\r\n")
    assert tf.readline().startswith(b"221")
    tls.close()
    shutil.rmtree(directory, ignore_errors=True)


# ----------------------------------------------------------- queue failures


def queue_server_pid(m):
    return [p["pid"] for p in m.status()["processes"] if p["name"] == "queue"][0]


def test_queue_server_killed_mid_transaction(mta):
    m = mta()
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n")
    assert codes(r.replies(3)) == [250, 250, 354]
    pid = queue_server_pid(m)
    os.kill(pid, signal.SIGSTOP)  # it cannot commit ...
    r.send(b"Subject: k\r\n\r\nkilled\r\n.\r\n")
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)  # ... and dies with the message unanswered
    code, text = r.reply()
    assert code in (421, 451), (code, text)  # never 250
    r.close()
    # the master restarts the pair; then mail is accepted again
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if m.submit("a@a.test", "c@local.test", b"Subject: after\r\n\r\nafter\r\n") == {}:
                break
        except (smtplib.SMTPException, OSError):
            time.sleep(0.5)
    msgs = wait_queued(m, 1)
    assert [x["recipients"][0]["address"] for x in msgs] == ["c@local.test"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs as the queue needs root")
def test_disk_full(onehop, smtp_peers):
    m = onehop(run_as=RUN_AS)
    qdir = m.path("queue")
    qdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(qdir)],
                   check=True, timeout=30)
    try:
        if RUN_AS:
            shutil.chown(qdir, RUN_AS)
        m.start()
        r = Raw(m.smtp_address)
        r.cmd("EHLO c.test")
        results = []
        for i in range(60):
            r.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n")
            got = r.replies(3)
            if got[2][0] != 354:
                results.append(got[2][0])
                break
            r.send(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 300 + b".\r\n")
            code, text = r.reply()
            results.append(code)
            if code != 250:
                assert code in (451, 452), text
                break
        assert results[-1] in (451, 452) and results.count(250) >= 1, results
        ok = results.count(250)
        msgs = queued(m)
        assert len(msgs) == ok  # every 250 is there, nothing half queued
        r.cmd("QUIT")
        m.stop()
    finally:
        m.close()
        subprocess.run(["umount", str(qdir)], timeout=30)


# ----------------------------------------------------------- sendmail -bs


def test_sendmail_bs(mta):
    m = mta()
    dialogue = (b"EHLO me\r\nMAIL FROM:<u@local.test>\r\nRCPT TO:<x@remote.test>\r\nDATA\r\n"
                b"Subject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n")
    res = m.sendmail("-bs", data=dialogue)
    assert res.rc == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith("220 ") and "queued as" in res.out and lines[-1].startswith("221")
    msg = m.peer.wait(1, timeout=30)[0]
    assert b"via -bs" in msg.data and msg.mail_from == "u@local.test"


# --------------------------------------------------------------- end to end


def test_end_to_end_relayed_to_a_sink(mta):
    m = mta()
    assert m.submit("a@a.test", ["s1@relay.test", "s2@relay.test"],
                    b"Subject: e2e\r\n\r\nend to end\r\n") == {}
    msg = m.peer.wait(1, timeout=30)[0]
    assert sorted(msg.rcpt_tos) == ["s1@relay.test", "s2@relay.test"]
    head = msg.data.split(b"\r\n\r\n")[0]
    assert head.startswith(b"Received: from client.onehop.test (unknown [127.0.0.1])\r\n\tby "
                           b"mta.onehop.test (onehop) with ESMTP")
    m.wait_delivery("s1@relay.test", "sent")


@pytest.mark.skipif(not (onehop_bin_path() / "onehop-local").is_file(),
                    reason="onehop-local is not built in this tree")
def test_end_to_end_local_maildir(mta):
    m = mta()
    user = m.run_as.pw_name if m.run_as else os.environ.get("USER", "root")
    if m.run_as:  # the Maildirs are made by the instance's own user
        os.chown(m.path("mail"), m.run_as.pw_uid, m.run_as.pw_gid)
    assert m.submit("a@a.test", "%s@local.test" % user, b"Subject: local\r\n\r\nhere\r\n") == {}
    assert len(m.wait_maildir(user, 1)) == 1


# ---------------------------------------------------------------- shutdown


def test_stop_answers_421(mta):
    m = mta()
    r = Raw(m.smtp_address)
    r.cmd("EHLO c.test")
    assert m.stop().rc == 0
    code, text = r.reply()
    assert code == 421 and "4.3.2" in text
    assert r.closed()


# -------------------------------------------------------------------- root


def test_as_root_smtpd_and_queue_server_run_under_their_accounts(onehop, smtp_peers, accounts):
    """SPEC 7: onehop-smtpd as BASE-smtpd, onehop-queue --server as
    BASE-queue; the message still goes SMTP -> queue -> remote -> peer."""
    peer = smtp_peers.start("sink")
    m = onehop(conf={"user": accounts.base}, routes="relay.test [%s]\n" % peer.ip)
    os.chmod(m.dir, 0o755)  # the accounts traverse DIR to its files
    m.start()
    procs = {p["name"]: p for p in m.status()["processes"]}
    for name, role in (("smtpd", "smtpd"), ("queue", "queue")):
        pw = accounts[role]
        assert procs[name]["user"] == pw.pw_name and procs[name]["uid"] == pw.pw_uid, procs[name]
    assert m.submit("a@a.test", "r@relay.test", b"Subject: root\r\n\r\nroot\r\n") == {}
    assert peer.wait(1, timeout=30)[0].rcpt_tos == ["r@relay.test"]
