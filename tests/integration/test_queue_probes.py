"""The queue defects found by the independent probes (issue 8 item 5), one
test each, on an instance whose daemons are stopped:

- a FIFO, a symlink or a directory named like a queue file hangs no reader,
  and recovery moves them to corrupt/;
- a corrupted message is caught outside the parser: `onehop queue show`
  refuses it (exit 1) instead of printing flipped content, and leaves it
  for the router to quarantine (it only reads);
- a file overwritten with another valid file's image is not accepted under
  the wrong id (format 3 names its file id in the header);
- `onehop-queue --recover` reports the real error of a lock failure;
- creating queue_dir and its subdirectories fsyncs each parent;
- the listings (`onehop queue`, `mailq`, `qstat`) only read: a corrupt file
  is reported and counted, and left for recovery to quarantine;
- the reject log line gives the real recipient count, and a message that
  recovery brings in from a commit slot gets its from= line.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess

import pytest

import injproto as ip
from routerlock import OwnerLock  # holds state/lock as a running router does

QUEUED_AS = re.compile(r"queued as ([0-9A-Z]{18})")
LISTING_TIMEOUT = 10  # a reader that hangs on a FIFO never returns


@pytest.fixture
def mta(onehop):
    return onehop()


def bucket(fid):
    """queue_bucket(): FNV-1a over the file id, folded to 8 bits."""
    h = 2166136261
    for c in fid.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    h ^= h >> 16
    h ^= h >> 8
    return "%02x" % (h & 0xFF)


def inject(mta, sender="alice@a.test", subject="probe"):
    data = b"Subject: " + subject.encode() + b"\n\nhello world\n"
    result = mta.sendmail("-v", "-f", sender, "bob@b.test", data=data)
    assert result.rc == 0, result
    return QUEUED_AS.search(result.err).group(1)


def file_of(mta, qid):
    fid = qid[:16]
    return mta.path("queue", "incoming", bucket(fid), fid)


def corrupt_names(mta):
    return sorted(os.listdir(mta.path("queue", "corrupt")))


def recover(mta):
    result = mta.run("onehop-queue", "--recover")
    assert result.rc == 0, result
    return dict(kv.split("=") for kv in result.out.split())


def listings_work(mta, expect_ids):
    """onehop queue, queue --json, mailq and qstat all finish and list
    exactly expect_ids."""
    text = mta.cmd("queue", timeout=LISTING_TIMEOUT)
    assert text.rc == 0, text
    as_json = mta.cmd("queue", "--json", timeout=LISTING_TIMEOUT)
    assert as_json.rc == 0, as_json
    assert sorted(m["id"] for m in json.loads(as_json.out)["messages"]) == sorted(expect_ids)
    mailq = mta.run("mailq", timeout=LISTING_TIMEOUT)
    assert mailq.rc == 0, mailq
    for qid in expect_ids:
        assert qid in text.out and qid in mailq.out
    qstat = mta.cmd("qstat", "--json", timeout=LISTING_TIMEOUT)
    assert qstat.rc == 0, qstat
    return json.loads(qstat.out)


def test_fifo_symlink_and_directory_named_like_queue_files(mta):
    qid = inject(mta)
    fid = qid[:16]
    strays = []
    for last in [c for c in "WXYZ" if c != fid[-1]][:3]:
        name = fid[:-1] + last
        strays.append(mta.path("queue", "incoming", bucket(name), name))
    os.mkfifo(strays[0])
    os.symlink(file_of(mta, qid), strays[1])
    os.mkdir(strays[2])
    assert listings_work(mta, [qid])["total"] == 1
    show = mta.cmd("queue", "show", strays[0].name + "00", timeout=LISTING_TIMEOUT)
    assert show.rc == 1 and "not a regular file" in show.err, show
    out = recover(mta)
    assert out["strays"] == "3", out
    assert corrupt_names(mta) == sorted(p.name for p in strays)
    assert not any(os.path.lexists(p) for p in strays)
    assert listings_work(mta, [qid])["total"] == 1


def flip(path, old, new):
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))


def test_show_refuses_a_corrupted_message(mta):
    qid = inject(mta, subject="probe")
    flip(file_of(mta, qid), b"Subject: probe", b"Subject: prObe")
    for args in (("queue", "show", qid), ("queue", "show", qid, "--json")):
        result = mta.cmd(*args)
        assert result.rc == 1, result
        assert "prObe" not in result.out
        assert re.search(qid + r": message is corrupt \(message content checksum mismatch\): "
                         r"not shown; left in the queue for the router to quarantine", result.err), \
            result.err
    assert file_of(mta, qid).exists() and corrupt_names(mta) == []  # show only reads


def test_overwritten_file_is_not_accepted_under_the_wrong_id(mta):
    a = inject(mta, sender="alice@a.test")
    b = inject(mta, sender="bob@b.test")
    shutil.copyfile(file_of(mta, b), file_of(mta, a))  # a holds b's valid image
    listing = mta.queue()["messages"]
    assert [m["id"] for m in listing] == [b]
    show = mta.cmd("queue", "show", a)
    assert show.rc == 1 and "bob@b.test" not in show.out, show
    assert "does not match" in show.err, show.err
    out = recover(mta)
    assert out["quarantined"] == "1", out
    assert corrupt_names(mta) == [a[:16]]
    assert [m["id"] for m in mta.queue()["messages"]] == [b]


def test_recover_reports_the_real_lock_error(mta):
    inject(mta)
    with OwnerLock(mta):  # the router's state/lock: a router runs
        busy = mta.run("onehop-queue", "--recover")
    assert busy.rc == 75 and "owned by a running router" in busy.err, busy
    with open(mta.path("queue", "lock", "owner"), "a+") as held:  # another recovery runs
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = mta.run("onehop-queue", "--recover")
    assert other.rc == 75 and "another recovery" in other.err, other
    os.unlink(mta.path("queue", "lock", "owner"))
    os.mkdir(mta.path("queue", "lock", "owner"))  # EISDIR: neither
    result = mta.run("onehop-queue", "--recover")
    assert result.rc == 75, result
    assert "running router" not in result.err and "another recovery" not in result.err
    assert "Is a directory" in result.err and "lock/owner" in result.err, result.err


def fsynced_dirs(trace):
    """Directories fsync'd in an `strace -y` output."""
    return set(re.findall(r"\bfsync\(\d+<([^>]*)>\) = 0", trace))


def untraced_leak_check_env():
    """LeakSanitizer cannot run under ptrace (strace): no leak check in the
    traced run of a sanitizer build; the other tests check these paths."""
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": asan}


def test_creating_queue_dir_fsyncs_each_parent(tmp_path, qbin):
    conf = ip.make_config(tmp_path / "c", queue_dir="spool/onehop/queue")
    trace = tmp_path / "trace"
    recs = ip.message_records(1, "alice@a.test", ["bob@b.test"], b"Subject: s\n\nx\n")
    p = subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync", "-o", str(trace),
                        str(qbin), "-C", str(conf)], input=recs, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=untraced_leak_check_env())
    assert p.returncode == 0, p.stderr
    synced = fsynced_dirs(trace.read_text())
    top = str(conf.resolve())
    for parent in (top, top + "/spool", top + "/spool/onehop", top + "/spool/onehop/queue"):
        assert parent in synced, (parent, sorted(synced))
    assert len(ip.list_queue(conf / "spool/onehop/queue")) == 1


def test_listings_only_read(mta):
    bad = inject(mta, sender="alice@a.test")
    good = inject(mta, sender="bob@b.test")
    path = file_of(mta, bad)
    os.truncate(path, 100)
    stat = listings_work(mta, [good])
    assert stat["total"] == 1, stat
    assert path.exists() and corrupt_names(mta) == []  # reported, counted, left in place
    assert mta.run("onehop-queue", "--list").rc == 0
    assert path.exists()
    report = mta.cmd("queue")  # the listing says so on stderr (its log)
    assert re.search(bad[:16] + r": queue file is corrupt \(.*\): left for recovery", report.err), report
    out = recover(mta)
    assert out["quarantined"] == "1", out
    assert corrupt_names(mta) == [bad[:16]] and not path.exists()


def test_reject_line_gives_the_real_recipient_count(tmp_path, qbin):
    conf = ip.make_config(tmp_path / "c")
    rc, replies, err = ip.inject(qbin, conf, sender="no spaces allowed@a.test",
                                 rcpts=("bob@b.test", "carol@c.test"))
    assert rc == ip.EX_DATAERR, err
    log = (conf / "maillog").read_text()
    assert re.search(r"reject: from=<[^>]*>, nrcpt=2: 5\.1\.7", log), log


def test_message_recovered_from_a_slot_is_logged(mta):
    qid = inject(mta)
    slots = mta.path("queue", "slots")
    free = sorted(p for p in slots.iterdir() if p.stat().st_size == 0)
    # the writer died after its fdatasync, before its rename and its log line
    os.rename(file_of(mta, qid), free[0])
    mta.log_path.unlink()
    out = recover(mta)
    assert out["slots_committed"] == "1", out
    lines = [l for l in mta.log_lines() if re.search(qid + r": from=<alice@a\.test>, size=\d+, "
                                                           r"nrcpt=1$", l)]
    assert len(lines) == 1, mta.log_lines()
    assert [m["id"] for m in mta.queue()["messages"]] == [qid]


def test_newaliases_sees_a_running_router_by_its_state_lock(mta):
    """A router holds state/lock (queue.h rule 3), no longer lock/owner:
    newaliases takes it for running only then (here it finds no control
    socket: a router that is still starting)."""
    inject(mta)
    alone = mta.run("newaliases")
    assert alone.rc == 0 and "onehop is stopped" in alone.err, alone
    with OwnerLock(mta):
        asked = mta.run("newaliases")
    assert asked.rc == 1 and "router is starting" in asked.err, asked
