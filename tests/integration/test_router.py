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
    """Message ids named by the from= lines the queue logged."""
    return [l.qid for l in mta.log(service="queue") if l.qid and "from" in l.fields]


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
