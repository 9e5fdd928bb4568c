"""The build boundaries of issue 9 item 3, tried on a copy of the source tree
(the Makefile, every module.mk, common/, queue/, daemons/ and
scripts/check-includes.py) so that the real tree is never touched:

- scripts/check-includes.py (a stage of `make check`) passes on the tree as
  it is and fails, naming FILE:LINE, on each kind of bad include: a daemon
  including another daemon's header (by its folder name or by a relative
  path), common/ including queue/ or a daemon, queue/ including a daemon;
- the include path of a daemon folder leaves out every other daemon, so
  the compiler refuses such an include too;
- a folder under daemons/ without its module.mk (or with a misspelled one)
  stops `make`, as does a daemon's file put into libonehop.a.
"""

import shutil
import subprocess
import sys

import pytest

from fixtures.paths import REPO

CHECK = "scripts/check-includes.py"


def copy_tree(dest):
    keep = shutil.ignore_patterns("*.o", "*.d", "*.a", "__pycache__")
    for folder in ("common", "queue", "daemons"):
        shutil.copytree(REPO / folder, dest / folder, ignore=keep)
    (dest / "scripts").mkdir()
    shutil.copy(REPO / CHECK, dest / CHECK)
    shutil.copy(REPO / "Makefile", dest / "Makefile")
    (dest / "tests" / "tools").mkdir(parents=True)
    shutil.copy(REPO / "tests/tools/module.mk", dest / "tests/tools/module.mk")
    return dest


@pytest.fixture
def tree(tmp_path):
    return copy_tree(tmp_path / "src")


def run_check(tree):
    return subprocess.run([sys.executable, str(tree / CHECK), "--root", str(tree)],
                          capture_output=True, text=True, timeout=60)


def make(tree, *args):
    return subprocess.run(["make", "-C", str(tree), "BUILD=build/t", *args],
                          capture_output=True, text=True, timeout=120)


def append(path, line):
    text = path.read_text()
    path.write_text(text + line + "\n")
    return len(text.splitlines()) + 1


def test_check_passes_on_the_tree_as_it_is(tree):
    r = run_check(tree)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith(", 0 do not")


BAD_INCLUDES = [
    # (file, include line, what the message must name)
    ("daemons/dnscache/lookup.c", '#include "admin/commands.h"',
     "daemons/admin/commands.h is outside common/, queue/, daemons/dnscache/"),
    ("daemons/dnscache/dns_msg.h", '#include "../admin/commands.h"',
     "daemons/admin/commands.h is outside common/, queue/, daemons/dnscache/"),
    ("daemons/admin/onehop.c", '#include "dnscache/lookup.h"',
     "daemons/dnscache/lookup.h is outside common/, queue/, daemons/admin/"),
    ("common/buf.c", '#include "queue.h"', "queue/queue.h is outside common/"),
    ("common/buf.h", '#include "../daemons/dnscache/lookup.h"',
     "daemons/dnscache/lookup.h is outside common/"),
    ("common/mem.c", "#include <../queue/queue.h>", "queue/queue.h is outside common/"),
    ("queue/trigger.c", '#include "../daemons/dnscache/lookup.h"',
     "daemons/dnscache/lookup.h is outside common/, queue/"),
]


@pytest.mark.parametrize("rel,line,why", BAD_INCLUDES, ids=[b[0] + ":" + b[1] for b in BAD_INCLUDES])
def test_check_fails_on_a_bad_include(tree, rel, line, why):
    lineno = append(tree / rel, line)
    r = run_check(tree)
    assert r.returncode == 1, r.stdout
    assert f"{rel}:{lineno}: {line}: {why}" in r.stdout
    assert r.stdout.strip().endswith(", 1 do not")


def test_quoted_include_of_no_header_fails(tree):
    lineno = append(tree / "queue/trigger.c", '#include "no_such_header.h"')
    r = run_check(tree)
    assert r.returncode == 1
    assert f"queue/trigger.c:{lineno}: #include \"no_such_header.h\": no such header" in r.stdout


COMPILE_REFUSED = [
    # (object, source, include line, the header the compiler does not find)
    ("daemons/dnscache/dns_msg", '#include "admin/commands.h"', "admin/commands.h"),
    ("common/buf", '#include "queue.h"', "queue.h"),
]


@pytest.mark.parametrize("stem,line,header", COMPILE_REFUSED, ids=[c[0] for c in COMPILE_REFUSED])
def test_the_include_path_refuses_what_the_folder_may_not_see(tree, stem, line, header):
    obj = f"build/t/{stem}.o"
    ok = make(tree, obj)
    assert ok.returncode == 0, ok.stderr
    (tree / obj).unlink()
    append(tree / f"{stem}.c", line)
    r = make(tree, obj)
    assert r.returncode != 0
    assert f"{header}: No such file or directory" in r.stderr


def test_make_parses_the_tree_as_it_is(tree):
    r = make(tree, "-n", "clean")
    assert r.returncode == 0, r.stderr


def test_a_daemon_folder_without_module_mk_stops_make(tree):
    (tree / "daemons/newd").mkdir()
    (tree / "daemons/newd/modul.mk").write_text("PROGRAMS += onehop-newd\n")
    r = make(tree, "-n", "clean")
    assert r.returncode == 2
    assert "daemons/newd/module.mk: missing" in r.stderr


def test_a_new_daemon_folder_with_module_mk_needs_no_makefile_edit(tree):
    (tree / "daemons/newd").mkdir()
    (tree / "daemons/newd/main.c").write_text(
        '#include "newd/newd.h"\n#include "log.h"\nint main(void) { return NEWD_EXIT; }\n')
    (tree / "daemons/newd/newd.h").write_text("#define NEWD_EXIT 0\n")
    (tree / "daemons/newd/module.mk").write_text(
        "PROGRAMS += onehop-newd\nonehop-newd_SRCS = daemons/newd/main.c\n")
    r = make(tree, "build/t/daemons/newd/main.o")  # its own folder is on its path
    assert r.returncode == 0, r.stderr
    r = make(tree, "-n", "BIN=build/t/bin", "build/t/bin/onehop-newd")
    assert r.returncode == 0, r.stderr
    assert "-o build/t/bin/onehop-newd build/t/daemons/newd/main.o" in r.stdout


def test_a_daemon_file_in_the_library_stops_make(tree):
    append(tree / "daemons/dnscache/module.mk", "LIB_SRCS += daemons/dnscache/dns_msg.c")
    r = make(tree, "-n", "clean")
    assert r.returncode == 2
    assert "LIB_SRCS takes files of common/ and queue/ only, not daemons/dnscache/dns_msg.c" in r.stderr
