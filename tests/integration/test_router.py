"""onehop-router end to end (issue 11 item 1): `onehop -C DIR start`
instances with the real master, cleaner, dnscache, router and remote,
the dnslib DNS fixture and aiosmtpd peers (fixtures/). Mail goes in by
`sendmail` and must come out at a peer, with the queue emptied and the
SPEC 8 lines logged; temporary failures are retried with back-off within
retry_min/retry_max, permanent ones bounced and recorded, MX delivery goes
through the dnscache, and a router killed with SIGKILL during deliveries
loses nothing once the master has restarted it.

Every process is stopped at the end (the `onehop` fixture's teardown);
every wait is bounded.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from test_master import master_bin, new_instance  # noqa: F401 (master_bin: a fixture)

SENDER = "alice@a.test"


def message(token, subject="router test"):
    return ("From: %s\nTo: bob@b.test\nSubject: %s\n\nbody of %s\n" %
            (SENDER, subject, token)).encode()


def send(mta, rcpts, token):
    rc = mta.sendmail("-f", SENDER, *rcpts, data=message(token))
    assert rc.rc == 0, rc
    return token


def queue_ids(mta):
    """Message ids named by the from= lines the queue logged, bounces (from=<>) left out."""
    return [l.qid for l in mta.log(service="queue") if l.qid and l.sender]


def wait_until(test, timeout, what, mta):
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() >= deadline:
            raise AssertionError("%s within %ss; log tail:\n%s" % (what, timeout, mta.log_tail()))
        time.sleep(0.1)


def queue_files(mta):
    files = []
    for place in ("incoming", "active"):
        base = mta.path("queue", place)
        if base.is_dir():
            files += [p for d in base.iterdir() if d.is_dir() for p in d.iterdir()]
    return files


def wait_queue_empty(mta, timeout=20.0):
    wait_until(lambda: not queue_files(mta), timeout, "the queue empty", mta)


def routes_to(port, **peers):
    """A routes file sending each domain (b_test= for b.test) to its peer's address."""
    return "".join("%s [%s]:%d\n" % (d.replace("_", "."), peer.ip, port)
                   for d, peer in peers.items())


def instance(onehop, master_bin, routes="", **conf):
    """An instance run as the test's unprivileged user when root (SPEC 7),
    with the programs where that user can run them."""
    mta = new_instance(onehop, master_bin, **conf)
    mta.write("routes", routes)
    return mta


def router_pid(mta):
    procs = {p["name"]: p for p in mta.status()["processes"]}
    return procs["router"]["pid"]


# ------------------------------------------------------------ one message


def test_route_literal_delivered_queue_emptied(onehop, master_bin, smtp_peers):
    peer = smtp_peers.start("peer.b.test")
    mta = instance(onehop, master_bin, routes="b.test [%s]:%d" % (peer.ip, smtp_peers.port))
    mta.start()
    send(mta, ["bob@b.test"], "tok-literal-1")
    (msg,) = peer.wait(1, timeout=20)
    assert msg.mail_from == SENDER and msg.rcpt_tos == ["bob@b.test"]
    assert b"body of tok-literal-1" in msg.data
    (qid,) = queue_ids(mta)
    sent = mta.wait_delivery("bob@b.test", "sent", timeout=20)
    assert sent[0].qid == qid
    assert sent[0].fields["relay"] == "%s[%s]:%d" % (peer.ip, peer.ip, smtp_peers.port)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=20)
    wait_queue_empty(mta)
    assert mta.qstat()["total"] == 0


def test_a_commit_is_learned_from_the_watch_without_a_trigger_pull(onehop, master_bin,
                                                                    smtp_peers):
    """The router learns what is renamed into incoming/ from its watch
    (inotify), not only by listing the queue at a trigger pull: with the
    FIFO gone (no pull reaches it), the mail still goes out long before
    the 60 s safety scan."""
    peer = smtp_peers.start("peer.b.test")
    mta = instance(onehop, master_bin, routes="b.test [%s]:%d" % (peer.ip, smtp_peers.port))
    mta.start()
    (mta.run_dir / "queue.trigger").unlink()
    send(mta, ["bob@b.test"], "tok-watch-1")
    (msg,) = peer.wait(1, timeout=15)
    assert b"body of tok-watch-1" in msg.data
    wait_queue_empty(mta, timeout=15)


# ---------------------------------------------------------- retries (D8)


def test_451_twice_then_250_deferred_then_sent_with_backoff(onehop, master_bin, smtp_peers):
    rcpt_times = []

    def rcpt(ctx):
        rcpt_times.append(time.monotonic())
        return "451 4.3.0 try again later" if len(rcpt_times) <= 2 else None

    peer = smtp_peers.start("slow.b.test", rcpt=rcpt)
    mta = instance(onehop, master_bin, routes="b.test [%s]:%d" % (peer.ip, smtp_peers.port),
                   retry_min="1s", retry_max="2s")
    mta.start()
    send(mta, ["bob@b.test"], "tok-retry-1")
    (msg,) = peer.wait(1, timeout=30)
    assert b"body of tok-retry-1" in msg.data
    (qid,) = queue_ids(mta)
    mta.wait_delivery("bob@b.test", "sent", timeout=10)
    statuses = [l.status for l in mta.deliveries(to="bob@b.test")]
    assert statuses == ["deferred", "deferred", "sent"], mta.log_tail()
    deferred = mta.deliveries(to="bob@b.test", status="deferred")
    assert all(l.qid == qid and "451 4.3.0 try again later" in l.reason for l in deferred)
    assert len(rcpt_times) == 3
    first, second = rcpt_times[1] - rcpt_times[0], rcpt_times[2] - rcpt_times[1]
    # back-off: retry_min after the first failure, doubled (= retry_max) after the second;
    # next tries are whole seconds counted from the next second (so never early), and the
    # session takes its time to reach RCPT: up to 1.5 s late
    assert 1.0 - 0.05 <= first <= 1.0 + 1.5, rcpt_times
    assert 2.0 - 0.05 <= second <= 2.0 + 1.5, rcpt_times
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)


# ------------------------------------------------------- bounces (D4 a)


def test_550_rcpt_bounced_and_recorded_beside_a_deferred_one(onehop, master_bin, smtp_peers):
    peer = smtp_peers.start("strict.b.test", rcpt={"nobody@b.test": "550 5.1.1 no such user",
                                                   "later@b.test": "451 4.2.0 mailbox busy"})
    mta = instance(onehop, master_bin, routes="b.test [%s]:%d" % (peer.ip, smtp_peers.port),
                   retry_min="60s", retry_max="120s")
    mta.start()
    send(mta, ["nobody@b.test", "later@b.test"], "tok-bounce-1")
    (qid,) = queue_ids(mta)
    (bounced,) = mta.wait_delivery("nobody@b.test", "bounced", timeout=20)
    assert bounced.qid == qid and "550 5.1.1 no such user" in bounced.reason
    mta.wait_delivery("later@b.test", "deferred", timeout=20)
    # one transaction carried both recipients (D7)
    rcpts = [arg for _, cmd, arg in peer.commands if cmd == "RCPT"]
    assert len(rcpts) == 2 and peer.connections == 1, peer.commands

    def recorded():
        show = mta.queue_show(qid)
        states = {r["address"]: r for r in show["recipients"]}
        return states if states["later@b.test"]["state"] == "deferred" else None
    wait_until(recorded, 10, "both outcomes recorded", mta)
    states = recorded()
    assert states["nobody@b.test"]["state"] == "bounced"
    assert "550 5.1.1 no such user" in states["nobody@b.test"]["reason"]
    assert "451 4.2.0 mailbox busy" in states["later@b.test"]["reason"]
    assert "[%s]:%d" % (peer.ip, smtp_peers.port) in states["later@b.test"]["route"]
    assert peer.received() == []


# ------------------------------------------------------ MX through the dnscache


def test_mx_delivery_through_the_dnscache(onehop, master_bin, smtp_peers, dns):
    peer = smtp_peers.start("mx.c.test")
    host = dns.mx_to("c.test", peer.ip)
    mta = instance(onehop, master_bin)
    mta.start()
    send(mta, ["carol@c.test"], "tok-mx-1")
    (msg,) = peer.wait(1, timeout=20)
    assert msg.rcpt_tos == ["carol@c.test"] and b"body of tok-mx-1" in msg.data
    (sent,) = mta.wait_delivery("carol@c.test", "sent", timeout=20)
    assert sent.fields["relay"] == "%s[%s]:%d" % (host, peer.ip, smtp_peers.port)
    assert dns.count("c.test", "MX") >= 1
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % sent.qid, timeout=10)
    wait_queue_empty(mta)


# ------------------------------------------------- kill -9 of the router


def test_router_killed_during_200_deliveries_loses_nothing(onehop, master_bin, smtp_peers):
    count = 200
    peer = smtp_peers.start("sink.b.test", data=lambda ctx: None)
    mta = instance(onehop, master_bin, routes="b.test [%s]:%d" % (peer.ip, smtp_peers.port))
    mta.start()
    tokens = ["tok-kill-%03d" % i for i in range(count)]
    old = router_pid(mta)
    killed = False
    for i, token in enumerate(tokens):
        send(mta, ["bob@b.test"], token)
        if i == count // 3 and not killed:
            os.kill(old, signal.SIGKILL)
            killed = True
            at_kill = len(peer.received())

    def seen():
        return {t for m in peer.received() for t in tokens if t.encode() in m.data}
    assert at_kill < count  # killed while mail was still on its way
    wait_until(lambda: len(seen()) == count, 120, "every token at the peer", mta)
    mta.wait_log(r"router \(pid %d\) was killed by signal 9" % old, timeout=5)
    assert router_pid(mta) != old
    wait_queue_empty(mta, timeout=60)
    received = [t for m in peer.received() for t in tokens if t.encode() in m.data]
    duplicates = len(received) - count
    print("kill -9 during %d deliveries: %d received, %d duplicates" %
          (count, len(received), duplicates))
    assert sorted(set(received)) == tokens


# ------------------------------------------------------------ batching (D7)


def test_60_recipients_go_as_jobs_of_50_and_10_per_next_hop(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("batch.b.test")
    c = smtp_peers.start("batch.c.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, c_test=c))
    mta.start()
    rcpts = ["u%02d@b.test" % i for i in range(60)] + ["v1@c.test", "v2@c.test"]
    send(mta, rcpts, "tok-batch-1")
    got_b = b.wait(2, timeout=30)
    (got_c,) = c.wait(1, timeout=30)
    assert sorted(len(m.rcpt_tos) for m in got_b) == [10, 50]
    assert sorted(r for m in got_b for r in m.rcpt_tos) == sorted(rcpts[:60])
    assert sorted(got_c.rcpt_tos) == ["v1@c.test", "v2@c.test"]
    (qid,) = queue_ids(mta)
    wait_until(lambda: len(mta.deliveries(status="sent")) == 62, 20, "62 sent lines", mta)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)


# ------------------------------------------------------------ root (SPEC 7)


def test_as_root_the_router_account_delivers(onehop, master_bin, smtp_peers, accounts):
    peer = smtp_peers.start("root.b.test")
    mta = new_instance(onehop, master_bin, run_as=None, user=accounts.base)
    os.chmod(mta.dir, 0o755)   # the accounts traverse DIR to its files
    mta.write("routes", "b.test [%s]:%d" % (peer.ip, smtp_peers.port))
    mta.start()
    procs = {p["name"]: p for p in mta.status()["processes"]}
    assert procs["router"]["uid"] == accounts["router"].pw_uid, procs["router"]
    # as an installed set-uid onehop-queue would: the message committed by the queue account
    q = accounts["queue"]
    r = subprocess.run([str(master_bin / "sendmail"), "-C", str(mta.dir), "-f", SENDER,
                        "bob@b.test"], input=message("tok-root-1"), env=mta.env(),
                       user=q.pw_uid, group=q.pw_gid, extra_groups=[], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    (msg,) = peer.wait(1, timeout=20)
    assert b"body of tok-root-1" in msg.data
    # the queue account cannot open the root-owned log: the remote's line names the id
    (sent,) = mta.wait_delivery("bob@b.test", "sent", timeout=20)
    qid = sent.qid
    mta.wait_log(r"onehop/router\[%d\]: %s: removed" % (procs["router"]["pid"], qid), timeout=20)
    wait_queue_empty(mta)


# -------------------------------------------------------------- DSNs (D6)


def test_550_sends_one_rfc3464_dsn_to_the_sender(onehop, master_bin, smtp_peers):
    b = smtp_peers.start("hard.b.test", rcpt={"bob@b.test": "550 5.1.1 no such user",
                                              "eve@b.test": "554 5.7.1 not you"})
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=b, a_test=a))
    mta.start()
    send(mta, ["bob@b.test", "eve@b.test"], "tok-dsn-1")
    (qid,) = queue_ids(mta)
    (dsn,) = a.wait(1, timeout=30)
    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == [SENDER]
    mail = dsn.email()
    assert mail["From"].addresses[0].addr_spec == "MAILER-DAEMON@mta.onehop.test"
    assert mail.get_content_type() == "multipart/report"
    assert mail.get_param("report-type") == "delivery-status"
    human, status, original = mail.get_payload()
    assert human.get_content_type() == "text/plain"
    assert "bob@b.test" in human.get_content() and "eve@b.test" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, *per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mta.onehop.test"
    assert per_message["Arrival-Date"]
    rcpts = {r["Final-Recipient"]: r for r in per_rcpt}
    assert set(rcpts) == {"rfc822; bob@b.test", "rfc822; eve@b.test"}
    bob = rcpts["rfc822; bob@b.test"]
    assert bob["Action"] == "failed" and bob["Status"] == "5.1.1"
    assert bob["Diagnostic-Code"].startswith("smtp; ")
    assert "550 5.1.1 no such user" in bob["Diagnostic-Code"]
    assert bob["Remote-MTA"] == "dns; %s" % b.ip
    assert rcpts["rfc822; eve@b.test"]["Status"] == "5.7.1"
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: router test" in original.get_payload()
    mta.wait_log(r"onehop/router\[\d+\]: %s: sender non-delivery notification: \w+" % qid,
                 timeout=10)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)
    assert len(a.received()) == 1


# ------------------------------------------------- sites: rule 5 (SPEC 5)


def test_direct_delivery_refused_then_the_hub_gateway(onehop, master_bin, smtp_peers, dns):
    hub = smtp_peers.start("gw.hub.test")
    dead = smtp_peers.refusing()
    dns.mx_to("site2.test", dead)
    sites = ("site hub hub.test\nsite site1 site1.test\nsite site2 site2.test\nlocal site1\n"
             "link site1 hub 10 smtp [%s]:%d\nlink site2 hub 10 smtp\n" %
             (hub.ip, smtp_peers.port))
    mta = instance(onehop, master_bin, site_direct_smtp="yes", retry_min="1s", retry_max="2s")
    mta.write("sites", sites)
    mta.start()
    send(mta, ["bob@site2.test"], "tok-site-1")
    (first,) = mta.wait_delivery("bob@site2.test", "deferred", timeout=20)
    assert dead in first.reason, first.raw   # the first attempt went to site2's own MX
    (msg,) = hub.wait(1, timeout=20)         # the next by the path: the hub's gateway
    assert msg.rcpt_tos == ["bob@site2.test"] and b"body of tok-site-1" in msg.data
    (sent,) = mta.wait_delivery("bob@site2.test", "sent", timeout=10)
    assert sent.fields["relay"] == "%s[%s]:%d" % (hub.ip, hub.ip, smtp_peers.port)
    wait_queue_empty(mta)


# ------------------------------------------------------------ D5: loops


def test_more_than_100_received_headers_bounce_as_a_loop(onehop, master_bin, smtp_peers):
    peer = smtp_peers.start("loop.b.test")
    a = smtp_peers.start("mx.a.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=peer, a_test=a))
    mta.start()
    hops = "".join("Received: from h%d.test by h%d.test; Thu, 3 Dec 2026 10:00:00 +0000\n" %
                   (i, i + 1) for i in range(101))
    data = (hops + "From: %s\nTo: bob@b.test\nSubject: looping\n\nbody of tok-loop-1\n" %
            SENDER).encode()
    assert mta.sendmail("-f", SENDER, "bob@b.test", data=data).rc == 0
    (line,) = mta.wait_delivery("bob@b.test", "bounced", timeout=20)
    assert line.service == "router" and "5.4.6 mail loop" in line.reason
    (dsn,) = a.wait(1, timeout=20)
    assert "Status: 5.4.6" in dsn.text
    assert peer.received() == []
    # 100 are not a loop
    assert mta.sendmail("-f", SENDER, "bob@b.test",
                        data=data.replace(hops.split("\n")[0].encode() + b"\n", b"", 1)).rc == 0
    (msg,) = peer.wait(1, timeout=20)
    assert b"body of tok-loop-1" in msg.data


# ------------------------------------------------------------------ reload


def test_reload_rereads_the_routes(onehop, master_bin, smtp_peers):
    old = smtp_peers.start("old.b.test")
    new = smtp_peers.start("new.b.test")
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=old))
    mta.start()
    send(mta, ["bob@b.test"], "tok-reload-1")
    old.wait(1, timeout=20)
    mta.write("routes", routes_to(smtp_peers.port, b_test=new))
    assert mta.cmd("reload").rc == 0
    mta.wait_log(r"onehop/router\[\d+\]: reloaded: configuration, routes", timeout=10)
    send(mta, ["bob@b.test"], "tok-reload-2")
    (msg,) = new.wait(1, timeout=20)
    assert b"body of tok-reload-2" in msg.data
    assert len(old.received()) == 1
    wait_queue_empty(mta)
