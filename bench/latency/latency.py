#!/usr/bin/python3
"""bench/latency/latency.py — the two ends of the latency benchmark.

  latency.py sink PORT OUT
      An SMTP sink on 127.0.0.1:PORT (asyncio, one loop): EHLO/HELO, MAIL,
      RCPT, DATA, RSET, NOOP, QUIT, several transactions per session,
      PIPELINING offered (commands are answered in order). For every message
      it appends "ID T SESSION N" to OUT (flushed at once): ID from the
      message's X-Bench-Id header, T = CLOCK_MONOTONIC in seconds when the
      line "." ending DATA was read, before the 250 is written, SESSION the
      connection's number (from 1), N the message's number in that
      session (from 1: N > 1 means the MTA reused its connection). Stops
      on SIGTERM.

  latency.py client PORT SINKOUT N OUT
      N messages one after the other, one SMTP session each (connect, EHLO,
      MAIL, RCPT, DATA, the message, QUIT; no pipelining), to the MTA on
      127.0.0.1:PORT. Per message it records CLOCK_MONOTONIC at the connect
      (t0) and when the 250 after the final dot was read (t250), then waits
      (at most 30 s) until SINKOUT has the message's ID (tsink) before it
      starts the next one, so no message waits behind another. Writes
      "ID t0 t250 tsink" lines to OUT and prints one summary line:
        n= lost= p50_ms= p99_ms= max_ms= acc_p50_ms= acc_p99_ms= acc_max_ms=
        reused=
      relay latency = tsink - t250, acceptance latency = t250 - t0; reused:
      the messages the sink got on a connection the MTA had used before;
      percentiles by nearest rank. Exits 1 if any message was refused.

Both ends read the same clock (CLOCK_MONOTONIC is system-wide on Linux).
Must never: talk to anything but 127.0.0.1, or wait without a bound.
"""

import asyncio
import math
import os
import signal
import socket
import sys
import time


def mono():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# ------------------------------------------------------------------ sink
class Sink:
    def __init__(self, out):
        self.out = open(out, "a", buffering=1)
        self.sessions = 0

    async def session(self, reader, writer):
        self.sessions += 1
        session, count = self.sessions, 0
        writer.write(b"220 latency-sink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO",):
                    writer.write(b"250-latency-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    writer.write(b"250 2.0.0 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    count += 1
                    await self.message(reader, session, count)
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 5.5.2 not here\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def message(self, reader, session, count):
        msg_id, in_header = "-", True
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("EOF in DATA")
            if line == b".\r\n":
                arrived = mono()
                self.out.write("%s %.6f %d %d\n" % (msg_id, arrived, session, count))
                return
            if in_header:
                if line in (b"\r\n", b"\n"):
                    in_header = False
                elif line.lower().startswith(b"x-bench-id:"):
                    msg_id = line.split(b":", 1)[1].strip().decode("ascii", "replace")


async def sink_main(port, out):
    sink = Sink(out)
    server = await asyncio.start_server(sink.session, "127.0.0.1", port, backlog=128)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("sink: listening on 127.0.0.1:%d" % port, flush=True)
    async with server:
        await stop


# ---------------------------------------------------------------- client
class Reply(Exception):
    pass


def read_reply(f, want):
    """Reads one (multi-line) reply; raises Reply unless its code is WANT."""
    while True:
        line = f.readline()
        if not line:
            raise Reply("connection closed, %s expected" % want)
        if line[3:4] != b"-":
            break
    if not line.startswith(want):
        raise Reply(line.decode("ascii", "replace").strip())


def body_lines():
    filler = b"This line is filler to make the message four kibibytes long. 0123456789\r\n"
    return filler * 53


def one_message(port, msg_id, body):
    t0 = mono()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        f = s.makefile("rb")
        read_reply(f, b"220")
        for cmd, want in ((b"EHLO latency.client.test", b"250"),
                          (b"MAIL FROM:<bench@a.test>", b"250"),
                          (b"RCPT TO:<rcpt@b.test>", b"250"),
                          (b"DATA", b"354")):
            s.sendall(cmd + b"\r\n")
            read_reply(f, want)
        head = ("From: Bench Sender <bench@a.test>\r\nTo: <rcpt@b.test>\r\n"
                "Subject: latency benchmark\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
                "Message-ID: <%s@a.test>\r\nX-Bench-Id: %s\r\n\r\n" % (msg_id, msg_id))
        s.sendall(head.encode() + body + b".\r\n")
        read_reply(f, b"250")
        t250 = mono()
        s.sendall(b"QUIT\r\n")
        try:
            read_reply(f, b"221")
        except (Reply, OSError):
            pass
        return t0, t250
    finally:
        s.close()


class SinkLog:
    """Follows the sink's OUT file: id -> arrival time."""

    def __init__(self, path):
        self.path, self.pos, self.seen, self.partial = path, 0, {}, ""

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.split()
            if len(parts) == 4:
                self.seen[parts[0]] = (float(parts[1]), int(parts[3]))

    def wait(self, msg_id, limit):
        deadline = mono() + limit
        while True:
            self.poll()
            if msg_id in self.seen:
                return self.seen[msg_id]
            if mono() > deadline:
                return None
            time.sleep(0.0005)


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]


def client_main(port, sinkout, n, out):
    body = body_lines()
    log = SinkLog(sinkout)
    tag = "%d-%d" % (os.getpid(), int(time.time()))
    relay, accept, lost, reused = [], [], 0, 0
    with open(out, "w") as rec:
        for i in range(n):
            msg_id = "%s-%04d" % (tag, i)
            try:
                t0, t250 = one_message(port, msg_id, body)
            except (Reply, OSError) as e:
                print("client: message %d refused: %s" % (i, e), file=sys.stderr)
                return 1
            seen = log.wait(msg_id, 30.0)
            if seen is None:
                lost += 1
                rec.write("%s %.6f %.6f -\n" % (msg_id, t0, t250))
                continue
            tsink, reused = seen[0], reused + (seen[1] > 1)
            rec.write("%s %.6f %.6f %.6f\n" % (msg_id, t0, t250, tsink))
            relay.append((tsink - t250) * 1000)
            accept.append((t250 - t0) * 1000)
    if not relay:
        print("n=0 lost=%d" % lost)
        return 1
    print("n=%d lost=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
          "acc_p50_ms=%.3f acc_p99_ms=%.3f acc_max_ms=%.3f reused=%d" % (
              len(relay), lost, nearest_rank(relay, 50), nearest_rank(relay, 99), max(relay),
              nearest_rank(accept, 50), nearest_rank(accept, 99), max(accept), reused))
    return 0 if lost == 0 else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "sink":
        asyncio.run(sink_main(int(argv[2]), argv[3]))
        return 0
    if len(argv) == 6 and argv[1] == "client":
        return client_main(int(argv[2]), argv[3], int(argv[4]), argv[5])
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
