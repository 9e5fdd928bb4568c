"""The inject protocol of onehop-queue (queue/inject_proto.h), for tests and
benchmarks: encode request records, decode reply records, run the one-shot
mode, and a private configuration directory for driving onehop-queue alone.

Records are common/ipc.h records: u32 total length, u16 type, u16 field
count, then tagged fields (1 u32, 2 u64, 3 string, 4 bytes), big-endian.
"""

import os
import struct
import subprocess
import tempfile
from pathlib import Path

BEGIN, ATTR, RCPT, DATA, END, ABORT, OK, FAIL = 1, 2, 3, 4, 5, 6, 16, 17
DATA_MAX = 64 * 1024
EX_OK, EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_TEMPFAIL = 0, 64, 65, 70, 75


def record(rtype, *fields):
    """fields: ints become u32, str/bytes become IPC_STR/IPC_BYTES (bytes
    given as ('bytes', b'...'))."""
    body = b""
    for f in fields:
        if isinstance(f, int):
            body += struct.pack(">BI", 1, f)
        elif isinstance(f, tuple):
            body += struct.pack(">BI", 4, len(f[1])) + f[1]
        else:
            raw = f.encode() if isinstance(f, str) else f
            body += struct.pack(">BI", 3, len(raw)) + raw
    return struct.pack(">IHH", 8 + len(body), rtype, len(fields)) + body


def message_records(txn, sender, rcpts, data, attrs=None, chunk=DATA_MAX):
    out = [record(BEGIN, txn, sender)]
    for name, value in (attrs or {}).items():
        out.append(record(ATTR, txn, name, value))
    for r in rcpts:
        out.append(record(RCPT, txn, r, "", ""))
    for i in range(0, len(data), chunk):
        out.append(record(DATA, txn, ("bytes", data[i:i + chunk])))
    out.append(record(END, txn))
    return b"".join(out)


def parse_replies(raw):
    """[(type, txn, fields...)] from a byte string of reply records."""
    out, pos = [], 0
    while pos + 8 <= len(raw):
        length, rtype, nfields = struct.unpack(">IHH", raw[pos:pos + 8])
        p, end, vals = pos + 8, pos + length, []
        for _ in range(nfields):
            tag = raw[p]
            if tag == 1:
                vals.append(struct.unpack(">I", raw[p + 1:p + 5])[0]); p += 5
            elif tag == 2:
                vals.append(struct.unpack(">Q", raw[p + 1:p + 9])[0]); p += 9
            else:
                n = struct.unpack(">I", raw[p + 1:p + 5])[0]
                vals.append(raw[p + 5:p + 5 + n].decode("utf-8", "replace")); p += 5 + n
        assert p == end, "malformed reply record"
        out.append((rtype, *vals))
        pos = end
    assert pos == len(raw), "trailing bytes in replies"
    return out


def make_config(directory=None, **settings):
    """A configuration directory for onehop-queue alone: queue, run and log
    inside it. Returns its Path."""
    d = Path(directory or tempfile.mkdtemp(prefix="ohq-"))
    d.mkdir(parents=True, exist_ok=True)
    conf = {"myhostname": "mta.onehop.test", "queue_dir": "queue", "run_dir": "run",
            "log": "maillog"}
    conf.update({k: str(v) for k, v in settings.items()})
    (d / "run").mkdir(exist_ok=True)
    (d / "onehop.conf").write_text("".join("%s = %s\n" % kv for kv in conf.items()))
    return d


def run_oneshot(binary, confdir, stdin_bytes, timeout=60):
    """Run onehop-queue -C confdir once; returns (rc, replies, stderr)."""
    p = subprocess.run([str(binary), "-C", str(confdir)], input=stdin_bytes,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env={"PATH": "/usr/bin:/bin"})
    return p.returncode, parse_replies(p.stdout), p.stderr.decode("utf-8", "replace")


def inject(binary, confdir, sender="alice@a.test", rcpts=("bob@b.test",),
           data=b"Subject: test\n\nhello\n", attrs=None, timeout=60):
    return run_oneshot(binary, confdir, message_records(1, sender, list(rcpts), data, attrs),
                       timeout)
