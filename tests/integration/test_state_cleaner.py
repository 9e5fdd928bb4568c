"""The state side with the real cleaner (queue/state.h, queue/clean_proto.h,
docs/INTERNALS.md "The state side"): tests/tools/statetool route plays the
router (learns the files, hands the state's requests to onehop-queue
--clean, records the answers, delivers what is due) against committed
message files. New files are taken, finished files removed, finished
messages of a group file reclaimed while a deferred one stays listed, and a
router killed after sending a request (its answer never recorded) sends it
again at the next start, answered as already done.
"""

import os
import re
import subprocess

import pytest

import injproto as ip
from fixtures.paths import onehop_bin
from test_state_crash import statetool  # noqa: F401 (the fixture)


def route(statetool, qbin, conf, *keep, env=None):
    p = subprocess.run([str(statetool), "route", str(conf), str(qbin)] + list(keep),
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    requests = re.findall(r"^(TAKE|RECLAIM|REMOVE|QUARANTINE) (\S+) (ok|err) (\d+)$",
                          p.stdout, re.M)
    return p, requests


def onehop(conf, *args):
    p = subprocess.run([str(onehop_bin() / "onehop"), "-C", str(conf)] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p
    return p.stdout


def test_take_deliver_remove(statetool, qbin, conf):
    for _ in range(3):
        rc, replies, err = ip.inject(qbin, conf)
        assert rc == 0, err
    queue = conf / "queue"
    fids = sorted(p.name for p in ip.queue_files(queue, ("incoming",)))
    assert len(fids) == 3
    p, requests = route(statetool, qbin, conf)
    assert p.returncode == 0, p.stderr
    assert [(k, i, r, c) for k, i, r, c in requests if k == "TAKE"] == \
        [("TAKE", f, "ok", "1") for f in fids]
    assert sorted((k, i, r, c) for k, i, r, c in requests if k == "REMOVE") == \
        [("REMOVE", f, "ok", "1") for f in fids]
    assert ip.queue_files(queue) == []  # the cleaner removed them
    assert onehop(conf, "queue") == "Mail queue is empty\n"
    # Nothing is left to do: a second run hands out nothing.
    p, requests = route(statetool, qbin, conf)
    assert p.returncode == 0 and requests == []


def group_of(qbin, conf, n):
    """n messages committed by onehop-queue --server in group commits (as
    many as arrived together: one file, or a few); {fid: [message ids]}."""
    stream = b"".join(ip.message_records(t, "alice@a.test", ["r%d@b.test" % t],
                                         b"Subject: g\n\n" + b"y" * 7000 + b"\n")
                      for t in range(1, n + 1))
    p = subprocess.run([str(qbin), "-C", str(conf), "--server"], input=stream,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    files = {f.name: sorted(m["id"] for m in ip.read_queue_file(f))
             for f in ip.queue_files(conf / "queue")}
    assert sum(len(v) for v in files.values()) == n
    return files


def allocated(path):
    return os.stat(path).st_blocks * 512


def test_group_file_reclaimed_around_a_deferred_message(statetool, qbin, conf):
    files = group_of(qbin, conf, 50)
    fid = max(files, key=lambda f: len(files[f]))
    assert len(files[fid]) >= 10, files
    keep = files[fid][len(files[fid]) // 2]
    p, requests = route(statetool, qbin, conf, keep)
    assert p.returncode == 0, p.stderr
    reclaimed = {i for k, i, r, c in requests if k == "RECLAIM" and r == "ok"}
    assert set(files[fid]) - {keep} <= reclaimed and keep not in reclaimed
    removed = sorted(i for k, i, r, c in requests if k == "REMOVE" and r == "ok")
    assert removed == sorted(set(files) - {fid})
    (path,) = ip.queue_files(conf / "queue", ("active",))
    assert path.name == fid
    # about 7 KB a message before; one message, the header and the envelope now
    assert allocated(path) < 7100 * len(files[fid]) / 2
    assert allocated(path) < 40000
    import json
    shown = json.loads(onehop(conf, "queue", "--json"))["messages"]
    assert [m["id"] for m in shown] == [keep]
    assert shown[0]["state"] == "deferred"
    assert shown[0]["recipients"][0]["reason"] == "451 kept"
    assert json.loads(onehop(conf, "qstat", "--json"))["deferred"] == 1


def test_request_sent_again_after_a_kill(statetool, qbin, conf):
    rc, replies, err = ip.inject(qbin, conf)
    assert rc == 0, err
    (fid,) = [p.name for p in ip.queue_files(conf / "queue", ("incoming",))]
    p, requests = route(statetool, qbin, conf, env={"STATETOOL_KILL_AFTER_SEND": "1"})
    assert p.returncode == -9
    assert requests == []  # killed before the answer was read or recorded
    p, requests = route(statetool, qbin, conf)
    assert p.returncode == 0, p.stderr
    # The TAKE was done by the cleaner before the kill: asked again, already so.
    assert requests[0][:2] == ("TAKE", fid) and requests[0][2:] in (("ok", "0"), ("ok", "1"))
    assert ("REMOVE", fid, "ok", "1") in requests
    assert ip.queue_files(conf / "queue") == []


def test_kills_never_remove_unfinished_mail(statetool, qbin, conf):
    """The router killed at random moments while it takes, delivers and has
    files removed or reclaimed, again and again (half the runs with a small
    active window, so files are frozen and thawed): in the end every file
    whose messages were all delivered is gone, and the files holding a kept
    (deferred) message are still there with that message listed."""
    import json
    import random
    import signal
    import time
    files = group_of(qbin, conf, 120)
    keep = [ids[0] for fid, ids in sorted(files.items())[::2]]  # every other file keeps one
    kept_files = {i[:16] for i in keep}
    rng = random.Random(9)
    killed = 0
    for n in range(25):
        # every other run with an active window of 5 recipients and a
        # checkpoint: files are frozen, then thawed as they come due
        env = dict(os.environ, **({"STATETOOL_WINDOW": "5"} if n % 2 else {}))
        proc = subprocess.Popen([str(statetool), "route", str(conf), str(qbin)] + keep,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        time.sleep(rng.uniform(0.0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed += proc.returncode == -9
        # The cleaner (its child) sees end of input and exits by itself.
        remaining = {p.name for p in ip.queue_files(conf / "queue")}
        assert kept_files <= remaining, "a file with unfinished mail was removed"
    p, requests = route(statetool, qbin, conf, *keep, env={"STATETOOL_WINDOW": "5"})
    assert p.returncode == 0, p.stderr
    assert {p.name for p in ip.queue_files(conf / "queue")} == kept_files
    shown = json.loads(onehop(conf, "queue", "--json"))["messages"]
    assert sorted(m["id"] for m in shown) == sorted(keep)
    assert all(m["state"] == "deferred" for m in shown)
    assert killed >= 10


INDEX_STEPS = ["index-synced", "index-renamed", "checkpoint-synced", "checkpoint-renamed",
               "segment-remove"]


@pytest.mark.parametrize("step", INDEX_STEPS)
def test_kill_at_each_index_step_loses_no_outcome(statetool, qbin, conf, step):
    """The router's loop with a 5-recipient window writes a checkpoint and
    the index of the files it freezes whenever the files in memory pass the
    window; it is killed (SIGKILL) at the 1st, 2nd, ... time it reaches one
    step of that (docs/INTERNALS.md "The state side", the crash table), and
    started again each time on what it left. Every message whose outcomes
    were acknowledged (durable) stays delivered: no later run delivers it
    again, and in the end only the kept (deferred) messages' files are left,
    listed as deferred."""
    import json
    files = group_of(qbin, conf, 60)
    keep = [ids[0] for fid, ids in sorted(files.items())[::2]]
    env = {"STATETOOL_WINDOW": "5"}
    acked, killed = set(), 0
    for n in range(1, 8):
        p, _ = route(statetool, qbin, conf, *keep,
                     env=dict(env, STATETOOL_KILL_AT="%s:%d" % (step, n)))
        assert p.returncode in (0, -9), p.stderr
        delivered = set(re.findall(r"^deliver (\S+)$", p.stdout, re.M))
        assert not delivered & acked, "acknowledged, delivered again after a kill at " + step
        acked |= set(re.findall(r"^ack (\S+)$", p.stdout, re.M))
        killed += p.returncode == -9
        if p.returncode == 0:
            break
    assert killed >= 1, "never reached " + step
    p, _ = route(statetool, qbin, conf, *keep, env=env)
    assert p.returncode == 0, p.stderr
    assert not set(re.findall(r"^deliver (\S+)$", p.stdout, re.M)) & acked
    assert {f.name for f in ip.queue_files(conf / "queue")} == {i[:16] for i in keep}
    shown = json.loads(onehop(conf, "queue", "--json"))["messages"]
    assert sorted(m["id"] for m in shown) == sorted(keep)
    assert all(m["state"] == "deferred" for m in shown)
    assert list((conf / "queue" / "state").glob("index.*"))  # frozen files are on disk
