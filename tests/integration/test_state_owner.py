"""Who owns a state/ made by an admin command run as root (queue/state.h
state_dir_give; docs/INTERNALS.md "The state side"): `onehop hold` before
the router's first start makes queue_dir/state/ itself, and as root with
the instance's accounts (`user = ohtest`) it must belong to the router's
account (SPEC 7), with every file made in it, so that the router can own
it later; an instance without accounts keeps the state/ its opener made.

Needs root (the accounts fixture): under CI=true it fails when it cannot run.
"""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import injproto
from fixtures.paths import onehop_bin


def hold_one(confdir):
    """Commit one message (as root) and hold it with `onehop hold`."""
    rc, replies, err = injproto.inject(onehop_bin() / "onehop-queue", confdir)
    assert rc == 0, err
    ids = [r[2] for r in replies if len(r) > 2 and isinstance(r[2], str) and len(r[2]) == 18]
    assert len(ids) == 1, replies
    p = subprocess.run([str(onehop_bin() / "onehop"), "-C", str(confdir), "hold", ids[0]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Placed on hold: 1 message" in p.stderr
    return ids[0]


def owners(state_dir):
    """{name: (uid, gid, mode)} of state/ ('.') and every file in it."""
    out = {".": os.lstat(state_dir)}
    out.update({name: os.lstat(state_dir / name) for name in os.listdir(state_dir)})
    return {n: (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) for n, st in out.items()}


@pytest.fixture
def open_dir():
    """A directory every account may enter (pytest's tmp_path is root's 0700)."""
    d = Path(tempfile.mkdtemp(prefix="ohstate-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_state_made_by_root_belongs_to_the_router(open_dir, accounts):
    tmp_path = open_dir
    confdir = injproto.make_config(tmp_path / "c", user=accounts.base)
    qid = hold_one(confdir)
    router = accounts["router"]
    seen = owners(confdir / "queue" / "state")
    assert seen["."] == (router.pw_uid, router.pw_gid, 0o700)
    assert "lock" in seen and any(n.startswith("journal.") for n in seen), seen
    for name, (uid, gid, _mode) in seen.items():
        assert (uid, gid) == (router.pw_uid, router.pw_gid), name
    # The router's account can own that state: lock it and read its journal.
    probe = ("import fcntl, os, sys; d = sys.argv[1]; "
             "fd = os.open(os.path.join(d, 'lock'), os.O_RDWR); "
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); "
             "names = [n for n in os.listdir(d) if n.startswith('journal.')]; "
             "print(sum(len(open(os.path.join(d, n), 'rb').read()) for n in names))")
    p = subprocess.run(["/usr/bin/python3", "-c", probe, str(confdir / "queue" / "state")],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: (os.setgid(router.pw_gid), os.setuid(router.pw_uid)))
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) > 20  # a header and the hold's records
    # A second command finds state/ there and changes nothing of its owner.
    p = subprocess.run([str(onehop_bin() / "onehop"), "-C", str(confdir), "release", qid],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Released from hold: 1 message" in p.stderr, p.stderr
    assert owners(confdir / "queue" / "state")["."] == (router.pw_uid, router.pw_gid, 0o700)
    # An instance whose accounts do not exist keeps the state/ its opener
    # (root) made: nothing to give it to.
    other = injproto.make_config(tmp_path / "o", user="ohnoaccount")
    hold_one(other)
    assert owners(other / "queue" / "state")["."][:2] == (0, 0)
