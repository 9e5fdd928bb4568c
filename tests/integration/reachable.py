"""Copies of what a test runs under another account, in a directory every
account can reach.

A clone may live in a 0700 directory (a clone into `mktemp -d`): a program
of its bin/, or a module of its tests/, run as the queue account or as
nobody then fails with EACCES on the path, and the test would measure the
clone's place instead of the behaviour it means. So such a test copies what
it runs into a 0755 directory of its own (as test_setuid_install.py's tree
does) and runs the copies. Never used for what runs as root.
"""

import os
import shutil
from pathlib import Path

from fixtures.paths import onehop_bin

HERE = Path(__file__).resolve().parent


def reachable_dir(top, name="bin"):
    """top/name, made 0755 along with top itself."""
    top = Path(top)
    top.chmod(0o755)
    d = top / name
    d.mkdir(exist_ok=True)
    d.chmod(0o755)
    return d


def copy_programs(top, names):
    """Copies of onehop_bin()/NAME for each name in top/bin (0755); returns
    that directory."""
    d = reachable_dir(top)
    for name in names:
        shutil.copy2(onehop_bin() / name, d / name)
        os.chmod(d / name, 0o755)
    return d


def copy_test_modules(top, names):
    """Copies of tests/integration/NAME.py in top/py (0755, files 0644), for
    a helper imported by a process running as another account; returns that
    directory."""
    d = reachable_dir(top, "py")
    for name in names:
        shutil.copy2(HERE / ("%s.py" % name), d / ("%s.py" % name))
        os.chmod(d / ("%s.py" % name), 0o644)
    return d
