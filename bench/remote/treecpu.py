#!/usr/bin/python3
"""CPU seconds (user + system) used so far by a process tree: for PID and
every live descendant, utime + stime + cutime + cstime of /proc/P/stat.
Children that exited and were reaped inside the tree are in their
parent's cutime/cstime, so the difference of two readings is the CPU the
tree used in between, whatever started or ended meanwhile.

usage: treecpu.py PID      prints seconds, e.g. "12.34"
"""

import os
import sys


def stats():
    """{pid: (ppid, ticks)} of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        # after the command: state ppid ... utime(14) stime cutime cstime (1-based fields)
        ppid = int(fields[1])
        ticks = sum(int(x) for x in fields[11:15])
        out[int(name)] = (ppid, ticks)
    return out


def tree_ticks(root):
    procs = stats()
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            total += procs[pid][1]
        todo.extend(children.get(pid, []))
    return total


print("%.2f" % (tree_ticks(int(sys.argv[1])) / os.sysconf("SC_CLK_TCK")))
