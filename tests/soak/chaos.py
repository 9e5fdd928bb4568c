"""The soak's chaos loop: kill -9 a random onehop daemon every few seconds,
the master once (then `onehop start` again, as an operator would), and
log what it killed when.

What it does: every MIN_GAP..MAX_GAP seconds (from the seeded RNG) it asks
`onehop status --json` for the running processes and SIGKILLs one daemon
chosen at random among those killed fewer than PER_DAEMON_LIMIT times in
the last WINDOW seconds, and only while no daemon that the kill takes
down has exited more than EXIT_LIMIT times in the last WINDOW seconds by
the master's log: the master declares a daemon that exits 5 times within
60 s a crash loop and stops restarting it (daemons/master/table.c), and
the exits of a daemon whose channel peer died with it are the peer's, not
its own (one kill of local ends router, cleaner and remote too, CASCADE
below: only local's exit counts). The soak stays under that rate as the
master counts it, by reading the master's own lines: "NAME will be
restarted in" is a counted exit, "NAME: its last exit followed" takes one
back (a collateral exit seen before its cause). Once, at master_at seconds into the run, the victim is
the master itself; the chaos loop then runs `onehop start`, as an
operator would, until it succeeds (bounded). Each kill is one line of
chaos.log: the time, the daemon, its pid, and what followed.

It must never: kill a process that `onehop status` did not name for this
instance, or wait without a bound.
"""

import collections
import json
import os
import random
import re
import signal
import subprocess
import threading
import time

MIN_GAP, MAX_GAP = 2.0, 6.0
WINDOW, PER_DAEMON_LIMIT, EXIT_LIMIT = 60.0, 2, 2
COUNTED_RE = re.compile(r"/master\[\d+\]: (\w+) will be restarted in")
FORGIVEN_RE = re.compile(r"/master\[\d+\]: (\w+): its last exit followed")
DAEMONS = ("router", "remote", "local", "smtpd", "queue", "cleaner", "dnscache")
_CORE = ("router", "remote", "local", "cleaner")  # the router and its channel peers
CASCADE = {"router": _CORE, "remote": _CORE, "local": _CORE, "cleaner": _CORE,
           "smtpd": ("smtpd", "queue"), "queue": ("smtpd", "queue"), "dnscache": ("dnscache",)}


class Chaos:
    def __init__(self, onehop, seed, log_path, master_at, maillog):
        self.onehop = onehop  # callable(*args, timeout=) -> CompletedProcess
        self.rng = random.Random("%s-chaos" % seed)
        self.log = open(log_path, "a")
        self.master_at = master_at
        self.stop = threading.Event()
        self.kills = collections.Counter()
        self.recent = collections.defaultdict(collections.deque)
        self.master_restarts = 0
        self.failures = []  # what went wrong (a start that failed, status unreadable)
        self.thread = None
        self.started = time.monotonic()
        self.maillog = maillog
        self.maillog_offset = 0
        self.exits = collections.deque()  # (monotonic time seen, daemon) from the master's log
        self.throttled = 0  # rounds without a kill: some daemon at EXIT_LIMIT

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="soak-chaos", daemon=True)
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(120)
        self.log.close()

    def _note(self, text):
        line = "%s %s" % (time.strftime("%H:%M:%S"), text)
        self.log.write(line + "\n")
        self.log.flush()

    def processes(self):
        r = self.onehop("status", "--json", timeout=20)
        if r.returncode != 0:
            return None
        try:
            data = json.loads(r.stdout)
        except ValueError:
            return None
        return {p["name"]: p for p in data.get("processes", []) if p.get("pid")}

    def _loop(self):
        master_done = False
        while not self.stop.wait(self.rng.uniform(MIN_GAP, MAX_GAP)):
            procs = self.processes()
            if procs is None:
                self._note("status: the instance did not answer; no kill this round")
                continue
            if not master_done and time.monotonic() - self.started >= self.master_at:
                master_done = True
                self._kill_master(procs)
                continue
            victim = self._pick(procs, self._exits_in_window())
            if victim is None:
                continue
            pid = int(procs[victim]["pid"])
            if _kill(pid):
                self.kills[victim] += 1
                self.recent[victim].append(time.monotonic())
                self._note("kill -9 %s pid %d" % (victim, pid))

    def _exits_in_window(self):
        """daemon -> exits the master counted in the last WINDOW s (its log)."""
        now = time.monotonic()
        try:
            with open(self.maillog, "rb") as f:
                f.seek(self.maillog_offset)
                chunk = f.read()
        except OSError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1
        self.maillog_offset += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            m = COUNTED_RE.search(line)
            if m:
                self.exits.append((now, m.group(1)))
            m = FORGIVEN_RE.search(line)
            if m:
                self._forget_last_exit(m.group(1))
        while self.exits and now - self.exits[0][0] > WINDOW:
            self.exits.popleft()
        return collections.Counter(name for _, name in self.exits)

    def _forget_last_exit(self, name):
        for k in range(len(self.exits) - 1, -1, -1):
            if self.exits[k][1] == name:
                del self.exits[k]
                return

    def _pick(self, procs, exits):
        now = time.monotonic()
        allowed = []
        for name in DAEMONS:
            q = self.recent[name]
            while q and now - q[0] > WINDOW:
                q.popleft()
            if name in procs and len(q) < PER_DAEMON_LIMIT and \
                    all(exits[d] <= EXIT_LIMIT for d in CASCADE[name]):
                allowed.append(name)
        if not allowed:
            self.throttled += 1
        return self.rng.choice(allowed) if allowed else None

    def _kill_master(self, procs):
        master = procs.get("master")
        if master is None:
            self._note("master not in status; not killed")
            return
        pid = int(master["pid"])
        if not _kill(pid):
            self._note("kill -9 master pid %d: already gone" % pid)
            return
        self.kills["master"] += 1
        self._note("kill -9 master pid %d" % pid)
        deadline = time.monotonic() + 120
        attempt = 0
        while time.monotonic() < deadline and not self.stop.is_set():
            attempt += 1
            time.sleep(1.0)
            r = self.onehop("start", timeout=90)
            if r.returncode == 0:
                self.master_restarts += 1
                self._note("onehop start (attempt %d) after the master's kill: ok" % attempt)
                return
            self._note("onehop start (attempt %d) after the master's kill: exit %d: %s" %
                       (attempt, r.returncode, (r.stderr or r.stdout).strip()[:300]))
        self.failures.append("onehop start did not succeed within 120 s of the master's kill")


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def run_onehop(bin_dir, config_dir, env):
    """A callable running BIN/onehop -C CONFIG ARGS with output captured in files."""
    import tempfile

    def onehop(*args, timeout=60):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                p = subprocess.run([str(bin_dir / "onehop"), "-C", config_dir] + list(args),
                                   stdout=out, stderr=err, timeout=timeout, env=env)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = 124
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, rc, out.read().decode("utf-8", "replace"),
                                               err.read().decode("utf-8", "replace"))
    return onehop
