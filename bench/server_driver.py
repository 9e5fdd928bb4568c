#!/usr/bin/python3
"""Drive `onehop-queue --server` with W concurrent writers over one pipe, as
smtpd's sessions would: each writer sends a whole message (BEGIN, RCPT,
DATA, END) and waits for its reply before sending the next. Prints one line:
"messages=N writers=W seconds=S rate=R failed=F".

usage: server_driver.py ONEHOP_QUEUE CONFDIR MESSAGES WRITERS SIZE [strace-prefix...]
"""

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import injproto as ip  # noqa: E402


def main():
    binary, confdir, total, writers, size = sys.argv[1:6]
    prefix = sys.argv[6:]
    total, writers, size = int(total), int(writers), int(size)
    body = b"Subject: bench\n\n" + (b"x" * 75 + b"\n") * (size // 76)
    proc = subprocess.Popen(prefix + [binary, "-C", confdir, "--server"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    os.set_blocking(proc.stdin.fileno(), False)
    sel = selectors.DefaultSelector()
    out = bytearray()
    inbuf = bytearray()
    sent = done = failed = 0
    idle = list(range(writers))
    start = time.monotonic()
    sel.register(proc.stdout, selectors.EVENT_READ)
    registered_write = False
    while done < total:
        while idle and sent < total:
            txn = idle.pop()
            out += ip.message_records(txn, "bench@a.test", ["rcpt%d@b.test" % sent], body)
            sent += 1
        want_write = bool(out)
        if want_write != registered_write:
            if want_write:
                sel.register(proc.stdin, selectors.EVENT_WRITE)
            else:
                sel.unregister(proc.stdin)
            registered_write = want_write
        for key, _ in sel.select(timeout=30):
            if key.fileobj is proc.stdin:
                n = os.write(proc.stdin.fileno(), out[:1 << 20])
                del out[:n]
            else:
                chunk = os.read(proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise SystemExit("onehop-queue ended early")
                inbuf += chunk
                # whole records only
                pos = 0
                while len(inbuf) - pos >= 8:
                    length = int.from_bytes(inbuf[pos:pos + 4], "big")
                    if len(inbuf) - pos < length:
                        break
                    rec = ip.parse_replies(bytes(inbuf[pos:pos + length]))[0]
                    pos += length
                    done += 1
                    failed += rec[0] != ip.OK
                    idle.append(rec[1])
                del inbuf[:pos]
    seconds = time.monotonic() - start
    if registered_write:
        sel.unregister(proc.stdin)
    proc.stdin.close()
    proc.wait(timeout=60)
    print("messages=%d writers=%d seconds=%.3f rate=%.0f failed=%d" %
          (total, writers, seconds, total / seconds, failed))


if __name__ == "__main__":
    main()
