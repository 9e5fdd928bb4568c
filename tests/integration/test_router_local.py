"""onehop-router with the real onehop-local (issue 11, local dispatch):
`onehop start` instances, mail in by `sendmail`, out in Maildirs, mboxes,
commands and at aiosmtpd peers. Local results take the remote's outcome
path (recorded, removed); aliases with every target kind; the routes
file's `local`; at most local_concurrency local jobs at once; onehop-local
killed with SIGKILL during deliveries loses nothing.
"""

import os
import signal
import time

from test_master import master_bin  # noqa: F401 (a fixture)
from test_router import (SENDER, instance, queue_ids, routes_to, send, wait_queue_empty,
                         wait_until)


def local_instance(onehop, master_bin, routes="", aliases="", **conf):
    mta = instance(onehop, master_bin, routes=routes, **conf)
    mta.write("aliases", aliases)
    if mta.run_as:   # root: the instance runs as nobody, which writes mail/ and its files
        os.chown(mta.dir, mta.run_as.pw_uid, mta.run_as.pw_gid)
        os.chown(mta.path("mail"), mta.run_as.pw_uid, mta.run_as.pw_gid)
    return mta


def pid_of(mta, name):
    return {p["name"]: p for p in mta.status()["processes"]}[name]["pid"]


def test_local_user_delivered_and_removed(onehop, master_bin):
    mta = local_instance(onehop, master_bin)
    mta.start()
    send(mta, ["carol@local.test"], "tok-local-1")
    (qid,) = queue_ids(mta)
    (path,) = mta.wait_maildir("carol", timeout=20)
    assert b"body of tok-local-1" in path.read_bytes()
    (sent,) = mta.wait_delivery("carol@local.test", "sent", timeout=10)
    assert sent.service == "local" and sent.qid == qid
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)


def test_routes_local_form_delivers_locally(onehop, master_bin):
    mta = local_instance(onehop, master_bin, routes="loc.test local\n")
    mta.start()
    send(mta, ["dora@loc.test"], "tok-route-local")
    (path,) = mta.wait_maildir("dora", timeout=20)
    assert b"body of tok-route-local" in path.read_bytes()
    wait_queue_empty(mta)


def test_alias_with_every_target_kind(onehop, master_bin, smtp_peers):
    peer = smtp_peers.start("mx.b.test")
    mta = local_instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=peer))
    out = mta.path("out")
    out.mkdir()
    if mta.run_as:
        os.chown(out, mta.run_as.pw_uid, mta.run_as.pw_gid)
    include = mta.write("more.list", "erin\n")
    mta.write("aliases",
              "all: carol, remote@b.test, \"|cat > %s/cmd.out\", %s/archive, :include:%s\n"
              % (out, out, include))
    mta.start()
    send(mta, ["all@mta.onehop.test"], "tok-kinds")
    (qid,) = queue_ids(mta)
    (at_peer,) = peer.wait(1, timeout=20)            # user@domain
    assert at_peer.rcpt_tos == ["remote@b.test"] and b"body of tok-kinds" in at_peer.data
    for user in ("carol", "erin"):                    # user, :include:
        (path,) = mta.wait_maildir(user, timeout=20)
        assert b"body of tok-kinds" in path.read_bytes()
    wait_until(lambda: (out / "cmd.out").exists() and (out / "archive").exists(), 20,
               "the command's and the file's output", mta)
    assert b"body of tok-kinds" in (out / "cmd.out").read_bytes()     # |command
    assert (out / "archive").read_bytes().startswith(b"From %s " % SENDER.encode())  # /file
    mta.wait_log(r"%s: <all@mta.onehop.test>: 2.0.0 alias expanded to 5: 5 delivered" % qid,
                 timeout=20)
    mta.wait_log(r"onehop/router\[\d+\]: %s: removed" % qid, timeout=10)
    wait_queue_empty(mta)
    assert mta.qstat()["total"] == 0


def test_at_most_local_concurrency_jobs_at_once(onehop, master_bin):
    mta = local_instance(onehop, master_bin, local_concurrency="2")
    out = mta.path("out")
    out.mkdir()
    if mta.run_as:
        os.chown(out, mta.run_as.pw_uid, mta.run_as.pw_gid)
    # each delivery: a start mark, 0.6 s of work, an end mark
    mta.write("aliases", "slow: \"|f=%s/$$; date +%%s.%%N > $f.start; sleep 0.6; "
              "date +%%s.%%N > $f.end\"\n" % out)
    mta.start()
    for i in range(6):
        send(mta, ["slow@mta.onehop.test"], "tok-conc-%d" % i)
    wait_until(lambda: len(list(out.glob("*.end"))) == 6, 30, "six command runs", mta)
    spans = []
    for start in out.glob("*.start"):
        end = start.with_suffix(".end")
        spans.append((float(start.read_text()), float(end.read_text())))
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    print("local_concurrency 2: at most %d commands at once over %d deliveries" % (most, len(spans)))
    assert most <= 2, spans
    assert most == 2   # and it does use both
    wait_queue_empty(mta)


def test_local_killed_during_deliveries_loses_nothing(onehop, master_bin):
    count = 40
    mta = local_instance(onehop, master_bin)
    mta.start()
    old = pid_of(mta, "local")
    for i in range(count):
        send(mta, ["carol@local.test"], "tok-lkill-%02d" % i)
        if i == count // 3:
            os.kill(old, signal.SIGKILL)
    wait_until(lambda: len(mta.maildir("carol")) >= count, 60, "every message in the Maildir",
               mta)
    mta.wait_log(r"local \(pid %d\) was killed by signal 9" % old, timeout=10)
    wait_queue_empty(mta, timeout=30)
    bodies = [p.read_bytes() for p in mta.maildir("carol")]
    tokens = ["tok-lkill-%02d" % i for i in range(count)]
    seen = [t for b in bodies for t in tokens if ("body of %s\n" % t).encode() in b]
    print("kill -9 of onehop-local during %d deliveries: %d delivered, %d duplicates" %
          (count, len(seen), len(seen) - count))
    assert sorted(set(seen)) == tokens
