"""The writer side of recovery killed with SIGKILL while it works (issue 8:
"kill -9 at every new step, recovery itself"; docs/INTERNALS.md "Commit
slots", "Recovery, all cases", the cleaner's RECOVER row).

A queue holding the leftovers of hundreds of dead writers is built the
honest way: messages committed by one-shot onehop-queue runs (each answered
OK, so committed), their images then put back where a writer killed
between its fdatasync and its rename leaves them (slots/, under a slot's
own name), or into the wrong bucket; partial images of messages nobody was
told about in slots/ (cut short, a body byte flipped, the zero header of
step 2) and in tmp/; strays (FIFOs, symlinks, directories and foreign names
where queue files live). Then `onehop-queue --recover` and the cleaner's
RECOVER (`onehop-queue --clean`) are killed again and again at delays
spread over the whole recovery. After every kill: each committed message
is in exactly one place (incoming/ or its committed slot) under its own id
with its exact content, and nothing uncommitted is in incoming/. After one
recovery to completion: every committed message is in incoming/ exactly
once, partial slots are empty and free, tmp/ is empty, strays are in
corrupt/, and `onehop-queue --list` lists exactly the committed messages.
ONEHOP_RECOVER_KILLS sets the number of kills (default 50).
"""

import fcntl
import os
import random
import stat
import subprocess
import time

import injproto as ip
from test_queue_crash import killable_env

KILLS = int(os.environ.get("ONEHOP_RECOVER_KILLS", "50"))
RECOVER = 32  # queue/clean_proto.h
ALPHABET = ip._ALPHABET


def fresh_name(rng):
    """A valid file id (queue.h "ids") no writer made: a slot's or a stray's name."""
    return "Z" + "".join(rng.choice(ALPHABET) for _ in range(15))


def content_for(token, rng):
    body = (b"%s line\n" % token.encode()) * rng.randint(4, 120)
    return b"Subject: %s\n\n" % token.encode() + body


def commit(qbin, conf, token, rng):
    """One-shot commit of a message whose sender is token@a.test: (qid, path, stored content)."""
    data = content_for(token, rng)
    rc, replies, err = ip.inject(qbin, conf, sender=token + "@a.test", data=data)
    assert rc == 0 and replies[0][0] == ip.OK, err
    qid = replies[0][2]
    (path,) = (conf / "queue" / "incoming").glob("*/" + qid[:16])
    (msg,) = ip.read_queue_file(path)
    assert msg["id"] == qid and msg["sender"] == token + "@a.test"
    return qid, path, msg["content"]


def partial_image(image, content_len, kind, rng):
    """What a writer killed before its fdatasync returned may leave (the
    content follows the 64-byte header)."""
    if kind == 0:  # cut short anywhere after the first byte
        return image[:rng.randint(1, len(image) - 1)]
    if kind == 1:  # every block written but one content byte not on the disk yet
        at = rng.randint(64, 64 + content_len - 1)
        return image[:at] + bytes([image[at] ^ 0x20]) + image[at + 1:]
    return bytes(64) + image[64:]  # step 2: zero header, content and envelope


def build_queue(qbin, conf, rng):
    """The leftovers; returns what was committed {qid: (sender, content)}, the
    uncommitted senders, the partial slots' names, the strays' names. Every
    commit is made first: a one-shot writer settles the leftovers it meets
    in slots/ (docs/INTERNALS.md "Commit slots"), so they are laid out after."""
    qdir = conf / "queue"
    committed, uncommitted, partial_slots, strays = {}, set(), [], []
    made = [commit(qbin, conf, "c%d" % k, rng) for k in range(260)]

    unanswered = [commit(qbin, conf, "u%d" % k, rng) for k in range(120)]
    for k, (qid, path, content) in enumerate(made):
        committed[qid] = ("c%d@a.test" % k, content)
        if k < 200:  # killed after its fdatasync, before its rename
            os.rename(path, qdir / "slots" / fresh_name(rng))
        elif k < 230:  # an administrator's hand: the wrong bucket
            wrong = "%02x" % ((int(path.parent.name, 16) + 1) % 256)
            (qdir / "incoming" / wrong).mkdir(exist_ok=True)
            os.rename(path, qdir / "incoming" / wrong / path.name)
        # the rest: ordinary incoming files
    for k, (_, path, content) in enumerate(unanswered):  # answered by nobody: never committed
        image = path.read_bytes()
        path.unlink()
        uncommitted.add("u%d@a.test" % k)
        bad = partial_image(image, len(content), k % 3, rng)
        if k < 60:
            name = fresh_name(rng)
            (qdir / "slots" / name).write_bytes(bad)
            os.chmod(qdir / "slots" / name, 0o640)  # a ready slot's mode, as its writer took it
            partial_slots.append(name)
        else:
            (qdir / "tmp" / fresh_name(rng)).write_bytes(bad)
    for k in range(45):
        name = fresh_name(rng)
        bucket = qdir / ("incoming", "active")[k % 2] / ("%02x" % rng.randrange(256))
        bucket.mkdir(exist_ok=True)
        kind = k % 5
        if kind == 0:
            os.mkfifo(bucket / name)
        elif kind == 1:
            os.symlink("/etc/passwd", bucket / name)
        elif kind == 2:
            (bucket / name).mkdir()
        elif kind == 3:
            name = "junk.%d" % k
            (bucket / name).write_bytes(b"not ours")
        else:
            name = "stray%d" % k
            os.mkfifo(qdir / ("tmp" if k % 2 else "slots") / name)
        strays.append(name)
    return committed, uncommitted, partial_slots, strays


def slot_image_messages(path):
    """The messages of a complete, CRC-valid image in slots/ (named by its
    slot, not by the id its header names), or [] for anything else."""
    data = path.read_bytes()
    if len(data) < 64 or data[:8] != b"OHQUEUE3":
        return []
    probe = path.parent.parent.parent / "look" / data[40:56].decode("ascii", "replace")
    probe.parent.mkdir(exist_ok=True)
    probe.write_bytes(data)
    try:
        return ip.read_queue_file(probe)
    except ValueError:
        return []
    finally:
        probe.unlink()


def regular_with_id(path):
    """A regular file named like a file id: what may hold an image (strays
    are passed over, never opened: a FIFO would hang the reader)."""
    name = path.name
    return (len(name) == 16 and all(c in ALPHABET for c in name) and
            stat.S_ISREG(path.lstat().st_mode))


def where_messages_are(qdir):
    """[(place, message)] for every committed image in incoming/, active/, slots/."""
    found = []
    for f in ip.queue_files(qdir):
        if regular_with_id(f):
            found += [("queue", m) for m in ip.read_queue_file(f)]
    for slot in (qdir / "slots").iterdir():
        if regular_with_id(slot) and slot.stat().st_size:
            found += [("slot", m) for m in slot_image_messages(slot)]
    return found


def check_state(qdir, committed, uncommitted, when):
    """The crash invariant: every committed message once, under its own id,
    exactly its content; nothing uncommitted visible."""
    found = where_messages_are(qdir)
    ids = [m["id"] for _, m in found]
    twice = {i for i in ids if ids.count(i) > 1}
    assert not twice, "%s: a message in two places: %s" % (when, sorted(twice))
    for place, m in found:
        assert m["sender"] not in uncommitted, "%s: uncommitted %s visible as %s (%s)" % (
            when, m["sender"], m["id"], place)
        assert m["id"] in committed, "%s: %s (%s) under an id nobody was given: %s" % (
            when, m["sender"], place, m["id"])
        assert (m["sender"], m["content"]) == committed[m["id"]], "%s: %s changed" % (when, m["id"])
    missing = committed.keys() - set(ids)
    assert not missing, "%s: committed messages lost: %s" % (when, sorted(missing))
    return found


def snapshot(qdir):
    return sorted((str(p.relative_to(qdir)), p.lstat().st_size, p.lstat().st_mode)
                  for p in qdir.rglob("*") if p.parent.name != "lock")


def start_recovery(qbin, conf, mode):
    args = [str(qbin), "-C", str(conf), "--recover" if mode == "recover" else "--clean"]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=killable_env())
    if mode == "clean":  # it recovers at its start, then again on RECOVER
        p.stdin.write(ip.record(RECOVER))
    p.stdin.close()
    return p


def test_recovery_killed_again_and_again(qbin, tmp_path):
    rng = random.Random(int(os.environ.get("ONEHOP_KILL_SEED", "8")))
    conf = ip.make_config(tmp_path / "c")
    qdir = conf / "queue"
    committed, uncommitted, partial_slots, strays = build_queue(qbin, conf, rng)
    items = len(committed) + len(uncommitted) + len(strays)
    assert items >= 400
    check_state(qdir, committed, uncommitted, "before recovery")

    interrupted = progressed = 0
    delay, slotted = 0.005, sum(place == "slot" for place, _ in where_messages_are(qdir))
    in_slots = []  # committed slots still to move after each kill that landed in the work
    for kill in range(KILLS):
        mode = ("recover", "clean")[kill % 2]
        before = snapshot(qdir)
        p = start_recovery(qbin, conf, mode)
        time.sleep(delay * rng.uniform(0.8, 1.25))
        p.kill()
        rc = p.wait(timeout=30)
        interrupted += rc == -9
        changed = snapshot(qdir) != before
        progressed += rc == -9 and changed
        when = "after kill %d (%s, rc %d)" % (kill, mode, rc)
        found = check_state(qdir, committed, uncommitted, when)
        left = sum(place == "slot" for place, _ in found)
        if rc == -9 and changed:
            in_slots.append(left)
        # the delay follows a plan: the committed slots (the middle of the
        # work) moved by 60% of the kills, the rest of the kills later and
        # later, over the buckets' sweep; each kill so lets a little be done.
        # A kill that found nothing done makes the next one later
        planned = slotted * max(0.0, 1 - kill / (0.6 * KILLS))
        if rc == -9 and not changed:  # killed before it began: too early
            delay *= 1.5
        elif changed:
            delay *= 1.1 if not left else 1.25 if left > planned else 0.8
        delay = min(delay, 0.3)  # a whole recovery takes about 0.1 s (0.2 s under ASan)

    last = subprocess.run([str(qbin), "-C", str(conf), "--recover"], stdout=subprocess.PIPE,
                          timeout=120)
    assert last.returncode == 0
    found = check_state(qdir, committed, uncommitted, "after the last recovery")
    assert all(place == "queue" for place, _ in found)
    assert len(found) == len(committed)
    incoming = {f.name for f in ip.queue_files(qdir, ("incoming",))}
    assert {qid[:16] for qid in committed} == incoming  # each in incoming/, one file each
    assert ip.leftovers(qdir) == []  # tmp/ empty, no slot holds an image
    for name in partial_slots:  # emptied, ready, and nobody holds them: free
        st = os.stat(qdir / "slots" / name)
        assert st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0o640, name
        with open(qdir / "slots" / name, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    in_corrupt = [p.name for p in (qdir / "corrupt").iterdir()]
    for name in strays:
        assert any(c == name or c.startswith(name + ".") for c in in_corrupt), name
    for place in ("incoming", "active"):
        for bucket in (qdir / place).iterdir():
            for entry in bucket.iterdir():
                assert entry.is_file() and not entry.is_symlink(), entry
    listing = subprocess.run([str(qbin), "-C", str(conf), "--list"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout.decode()
    assert all(qid in text for qid in committed)
    assert not any(s in text for s in uncommitted)
    print("recovery kill loop: %d items (%d committed, %d slots committed, %d partial, %d "
          "strays), %d kills, %d interrupted a run, %d of them after it changed the queue; "
          "the last delay %.4f s; committed "
          "slots left after each: %s; the last recovery: %s" %
          (items, len(committed), slotted, len(uncommitted), len(strays), KILLS, interrupted,
           progressed, delay, in_slots,
           last.stdout.decode().strip()))
    assert progressed >= KILLS // 4  # the kills really landed inside the work
