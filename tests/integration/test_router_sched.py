"""onehop-router's scheduling end to end (issue 11 item 5): D8 (a dead
destination waits without delivery slots and wakes at the first success
there), aliases expanding to several remote recipients (each target once,
the envelope recipient final when all are), delay_warning notices,
queue_lifetime expiry with its DSN read field by field, and the log telling
a 5xx after the final dot from a connection lost after it.

Real programs only: `onehop start` instances (master, cleaner, dnscache,
router, remote), aiosmtpd peers on 127.0.0.0/8. Every wait is bounded.
"""

import socket
import threading
import time

from aiosmtpd.controller import Controller

from fixtures.instance import free_port
from fixtures.smtppeer import CLOSE
from test_master import master_bin  # noqa: F401 (a fixture)
from test_router import (SENDER, instance, message, queue_ids, routes_to, send, wait_queue_empty,
                         wait_until)


def tokens_at(peer, tokens):
    return [t for m in peer.received() for t in tokens if t.encode() in m.data]


# ------------------------------------------------------- D8: dead destination


class Blackhole:
    """A TCP port on 127.0.0.N whose accept queue is full: a connection to it
    is neither accepted nor refused (its SYN is dropped), as a dead host."""

    def __init__(self, ip):
        self.ip, self.port = ip, free_port()
        self.sock = socket.socket()
        self.sock.bind((self.ip, self.port))
        self.sock.listen(0)
        self.fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((self.ip, self.port))
            self.fillers.append(s)
        time.sleep(0.2)

    def close(self):
        for s in self.fillers:
            s.close()
        self.sock.close()


class Recorder:
    """An aiosmtpd handler that keeps each message's data and arrival time."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.got.append((time.monotonic(), envelope.content))
        return "250 2.0.0 Ok"


def free_loopback_ip(smtp_peers):
    """An address 127.0.0.N no peer of this test uses (taken from the fixture
    as a refusing one, so nobody else is given it)."""
    return smtp_peers.refusing()


def test_dead_destination_uses_no_slots_and_wakes_on_success(onehop, master_bin, smtp_peers):
    live = smtp_peers.start("live.l.test")
    hole = Blackhole(free_loopback_ip(smtp_peers))
    routes = "d.test [%s]:%d\n" % (hole.ip, hole.port) + routes_to(smtp_peers.port, l_test=live)
    mta = instance(onehop, master_bin, routes=routes, remote_concurrency="2",
                   retry_min="6s", retry_max="12s", smtp_connect_timeout="2s")
    mta.start()
    dead = ["tok-dead-%02d" % i for i in range(10)]
    alive = ["tok-live-%02d" % i for i in range(10)]
    for t in dead:
        send(mta, ["bob@d.test"], t)
    submitted = {}
    for t in alive:
        submitted[t] = time.monotonic()
        send(mta, ["bob@l.test"], t)
    arrived = {}

    def all_live():
        now = time.monotonic()
        for t in tokens_at(live, alive):
            arrived.setdefault(t, now)
        return len(arrived) == len(alive)
    wait_until(all_live, 30, "the live destination's 10 messages", mta)
    latency = sorted(arrived[t] - submitted[t] for t in alive)
    # without D8 the 10 dead jobs hold both slots for 2 s each: 10 s before the live ones
    remote_dead = [l for l in mta.deliveries(status="deferred")
                   if l.service == "remote" and l.to.endswith("@d.test")]
    suspended = [l for l in mta.deliveries(status="deferred")
                 if l.service == "router" and "delivery temporarily suspended" in l.reason]
    print("D8: live latency max %.2f s (median %.2f s); dead-destination attempts that took a "
          "slot: %d, recipients suspended without a slot: %d" %
          (latency[-1], latency[len(latency) // 2], len(remote_dead), len(suspended)))
    assert latency[-1] < 4.5, latency
    assert len(remote_dead) <= 2, [l.raw for l in remote_dead]
    assert len(suspended) >= 8
    mta.wait_log(r"destination \[%s\]:%d deferred as a whole" % (hole.ip, hole.port), timeout=5)

    # the destination comes back: the probe at the end of its back-off succeeds and wakes the
    # others at once (their own next try is one more back-off later)
    hole.close()
    rec = Recorder()
    server = Controller(rec, hostname=hole.ip, port=hole.port)
    server.start()
    try:
        up = time.monotonic()
        wait_until(lambda: len(rec.got) >= len(dead), 30, "the dead destination's mail", mta)
        first, last = rec.got[0][0], rec.got[-1][0]
        print("D8: after the destination came up: first delivery %.2f s, last %.2f s later" %
              (first - up, last - first))
        assert last - first < 3.0, (first, last)
        mta.wait_log(r"destination \[%s\]:%d is up again: \d+ waiting recipients woken" %
                     (hole.ip, hole.port), timeout=5)
        got = sorted(t for _, data in rec.got for t in dead if t.encode() in data)
        assert got == dead
        wait_queue_empty(mta)
    finally:
        server.stop()


# ------------------------------------------------- aliases to several remote targets


def test_alias_to_three_remote_targets_each_delivered_once(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("mx.b.test")
    c = smtp_peers.start("mx.c.test", rcpt=["451 4.2.0 busy", "451 4.2.0 busy"])
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, c_test=c))
    mta.write("aliases", "team: ann@b.test, cid@c.test, dan@b.test\n")
    mta.start()
    send(mta, ["team@mta.onehop.test"], "tok-alias-3")
    (qid,) = queue_ids(mta)
    (at_c,) = c.wait(1, timeout=30)
    assert at_c.rcpt_tos == ["cid@c.test"]
    mta.wait_log(r"%s: <team@mta.onehop.test>: 2.0.0 alias expanded to 3: 3 delivered" % qid,
                 timeout=10)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    # two temporary failures at c.test, and b.test's two recipients delivered once only
    assert sorted(r for m in b.received() for r in m.rcpt_tos) == ["ann@b.test", "dan@b.test"]
    assert len(mta.deliveries(to="cid@c.test", status="deferred")) == 2
    assert len(mta.deliveries(to="ann@b.test", status="sent")) == 1
    wait_queue_empty(mta)


def test_alias_target_bounced_is_named_in_the_dsn(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("mx.b.test", rcpt={"bad@b.test": "550 5.1.1 no such user"})
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, a_test=a))
    mta.write("aliases", "team: good@b.test, bad@b.test\n")
    mta.start()
    send(mta, ["team@mta.onehop.test"], "tok-alias-dsn")
    (qid,) = queue_ids(mta)
    (dsn,) = a.wait(1, timeout=30)
    _, status, _ = dsn.email().get_payload()
    _, *per_rcpt = status.get_payload()
    (r,) = per_rcpt
    assert r["Final-Recipient"] == "rfc822; bad@b.test"
    assert r["Original-Recipient"] == "rfc822; team@mta.onehop.test"
    assert r["Action"] == "failed" and r["Status"] == "5.1.1"
    assert [m.rcpt_tos for m in b.received()] == [["good@b.test"]]
    mta.wait_log(r"%s: <team@mta.onehop.test>: 2.0.0 alias expanded to 2: 1 delivered, 1 bounced"
                 % qid, timeout=10)
    show_done = mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    assert show_done
    wait_queue_empty(mta)


def test_alias_loop_bounced_with_a_clear_reason(onehop, master_bin, smtp_peers):
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, a_test=a))
    mta.write("aliases", "ping: pong\npong: ping\n")
    mta.start()
    send(mta, ["ping@mta.onehop.test"], "tok-alias-loop")
    (line,) = mta.wait_delivery("ping@mta.onehop.test", "bounced", timeout=20)
    assert line.service == "router" and "5.4.6" in line.reason and "loop" in line.reason
    (dsn,) = a.wait(1, timeout=20)
    assert "Status: 5.4.6" in dsn.text
    wait_queue_empty(mta)


# ----------------------------------------------------------------- delay_warning


def test_delay_warning_sends_one_delay_notice(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("slow.b.test", rcpt="451 4.2.1 come back later")
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, a_test=a),
                   retry_min="1s", retry_max="1s", delay_warning="2s", queue_lifetime="1h")
    mta.start()
    send(mta, ["bob@b.test"], "tok-delay-1")
    (qid,) = queue_ids(mta)
    (notice,) = a.wait(1, timeout=20)
    mail = notice.email()
    assert notice.mail_from in ("", "<>") and notice.rcpt_tos == [SENDER]
    assert mail.get_content_type() == "multipart/report"
    assert mail["Subject"].startswith("Delayed Mail")
    _, status, original = mail.get_payload()
    _, r = status.get_payload()
    assert r["Final-Recipient"] == "rfc822; bob@b.test"
    assert r["Action"] == "delayed" and r["Status"] == "4.2.1"
    assert "451 4.2.1 come back later" in r["Diagnostic-Code"]
    assert r["Will-Retry-Until"]
    mta.wait_log(r"%s: sender delay notification: \w+" % qid, timeout=10)
    # it keeps being retried, and warned only once
    wait_until(lambda: len(mta.deliveries(to="bob@b.test", status="deferred")) >= 5, 20,
               "five deferrals", mta)
    time.sleep(1)
    assert len(a.received()) == 1
    (rcpt,) = mta.queue_show(qid)["recipients"]
    assert rcpt["state"] == "deferred"


# ------------------------------------------------------------- queue_lifetime


def test_queue_lifetime_6s_one_dsn_parsed_field_by_field(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("busy.b.test", rcpt="451 4.3.2 system busy")
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, a_test=a),
                   retry_min="1s", retry_max="2s", queue_lifetime="6s")
    mta.start()
    t0 = time.monotonic()
    send(mta, ["bob@b.test"], "tok-expire-1")
    (qid,) = queue_ids(mta)
    (dsn,) = a.wait(1, timeout=30)
    waited = time.monotonic() - t0
    assert 5.0 <= waited <= 12.0, waited
    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == [SENDER]
    mail = dsn.email()
    assert mail["From"].addresses[0].addr_spec == "MAILER-DAEMON@mta.onehop.test"
    assert mail["To"].addresses[0].addr_spec == SENDER
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail.get_content_type() == "multipart/report"
    assert mail.get_param("report-type") == "delivery-status"
    human, status, original = mail.get_payload()
    assert human.get_content_type() == "text/plain" and "bob@b.test" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, r = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mta.onehop.test"
    assert per_message["Arrival-Date"]
    assert r["Final-Recipient"] == "rfc822; bob@b.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.4.7"
    assert r["Diagnostic-Code"].startswith("smtp; 5.4.7 message expired")
    assert "451 4.3.2 system busy" in r["Diagnostic-Code"]
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: router test" in original.get_payload()
    (bounced,) = mta.deliveries(to="bob@b.test", status="bounced")
    assert bounced.service == "router" and "5.4.7" in bounced.reason
    assert len(mta.deliveries(to="bob@b.test", status="deferred")) >= 2
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)
    assert len(a.received()) == 1


# ----------------------------------------------- a failed bounce (D6 to postmaster)


def test_failed_bounce_goes_once_to_postmaster_then_is_dropped(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("hard.b.test", rcpt="550 5.1.1 no such user")
    a = smtp_peers.start("gone.a.test", rcpt="550 5.1.1 unknown here too")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, a_test=a))
    mta.write("aliases", "postmaster: pm@a.test\n")
    mta.start()
    send(mta, ["bob@b.test"], "tok-2bounce")
    (orig,) = queue_ids(mta)
    (dsn_bounced,) = mta.wait_delivery(SENDER, "bounced", timeout=30)
    mta.wait_log(r"%s: postmaster non-delivery notification: \w+" % dsn_bounced.qid, timeout=10)
    (pm,) = mta.wait_delivery("pm@a.test", "bounced", timeout=30)
    mta.wait_log(r"%s: undeliverable notification to postmaster discarded" % pm.qid, timeout=10)
    wait_queue_empty(mta)
    time.sleep(1)
    assert a.received() == [] and b.received() == []
    # the message, its DSN, the DSN's notice to postmaster: nothing more
    assert len([l for l in mta.log(service="queue") if l.qid and "from" in l.fields]) == 3
    assert orig != dsn_bounced.qid != pm.qid


# -------------------------------------------- after the final dot: 5xx vs lost


def test_5xx_after_dot_and_lost_after_dot_told_apart(onehop, master_bin, smtp_peers):
    hard = smtp_peers.start("dot5.b.test", data="554 5.6.0 content rejected")
    lost = smtp_peers.start("dotlost.c.test", data=[CLOSE])
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, retry_min="1s", retry_max="1s",
                   routes=routes_to(smtp_peers.port, b_test=hard, c_test=lost, a_test=a))
    mta.start()
    send(mta, ["bob@b.test"], "tok-dot-5xx")
    send(mta, ["carl@c.test"], "tok-dot-lost")
    (bounced,) = mta.wait_delivery("bob@b.test", "bounced", timeout=20)
    assert "554 5.6.0 content rejected" in bounced.reason
    assert "may have been delivered" not in bounced.reason
    (deferred,) = mta.wait_delivery("carl@c.test", "deferred", timeout=20)
    assert "may have been delivered" in deferred.reason, deferred.raw
    (again,) = lost.wait(1, timeout=20)   # the retry: possibly a duplicate, never lost
    assert b"tok-dot-lost" in again.data
    mta.wait_delivery("carl@c.test", "sent", timeout=20)
    wait_queue_empty(mta)
