"""The soak's injectors: messages into onehop by SMTP (to onehop-smtpd) and
by the real sendmail, each with a unique X-Soak-Id header, paced so that
the target count is spread over the run.

What it does: Injectors runs SMTP_THREADS threads that speak SMTP to the
instance (smtplib, several messages per connection, a new connection after
any error) and SENDMAIL_THREADS threads that run BIN/sendmail once per
message. A shared pacer hands out message numbers on a schedule (message i
is due at start + i * seconds / target; a thread that is late takes the
next at once). Each message gets 1-3 recipients: local users, remote
recipients of the dN.soak.test peers, and bounce-* recipients that the
peers refuse with 550 (their DSNs come back to the sender, a local mailbox
or the ret.soak.test peer).

Only what the MTA accepted is recorded, one JSON line per message in
accepted.jsonl: id, path (smtp or sendmail), sender, the recipients it
accepted (for SMTP: those answered 250 to RCPT, when the final dot got a
250; for sendmail: all, on exit 0). A message refused or cut off (a killed
smtpd, a 4xx, a sendmail exit 75) is counted as injected but not accepted.

It must never: record a message the MTA did not accept with a 250 / exit 0,
or send outside 127.0.0.0/8.
"""

import json
import random
import smtplib
import subprocess
import threading
import time

from faults import DOMAINS, SENDER_DOMAIN, remote_domain

LOCAL_DOMAIN = "local.test"
LOCAL_USERS = 8
SMTP_THREADS = 4
SENDMAIL_THREADS = 2
SMTP_SHARE = 0.6  # of the messages, by SMTP; the rest by sendmail
MESSAGES_PER_CONNECTION = 20


class Pacer:
    """Message numbers 0..target-1, each handed out no earlier than its time."""

    def __init__(self, target, seconds):
        self.target = target
        self.interval = seconds / float(target)
        self.start = time.monotonic()
        self.next = 0
        self.lock = threading.Lock()

    def take(self, stop):
        with self.lock:
            if self.next >= self.target:
                return None
            n = self.next
            self.next += 1
        wait = self.start + n * self.interval - time.monotonic()
        if wait > 0 and stop.wait(wait):
            return None
        return n


class Injectors:
    def __init__(self, run_id, seed, bin_dir, config_dir, smtp_address, out_path, target,
                 seconds):
        self.run_id = run_id
        self.bin_dir = bin_dir
        self.config_dir = config_dir
        self.smtp_address = smtp_address
        self.out = open(out_path, "a")
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.smtp_pacer = Pacer(int(target * SMTP_SHARE), seconds)
        self.sendmail_pacer = Pacer(target - int(target * SMTP_SHARE), seconds)
        self.seed = seed
        self.counts = {}  # (path, outcome) -> n
        self.errors = {}  # (path, error text) -> n
        self.threads = []

    # --------------------------------------------------------------- public

    def start(self):
        for i in range(SMTP_THREADS):
            self._spawn("smtp-%d" % i, self._smtp_loop, i)
        for i in range(SENDMAIL_THREADS):
            self._spawn("sendmail-%d" % i, self._sendmail_loop, i)
        return self

    def _spawn(self, name, target, i):
        t = threading.Thread(target=target, args=(random.Random("%s-%s" % (self.seed, name)),),
                             name="inject-" + name, daemon=True)
        t.start()
        self.threads.append(t)

    def finish(self, timeout):
        """Wait for every thread (they stop when the pacers run out)."""
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        for t in self.threads:
            t.join(30)
        self.out.close()

    def alive(self):
        return any(t.is_alive() for t in self.threads)

    def count(self, path, outcome):
        with self.lock:
            return self.counts.get((path, outcome), 0)

    # ------------------------------------------------------------ messages

    def _message(self, rng, n, path):
        sender_kind = rng.random()
        if sender_kind < 0.5:
            sender = "sender-%s@%s" % (path, LOCAL_DOMAIN)
        else:
            sender = "sender-%s@%s" % (path, SENDER_DOMAIN)
        rcpts = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            kind = rng.random()
            if kind < 0.35:
                r = "user%d@%s" % (rng.randrange(LOCAL_USERS), LOCAL_DOMAIN)
            elif kind < 0.92:
                r = "r%d@%s" % (rng.randrange(50), remote_domain(rng.randrange(DOMAINS) + 1))
            else:
                r = "bounce%d@%s" % (rng.randrange(5), remote_domain(rng.randrange(DOMAINS) + 1))
            if r not in rcpts:
                rcpts.append(r)
        mid = "%s-%s-%06d" % (self.run_id, path, n)
        body = "".join("line %d of soak message %s: %s\n" % (i, mid, "x" * rng.randrange(60))
                       for i in range(rng.randrange(1, 30)))
        text = ("From: %s\nTo: %s\nSubject: soak %s\nMessage-ID: <%s@soak.test>\n"
                "X-Soak-Id: %s\n\n%s" % (sender, ", ".join(rcpts), mid, mid, mid, body))
        return mid, sender, rcpts, text

    def _record(self, path, mid, sender, rcpts):
        with self.lock:
            self.out.write(json.dumps({"id": mid, "path": path, "sender": sender,
                                       "rcpts": rcpts}) + "\n")
            self.out.flush()

    def _tally(self, path, outcome, error=None):
        with self.lock:
            self.counts[(path, outcome)] = self.counts.get((path, outcome), 0) + 1
            if error:
                key = (path, error[:80])
                self.errors[key] = self.errors.get(key, 0) + 1

    # ----------------------------------------------------------------- SMTP

    def _smtp_loop(self, rng):
        client, used = None, 0
        while not self.stop.is_set():
            n = self.smtp_pacer.take(self.stop)
            if n is None:
                break
            mid, sender, rcpts, text = self._message(rng, n, "smtp")
            data = text.replace("\n", "\r\n").encode()
            try:
                if client is None or used >= MESSAGES_PER_CONNECTION:
                    _quit(client)
                    client, used = smtplib.SMTP(*self.smtp_address, local_hostname="inject.soak.test",
                                                timeout=60), 0
                used += 1
                refused = client.sendmail(sender, rcpts, data)
            except smtplib.SMTPRecipientsRefused as e:
                self._tally("smtp", "refused", "all recipients refused: %s" % e.recipients)
                continue
            except (smtplib.SMTPException, OSError) as e:
                self._tally("smtp", "failed", "%s: %s" % (type(e).__name__, e))
                _quit(client)
                client = None
                continue
            accepted = [r for r in rcpts if r not in refused]
            self._record("smtp", mid, sender, accepted)
            self._tally("smtp", "accepted")
        _quit(client)

    # ------------------------------------------------------------- sendmail

    def _sendmail_loop(self, rng):
        program = str(self.bin_dir / "sendmail")
        while not self.stop.is_set():
            n = self.sendmail_pacer.take(self.stop)
            if n is None:
                break
            mid, sender, rcpts, text = self._message(rng, n, "sendmail")
            try:
                r = subprocess.run([program, "-C", self.config_dir, "-i", "-f", sender, "--"] + rcpts,
                                   input=text.encode(), capture_output=True, timeout=120)
            except subprocess.TimeoutExpired:
                self._tally("sendmail", "failed", "timeout")
                continue
            if r.returncode == 0:
                self._record("sendmail", mid, sender, rcpts)
                self._tally("sendmail", "accepted")
            else:
                self._tally("sendmail", "failed", "exit %d: %s" % (
                    r.returncode, r.stderr.decode("utf-8", "replace").strip()))


def _quit(client):
    if client is None:
        return
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        try:
            client.close()
        except OSError:
            pass
