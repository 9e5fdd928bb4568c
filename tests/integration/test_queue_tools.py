"""The queue inspection and management commands (SPEC section 1): onehop
queue [--json], queue show, qstat, delete, hold, release, and mailq, on an
instance whose daemons are stopped (the commands then act on the queue
themselves, on the router's state side, queue/state.h). A running router
is stood in for by holding the state lock, queue_dir/state/lock, which is
exactly what tells the commands that a router runs.
"""

import os
import re
import time

import pytest

from routerlock import OwnerLock

QUEUED_AS = re.compile(r"queued as ([0-9A-Z]{18})")
HEADING = ("-Queue ID-          --Size-- ----Arrival Time---- "
           "-Sender/Recipient-------")
ID_LINE = re.compile(r"^(?P<id>[0-9A-Z]{18})(?P<mark>[*!]?) +(?P<size>\d+) "
                     r"(?P<arrival>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)  "
                     r"(?P<sender>\S+)$")
RCPT_LINE = re.compile(r"^ {50}(?P<rcpt>\S+)$")


@pytest.fixture
def mta(onehop):
    return onehop()


def inject(mta, sender="alice@a.test", rcpts=("bob@b.test",), subject="s", body=b"hello\n"):
    data = b"Subject: " + subject.encode() + b"\n\n" + body
    result = mta.sendmail("-v", "-f", sender, *rcpts, data=data)
    assert result.rc == 0, result
    return QUEUED_AS.search(result.err).group(1)


def listing(mta):
    result = mta.cmd("queue")
    assert result.rc == 0, result
    return result.out


def ids_in(text):
    return [m["id"] + m["mark"] for m in map(ID_LINE.match, text.splitlines()) if m]


# ------------------------------------------------------------------ listing


def test_empty_queue(mta):
    assert listing(mta) == "Mail queue is empty\n"
    assert mta.queue() == {"messages": []}
    assert mta.qstat() == {"total": 0, "incoming": 0, "active": 0, "deferred": 0, "hold": 0,
                           "corrupt": 0, "oldest_age": None}


def test_listing_layout(mta):
    first = inject(mta, rcpts=("bob@b.test", "carol@c.test"), body=b"x" * 3000 + b"\n")
    second = inject(mta, sender="", rcpts=("dan@d.test",))
    lines = listing(mta).splitlines()
    assert lines[0] == HEADING
    m = ID_LINE.match(lines[1])
    assert m and m["id"] == first and m["mark"] == "" and m["sender"] == "alice@a.test"
    assert [RCPT_LINE.match(l)["rcpt"] for l in lines[2:4]] == ["bob@b.test", "carol@c.test"]
    assert lines[4] == ""
    m2 = ID_LINE.match(lines[5])
    assert m2 and m2["id"] == second and m2["sender"] == "MAILER-DAEMON"
    assert RCPT_LINE.match(lines[6])["rcpt"] == "dan@d.test"
    total = int(m["size"]) + int(m2["size"])
    assert lines[7:] == ["", "-- %d Kbytes in 2 Requests." % (total // 1024)]
    assert time.strftime("%a %b ", time.localtime()) in lines[1]


def test_one_request_is_singular(mta):
    inject(mta)
    assert listing(mta).endswith(" Kbytes in 1 Request.\n")


def test_queue_json(mta):
    before = int(time.time())
    qid = inject(mta, rcpts=("bob@b.test", "carol@c.test"))
    (msg,) = mta.queue()["messages"]
    assert msg["id"] == qid
    assert msg["sender"] == "alice@a.test"
    assert msg["state"] == "incoming"
    assert before - 1 <= msg["arrival"] <= time.time() + 1
    assert msg["size"] > 0
    assert msg["recipients"] == [
        {"address": "bob@b.test", "state": "pending", "reason": None},
        {"address": "carol@c.test", "state": "pending", "reason": None},
    ]


def test_queue_show(mta):
    qid = inject(mta, subject="inspect me")
    show = mta.queue_show(qid)
    assert show["id"] == qid and show["sender"] == "alice@a.test"
    headers = {h["name"]: h["value"] for h in show["headers"]}
    assert headers["Subject"] == "inspect me"
    assert {"Date", "Message-ID", "From"} <= set(headers)
    assert show["attempts"] == 0 and show["next_attempt"] is None and show["route"] is None
    assert "uid" in show["attributes"]
    (rcpt,) = show["recipients"]
    assert rcpt["address"] == "bob@b.test" and rcpt["state"] == "pending"
    assert rcpt["attempts"] == 0 and rcpt["last_attempt"] is None
    assert rcpt["next_attempt"] is None and rcpt["reason"] is None
    text = mta.cmd("queue", "show", qid)
    assert text.rc == 0
    assert "Queue ID:    %s" % qid in text.out
    assert "Recipient:   <bob@b.test>" in text.out
    assert "  Subject: inspect me" in text.out


def test_queue_show_unknown_id_fails(mta):
    inject(mta)
    for bad in ("0" * 18, "not-an-id"):
        result = mta.cmd("queue", "show", bad)
        assert result.rc == 1
        assert "no such message" in result.err


def test_qstat_counts_and_age(mta):
    inject(mta)
    inject(mta)
    time.sleep(1.1)
    stat = mta.qstat()
    assert stat["total"] == stat["incoming"] == 2
    assert stat["active"] == stat["deferred"] == stat["hold"] == 0
    assert 1 <= stat["oldest_age"] <= 60
    text = mta.cmd("qstat")
    assert text.rc == 0 and re.search(r"^total: +2$", text.out, re.M)


def test_mailq_matches_onehop_queue(mta):
    inject(mta)
    qid = inject(mta, rcpts=("x@x.test",))
    assert mta.cmd("hold", qid).rc == 0
    assert mta.run("mailq").out == listing(mta) == mta.sendmail("-bp").out


# --------------------------------------------------------------- management


def test_hold_and_release(mta):
    keep = inject(mta)
    qid = inject(mta)
    result = mta.cmd("hold", qid)
    assert result.rc == 0, result
    assert "Placed on hold: 1 message" in result.err
    assert ids_in(listing(mta)) == [keep, qid + "!"]
    assert mta.qstat()["hold"] == 1
    assert [m["state"] for m in mta.queue()["messages"]] == ["incoming", "hold"]
    again = mta.cmd("hold", qid)
    assert again.rc == 0 and "Placed on hold: 0 messages" in again.err
    result = mta.cmd("release", qid)
    assert result.rc == 0 and "Released from hold: 1 message" in result.err
    assert ids_in(listing(mta)) == [keep, qid]
    assert mta.qstat()["hold"] == 0
    mta.wait_log(qid + ": placed on hold")
    mta.wait_log(qid + ": released from hold")
    assert all(l.service == "admin" for l in mta.log(qid=qid) if "hold" in l.text)


def test_delete_ids(mta):
    a, b, c = inject(mta), inject(mta), inject(mta)
    result = mta.cmd("delete", a, c)
    assert result.rc == 0, result
    assert "Deleted: 2 messages" in result.err
    assert ids_in(listing(mta)) == [b]
    assert mta.qstat()["total"] == 1
    for qid in (a, c):
        (line,) = mta.wait_log(qid + ": removed")
        assert line.service == "admin"


def test_delete_all(mta):
    for _ in range(3):
        inject(mta)
    held = inject(mta)
    assert mta.cmd("hold", held).rc == 0
    result = mta.cmd("delete", "--all")
    assert result.rc == 0 and "Deleted: 4 messages" in result.err
    assert listing(mta) == "Mail queue is empty\n"


def test_delete_deferred_leaves_untried_mail(mta):
    qid = inject(mta)
    result = mta.cmd("delete", "--deferred")
    assert result.rc == 0 and "Deleted: 0 messages" in result.err
    assert ids_in(listing(mta)) == [qid]


def test_unknown_ids_fail_but_the_others_are_done(mta):
    qid = inject(mta)
    result = mta.cmd("delete", "0" * 18, qid, "junk")
    assert result.rc == 1
    assert "%s: no such message" % ("0" * 18) in result.err
    assert "junk: not a queue ID" in result.err
    assert "Deleted: 1 message" in result.err
    assert listing(mta) == "Mail queue is empty\n"


def test_changes_refused_while_a_router_owns_the_queue(mta):
    qid = inject(mta)
    before = listing(mta)
    with OwnerLock(mta):
        for args in (["hold", qid], ["release", qid], ["delete", qid], ["delete", "--all"]):
            result = mta.cmd(*args)
            assert result.rc == 1, (args, result)
            assert "onehop is running" in result.err and "nothing was changed" in result.err
        assert listing(mta) == before  # listing needs no owner lock
        assert mta.qstat()["total"] == 1
    assert mta.cmd("hold", qid).rc == 0


@pytest.mark.parametrize("args", [
    ["queue", "show"],
    ["queue", "show", "A", "B"],
    ["queue", "list"],
    ["queue", "--bogus"],
    ["qstat", "extra"],
    ["delete"],
    ["delete", "--all", "--deferred"],
    ["delete", "--all", "0" * 18],
    ["hold"],
    ["hold", "--all"],
    ["release"],
])
def test_usage_errors_exit_2(mta, args):
    result = mta.cmd(*args)
    assert result.rc == 2, (args, result)
    assert "usage:" in result.err


def test_json_escapes_hostile_bytes(mta):
    result = mta.sendmail("-v", "-f", "alice@a.test", "bob@b.test",
                          data=b"Subject: caf\xe9 \"q\" \\ \x01\n\nb\n")
    qid = QUEUED_AS.search(result.err).group(1)
    headers = {h["name"]: h["value"] for h in mta.queue_show(qid)["headers"]}
    assert headers["Subject"] == "caf\u00e9 \"q\" \\ \x01"
    text = mta.cmd("queue", "show", qid).out
    assert "\x01" not in text


# ------------------------------------------------- filters, the state side


def test_queue_filters(mta):
    a = inject(mta, sender="alice@a.test", rcpts=("bob@b.test",))
    b = inject(mta, sender="carol@c.test", rcpts=("dan@d.test", "erin@b.test"))
    c = inject(mta, sender="", rcpts=("fred@f.test",))

    def ids(*args):
        result = mta.cmd("queue", "--json", *args)
        assert result.rc == 0, result
        import json
        return [m["id"] for m in json.loads(result.out)["messages"]]

    assert ids() == [a, b, c]
    assert ids("--domain", "B.test") == [a, b]
    assert ids("--domain", "d.test") == [b]
    assert ids("--sender", "ALICE@a.test") == [a]
    assert ids("--sender", "") == [c]
    assert ids("--domain", "b.test", "--sender", "carol@c.test") == [b]
    assert ids("--older-than", "1h") == []
    assert ids("--older-than", "0s") == [a, b, c]
    text = mta.cmd("queue", "--domain", "f.test").out
    assert ids_in(text) == [c] and "-- 0 Kbytes in 1 Request." in text
    for bad in (["--domain"], ["--older-than", "soon"]):
        result = mta.cmd("queue", *bad)
        assert result.rc == 2 and "usage:" in result.err, (bad, result)


def test_a_deleted_file_waits_for_the_cleaner(mta):
    qid = inject(mta)
    bucket = [d for d in os.listdir(mta.path("queue", "incoming"))
              if os.path.exists(mta.path("queue", "incoming", d, qid[:16]))]
    assert mta.cmd("delete", qid).rc == 0
    # The change is in the router's state (its journal); the file is left to
    # the cleaner, which only the router drives.
    assert bucket and os.path.exists(mta.path("queue", "incoming", bucket[0], qid[:16]))
    assert os.stat(mta.path("queue", "state")).st_mode & 0o777 == 0o700
    assert listing(mta) == "Mail queue is empty\n"
    assert mta.qstat()["total"] == 0
    assert mta.cmd("queue", "show", qid).rc == 1


def test_queue_account_listing_shows_queued(mta):
    """onehop-queue --list runs as the queue account, which may not read
    state/: messages and recipients are listed, their states as queued."""
    import pwd
    import shutil
    import subprocess
    import tempfile
    import reachable
    held = inject(mta, rcpts=("bob@b.test", "carol@c.test"))
    assert mta.cmd("hold", held).rc == 0
    assert ids_in(listing(mta)) == [held + "!"]
    nobody = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(mta.path("queue")):
        if "state" in dirs:
            dirs.remove("state")  # stays the router's (here root's), 0700
        for name in dirs + files:
            os.chown(os.path.join(root, name), nobody.pw_uid, nobody.pw_gid)
    os.chown(mta.path("queue"), nobody.pw_uid, nobody.pw_gid)
    os.chmod(mta.dir, 0o755)
    os.chmod(mta.path("onehop.conf"), 0o644)

    def as_nobody():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    top = tempfile.mkdtemp(prefix="onehop-list-", dir="/tmp")
    try:  # a copy nobody can reach (reachable.py: the clone may sit in a 0700 directory)
        program = reachable.copy_programs(top, ["onehop-queue"]) / "onehop-queue"
        p = subprocess.run([str(program), "-C", str(mta.dir), "--list"],
                           capture_output=True, text=True, preexec_fn=as_nobody, timeout=60)
    finally:
        shutil.rmtree(top)
    assert p.returncode == 0, p
    assert ids_in(p.stdout) == [held]  # no hold mark: the state is not readable
    assert [l.strip() for l in p.stdout.splitlines() if RCPT_LINE.match(l)] == \
        ["bob@b.test", "carol@c.test"]
    assert "(" not in p.stdout  # no reason lines


def test_a_file_met_in_incoming_and_active_is_listed_once(mta):
    """The router moves a file from incoming/ to active/ while a listing
    reads the two directories one after the other: the listing may meet it
    in both, and must show the message once (here both links exist)."""
    qid = inject(mta)
    (bucket,) = [d for d in os.listdir(mta.path("queue", "incoming"))
                 if os.path.exists(mta.path("queue", "incoming", d, qid[:16]))]
    active = mta.path("queue", "active", bucket)
    os.makedirs(active, exist_ok=True)
    os.link(mta.path("queue", "incoming", bucket, qid[:16]), os.path.join(active, qid[:16]))
    assert [m["id"] for m in mta.queue()["messages"]] == [qid]
    assert ids_in(listing(mta)) == [qid]
