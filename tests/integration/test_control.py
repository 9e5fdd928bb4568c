"""The router's control socket (issue 11 item 7, SPEC 1): `onehop flush`,
`hold`, `release`, `delete`, `sendmail -q` and `newaliases` on `onehop
start` instances with the real master, router and remote and aiosmtpd peers
(fixtures/). Mail is deferred by peers answering 451 with a long retry_min,
so nothing moves unless a command makes it; the peers are then switched to
accept and each command must move exactly what it names: `flush @domain`
delivers only that domain's mail, hold stops delivery and release resumes
it, delete removes and logs. A bad configuration sent as a reload over the
socket is refused with its FILE:LINE: messages and the running one kept;
newaliases makes the router read a new alias. A peer that is neither the
instance's owner nor root is refused (as root: the client runs as another
account). With the instance stopped, flush says so.

Every process is stopped at the end (the `onehop` fixture's teardown);
every wait is bounded.
"""

import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from fixtures.smtppeer import Delay
from test_master import master_bin, new_instance  # noqa: F401 (master_bin: a fixture)

SENDER = "alice@a.test"
SLOW = {"retry_min": "300s", "retry_max": "600s"}


def message(token):
    return ("From: %s\nTo: someone\nSubject: control test\n\nbody of %s\n" %
            (SENDER, token)).encode()


def send(mta, rcpts, token):
    before = set(queue_ids(mta))
    r = mta.sendmail("-f", SENDER, *rcpts, data=message(token))
    assert r.rc == 0, r
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = set(queue_ids(mta)) - before
        if new:
            return new.pop()
        time.sleep(0.05)
    raise AssertionError("no from= line for %s; log tail:\n%s" % (token, mta.log_tail()))


def queue_ids(mta):
    return [l.qid for l in mta.log(service="queue") if l.qid and l.sender]


def wait_until(test, timeout, what, mta):
    deadline = time.monotonic() + timeout
    while True:
        value = test()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("%s within %ss; log tail:\n%s" % (what, timeout, mta.log_tail()))
        time.sleep(0.1)


def rcpt_states(mta, qid):
    return {r["address"]: r for r in mta.queue_show(qid)["recipients"]}


def wait_deferred(mta, qid, address):
    wait_until(lambda: rcpt_states(mta, qid)[address]["state"] == "deferred", 20,
               "%s of %s deferred" % (address, qid), mta)


def deferring_peers(smtp_peers, *names):
    return [smtp_peers.start(n, rcpt="451 4.3.0 come back later") for n in names]


def instance(onehop, master_bin, peers, smtp_peers, aliases="", **conf):
    conf = dict(SLOW, **conf)
    mta = new_instance(onehop, master_bin, **conf)
    mta.write("routes", "".join("%s [%s]:%d\n" % (p.name.split(".", 1)[1], p.ip, smtp_peers.port)
                                for p in peers))
    mta.write("aliases", aliases)
    return mta


def one_deferred(onehop, master_bin, smtp_peers, token):
    """A started instance with one message deferred by a 451 peer: (mta, peer, qid)."""
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers)
    mta.start()
    qid = send(mta, ["bob@b.test"], token)
    wait_deferred(mta, qid, "bob@b.test")
    return mta, b, qid


def accept_all(*peers):
    for p in peers:
        p.script(rcpt=None)


# ---------------------------------------------------------------- flush


def test_flush_domain_delivers_only_that_domain(onehop, master_bin, smtp_peers):
    b, c = deferring_peers(smtp_peers, "mx.b.test", "mx.c.test")
    mta = instance(onehop, master_bin, [b, c], smtp_peers)
    mta.start()
    qb = send(mta, ["bob@b.test"], "tok-b")
    qc = send(mta, ["carol@c.test"], "tok-c")
    wait_deferred(mta, qb, "bob@b.test")
    wait_deferred(mta, qc, "carol@c.test")
    accept_all(b, c)

    r = mta.cmd("flush", "@b.test")
    assert r.rc == 0, r
    assert "Flushed: 1 deferred recipient of 1 message" in r.err
    (msg,) = b.wait(1, timeout=20)
    assert msg.rcpt_tos == ["bob@b.test"] and b"body of tok-b" in msg.data
    mta.wait_delivery("bob@b.test", "sent", timeout=20)
    time.sleep(2)  # c.test must not move: its next try is minutes away
    assert c.received() == []
    assert rcpt_states(mta, qc)["carol@c.test"]["state"] == "deferred"

    r = mta.cmd("flush", "@b.test")  # nothing left there
    assert r.rc == 0 and "no deferred mail for b.test" in r.err, r
    r = mta.cmd("flush", qc)
    assert r.rc == 0 and "Flushed: 1 deferred recipient" in r.err, r
    (msg,) = c.wait(1, timeout=20)
    assert b"body of tok-c" in msg.data
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qc, timeout=20)
    assert mta.qstat()["total"] == 0


def test_flush_tries_a_dead_destination_again_at_once(onehop, master_bin, smtp_peers):
    """D8 marks b.test dead (connection refused); once it is back, flush
    @b.test must try it now, not suspend it again until its back-off ends."""
    b = smtp_peers.start("mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers)
    b.stop()
    mta.start()
    qid = send(mta, ["bob@b.test"], "tok-dead")
    wait_deferred(mta, qid, "bob@b.test")
    mta.wait_log(r"destination .* deferred as a whole", timeout=20)
    b = smtp_peers.start("mx.b.test", ip=b.ip)
    r = mta.cmd("flush", "@b.test")
    assert r.rc == 0 and "Flushed: 1 deferred recipient" in r.err, r
    (msg,) = b.wait(1, timeout=20)
    assert b"body of tok-dead" in msg.data
    mta.wait_delivery("bob@b.test", "sent", timeout=20)


def test_a_flush_is_not_an_attempt(onehop, master_bin, smtp_peers):
    """A flush makes deferred mail due now without counting an attempt:
    each of two flushes is followed by one real attempt (the peer still
    says 451), so attempts go 1, 2, 3 (not 1, 3, 5) and the back-off is that
    of the attempts really made (retry_min doubled per attempt)."""
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers, retry_max="100000s")
    mta.start()
    qid = send(mta, ["bob@b.test"], "tok-flush-attempts")
    wait_deferred(mta, qid, "bob@b.test")
    seen = [rcpt_states(mta, qid)["bob@b.test"]]
    for n in (2, 3):
        r = mta.cmd("flush")
        assert r.rc == 0 and "Flushed: 1 deferred recipient" in r.err, r
        mta.wait_delivery("bob@b.test", "deferred", n=n, timeout=20)
        wait_until(lambda: rcpt_states(mta, qid)["bob@b.test"]["last_attempt"] !=
                   seen[-1]["last_attempt"] or rcpt_states(mta, qid)["bob@b.test"]["attempts"]
                   != seen[-1]["attempts"], 20, "attempt %d recorded" % n, mta)
        wait_deferred(mta, qid, "bob@b.test")
        seen.append(rcpt_states(mta, qid)["bob@b.test"])
    print("attempts after two flushes: %s" % [x["attempts"] for x in seen])
    assert [x["attempts"] for x in seen] == [1, 2, 3], seen
    for n, x in enumerate(seen, 1):   # retry_min 300 s, doubled per attempt made (+1: rounding)
        assert x["next_attempt"] - x["last_attempt"] in (300 * 2 ** (n - 1), 300 * 2 ** (n - 1) + 1)


def test_flush_domain_keeps_the_other_dead_destinations(onehop, master_bin, smtp_peers):
    """b.test and c.test both dead (D8); both come back; flush @b.test tries
    b.test now and leaves c.test's mark alone: new mail for c.test still
    waits for c.test's back-off (suspended, no connection there)."""
    b, c = smtp_peers.start("mx.b.test"), smtp_peers.start("mx.c.test")
    mta = instance(onehop, master_bin, [b, c], smtp_peers)
    b.stop()
    c.stop()
    mta.start()
    qb = send(mta, ["bob@b.test"], "tok-dead-b")
    qc = send(mta, ["carol@c.test"], "tok-dead-c")
    wait_deferred(mta, qb, "bob@b.test")
    wait_deferred(mta, qc, "carol@c.test")
    wait_until(lambda: sum(1 for l in mta.log_lines() if "deferred as a whole" in l) >= 2, 20,
               "both destinations dead", mta)
    b = smtp_peers.start("mx.b.test", ip=b.ip)
    c = smtp_peers.start("mx.c.test", ip=c.ip)
    r = mta.cmd("flush", "@b.test")
    assert r.rc == 0 and "Flushed: 1 deferred recipient" in r.err, r
    b.wait(1, timeout=20)
    mta.wait_delivery("bob@b.test", "sent", timeout=20)
    qc2 = send(mta, ["carol@c.test"], "tok-dead-c2")
    wait_deferred(mta, qc2, "carol@c.test")
    reason = rcpt_states(mta, qc2)["carol@c.test"]["reason"]
    assert "delivery temporarily suspended" in reason, reason
    assert c.connections == 0 and c.received() == []


def test_flush_all_and_sendmail_q(onehop, master_bin, smtp_peers):
    b, c = deferring_peers(smtp_peers, "mx.b.test", "mx.c.test")
    mta = instance(onehop, master_bin, [b, c], smtp_peers)
    mta.start()
    q1 = send(mta, ["bob@b.test", "carol@c.test"], "tok-two-domains")
    wait_deferred(mta, q1, "bob@b.test")
    wait_deferred(mta, q1, "carol@c.test")
    accept_all(b)
    r = mta.cmd("flush")
    assert r.rc == 0 and "Flushed: 2 deferred recipients of 1 message" in r.err, r
    b.wait(1, timeout=20)
    mta.wait_delivery("carol@c.test", "deferred", n=2, timeout=20)  # still 451 there
    wait_until(lambda: rcpt_states(mta, q1)["carol@c.test"]["attempts"] == 2, 20,
               "the second attempt recorded (not in flight any more)", mta)
    wait_deferred(mta, q1, "carol@c.test")
    accept_all(c)
    r = mta.sendmail("-q")
    assert r.rc == 0, r
    assert "Flushed: 1 deferred recipient of 1 message" in r.err
    (msg,) = c.wait(1, timeout=20)
    assert msg.rcpt_tos == ["carol@c.test"]
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % q1, timeout=20)
    r = mta.cmd("flush", "0000000000000000ZZ")
    assert r.rc == 1 and "no such message" in r.err, r


def test_flush_while_stopped_says_so(onehop, master_bin, smtp_peers):
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers)
    r = mta.cmd("flush")
    assert r.rc == 1 and "is stopped" in r.err, r
    r = mta.sendmail("-q")
    assert r.rc == 69 and "onehop is stopped" in r.err, r
    r = mta.cmd("flush", "not-an-id")
    assert r.rc == 1 and "not a queue ID" in r.err, r
    assert mta.cmd("flush", "a", "b").rc == 2


# ---------------------------------------------------- hold, release, delete


def test_hold_stops_delivery_release_resumes(onehop, master_bin, smtp_peers):
    mta, b, qid = one_deferred(onehop, master_bin, smtp_peers, "tok-hold")
    r = mta.cmd("hold", qid)
    assert r.rc == 0 and "Placed on hold: 1 message" in r.err, r
    mta.wait_log(r"onehop/router\[\d+\]: %s: placed on hold" % qid)
    assert mta.queue_show(qid)["state"] == "hold"
    assert mta.qstat()["hold"] == 1
    accept_all(b)
    r = mta.cmd("flush", qid)
    assert r.rc == 1 and "on hold" in r.err, r
    r = mta.cmd("flush")
    assert r.rc == 0 and "no deferred mail" in r.err, r
    time.sleep(2)
    assert b.received() == []
    assert mta.cmd("hold", qid).rc == 0  # already held: nothing to do, no error

    r = mta.cmd("release", qid)
    assert r.rc == 0 and "Released from hold: 1 message" in r.err, r
    mta.wait_log(r"onehop/router\[\d+\]: %s: released from hold" % qid)
    r = mta.cmd("flush", qid)
    assert r.rc == 0, r
    (msg,) = b.wait(1, timeout=20)
    assert b"body of tok-hold" in msg.data
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=20)


def router_pid(mta):
    return {p["name"]: p for p in mta.status()["processes"]}["router"]["pid"]


def test_a_hold_answered_survives_a_kill_of_the_router(onehop, master_bin, smtp_peers):
    """The answer comes only once the hold is in the journal: a router
    killed right after it comes back (restarted by the master) with the
    message still held."""
    mta, b, qid = one_deferred(onehop, master_bin, smtp_peers, "tok-hold-kill")
    old = router_pid(mta)
    r = mta.cmd("hold", qid)
    assert r.rc == 0, r
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: router_pid(mta) not in (0, old) and
               mta.path("run", "router.sock").exists(), 20, "the router restarted", mta)
    mta.wait_log(r"onehop/router\[%d\]: started: 1 messages queued \(0 incoming, 0 deferred, "
                 r"1 held\)" % router_pid(mta), timeout=20)
    assert mta.queue_show(qid)["state"] == "hold"
    accept_all(b)
    r = mta.cmd("flush")
    assert r.rc == 0 and "no deferred mail" in r.err, r
    time.sleep(1)
    assert b.received() == []


def test_delete_removes_and_logs(onehop, master_bin, smtp_peers):
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = instance(onehop, master_bin, [b], smtp_peers)
    mta.start()
    q1 = send(mta, ["bob@b.test"], "tok-del-1")
    q2 = send(mta, ["bob@b.test"], "tok-del-2")
    q3 = send(mta, ["bob@b.test"], "tok-del-3")
    for q in (q1, q2, q3):
        wait_deferred(mta, q, "bob@b.test")
    r = mta.cmd("delete", q1, "0000000000000000ZZ")
    assert r.rc == 1, r  # one of the two is unknown
    assert "0000000000000000ZZ: no such message in the queue" in r.err
    assert "Deleted: 1 message" in r.err
    mta.wait_log(r"onehop/router\[\d+\]: %s: deleted \(onehop delete by " % q1)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % q1, timeout=20)
    r = mta.cmd("queue", "show", q1)
    assert r.rc == 1 and "no such message" in r.err, r

    r = mta.cmd("delete", "--deferred")
    assert r.rc == 0 and "Deleted: 2 messages" in r.err, r
    for q in (q2, q3):
        mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % q, timeout=20)
    assert mta.qstat()["total"] == 0
    accept_all(b)
    mta.cmd("flush")
    time.sleep(1)
    assert b.received() == []

    # a message deleted while it is being delivered: the router goes on
    pid = router_pid(mta)
    b.script(data=Delay(3, None))
    q4 = send(mta, ["bob@b.test"], "tok-del-in-flight")
    wait_until(lambda: any(cmd == "DATA" for _, cmd, _ in b.commands), 20, "DATA at b.test",
               mta)
    r = mta.cmd("delete", q4)
    assert r.rc == 0 and "Deleted: 1 message" in r.err, r
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % q4, timeout=20)
    time.sleep(3.5)  # the delivery's result arrives after the deletion
    assert router_pid(mta) == pid, mta.log_tail()
    assert mta.qstat()["total"] == 0


# ------------------------------------------------------------ non-owner


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another account")
def test_a_peer_that_is_not_the_owner_is_refused(onehop, master_bin, smtp_peers):
    mta, _, qid = one_deferred(onehop, master_bin, smtp_peers, "tok-stranger")
    owner = os.stat(mta.path("run", "router.sock")).st_uid
    stranger = 1 if owner != 1 else 2  # daemon (or bin): neither root nor the owner

    def as_stranger(*args):
        return subprocess.run([str(master_bin / "onehop"), "-C", str(mta.dir)] + list(args),
                              user=stranger, group=stranger, extra_groups=[], timeout=30,
                              capture_output=True, text=True, cwd="/")

    # let the stranger read the configuration and reach the socket's directory
    for path in (mta.dir, mta.path("run")):
        os.chmod(path, 0o755)
    for name in ("onehop.conf", "routes", "sites", "aliases"):
        os.chmod(mta.path(name), 0o644)
    r = as_stranger("hold", qid)  # the socket is 0600: the kernel refuses first
    assert r.returncode == 1, r
    assert "permission denied" in r.stderr and "owner or root" in r.stderr, r
    os.chmod(mta.path("run", "router.sock"), 0o666)  # now only SO_PEERCRED stands in the way
    r = as_stranger("hold", qid)
    assert r.returncode == 1, r
    assert "closed the connection without an answer" in r.stderr, r
    assert "owner or root" in r.stderr
    mta.wait_log(r"control socket: refused a connection from uid %d" % stranger)
    assert mta.queue_show(qid)["state"] == "deferred"
    r = mta.cmd("hold", qid)  # the owner may
    assert r.rc == 0 and "Placed on hold: 1 message" in r.err, r


def test_as_root_with_accounts_the_router_is_controlled(onehop, master_bin, smtp_peers,
                                                        accounts):
    """Started by root, the router runs as its account (SPEC 7) and root, the
    instance's owner, controls it."""
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    mta = new_instance(onehop, master_bin, run_as=None, user=accounts.base, **SLOW)
    os.chmod(mta.dir, 0o755)  # the accounts traverse DIR to its files
    mta.write("routes", "b.test [%s]:%d\n" % (b.ip, smtp_peers.port))
    mta.start()
    procs = {p["name"]: p for p in mta.status()["processes"]}
    assert procs["router"]["uid"] == accounts["router"].pw_uid, procs["router"]
    q = accounts["queue"]  # as an installed set-uid onehop-queue would commit it
    r = subprocess.run([str(master_bin / "sendmail"), "-C", str(mta.dir), "-f", SENDER,
                        "bob@b.test"], input=message("tok-root"), env=mta.env(),
                       user=q.pw_uid, group=q.pw_gid, extra_groups=[], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    (deferred,) = mta.wait_delivery("bob@b.test", "deferred", timeout=20)
    qid = deferred.qid
    wait_deferred(mta, qid, "bob@b.test")
    r = mta.cmd("hold", qid)
    assert r.rc == 0 and "Placed on hold: 1 message" in r.err, r
    r = mta.cmd("release", qid)
    assert r.rc == 0, r
    accept_all(b)
    r = mta.cmd("flush", qid)
    assert r.rc == 0 and "Flushed: 1 deferred recipient" in r.err, r
    b.wait(1, timeout=20)


# ------------------------------------------------------ reload, newaliases


def ctl_request(mta, op, select=0, args=()):
    """One request on run/router.sock by hand (common/router_ctl.h): the
    answer as [(type, [fields])]."""
    def field_u32(v):
        return b"\x01" + struct.pack(">I", v)

    def field_str(s):
        b = s.encode()
        return b"\x03" + struct.pack(">I", len(b)) + b
    body = field_u32(op) + field_u32(select) + field_u32(len(args))
    body += b"".join(field_str(a) for a in args)
    rec = struct.pack(">IHH", 8 + len(body), 1, 3 + len(args)) + body
    answers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(mta.path("run", "router.sock")))
        s.sendall(rec)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            while len(data) >= 8 and len(data) >= struct.unpack(">I", data[:4])[0]:
                n, t, nf = struct.unpack(">IHH", data[:8])
                answers.append((t, parse_fields(data[8:n], nf)))
                data = data[n:]
            if answers and answers[-1][0] == 11:
                break
    return answers


def parse_fields(p, nfields):
    out, at = [], 0
    for _ in range(nfields):
        tag = p[at]
        if tag == 1:
            out.append(struct.unpack(">I", p[at + 1:at + 5])[0])
            at += 5
        else:
            n = struct.unpack(">I", p[at + 1:at + 5])[0]
            out.append(p[at + 5:at + 5 + n].decode())
            at += 5 + n
    return out


RCTL_RELOAD, RCTL_NOTE, RCTL_DONE = 5, 10, 11


def test_reload_refuses_a_bad_configuration_and_keeps_the_running_one(onehop, master_bin,
                                                                     smtp_peers):
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    accept_all(b)
    mta = instance(onehop, master_bin, [b], smtp_peers)
    mta.start()
    good_routes = mta.path("routes").read_text()
    mta.write("routes", "b.test [not an address\n")
    answers = ctl_request(mta, RCTL_RELOAD)
    notes = [f[1] for t, f in answers if t == RCTL_NOTE]
    (done,) = [f for t, f in answers if t == RCTL_DONE]
    assert done[0] == 1, answers
    assert any(n.startswith("%s:1: " % mta.path("routes")) for n in notes), notes
    assert "the running configuration is kept" in done[2]
    mta.wait_log(r"reload refused")
    send(mta, ["bob@b.test"], "tok-after-bad-reload")  # the old routes still work
    b.wait(1, timeout=20)

    # a good reload while a delivery is in flight: the delivery is kept, once
    mta.write("routes", good_routes)
    mta.set_conf(retry_min="301s")
    b.script(data=Delay(3, None))
    send(mta, ["carol@b.test"], "tok-in-flight")
    wait_until(lambda: any(cmd == "DATA" for _, cmd, _ in b.commands), 20, "DATA at b.test",
               mta)
    answers = ctl_request(mta, RCTL_RELOAD)
    assert [f for t, f in answers if t == RCTL_DONE][0][0] == 0, answers
    mta.wait_log(r"reloaded: configuration, routes, sites and aliases")
    mta.wait_delivery("carol@b.test", "sent", timeout=20)
    assert [m.rcpt_tos for m in b.received()] == [["bob@b.test"], ["carol@b.test"]]


def test_newaliases_makes_the_router_read_a_new_alias(onehop, master_bin, smtp_peers):
    (b,) = deferring_peers(smtp_peers, "mx.b.test")
    accept_all(b)
    mta = instance(onehop, master_bin, [b], smtp_peers)
    r = mta.run("newaliases")
    assert r.rc == 0 and "onehop is stopped" in r.err, r
    mta.start()
    mta.write("aliases", "team: bob@b.test\n")
    r = mta.run("newaliases")
    assert r.rc == 0, r
    assert "routes, sites and aliases reloaded" in r.err
    mta.wait_log(r"onehop/router\[\d+\]: reloaded: routes, sites and aliases")
    send(mta, ["team@local.test"], "tok-alias")
    (msg,) = b.wait(1, timeout=20)
    assert msg.rcpt_tos == ["bob@b.test"] and b"body of tok-alias" in msg.data

    mta.write("aliases", "team bob@b.test\n")  # no colon
    r = mta.run("newaliases")
    assert r.rc == 1 and "%s:1:" % mta.path("aliases") in r.err, r
    assert "nothing was reloaded" in r.err


def test_a_recipient_suspended_by_a_dead_destination_counts_no_attempt(onehop, master_bin,
                                                                       smtp_peers):
    """D8: mail for a destination deferred as a whole waits without a
    connection attempt, so its deferral counts no attempt (queue show's
    attempts stay 0); the first message, which did try, counts one."""
    c = smtp_peers.start("mx.c.test")
    mta = instance(onehop, master_bin, [c], smtp_peers)
    c.stop()
    mta.start()
    q1 = send(mta, ["carol@c.test"], "tok-tried")
    wait_deferred(mta, q1, "carol@c.test")
    wait_until(lambda: any("deferred as a whole" in l for l in mta.log_lines()), 20,
               "c.test dead", mta)
    q2 = send(mta, ["carol@c.test"], "tok-suspended")
    wait_deferred(mta, q2, "carol@c.test")
    tried, waited = rcpt_states(mta, q1)["carol@c.test"], rcpt_states(mta, q2)["carol@c.test"]
    assert "delivery temporarily suspended" in waited["reason"], waited
    assert tried["attempts"] == 1, tried
    assert waited["attempts"] == 0, waited
