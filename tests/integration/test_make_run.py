"""`make run` (SPEC 1; README; scripts/make-run.sh): the newcomer's instance.

Each test runs the real `make run` of this tree in a terminal of its own (a
pty, as a newcomer's shell would), with RUN_DIR a fresh directory and
RUN_SMTP a free port so that it touches neither the tree's run/ nor port
2525. It waits for the printed lines, runs the printed sendmail line as it
is, and checks where the message went: the Maildir once onehop-local is
built, else the queue (the router defers local recipients). ^C (the
terminal's SIGINT) must stop it with exit status 0 from make itself and no
process left; a second `make run` keeps the configuration, the queue and the
mail. One test sends SIGINT to the process group instead (no terminal): the
instance stops cleanly and says so, and make, as GNU make always does on an
interrupt, dies of the SIGINT after its recipe.

The build under test is the tree's own: ONEHOP_BIN must be <repo>/bin
(plain `make`) or <repo>/build/san/bin (`make SAN=1`), which `make run` is
given so that it builds nothing else.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fixtures.instance import free_port
from fixtures.maketree import make_args, make_env, wait_for_files
from fixtures.paths import REPO, onehop_bin

START_TIMEOUT = 120.0  # make checks the build first
STOP_TIMEOUT = 60.0


def _env():
    env = make_env()
    env["TERM"] = "dumb"
    return env


class MakeRun:
    """One `make run` in a pty (tty=True) or in a process group of its own."""

    def __init__(self, run_dir, port, tty=True):
        argv = ["make", "-s", "-C", str(REPO), "run", "RUN_DIR=%s" % run_dir,
                "RUN_SMTP=127.0.0.1:%d" % port] + make_args()
        self.out = b""
        self.tty = tty
        self.status = None
        if tty:
            self.pid, self.fd = pty.fork()
            if self.pid == 0:
                try:
                    os.execvpe(argv[0], argv, _env())
                finally:
                    os._exit(127)
        else:
            rfd, wfd = os.pipe()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=wfd, stderr=wfd,
                                         env=_env(), start_new_session=True)
            os.close(wfd)
            self.pid, self.fd = self.proc.pid, rfd

    def _read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            data = b""
        self.out += data
        return bool(data)

    @property
    def text(self):
        return self.out.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, pattern, timeout=START_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.text, re.M)
            if m:
                return m
            if not self._read(min(0.5, max(0.0, end - time.monotonic()))) and self._exited():
                break
        raise AssertionError("no %r within %ss in the output of make run:\n%s"
                             % (pattern, timeout, self.text))

    def _exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def interrupt(self):
        if self.tty:
            os.write(self.fd, b"\x03")  # ^C: the terminal's SIGINT to its foreground group
        else:
            os.killpg(self.pid, signal.SIGINT)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self._exited():
            self._read(0.2)
        while self._read(0.1):  # the rest of the output
            pass
        assert self.status is not None, "make run still runs %ss after ^C:\n%s" % (timeout,
                                                                                   self.text)
        return self.status

    def pids(self):
        """The master's and the daemons' pids, from what the master printed."""
        found = {int(p) for p in re.findall(r"onehop/master\[(\d+)\]", self.text)}
        found |= {int(p) for p in re.findall(r" started: pid (\d+)", self.text)}
        return found

    def close(self):
        """Teardown after a failure: stop what is left, by pid."""
        if not self._exited():
            for pid in self.pids():
                _signal(pid, signal.SIGTERM)
            try:
                self.wait_exit(STOP_TIMEOUT)
            except AssertionError:
                pass
        for pid in self.pids():
            if _is_onehop(pid):
                _signal(pid, signal.SIGKILL)
        if not self._exited():
            _signal(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _is_onehop(pid):
    """pid is alive and one of onehop's programs."""
    try:
        return b"onehop" in Path("/proc/%d/cmdline" % pid).read_bytes()
    except OSError:
        return False


@pytest.fixture
def run_dir():
    if not shutil.which("make"):
        pytest.fail("make is not installed", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="onehop-mr-", dir="/tmp"))
    try:
        yield directory
    finally:
        if os.environ.get("ONEHOP_KEEP") != "1":  # ONEHOP_KEEP=1: left for a post-mortem
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def make_run():
    started = []

    def start(run_dir, port, tty=True):
        started.append(MakeRun(run_dir, port, tty))
        return started[-1]

    yield start
    for mr in started:
        mr.close()


def _first_message_line(mr):
    mr.wait_for(r"^make run: mail in .* are kept for the next make run\)$")  # the banner's end
    return mr.wait_for(r"^    (printf .*\| (.*?)(/\S+/sendmail) -C (\S+) (\S+@localhost))$")


def _as_prefix(line_match):
    """The command prefix the printed sendmail line runs under ('' or setpriv ...)."""
    return line_match.group(2).split()


def _queued_ids(prefix, run_dir, user):
    """The ids `onehop queue --json` lists. (A set: a listing that meets the
    router moving the file from incoming/ to active/ between its reads of
    the two places can list a message twice; that is the listing's own
    defect, not make run's.)"""
    r = subprocess.run(prefix + [str(onehop_bin() / "onehop"), "-C", str(run_dir), "queue",
                                 "--json"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    messages = json.loads(r.stdout)["messages"]
    for m in messages:
        assert [x["address"] for x in m["recipients"]] == ["%s@localhost" % user], m
    return {m["id"] for m in messages}


def _delivered(run_dir, user):
    """The files of run/mail/USER/new/ once one appears."""
    return wait_for_files(run_dir / "mail" / user / "new")


def _wait_empty_queue(prefix, run_dir, user, timeout=60.0):
    end = time.monotonic() + timeout
    while _queued_ids(prefix, run_dir, user):
        assert time.monotonic() < end, "the queue of %s is not empty after %ss" % (run_dir,
                                                                                 timeout)
        time.sleep(0.2)


def _assert_all_gone(mr):
    pids = mr.pids()
    assert pids, mr.text
    left = [pid for pid in pids if _is_onehop(pid)]
    assert left == [], "still running after make run stopped: %s" % left


def test_make_run_first_message_and_ctrl_c(run_dir, make_run):
    port = free_port()
    mr = make_run(run_dir, port)
    line = _first_message_line(mr)
    local_built = (onehop_bin() / "onehop-local").exists()
    smtpd_built = (onehop_bin() / "onehop-smtpd").exists()
    text = mr.text
    assert "onehop/master[" in text and "ready:" in text
    if not local_built:
        assert "onehop-local" in text and "not built yet" in text, text
    if not smtpd_built:
        assert re.search(r"this build has no.*onehop-smtpd", text), text
    else:
        assert "swaks --server 127.0.0.1:%d" % port in text, text
    conf = (run_dir / "onehop.conf").read_text()
    for setting in ("smtp_listen = 127.0.0.1:%d" % port, "local_users = any",
                    "mailbox = %s/mail/%%u/" % run_dir.resolve(), "queue_dir = queue"):
        assert setting in conf, conf

    # the printed line, as printed
    r = subprocess.run(["sh", "-c", line.group(1)], capture_output=True, timeout=60, cwd="/")
    assert r.returncode == 0, r
    user = line.group(5).split("@")[0]
    prefix = _as_prefix(line)
    if local_built:
        (mail,) = _delivered(run_dir, user)
        body = mail.read_bytes()
        assert b"Subject: hello" in body and b"my first message" in body, body
    else:
        assert len(_queued_ids(prefix, run_dir, user)) == 1
    if smtpd_built and local_built:  # the printed swaks line, as printed
        swaks = mr.wait_for(r"^    (swaks --server .*)$").group(1)
        r = subprocess.run(["sh", "-c", swaks], capture_output=True, timeout=60, cwd="/")
        assert r.returncode == 0, r
        assert len(wait_for_files(run_dir / "mail" / user / "new", count=2)) == 2
    if local_built:
        # the router has recorded every delivery (the queue is empty) before
        # ^C: a stop that meets a delivery under way may deliver it again at
        # the next start (at-least-once), which is not what this test is about
        _wait_empty_queue(prefix, run_dir, user)
    log = (run_dir / "maillog").read_text()
    assert re.search(r"onehop/queue\[\d+\]: \w+: from=<", log), log

    mr.interrupt()
    status = mr.wait_exit()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, mr.text)
    assert "make run: onehop stopped (exit 0)" in mr.text
    assert "stop requested (SIGINT)" in mr.text
    _assert_all_gone(mr)

    # the second run keeps the configuration, the queue and the mail
    again = make_run(run_dir, free_port())
    _first_message_line(again)
    assert (run_dir / "onehop.conf").read_text() == conf
    if local_built:
        assert len(_delivered(run_dir, user)) == (2 if smtpd_built else 1)
    else:
        assert len(_queued_ids(prefix, run_dir, user)) == 1
    again.interrupt()
    status = again.wait_exit()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, again.text)
    _assert_all_gone(again)


def test_make_run_sigint_to_the_process_group(run_dir, make_run):
    """No terminal: SIGINT to make's process group reaches the master,
    which stops gracefully (the script reports exit 0); GNU make then dies
    of the SIGINT it got, as it always does."""
    mr = make_run(run_dir, free_port(), tty=False)
    _first_message_line(mr)
    mr.interrupt()
    status = mr.wait_exit()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, (status, mr.text)
    assert "make run: onehop stopped (exit 0)" in mr.text, mr.text
    _assert_all_gone(mr)


def test_make_run_refuses_a_broken_configuration(run_dir, make_run):
    """A configuration the user broke: the `onehop check` errors, nothing started."""
    (run_dir / "onehop.conf").write_text("no_such_key = 1\n")
    mr = make_run(run_dir, free_port())
    status = mr.wait_exit(START_TIMEOUT)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0, mr.text
    assert re.search(r"onehop\.conf:1: .*no_such_key", mr.text), mr.text
    assert "has the errors above" in mr.text
    assert mr.pids() == set()


def test_make_run_says_why_the_instance_did_not_start(run_dir, make_run):
    """The SMTP port taken by another program: the master's own reason, the
    master's status (1) from make run, and nothing left running."""
    if not (onehop_bin() / "onehop-smtpd").exists():
        pytest.skip("onehop-smtpd is not built: make run listens on no port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        mr = make_run(run_dir, port)
        status = mr.wait_exit(START_TIMEOUT)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 2, (status, mr.text)  # make's
    assert "cannot listen on 127.0.0.1:%d" % port in mr.text, mr.text
    assert "make run: onehop exited with status 1" in mr.text, mr.text
    assert "Done" not in mr.text, mr.text  # no shell job notice
    _assert_all_gone(mr)
