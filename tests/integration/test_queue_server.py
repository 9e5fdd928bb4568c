"""onehop-queue --server (queue/inject_proto.h "server mode"): interleaved
transactions, group commit (fewer fsyncs than messages, counted with
strace), one reply per INJ_END after the commit, failures isolated to their
transaction, large messages spooled, protocol errors closing the channel,
and corrupt queue files quarantined while listing goes on.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import injproto as ip
from fixtures.paths import onehop_bin

DRIVER = Path(__file__).resolve().parents[2] / "bench" / "server_driver.py"


def serve(qbin, conf, requests, timeout=120):
    p = subprocess.run([str(qbin), "-C", str(conf), "--server"], input=requests,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, ip.parse_replies(p.stdout), p.stderr.decode()


def interleave(*streams):
    """Round-robin the records of several record lists."""
    out = []
    for i in range(max(len(s) for s in streams)):
        out += [s[i] for s in streams if i < len(s)]
    return b"".join(out)


def split_records(raw):
    out, pos = [], 0
    while pos < len(raw):
        n = int.from_bytes(raw[pos:pos + 4], "big")
        out.append(raw[pos:pos + n])
        pos += n
    return out


def test_interleaved_transactions(qbin, conf):
    streams = [split_records(ip.message_records(t, "s%d@a.test" % t, ["r%d@b.test" % t],
                                                b"Subject: %d\n\n" % t + b"%d" % t * 70000,
                                                chunk=1000))
               for t in range(1, 6)]
    rc, replies, _ = serve(qbin, conf, interleave(*streams))
    assert rc == 0
    assert sorted(r[1] for r in replies) == [1, 2, 3, 4, 5]
    assert all(r[0] == ip.OK for r in replies)
    listed = ip.list_queue(conf / "queue")
    for r in replies:
        m = listed[r[2]]
        assert m["sender"] == "s%d@a.test" % r[1]
        assert m["content"] == b"Subject: %d\n\n" % r[1] + b"%d" % r[1] * 70000 + b"\n"


def test_group_commit_shares_files_and_replies_after_commit(qbin, conf):
    reqs = b"".join(ip.message_records(i, "a@a.test", ["b@b.test"], b"Subject: x\n\nm%d\n" % i)
                    for i in range(300))
    rc, replies, _ = serve(qbin, conf, reqs)
    assert rc == 0 and len(replies) == 300
    files = ip.queue_files(conf / "queue")
    assert len(files) < 300          # several messages per committed file
    assert len(ip.list_queue(conf / "queue")) == 300
    log = (conf / "maillog").read_text()
    assert log.count(": from=<a@a.test>, size=") == 300


def test_fewer_than_one_fsync_per_message(qbin, conf):
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (scripts/deps.sh test installs it)")
    counts = conf / "strace.out"
    env = dict(os.environ)
    # LeakSanitizer cannot run under ptrace (sanitizer builds)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    p = subprocess.run([sys.executable, str(DRIVER), str(qbin), str(conf), "400", "20", "4096",
                        "strace", "-f", "-c", "-o", str(counts),
                        "-e", "trace=fsync,fdatasync"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert b"failed=0" in p.stdout
    syncs = 0
    for line in counts.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in ("fsync", "fdatasync"):
            syncs += int(parts[3])
    assert 0 < syncs < 400, counts.read_text()


def test_failures_stay_in_their_transaction(qbin, conf):
    reqs = interleave(
        split_records(ip.message_records(1, "a@a.test", ["b@b.test"], b"ok one\n")),
        split_records(ip.message_records(2, "a@a.test", ["b@b.test"], b"bad \0 byte\n")),
        split_records(ip.message_records(3, "a@a.test", ["not an address"], b"x\n")),
        split_records(ip.message_records(4, "a@a.test", ["b@b.test"], b"ok four\n")))
    reqs += ip.record(ip.BEGIN, 5, "a@a.test") + ip.record(ip.ABORT, 5)
    rc, replies, _ = serve(qbin, conf, reqs)
    assert rc == 0
    by_txn = {r[1]: r for r in replies}
    assert sorted(by_txn) == [1, 2, 3, 4]          # no reply for the aborted one
    assert by_txn[1][0] == by_txn[4][0] == ip.OK
    assert by_txn[2][:4] == (ip.FAIL, 2, ip.EX_DATAERR, "5.6.0")
    assert by_txn[3][:4] == (ip.FAIL, 3, ip.EX_DATAERR, "5.1.3")
    assert len(ip.list_queue(conf / "queue")) == 2


def test_transaction_numbers_reused_after_reply(qbin, conf):
    reqs = b"".join(ip.message_records(7, "a@a.test", ["b@b.test"], b"n%d\n" % i)
                    for i in range(3))
    rc, replies, _ = serve(qbin, conf, reqs)
    assert rc == 0 and [r[1] for r in replies] == [7, 7, 7]


def test_large_message_is_spooled_and_complete(qbin, conf):
    big = b"Subject: big\n\n" + b"0123456789" * 7 + (b"\n" + b"0123456789" * 7) * 40000
    reqs = ip.message_records(1, "a@a.test", ["b@b.test"], big) + \
        ip.message_records(2, "a@a.test", ["b@b.test"], b"small\n")
    rc, replies, _ = serve(qbin, conf, reqs)
    assert rc == 0 and all(r[0] == ip.OK for r in replies)
    listed = ip.list_queue(conf / "queue")
    big_id = [r[2] for r in replies if r[1] == 1][0]
    assert listed[big_id]["content"] == big + b"\n"
    assert ip.leftovers(conf / "queue") == []


def test_protocol_error_closes_channel_after_answering(qbin, conf):
    reqs = ip.message_records(1, "a@a.test", ["b@b.test"], b"fine\n")
    reqs += ip.record(ip.BEGIN, 2, "a@a.test") + ip.record(ip.DATA, 2, ("bytes", b"half"))
    reqs += ip.record(ip.DATA, 99, ("bytes", b"no such transaction"))
    reqs += ip.message_records(3, "a@a.test", ["b@b.test"], b"never read\n")
    rc, replies, _ = serve(qbin, conf, reqs)
    assert rc == ip.EX_SOFTWARE
    assert [(r[0], r[1]) for r in replies] == [(ip.OK, 1)]
    assert len(ip.list_queue(conf / "queue")) == 1
    assert ip.leftovers(conf / "queue") == []
    assert "protocol error" in (conf / "maillog").read_text()


def test_socketpair_as_both_fds(qbin, conf):
    import socket
    a, b = socket.socketpair()
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=b, stdout=b,
                         stderr=subprocess.PIPE)
    b.close()
    a.sendall(ip.message_records(1, "a@a.test", ["b@b.test"], b"over a socket\n"))
    a.shutdown(socket.SHUT_WR)
    data = b""
    a.settimeout(60)
    while True:
        chunk = a.recv(65536)
        if not chunk:
            break
        data += chunk
    assert p.wait(timeout=60) == 0
    assert ip.parse_replies(data)[0][0] == ip.OK


def test_corrupt_queue_file_reported_listing_goes_on(qbin, conf):
    """The listing skips and reports corrupt files, and leaves them where they
    are (listings only read); recovery moves them to corrupt/."""
    admin = onehop_bin() / "onehop"
    if not admin.is_file():
        pytest.fail("%s is missing: build it first" % admin, pytrace=False)
    ids = [ip.inject(qbin, conf, data=b"Subject: %d\n\nx\n" % i)[1][0][2] for i in range(4)]
    files = {f.name: f for f in ip.queue_files(conf / "queue")}
    truncated, garbage = files[ids[1][:16]], files[ids[2][:16]]
    data = truncated.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    garbage.write_bytes(os.urandom(3000))
    p = subprocess.run([str(admin), "-C", str(conf), "queue", "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr
    import json
    listed = [m["id"] for m in json.loads(p.stdout)["messages"]]
    assert listed == [ids[0], ids[3]]
    assert list((conf / "queue" / "corrupt").iterdir()) == []
    assert truncated.exists() and garbage.exists()
    said = (conf / "maillog").read_text() + p.stderr.decode()   # logged where the command logs
    assert said.count("queue file is corrupt") == 2
    p = subprocess.run([str(admin), "-C", str(conf), "qstat", "--json"], stdout=subprocess.PIPE,
                       timeout=60)
    assert json.loads(p.stdout)["total"] == 2
    p = subprocess.run([str(qbin), "-C", str(conf), "--recover"], stdout=subprocess.PIPE,
                       timeout=60)
    assert "quarantined=2" in p.stdout.decode(), p.stdout
    corrupt = sorted(x.name for x in (conf / "queue" / "corrupt").iterdir())
    assert corrupt == sorted([ids[1][:16], ids[2][:16]])


def test_writer_that_reads_replies_late_does_not_stall_the_input(qbin, conf):
    """A writer may send everything (12 MB here) before it reads a reply.
    3,000 replies are more than a pipe holds, so a server that waited for
    its reply pipe to drain would stop reading, and both sides would wait
    for ever."""
    import threading
    n = 3000
    body = b"Subject: x\n\n" + b"x" * 4000 + b"\n"
    reqs = b"".join(ip.message_records(i, "a@a.test", ["b@b.test"], body) for i in range(n))
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(90, p.kill)
    watchdog.start()
    try:
        p.stdin.write(reqs)          # no reply is read until all is written
        p.stdin.close()
        out = p.stdout.read()
        rc = p.wait()
    finally:
        watchdog.cancel()
    assert rc == 0, "server killed by the watchdog (stalled)" if rc == -9 else p.stderr.read()
    replies = ip.parse_replies(out)
    assert len(out) > 65536          # more than one pipe buffer of replies
    assert sorted(r[1] for r in replies) == list(range(n))
    assert all(r[0] == ip.OK for r in replies)
    assert len(ip.list_queue(conf / "queue")) == n


def test_protocol_error_with_a_late_reader_closes_the_input(qbin, conf):
    """After a protocol error the server stops reading for good: a writer
    still writing (and not yet reading replies) must get EPIPE, not wait
    for ever on a full pipe while the server waits on a full reply pipe."""
    import threading
    body = b"Subject: x\n\n" + b"x" * 4000 + b"\n"
    n = 3000
    reqs = b"".join(ip.message_records(i, "a@a.test", ["b@b.test"], body) for i in range(n))
    reqs += ip.record(ip.DATA, 999999, ("bytes", b"no such transaction"))
    reqs += b"".join(ip.message_records(n + i, "a@a.test", ["b@b.test"], body) for i in range(n))
    p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(90, p.kill)
    watchdog.start()
    try:
        try:
            p.stdin.write(reqs)
            p.stdin.close()
        except BrokenPipeError:
            pass                     # the server closed its input: expected
        out = p.stdout.read()
        rc = p.wait()
    finally:
        watchdog.cancel()
    assert rc == ip.EX_SOFTWARE, "server killed by the watchdog (hung)" if rc == -9 else rc
    replies = ip.parse_replies(out)
    assert sorted(r[1] for r in replies) == list(range(n))   # those before the error
    assert all(r[0] == ip.OK for r in replies)
    assert len(ip.list_queue(conf / "queue")) == n


def test_failed_commits_do_not_leave_memory_counted(qbin, conf):
    """Commits that fail (here: a file size limit) drop their content; the
    server must stop counting it, or once 64 MiB of failures had been
    counted every later message would be spilled to a file of its own and
    group commit would be gone for the life of the process."""
    import resource
    import signal
    import struct
    import threading

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, resource.RLIM_INFINITY))

    p = subprocess.Popen([str(qbin), "-C", str(conf), "--server"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         preexec_fn=limit_file_size)

    def replies(n):
        got = []
        while len(got) < n:
            head = p.stdout.read(4)
            assert len(head) == 4, "server ended early"
            got += ip.parse_replies(head + p.stdout.read(struct.unpack(">I", head)[0] - 4))
        return got

    nfail = 400                      # 400 x 200 KB = 80 MB > the 64 MiB budget
    big = b"Subject: x\n\n" + (b"y" * 999 + b"\n") * 200
    reqs = b"".join(ip.message_records(i, "a@a.test", ["b@b.test"], big) for i in range(nfail))
    writer = threading.Thread(target=lambda: (p.stdin.write(reqs), p.stdin.flush()))
    writer.start()
    failed = replies(nfail)
    writer.join()
    assert all(r[0] == ip.FAIL for r in failed)
    resource.prlimit(p.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    small = b"".join(ip.message_records(10000 + i, "a@a.test", ["b@b.test"],
                                        b"Subject: s\n\n" + b"z" * 30000 + b"\n")
                     for i in range(20))
    p.stdin.write(small)
    p.stdin.flush()
    ok = replies(20)
    p.stdin.close()
    assert p.wait(timeout=60) == 0
    assert all(r[0] == ip.OK for r in ok)
    files = {r[2][:16] for r in ok}
    assert len(files) <= 10, "%d files for 20 small messages: they were spilled" % len(files)
