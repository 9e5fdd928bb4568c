"""onehop-queue installed set-uid to the queue account, as `make install`
does (INSTALL; queue/onehop-queue.c): an ordinary user's sendmail queues
through it, its files belong to the queue account, a user's own
configuration (-C or $ONEHOP_CONFIG) gets no privilege, and an ordinary
user's mailq lists the queue through `onehop-queue --list`.

The privilege is kept only for the compiled-in configuration directory,
/etc/onehop. The tests give it one without touching the host: each command
runs in a private mount namespace (unshare -m) where an overlay over /etc
holds /etc/onehop, bound to this test's directory; the command itself runs
as nobody (setpriv). Needs root, unshare, setpriv and overlayfs: without
them it is skipped with the reason, and under CI=true (CI runs as root) it
fails instead.
"""

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from fixtures.paths import onehop_bin

QUEUE_UID = 64011          # the queue account (no passwd entry needed)
USER_UID = 65534           # nobody
HEADERS = b"From: u@a.test\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <s@a.test>\n"

def _cannot_run(why):
    """Root tests fail under CI=true (CI runs as root) and are skipped elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(why + " (CI=true: root tests must run)", pytrace=False)
    pytest.skip(why)


def _make_tree(top):
    """An installed-like tree under top; returns its paths."""
    t = {k: top / k for k in ("bin", "etc", "etc-user", "spool", "run", "log", "ns-up", "ns-work")}
    for d in t.values():
        d.mkdir()
    for d in ("spool", "run", "log"):
        os.chown(t[d], QUEUE_UID, QUEUE_UID)
        t[d].chmod(0o700 if d == "spool" else 0o755)
    for prog in ("sendmail", "onehop-queue"):
        shutil.copy2(onehop_bin() / prog, t["bin"] / prog)
    os.link(t["bin"] / "sendmail", t["bin"] / "mailq")
    os.chown(t["bin"] / "onehop-queue", QUEUE_UID, QUEUE_UID)
    (t["bin"] / "onehop-queue").chmod(0o4755)
    conf = ("queue_dir = %s/queue\nrun_dir = %s\nlog = %s/maillog\ndaemon_dir = %s\n"
            % (t["spool"], t["run"], t["log"], t["bin"]))
    for d in ("etc", "etc-user"):
        (t[d] / "onehop.conf").write_text(conf)
    return t


@pytest.fixture
def tree():
    if os.geteuid() != 0:
        _cannot_run("needs root (set-uid install)")
    for tool in ("unshare", "setpriv", "mount"):
        if not shutil.which(tool):
            _cannot_run("%s is not installed" % tool)
    top = Path(tempfile.mkdtemp(prefix="onehop-setuid-", dir="/tmp"))
    top.chmod(0o755)
    try:
        t = _make_tree(top)
        probe = _as_user(t, ["/bin/true"], as_root=True)
        if probe.returncode != 0:
            _cannot_run("no private mount namespace with an overlay on /etc here: %s"
                        % probe.stderr.decode().strip())
        yield t
    finally:
        shutil.rmtree(top)


def _env():
    """A minimal environment, sanitizer settings carried over (a set-uid
    sanitizer build ignores them: see __asan_default_options in
    queue/onehop-queue.c)."""
    env = {"PATH": "/usr/bin:/bin"}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def _as_user(t, argv, data=b"", env=None, as_root=False):
    """argv in a mount namespace whose /etc/onehop is t["etc"], as nobody."""
    script = ('mount -t overlay overlay -o lowerdir=/etc,upperdir="$1",workdir="$2" /etc && '
              'mkdir -p /etc/onehop && mount --bind "$3" /etc/onehop && shift 3 && exec "$@"')
    run_as = [] if as_root else ["setpriv", "--reuid=%d" % USER_UID, "--regid=%d" % USER_UID,
                                 "--clear-groups"]
    full = ["unshare", "-m", "sh", "-c", script, "sh", str(t["ns-up"]), str(t["ns-work"]),
            str(t["etc"])] + run_as + [str(a) for a in argv]
    return subprocess.run(full, input=data, capture_output=True, timeout=60, cwd="/",
                          env=env if env is not None else _env())


def _queue_files(t):
    return [p for p in (t["spool"] / "queue" / "incoming").rglob("*") if p.is_file()]


def test_user_queues_through_the_set_uid_onehop_queue(tree):
    r = _as_user(tree, [tree["bin"] / "sendmail", "-f", "u@a.test", "r@b.test"],
                 data=HEADERS + b"\nhello\n")
    assert r.returncode == 0, r.stderr
    files = _queue_files(tree)
    assert len(files) == 1
    st = files[0].stat()
    # queue/queue_modes.h: the router's group reads, only the queue account writes
    assert (st.st_uid, st.st_mode & 0o777) == (QUEUE_UID, 0o640)
    assert (tree["spool"] / "queue").stat().st_mode & 0o7777 == 0o2755
    # the invoking user is recorded by onehop-queue, not claimed by sendmail
    listing = subprocess.run([str(onehop_bin() / "onehop"), "-C", str(tree["etc"]), "queue",
                              "--json"], capture_output=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    (msg,) = json.loads(listing.stdout)["messages"]
    shown = subprocess.run([str(onehop_bin() / "onehop"), "-C", str(tree["etc"]), "queue", "show",
                            msg["id"], "--json"], capture_output=True, timeout=60)
    assert json.loads(shown.stdout)["attributes"]["uid"] == str(USER_UID)
    log = (tree["log"] / "maillog").read_text()
    assert msg["id"] + ": from=<u@a.test>, size=" in log


@pytest.mark.parametrize("how", ["-C", "ONEHOP_CONFIG"])
def test_a_users_own_configuration_gets_no_privilege(tree, how):
    """The same settings from a directory that is not the compiled-in one:
    onehop-queue drops the set-uid privilege, cannot write the queue, and
    says so (75); nothing is queued."""
    argv = [tree["bin"] / "sendmail", "-f", "u@a.test", "r@b.test"]
    env = _env()
    if how == "-C":
        argv[1:1] = ["-C", tree["etc-user"]]
    else:
        env["ONEHOP_CONFIG"] = str(tree["etc-user"])
    r = _as_user(tree, argv, data=HEADERS + b"\nhello\n", env=env)
    assert r.returncode == 75, r
    assert b"onehop-queue:" in r.stderr
    assert _queue_files(tree) == []


def test_user_mailq_lists_through_onehop_queue_list(tree):
    r = _as_user(tree, [tree["bin"] / "sendmail", "-f", "u@a.test", "r@b.test"],
                 data=HEADERS + b"\nhello\n")
    assert r.returncode == 0, r.stderr
    for argv in ([tree["bin"] / "mailq"], [tree["bin"] / "sendmail", "-bp"]):
        listing = _as_user(tree, argv)
        assert listing.returncode == 0, listing.stderr
        out = listing.stdout.decode()
        assert "u@a.test" in out and "r@b.test" in out and "1 Request." in out, out
    # with a user's own configuration the listing has no privilege either
    mine = _as_user(tree, [tree["bin"] / "mailq", "-C", tree["etc-user"]])
    assert mine.returncode == 77, mine
    assert b"Permission denied" in mine.stderr


def test_set_uid_clean_is_refused(tree):
    """A user running the set-uid onehop-queue --clean with the compiled-in
    configuration (the privilege kept) would remove the queue account's
    files: the cleaner refuses (64) and changes nothing."""
    r = _as_user(tree, [tree["bin"] / "sendmail", "-f", "u@a.test", "r@b.test"],
                 data=HEADERS + b"\nhello\n")
    assert r.returncode == 0, r.stderr
    (path,) = _queue_files(tree)
    remove = struct.pack(">IHHBI", 8 + 5 + 16, 35, 1, 3, 16) + path.name.encode()
    r = _as_user(tree, [tree["bin"] / "onehop-queue", "--clean"], data=remove)
    assert r.returncode == 64, r
    assert b"never set-uid" in r.stderr
    assert r.stdout == b""
    assert _queue_files(tree) == [path]
