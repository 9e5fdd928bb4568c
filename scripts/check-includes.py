#!/usr/bin/python3
"""check-includes.py [RESULTS_DIR] [--root DIR] — the build boundaries of
issue 9 item 3, checked on the include lines themselves.

The Makefile gives each folder its include path (common/ sees common/;
queue/ sees common/ and queue/; daemons/D/ sees common/, queue/ and its own
folder, named "D/..."). A relative or absolute path in an include line
could still step around those paths ("../admin/commands.h"), so this script
resolves every include line of common/, queue/ and daemons/*/ the way the
compiler does (the including file's folder first, for the quoted form, then
the folder's include path) and fails when a line names a file of this tree
outside the folders that file may see, or when a quoted include finds no
file at all in them (our quoted includes name our own headers; system
headers use <>). A <> include that the path does not resolve is a system
header and is left alone.

Prints one line per bad include (FILE:LINE: message), then a summary; with
RESULTS_DIR, writes "passed failed 0" (files clean, files with a bad
include) to RESULTS_DIR/includes.counts for scripts/summary.sh. Exit 1 if
any include is bad. It never changes a file.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def allowed_folders(rel):
    """The folders (relative to the root) that the file rel may include from,
    and its include path as (directory, required name prefix) pairs."""
    parts = rel.split("/")
    if parts[0] == "common":
        return ["common"], [("common", "")]
    if parts[0] == "queue":
        return ["common", "queue"], [("common", ""), ("queue", "")]
    daemon = parts[1]
    return (["common", "queue", "daemons/" + daemon],
            [("common", ""), ("queue", ""), ("daemons", daemon + "/")])


def inside(path, folder):
    return path == folder or path.startswith(folder + "/")


# Where an include that the folder's path does not resolve would be found with
# every folder on the path (the old -Icommon -Iqueue -Idaemons): to name it.
EVERY_FOLDER = [("common", ""), ("queue", ""), ("daemons", "")]


def resolve(root, rel, form, name, path):
    """The file (relative to root, normalized) the include line finds with
    the include path path, or None."""
    if os.path.isabs(name):
        return os.path.relpath(os.path.normpath(name), root)
    candidates = []
    if form == '"':
        candidates.append(os.path.join(os.path.dirname(rel), name))
    for directory, prefix in path:
        if name.startswith(prefix):
            candidates.append(os.path.join(directory, name))
    for c in candidates:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None


def check_file(root, rel):
    """The bad include lines of one file, as messages."""
    bad = []
    folders = allowed_folders(rel)[0]
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            form, name = m.group(1), m.group(2)
            found = resolve(root, rel, form, name, allowed_folders(rel)[1])
            if found is None:
                found = resolve(root, rel, form, name, EVERY_FOLDER)
            close = ">" if form == "<" else '"'
            where = f"{rel}:{lineno}: #include {form}{name}{close}"
            if found is None:
                if form == '"':
                    bad.append(f"{where}: no such header in {', '.join(f + '/' for f in folders)}")
                continue
            if found.startswith(".."):
                bad.append(f"{where}: names a file outside the source tree")
            elif not any(inside(found, f) for f in folders):
                bad.append(f"{where}: {found} is outside {', '.join(f + '/' for f in folders)}")
    return bad


def sources(root):
    folders = ["common", "queue"]
    daemons = os.path.join(root, "daemons")
    if os.path.isdir(daemons):
        folders += ["daemons/" + d for d in sorted(os.listdir(daemons))
                    if os.path.isdir(os.path.join(daemons, d))]
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    results = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--root" and args:
            root = os.path.abspath(args.pop(0))
        else:
            results = a
    clean = failed = 0
    for rel in sources(root):
        bad = check_file(root, rel)
        for b in bad:
            print(b)
        if bad:
            failed += 1
        else:
            clean += 1
    print(f"includes: {clean} files keep to the build boundaries, {failed} do not")
    if results:
        os.makedirs(results, exist_ok=True)
        with open(os.path.join(results, "includes.counts"), "w") as fh:
            fh.write(f"{clean} {failed} 0\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
