"""Crash safety of onehop-queue (docs/INTERNALS.md "kill -9 at each step").

kill -9 loop: onehop-queue is killed at random moments while injecting
messages of random size. Afterwards every injection that reported success is
complete and listed, nothing partial is listed, and recovery removes the
uncommitted rest. ONEHOP_KILL_LOOP sets the number of injections (default
100 so `make check` stays fast; run >= 500 locally).

Disk full: the queue on a 1 MiB tmpfs (root only; skipped otherwise): a
message that does not fit gets 75, nothing is half-written, and later
injections that fit succeed.
"""

import os
import random
import subprocess
import threading
import time

import pytest

import injproto as ip

KILL_LOOP = int(os.environ.get("ONEHOP_KILL_LOOP", "100"))


def message_for(k, rng):
    """Deterministic content for injection k, so a listed message can be
    checked to be complete."""
    size = rng.choice([200, 4000, 60000, 300000, 1500000])
    line = (b"k=%d " % k) * 10 + b"\n"
    body = (line * (size // len(line) + 1))[:size]
    return b"Subject: injection %d\n\n" % k + body + b"end of %d\n" % k


def killable_env():
    """The environment of a process this test kills -9: under the sanitizer
    build, no leak check at exit (a SIGKILL that lands while LeakSanitizer
    stops the world at exit makes it write a bogus report). Every path these
    processes run is leak-checked by the other tests."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return env


def run_and_kill(qbin, conf, k, data, delay):
    """Start a one-shot injection of message k, kill -9 it after `delay`
    seconds. Returns the queue id if it reported success, else None."""
    recs = ip.message_records(1, "k%d@a.test" % k, ["bob@b.test"], data)
    p = subprocess.Popen([str(qbin), "-C", str(conf)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=killable_env())

    def feed():
        try:
            p.stdin.write(recs)
            p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    time.sleep(delay)
    p.kill()
    writer.join(timeout=30)
    out = p.stdout.read()
    p.wait(timeout=30)
    try:
        replies = ip.parse_replies(out)
    except AssertionError:
        replies = []  # killed in the middle of writing its reply
    if replies and replies[0][0] == ip.OK:
        return replies[0][2]
    return None


def recover(qbin, conf):
    p = subprocess.run([str(qbin), "-C", str(conf), "--recover"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_kill_minus_nine_loop(qbin, tmp_path):
    conf = ip.make_config(tmp_path / "c")
    qdir = conf / "queue"
    rng = random.Random(int(os.environ.get("ONEHOP_KILL_SEED", "4242")))
    expected, reported = {}, {}
    for k in range(KILL_LOOP):
        data = message_for(k, rng)
        expected["k%d@a.test" % k] = data
        delay = rng.choice([0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.02])
        qid = run_and_kill(qbin, conf, k, data, delay)
        if qid:
            reported[qid] = k
    listed = ip.list_queue(qdir)   # raises on any partial (uncommitted) file
    for qid, k in reported.items():
        assert qid in listed, "injection %d reported success as %s but is not queued" % (k, qid)
    for qid, m in listed.items():
        # committed but killed before it could answer is allowed (at least once);
        # partial is not: every listed message is exactly what was sent
        assert m["content"] == expected[m["sender"]], "message %s is not complete" % qid
        assert m["rcpts"] == ["bob@b.test"]
    out = recover(qbin, conf)
    assert ip.leftovers(qdir) == [], out
    assert "quarantined=0" in out
    after = ip.list_queue(qdir)
    assert listed.keys() <= after.keys()
    # a writer killed after its slot's fdatasync but before the rename left a
    # committed slot (nobody was told): recovery moves it into incoming/
    for qid in after.keys() - listed.keys():
        assert qid not in reported
        assert after[qid]["content"] == expected[after[qid]["sender"]], "slot %s partial" % qid
    assert len(after) - len(listed) == int(out.split("slots_committed=")[1].split()[0])
    # every committed message is logged (by its writer at the commit point, or
    # by the recovery that brought it in from its slot)
    log = (conf / "maillog").read_text()
    for qid, m in after.items():
        assert "%s: from=<%s>, size=%d, nrcpt=1" % (qid, m["sender"], len(m["content"])) in log, qid
    print("kill loop: %d injections, %d reported success, %d committed, recovery: %s" %
          (KILL_LOOP, len(reported), len(after), out.strip()))
    assert 0 < len(reported) < KILL_LOOP   # the kills really hit every phase


def read_acks(out):
    """{queue id: txn} of the whole OK replies in out (a reply cut by the
    kill is ignored)."""
    acks, pos = {}, 0
    while pos + 8 <= len(out):
        length = int.from_bytes(out[pos:pos + 4], "big")
        if pos + length > len(out):
            break
        rec = ip.parse_replies(bytes(out[pos:pos + length]))[0]
        if rec[0] == ip.OK:
            acks[rec[2]] = rec[1]
        pos += length
    return acks


def test_kill_minus_nine_server_mode(qbin, tmp_path):
    """A server killed in the middle of group commits: every message it
    answered OK is listed, complete and exactly what was sent for that
    transaction. The first round is killed only once an answer arrived, so
    the test never passes on nothing acknowledged."""
    conf = ip.make_config(tmp_path / "c")
    rng = random.Random(7)
    acked, sent = {}, {}
    for round_ in range(max(3, KILL_LOOP // 25)):
        p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=killable_env())
        out = bytearray()

        def reader():
            while True:
                chunk = p.stdout.read1(65536)
                if not chunk:
                    return
                out.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        try:
            for i in range(200):
                data = b"Subject: r%d m%d\n\n" % (round_, i) + b"x" * rng.choice([100, 5000, 400000])
                sent[(round_, i)] = data + b"\n"  # stored form: the last line gets its LF
                p.stdin.write(ip.message_records(i, "r%dm%d@a.test" % (round_, i),
                                                 ["bob@b.test"], data))
                if round_ == 0 and i == 20:
                    p.stdin.flush()
                    deadline = time.monotonic() + 30
                    while not read_acks(out) and time.monotonic() < deadline:
                        time.sleep(0.01)
        except (BrokenPipeError, OSError):
            pass
        time.sleep(rng.choice([0.001, 0.01, 0.05]))
        p.kill()
        p.wait(timeout=30)
        t.join(timeout=30)
        acked.update({qid: (round_, txn) for qid, txn in read_acks(out).items()})
    assert acked, "the server acknowledged nothing: the test proved nothing"
    listed = ip.list_queue(conf / "queue")   # raises on a partial file or a CRC mismatch
    for qid, (round_, txn) in acked.items():
        assert qid in listed, "acknowledged %s (round %d, txn %d) is not queued" % (qid, round_, txn)
        m = listed[qid]
        assert m["sender"] == "r%dm%d@a.test" % (round_, txn), (qid, m["sender"])
        assert m["content"] == sent[(round_, txn)], "content of %s is not what was sent" % qid
        assert m["rcpts"] == ["bob@b.test"]
    for qid, m in listed.items():   # committed, maybe unanswered: still exactly what was sent
        round_, txn = (int(x) for x in m["sender"].split("@")[0][1:].split("m"))
        assert m["content"] == sent[(round_, txn)], "content of %s is not complete" % qid
    recover(qbin, conf)
    assert ip.leftovers(conf / "queue") == []
    print("server kill loop: %d acknowledged, %d committed" % (len(acked), len(listed)))


def is_root():
    return os.geteuid() == 0


@pytest.mark.skipif(not is_root(), reason="mounting a 1 MiB tmpfs as the queue needs root")
def test_disk_full(qbin, tmp_path):
    conf = ip.make_config(tmp_path / "c")
    qdir = conf / "queue"
    qdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(qdir)],
                   check=True, timeout=30)
    try:
        big = b"Subject: big\n\n" + b"b" * (2 << 20)
        rc, replies, err = ip.inject(qbin, conf, data=big)
        assert rc == ip.EX_TEMPFAIL, err
        assert replies[0][2:4] == (ip.EX_TEMPFAIL, "4.3.1")
        assert "storage" in err
        assert ip.queue_files(qdir) == [] and ip.leftovers(qdir) == []
        # fill it with small messages until it is full: every one is 0 or 75
        ok = 0
        for i in range(400):
            rc, replies, _ = ip.inject(qbin, conf, data=b"Subject: s\n\n" + b"s" * 8000)
            assert rc in (0, ip.EX_TEMPFAIL)
            if rc == ip.EX_TEMPFAIL:
                break
            ok += 1
        assert rc == ip.EX_TEMPFAIL and ok > 10
        assert ip.leftovers(qdir) == []
        assert len(ip.list_queue(qdir)) == ok     # all complete, nothing half-written
        # space comes back: injections succeed again
        for f in ip.queue_files(qdir)[:20]:
            f.unlink()
        rc, _, err = ip.inject(qbin, conf)
        assert rc == 0, err
        # server mode: a batch that does not fit fails as a whole, then recovers
        p = subprocess.run([str(qbin), "-C", str(conf), "--server"],
                           input=b"".join(ip.message_records(i, "a@a.test", ["b@b.test"],
                                                             b"x" * 300000) for i in range(8)),
                           stdout=subprocess.PIPE, timeout=60)
        replies = ip.parse_replies(p.stdout)
        assert len(replies) == 8 and p.returncode == 0
        assert any(r[0] == ip.FAIL and r[3] == "4.3.1" for r in replies)
        assert ip.leftovers(qdir) == []
        ip.list_queue(qdir)
    finally:
        subprocess.run(["umount", str(qdir)], timeout=30)
