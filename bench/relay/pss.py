#!/usr/bin/python3
"""Peak proportional set size (PSS) of a process tree: every 0.1 s the sum
of Pss over PID and all its live descendants (/proc/P/smaps_rollup); on
SIGTERM (or once PID is gone) the peak is written to OUT in KiB.

usage: pss.py PID OUT
"""

import os
import signal
import sys
import time


def children():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                text = f.read()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_pss(root):
    kids = children()
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    root, out = int(sys.argv[1]), sys.argv[2]
    peak = [0]

    def finish(*_):
        with open(out, "w") as f:
            f.write("%d\n" % peak[0])
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    while os.path.exists("/proc/%d" % root):
        peak[0] = max(peak[0], tree_pss(root))
        time.sleep(0.1)
    finish()


main()
