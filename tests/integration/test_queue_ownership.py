"""Who may touch what in the queue, proved as root with real accounts
(docs/INTERNALS.md "Ownership and the cleaner"; INSTALL "Accounts and the
queue"; queue/queue_modes.h).

The queue_dir is made by scripts/install-config.sh as `make install` makes
it (accounts ohtest-*, `user = ohtest`), messages are committed by
onehop-queue running as the queue account (one-shot through a commit slot,
and the server mode's group commit through tmp/), one file is taken into
active/ by the cleaner (onehop-queue --clean), and the router puts a file
into its state/. Then a probe process runs under each account and tries
every directory and every file of the tree:

  remote, dns   create nothing anywhere (file, directory, FIFO, symlink,
                hard link, rename into), open no file for writing or even
                reading, unlink nothing;
  router        reads and lists the messages, but opens none for writing,
                truncates, unlinks, renames or chmods none, and creates
                nothing outside its state/;
  queue         cannot list, read or write state/.

Needs root (the accounts fixture): under CI=true it fails when it cannot run.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import injproto
import reachable

TOP = Path(__file__).resolve().parents[2]
CLEAN_TAKE, CLEAN_OK = 33, 48

# Run as the probed account: tries each operation, prints {path: {op: result}}
# where result is "ok" or the errno name. Files it managed to create are
# removed again, so one probe never hides another's result.
PROBE = r'''
import errno, json, os, sys
paths = json.load(sys.stdin)
out = {}
def attempt(path, op, fn):
    try:
        fn()
        out.setdefault(path, {})[op] = "ok"
    except OSError as e:
        out.setdefault(path, {})[op] = errno.errorcode.get(e.errno, str(e.errno))
def undo(fn):
    try:
        fn()
    except OSError:
        pass
for d in paths["dirs"]:
    new = os.path.join(d, "probe-new")
    attempt(d, "list", lambda: os.listdir(d))
    attempt(d, "create", lambda: os.close(os.open(new, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
    undo(lambda: os.unlink(new))
    attempt(d, "mkdir", lambda: os.mkdir(new))
    undo(lambda: os.rmdir(new))
    attempt(d, "mkfifo", lambda: os.mkfifo(new))
    undo(lambda: os.unlink(new))
    attempt(d, "symlink", lambda: os.symlink("/etc/passwd", new))
    undo(lambda: os.unlink(new))
    attempt(d, "chmod", lambda: os.chmod(d, 0o777))
for f in paths["files"]:
    attempt(f, "read", lambda: os.close(os.open(f, os.O_RDONLY | os.O_NONBLOCK)))
    attempt(f, "write", lambda: os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK)))
    attempt(f, "rdwr", lambda: os.close(os.open(f, os.O_RDWR | os.O_NONBLOCK)))
    attempt(f, "append", lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)))
    attempt(f, "truncate", lambda: os.truncate(f, 0))
    attempt(f, "chmod", lambda: os.chmod(f, 0o666))
    attempt(f, "unlink", lambda: os.unlink(f))
    attempt(f, "rename", lambda: os.rename(f, f + ".moved"))
    undo(lambda: os.rename(f + ".moved", f))
    link = os.path.join(os.path.dirname(f), "probe-link")
    attempt(f, "link", lambda: os.link(f, link))
    undo(lambda: os.unlink(link))
json.dump(out, sys.stdout)
'''

WRITES = ("create", "mkdir", "mkfifo", "symlink", "chmod")
FILE_CHANGES = ("write", "rdwr", "append", "truncate", "chmod", "unlink", "rename", "link")


def _as(account, argv, data=b"", timeout=60):
    """argv as the account (its uid, primary group and groups, as a daemon
    started by the master would have them)."""
    def drop():
        os.initgroups(account.pw_name, account.pw_gid)
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    env = {"PATH": "/usr/bin:/bin"}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return subprocess.run([str(a) for a in argv], input=data, capture_output=True,
                          preexec_fn=drop, timeout=timeout, cwd="/", env=env)


def _probe(account, tree):
    r = _as(account, ["/usr/bin/python3", "-c", PROBE], data=json.dumps(tree).encode())
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def _tree(queue_dir):
    """Every directory and regular file under queue_dir (listed as root)."""
    dirs, files = [str(queue_dir)], []
    for root, dnames, fnames in os.walk(queue_dir):
        dirs += [os.path.join(root, d) for d in dnames]
        files += [os.path.join(root, f) for f in fnames]
    return {"dirs": sorted(dirs), "files": sorted(files)}


def _successes(results, ops):
    return sorted("%s %s" % (op, path) for path, r in results.items() for op in ops
                  if r.get(op) == "ok")


@pytest.fixture
def installed(accounts, qbin):
    """A queue made by install-config.sh, with messages committed as the
    queue account; yields (accounts, queue_dir, conf_dir, message ids).
    The accounts run copies of the programs in top/bin (reachable.py: the
    clone may sit in a 0700 directory)."""
    top = Path(tempfile.mkdtemp(prefix="onehop-own-", dir="/tmp"))
    qbin = reachable.copy_programs(top, ["onehop-queue"]) / "onehop-queue"
    etc = top / "etc"
    etc.mkdir()
    (top / "run").mkdir()
    queue_dir = top / "spool" / "queue"
    (etc / "onehop.conf").write_text(
        "user = %s\nqueue_dir = %s\nrun_dir = %s\nlog = stderr\nmyhostname = mta.onehop.test\n"
        % (accounts.base, queue_dir, top / "run"))
    (top / "spool").mkdir()
    top.joinpath("spool").chmod(0o755)
    try:
        r = subprocess.run(["sh", str(TOP / "scripts" / "install-config.sh"), "", str(etc),
                            str(top / "libexec")], capture_output=True, timeout=60,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                "ONEHOP_INSTALL_QUEUE_ONLY": "1"})
        assert r.returncode == 0, r.stderr.decode()
        ids = _commit_as_queue(accounts["queue"], qbin, etc)
        yield accounts, queue_dir, etc, ids
    finally:
        shutil.rmtree(top)


def _commit_as_queue(queue, qbin, etc):
    ids = []
    for i in range(2):  # one-shot: through a commit slot
        data = b"Subject: one-shot %d\n\nbody %d\n" % (i, i)
        r = _as(queue, [qbin, "-C", etc],
                data=injproto.message_records(1, "alice@a.test", ["bob@b.test"], data))
        assert r.returncode == 0, r.stderr.decode()
        ((rtype, _txn, qid),) = injproto.parse_replies(r.stdout)
        assert rtype == injproto.OK
        ids.append(qid)
    group = b"".join(injproto.message_records(t, "carol@c.test", ["dave@d.test"],
                                              b"Subject: group %d\n\nbody\n" % t)
                     for t in (1, 2, 3))
    r = _as(queue, [qbin, "-C", etc, "--server"], data=group)
    assert r.returncode == 0, r.stderr.decode()
    replies = injproto.parse_replies(r.stdout)
    assert [x[0] for x in replies] == [injproto.OK] * 3, replies
    ids += [x[2] for x in replies]
    # the cleaner takes the first file into active/, so both places hold files
    r = _as(queue, [qbin, "-C", etc, "--clean"], data=injproto.record(CLEAN_TAKE, ids[0][:16]))
    assert r.returncode == 0, r.stderr.decode()
    assert injproto.parse_replies(r.stdout) == [(CLEAN_OK, 1, 0, "taken")]
    return ids


def test_the_tree_is_laid_out_as_install_makes_it(installed):
    accounts, queue_dir, _etc, ids = installed
    router_gid = accounts["router"].pw_gid
    queue_uid = accounts["queue"].pw_uid

    def owner_mode(p):
        st = os.lstat(p)
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    assert owner_mode(queue_dir) == (queue_uid, router_gid, 0o2755)
    for d in ("incoming", "active", "corrupt"):
        assert owner_mode(queue_dir / d) == (queue_uid, router_gid, 0o2750)
    for d in ("tmp", "slots", "lock"):
        assert owner_mode(queue_dir / d)[:2] == (queue_uid, router_gid)
        assert owner_mode(queue_dir / d)[2] & 0o777 == 0o700
    assert owner_mode(queue_dir / "state")[0] == accounts["router"].pw_uid
    assert owner_mode(queue_dir / "state")[2] & 0o777 == 0o700
    files = [p for p in queue_dir.glob("*/*/*") if p.is_file()]
    assert len(files) == 3  # two one-shot files and one group file
    assert len(list(queue_dir.glob("active/*/%s" % ids[0][:16]))) == 1
    for f in files:
        assert owner_mode(f) == (queue_uid, router_gid, 0o640), f
        assert owner_mode(f.parent) == (queue_uid, router_gid, 0o2750), f.parent


@pytest.mark.parametrize("role", ["remote", "dns"])
def test_delivery_accounts_can_create_or_open_nothing(installed, role):
    accounts, queue_dir, _etc, _ids = installed
    tree = _tree(queue_dir)
    assert len(tree["files"]) >= 3 and len(tree["dirs"]) > 9
    results = _probe(accounts[role], tree)
    assert set(results) == set(tree["dirs"]) | set(tree["files"])
    assert _successes(results, WRITES) == []
    assert _successes(results, FILE_CHANGES + ("read",)) == []
    # and not because the probe could not run: it did reach queue_dir itself
    assert results[str(queue_dir)]["list"] == "ok"
    assert _tree(queue_dir) == tree  # nothing appeared, nothing went


def test_router_reads_messages_but_changes_none(installed):
    accounts, queue_dir, etc, ids = installed
    router = accounts["router"]
    # the router's own state/ holds a file of its own
    r = _as(router, ["/bin/sh", "-c", "umask 077 && echo journal > \"$0\"/journal",
                     queue_dir / "state"])
    assert r.returncode == 0, r.stderr.decode()
    tree = _tree(queue_dir)
    others = [f for f in tree["files"] if "/state/" not in f]  # messages, slots
    messages = [f for f in others if "/incoming/" in f or "/active/" in f]
    assert len(messages) == 3
    results = _probe(router, {"dirs": [d for d in tree["dirs"] if not d.endswith("/state")],
                              "files": others})
    assert _successes(results, WRITES) == []
    assert _successes(results, FILE_CHANGES) == []
    for f in messages:
        assert results[f]["read"] == "ok", f
    for place in ("incoming", "active", "corrupt"):
        assert results[str(queue_dir / place)]["list"] == "ok"
    for private in ("tmp", "slots", "lock"):
        assert results[str(queue_dir / private)]["list"] == "EACCES"
    # the content it reads is each message's, byte for byte
    r = _as(router, ["/usr/bin/python3", "-c",
                     "import sys, pathlib; sys.path.insert(0, sys.argv[3]); import queuefile; "
                     "sys.stdout.buffer.write(queuefile.stored_content(pathlib.Path(sys.argv[1]), "
                     "sys.argv[2]))", queue_dir, ids[3],
                     reachable.copy_test_modules(queue_dir.parents[1], ["queuefile"])])
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"Subject: group 2\n\nbody\n"
    assert _tree(queue_dir) == tree


def test_queue_account_cannot_touch_state(installed):
    accounts, queue_dir, _etc, _ids = installed
    r = _as(accounts["router"], ["/bin/sh", "-c", "umask 077 && echo journal > \"$0\"/journal",
                                 queue_dir / "state"])
    assert r.returncode == 0, r.stderr.decode()
    state = queue_dir / "state"
    results = _probe(accounts["queue"], {"dirs": [str(state)], "files": [str(state / "journal")]})
    assert results[str(state)]["list"] == "EACCES"
    assert _successes(results, WRITES) == []
    assert _successes(results, FILE_CHANGES + ("read",)) == []
    assert (state / "journal").read_text() == "journal\n"
