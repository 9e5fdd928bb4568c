"""onehop-queue --clean as a process (queue/clean_proto.h, queue/cleaner.c;
docs/INTERNALS.md "Ownership and the cleaner"): its channel on two pipes
and on one socketpair, its exit statuses, its log lines, and the crash
table: the cleaner killed with SIGKILL while it works through a router's
requests, then a new one given every request again (what the router's
journal replay does): every answer is OK, and the tree ends exactly as if
nothing had happened.
"""

import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import injproto
import queuefile

RECOVER, TAKE, RECLAIM, REMOVE, QUARANTINE, OK, ERR = 32, 33, 34, 35, 36, 48, 49
EX_OK, EX_SOFTWARE, EX_TEMPFAIL = 0, 70, 75


PIPE_BYTES = 1 << 20  # what F_SETPIPE_SZ gives any user (fs.pipe-max-size)


def _server_run(qbin, conf, stream):
    """onehop-queue --server on one stream, its pipe filled with up to
    PIPE_BYTES before the server starts, so that its first reads bring
    many messages (group commits of hundreds, not of a read's 64 KiB)."""
    rd, wr = os.pipe()
    try:
        fcntl.fcntl(wr, 1031, PIPE_BYTES)  # F_SETPIPE_SZ
        first = PIPE_BYTES
    except OSError:
        first = 65536
    os.write(wr, stream[:first])
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=rd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(rd)

    def feed():
        with os.fdopen(wr, "wb") as f:
            f.write(stream[first:])
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        out, err = p.communicate(timeout=120)
    finally:
        writer.join(timeout=60)
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    return out


def _commit_groups(qbin, conf, groups, per_group, size=9000):
    """Commit `groups` streams of `per_group` messages each through the server
    mode (a stream is one file, or a few: the server commits what its reads
    brought); the ids in transaction order."""
    ids = []
    for g in range(groups):
        stream = b"".join(injproto.message_records(
            t, "alice@a.test", ["bob@b.test"],
            b"Subject: %d/%d\n\n" % (g, t) + b"x" * size + b"\n") for t in range(per_group))
        replies = injproto.parse_replies(_server_run(qbin, conf, stream))
        assert [x[0] for x in replies] == [injproto.OK] * per_group
        ids += [qid for _ok, _txn, qid in sorted(replies, key=lambda x: x[1])]
    return ids


def _read_replies(stream, n, deadline):
    """n reply records from a file object, each as (type, fields...)."""
    out = []
    while len(out) < n:
        assert time.monotonic() < deadline, "cleaner answered %d of %d" % (len(out), n)
        head = stream.read(8)
        if len(head) < 8:
            break
        length = struct.unpack(">I", head[:4])[0]
        out += injproto.parse_replies(head + stream.read(length - 8))
    return out


def _requests(ids):
    """What a router would ask after delivering everything: take each file,
    reclaim each message, remove each file but the last, quarantine that."""
    fids = sorted({i[:16] for i in ids})
    reqs = [injproto.record(TAKE, f) for f in fids]
    reqs += [injproto.record(RECLAIM, i) for i in ids]
    reqs += [injproto.record(REMOVE, f) for f in fids[:-1]]
    reqs.append(injproto.record(QUARANTINE, fids[-1], "content checksum mismatch"))
    return fids, reqs


def _files(queue_dir, place):
    return sorted(p.name for p in (queue_dir / place).rglob("*") if p.is_file())


def test_two_pipes_in_order_and_log_lines(qbin, conf):
    ids = _commit_groups(qbin, conf, 1, 3)
    fid = ids[0][:16]
    reqs = [injproto.record(TAKE, fid), injproto.record(RECLAIM, ids[1]),
            injproto.record(TAKE, "../" + fid[3:]), injproto.record(REMOVE, fid),
            injproto.record(REMOVE, fid)]
    r = subprocess.run([str(qbin), "-C", str(conf), "--clean"], input=b"".join(reqs),
                       capture_output=True, timeout=60)
    assert r.returncode == EX_OK, r.stderr
    replies = injproto.parse_replies(r.stdout)
    assert len(replies) == 5
    taken, punched, refused, removed, repeated = replies
    assert taken == (OK, 1, 0, "taken")
    assert punched[:2] == (OK, 1) and punched[3] == "punched" and punched[2] >= 9000
    assert refused == (ERR, 22, "not a file id: Invalid argument")
    assert removed == (OK, 1, 0, "unlinked from active/")
    assert repeated == (OK, 0, 0, "already gone")
    log = (conf / "maillog").read_text()
    assert "%s: taken: moved to active/" % fid in log
    assert "%s: content reclaimed: %d bytes punched" % (ids[1], punched[2]) in log
    assert "%s: unlinked from active/" % fid in log
    assert ": removed" not in log  # the router's line (SPEC 8), never the cleaner's


def test_one_socketpair_on_fd0(qbin, conf):
    ids = _commit_groups(qbin, conf, 1, 1)
    ours, theirs = socket.socketpair()
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--clean"], stdin=theirs,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    theirs.close()
    try:
        ours.settimeout(30)
        ours.sendall(injproto.record(TAKE, ids[0][:16]))
        got = b""
        while len(got) < 8 or len(got) < struct.unpack(">I", got[:4])[0]:
            chunk = ours.recv(4096)
            assert chunk, "the cleaner closed the socket"
            got += chunk
        assert injproto.parse_replies(got) == [(OK, 1, 0, "taken")]
        ours.shutdown(socket.SHUT_WR)
        assert p.wait(timeout=30) == EX_OK
        assert p.stdout.read() == b""  # nothing went to fd 1
    finally:
        ours.close()
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("stream, status", [
    (b"", EX_OK),                                                      # end of input
    (injproto.record(7, "0PKX3B2Q7ZM012KG"), EX_SOFTWARE),             # unknown type
    (injproto.record(TAKE, "0PKX3B2Q7ZM012KG", "extra"), EX_SOFTWARE),  # a field too many
    (injproto.record(TAKE, "0PKX3B2Q7ZM012KG")[:-2], EX_SOFTWARE),      # ends inside a record
])
def test_exit_status(qbin, conf, stream, status):
    r = subprocess.run([str(qbin), "-C", str(conf), "--clean"], input=stream,
                       capture_output=True, timeout=60)
    assert r.returncode == status, r
    assert r.stdout == b""


def test_unavailable_queue_is_a_temporary_failure(qbin, tmp_path):
    conf = injproto.make_config(tmp_path / "c", queue_dir="/proc/onehop-no-such-queue")
    r = subprocess.run([str(qbin), "-C", str(conf), "--clean"], input=injproto.record(RECOVER),
                       capture_output=True, timeout=60)
    assert r.returncode == EX_TEMPFAIL, r
    assert b"queue unavailable" in r.stderr


@pytest.mark.parametrize("fraction", [0, 0.05, 0.25, 0.5, 0.75, 0.97])
def test_kill_9_then_replay_every_request(qbin, conf, tmp_path, fraction):
    """SIGKILL after the router saw a fraction of the replies (the cleaner
    may have done more), then every request again to a new cleaner: all OK,
    and the tree is what the requests say."""
    queue_dir = conf / "queue"
    ids = _commit_groups(qbin, conf, 3, 8)
    fids, reqs = _requests(ids)
    assert len(fids) >= 3 and len(reqs) == len(fids) + 24 + len(fids) - 1 + 1
    answered = int(fraction * len(reqs))
    first = subprocess.Popen([str(qbin), "-C", str(conf), "--clean"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first.stdin.write(b"".join(reqs))
        first.stdin.flush()
        seen = _read_replies(first.stdout, answered, time.monotonic() + 30)
        assert len(seen) == answered and all(x[0] == OK for x in seen), seen
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.stdin.close()
        first.stdout.close()
    again = subprocess.run([str(qbin), "-C", str(conf), "--clean"], input=b"".join(reqs),
                           capture_output=True, timeout=120)
    assert again.returncode == EX_OK, again.stderr
    replies = injproto.parse_replies(again.stdout)
    assert len(replies) == len(reqs)
    assert [x[0] for x in replies] == [OK] * len(reqs), replies
    assert _files(queue_dir, "incoming") == [] and _files(queue_dir, "active") == []
    assert sorted(p.name for p in (queue_dir / "corrupt").iterdir()) == [fids[-1]]
    # the quarantined file kept its envelope; every message in it reads as
    # zeros (queuefile reads it where a reader looks for queue files)
    look = tmp_path / "look" / "incoming" / "00"
    look.mkdir(parents=True)
    shutil.copy(queue_dir / "corrupt" / fids[-1], look / fids[-1])
    for i in ids:
        if i.startswith(fids[-1]):
            content = queuefile.stored_content(tmp_path / "look", i)
            assert len(content) >= 9000 and content.count(0) == len(content)


def test_recover_at_start_and_on_request(qbin, conf):
    """The cleaner recovers the writer side when it starts (before the
    master hears READY), and again on RECOVER."""
    _commit_groups(qbin, conf, 1, 1)  # the queue exists
    tmp = conf / "queue" / "tmp"
    (tmp / "0PKX3B2Q7ZM012KG").write_bytes(b"half a message")  # nobody holds its lock
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--clean"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        p.stdin.write(injproto.record(RECOVER))
        p.stdin.flush()
        (first,) = _read_replies(p.stdout, 1, deadline)
        assert first[:2] == (OK, 0) and "tmp_removed=0 " in first[3]  # done at start
        assert list(tmp.iterdir()) == []
        (tmp / "0PKX3B2Q7ZM012KH").write_bytes(b"another half")
        p.stdin.write(injproto.record(RECOVER))
        p.stdin.flush()
        (second,) = _read_replies(p.stdout, 1, deadline)
        assert second[:2] == (OK, 1) and "tmp_removed=1 " in second[3]
        assert list(tmp.iterdir()) == []
        p.stdin.close()
        assert p.wait(timeout=30) == EX_OK
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    assert "queue recovery: 1 uncommitted files removed" in (conf / "maillog").read_text()
    assert not (conf / "queue" / "state").exists()  # the router's, never made here


def test_reclaim_bound_through_the_server_mode(qbin, conf):
    """1,000 messages sent to onehop-queue --server in one stream (group
    commits: a few files at most), every message but one reclaimed through
    --clean: each file keeps the blocks of its header and its envelope, and
    of the one message left in it, within docs/INTERNALS.md's bound."""
    size, count = 3000, 1000
    ids = _commit_groups(qbin, conf, 1, count, size=size)
    by_file = {}
    for i in ids:
        by_file.setdefault(i[:16], []).append(i)
    biggest = max(len(m) for m in by_file.values())
    assert biggest >= 100, "the largest of %d files holds %d messages" % (len(by_file), biggest)
    keep = ids[count // 2]
    reqs = [injproto.record(RECLAIM, i) for i in ids if i != keep]
    r = subprocess.run([str(qbin), "-C", str(conf), "--clean"], input=b"".join(reqs),
                       capture_output=True, timeout=300)
    assert r.returncode == EX_OK, r.stderr
    replies = injproto.parse_replies(r.stdout)
    assert [x[:2] for x in replies] == [(OK, 1)] * len(reqs)
    for fid, members in by_file.items():
        (path,) = (conf / "queue" / "incoming").glob("*/" + fid)
        st = path.stat()
        env_len = struct.unpack(">I", path.read_bytes()[16:20])[0]
        block = st.st_blksize
        left = keep in members
        bound = block * (1 + (2 + (size + 10 + block - 1) // block if left else 0) +
                         (env_len + block - 1) // block + 1)
        assert st.st_blocks * 512 <= bound, (fid, len(members), st.st_blocks * 512, bound)
    assert queuefile.stored_content(conf / "queue", keep) == (
        b"Subject: 0/%d\n\n" % ids.index(keep) + b"x" * size + b"\n")
