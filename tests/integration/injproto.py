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


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _str(payload, pos):
    n = struct.unpack(">I", payload[pos:pos + 4])[0]
    return payload[pos + 4:pos + 4 + n].decode("utf-8", "replace"), pos + 4 + n


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as queue files carry it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_queue_file(path):
    """The messages of one committed queue file (queue/queue.h "file
    format"), as dicts: id, sender, rcpts, size, content. Raises ValueError
    on a file that is not complete (an independent reader for the tests):
    in format 3 also when the header names another file id, the file is
    longer than its commit, or a message's content fails its CRC-32C."""
    data = Path(path).read_bytes()
    if len(data) < 64 or data[:8] not in (b"OHQUEUE1", b"OHQUEUE2", b"OHQUEUE3"):
        raise ValueError("%s: not a committed queue file" % path)
    v3 = data[:8] == b"OHQUEUE3"
    env_off, env_len, _crc, committed, nmsg = struct.unpack(">QIIQI", data[8:36])
    if committed != env_off + env_len or committed > len(data):
        raise ValueError("%s: truncated" % path)
    fid = Path(path).name
    if v3 and (data[40:56] != fid.encode() or committed != len(data)):
        raise ValueError("%s: header names %r, committed %d of %d bytes" %
                         (path, data[40:56], committed, len(data)))
    env, pos, msgs = data[env_off:committed], 0, []
    while pos < len(env):
        rtype, rlen = env[pos:pos + 1], struct.unpack(">I", env[pos + 1:pos + 5])[0]
        payload = env[pos + 5:pos + 5 + rlen]
        pos += 5 + rlen
        if rtype == b"M":
            index, off, size = struct.unpack(">IQQ", payload[:20])
            at = 20
            if v3:
                content_crc = struct.unpack(">I", payload[20:24])[0]
                if crc32c(data[off:off + size]) != content_crc:
                    raise ValueError("%s: message %d fails its CRC" % (path, index))
                at = 24
            sender, _ = _str(payload, at + 16)
            msgs.append({"id": fid + _ALPHABET[index >> 5] + _ALPHABET[index & 31],
                         "sender": sender, "rcpts": [], "size": size,
                         "content": data[off:off + size], "attrs": {}})
        elif rtype == b"R":
            msgs[-1]["rcpts"].append(_str(payload, 0)[0])
        elif rtype == b"A":
            name, p = _str(payload, 0)
            msgs[-1]["attrs"][name] = _str(payload, p)[0]
    if len(msgs) != nmsg:
        raise ValueError("%s: %d messages, header says %d" % (path, len(msgs), nmsg))
    return msgs


def queue_files(queue_dir, places=("incoming", "active")):
    return sorted(p for place in places for p in Path(queue_dir).glob(place + "/*/*"))


def list_queue(queue_dir):
    """{message id: message dict} of every committed file."""
    return {m["id"]: m for f in queue_files(queue_dir) for m in read_queue_file(f)}


def leftovers(queue_dir):
    """Names in tmp/ (uncommitted files) and non-empty commit slots (a dead
    writer's image recovery has not settled yet)."""
    slots = Path(queue_dir) / "slots"
    return sorted([p.name for p in (Path(queue_dir) / "tmp").iterdir()] +
                  ["slots/" + p.name for p in (slots.iterdir() if slots.is_dir() else [])
                   if p.stat().st_size])
