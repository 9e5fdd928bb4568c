#!/usr/bin/python3
"""Queue N copies of a message into a stopped onehop instance through
`onehop-queue --server` (the inject protocol, queue/inject_proto.h), W
transactions in flight at once, each with R recipients rcptK-J@b.test.
Prints "queued=N seconds=S". Exit 1 if any transaction failed.

usage: queue_onehop.py ONEHOP_QUEUE CONFDIR MESSAGE_FILE N R [W]
"""

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import injproto as ip  # noqa: E402


def main():
    binary, confdir, message, total, nrcpt = sys.argv[1:6]
    writers = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    total, nrcpt = int(total), int(nrcpt)
    body = Path(message).read_bytes()
    proc = subprocess.Popen([binary, "-C", confdir, "--server"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    os.set_blocking(proc.stdin.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out, inbuf = bytearray(), bytearray()
    sent = done = failed = 0
    idle = list(range(writers))
    start = time.monotonic()
    writing = False
    while done < total:
        while idle and sent < total:
            rcpts = ["rcpt%d-%d@b.test" % (sent, j) for j in range(nrcpt)]
            out += ip.message_records(idle.pop(), "bench@a.test", rcpts, body)
            sent += 1
        if out and not writing:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
            writing = True
        for key, _ in sel.select(60):
            if key.fileobj is proc.stdin:
                n = os.write(proc.stdin.fileno(), out)
                del out[:n]
                if not out:
                    sel.unregister(proc.stdin)
                    writing = False
            else:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    sys.exit("queue_onehop: onehop-queue --server closed its output")
                inbuf += chunk
                while len(inbuf) >= 8:
                    length = int.from_bytes(inbuf[:4], "big")
                    if len(inbuf) < length:
                        break
                    rec, inbuf = bytes(inbuf[:length]), inbuf[length:]
                    ((rtype, txn, *_),) = ip.parse_replies(rec)
                    failed += rtype != ip.OK
                    done += 1
                    idle.append(txn)
    proc.stdin.close()
    proc.wait(30)
    print("queued=%d seconds=%.2f failed=%d" % (done - failed, time.monotonic() - start, failed))
    sys.exit(1 if failed else 0)


main()
