"""onehop-local (issue 12) driven by tests/tools/localdrive, which plays the
router: it opens a message that sendmail queued and sends LP_JOB records
(common/local_proto.h) over the local channel, printing each RP_RESULT as
a JSON line.

What is checked: Maildir and mbox contents byte for byte (Return-Path:,
Delivered-To:, the `From ` line, >From quoting, CR LF -> LF), the Maildir
name and the maildirsize quota, an mbox write failing half way (RLIMIT_FSIZE)
leaving the mailbox as it was, |command (the message and every variable of
onehop-local(8), each row of the exit status table, the timeout kill),
/file targets, the Delivered-To loop, extensions, local_users = passwd's
unknown user, an unwritable mailbox, the SPEC 8 lines; as root: delivery
with the user's uid, gid and groups, ~/.forward (commands as the user,
addresses re-injected through onehop-queue, an unsafe file ignored) and
aliases targets as `nobody`. Root tests create their users with useradd
under unique names and remove them at teardown; under CI=true they fail
instead of skipping.
"""

import grp
import json
import os
import pwd
import re
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from fixtures.paths import tool_path
from queuefile import stored_content
from test_master import master_bin, new_instance  # noqa: F401 (master_bin: a fixture)

SENDER = "alice@a.test"
HOST = "mta.onehop.test"
EXIT_ROWS = [  # sysexits.h as onehop-local(8) documents it (Postfix's sys_exits.c)
    (64, "permanent", "5.3.0"), (65, "permanent", "5.6.0"), (66, "permanent", "5.3.0"),
    (67, "permanent", "5.1.1"), (68, "permanent", "5.1.2"), (69, "permanent", "5.3.0"),
    (70, "permanent", "5.3.0"), (71, "temporary", "4.3.0"), (72, "permanent", "5.3.0"),
    (73, "permanent", "5.2.0"), (74, "permanent", "5.3.0"), (75, "temporary", "4.3.0"),
    (76, "permanent", "5.5.0"), (77, "permanent", "5.7.0"), (78, "permanent", "5.3.5"),
    (0, "ok", "2.0.0"), (1, "permanent", "5.3.0"), (100, "permanent", "5.3.0"),
]


@pytest.fixture
def local(onehop):
    """Factory: local(conf=..., aliases=...) -> Local on a fresh instance."""

    def factory(conf=None, aliases=""):
        return Local(onehop(conf=conf, aliases=aliases))

    return factory


class Local:
    def __init__(self, mta):
        self.mta = mta
        self.tool = tool_path("localdrive")
        if self.tool is None:
            pytest.fail("localdrive is missing: make tools (or set ONEHOP_TOOLS)",
                        pytrace=False)

    def inject(self, *rcpts, body=None, sender=SENDER):
        """Queue one message with sendmail; its queue id."""
        before = {m["id"] for m in self.mta.queue()["messages"]}
        if body is None:
            body = "Subject: test\n\nhello\n"
        r = self.mta.sendmail("-f", sender, *rcpts,
                              data=body.encode() if isinstance(body, str) else body)
        assert r.rc == 0, r
        (qid,) = {m["id"] for m in self.mta.queue()["messages"]} - before
        return qid

    def stored(self, qid):
        return stored_content(self.mta.path("queue"), qid)

    def drive(self, text, timeout=60, check=True, preexec=None):
        """Run localdrive with job text; (results, done records, seconds)."""
        started = time.monotonic()
        proc = subprocess.run([str(self.tool), str(self.mta.dir),
                               str(self.mta.program("onehop-local")), str(timeout)],
                              input=text.encode(), capture_output=True, timeout=timeout + 20,
                              env=self.mta.env(), cwd=str(self.mta.dir), preexec_fn=preexec)
        took = time.monotonic() - started
        out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
        if check:
            assert proc.returncode == 0, (proc.stderr.decode(), self.mta.log_tail())
        return ([o for o in out if "class" in o], [o for o in out if "done" in o], took)

    def deliver(self, qid, *rcpts, **kw):
        """One job of rcpts [(origin, original, recipient)] (none: the
        envelope's); the results in order of index."""
        lines = ["job %s" % qid]
        lines += ["rcpt %d %s %s" % (o, orig or "-", r) for o, orig, r in rcpts]
        lines.append("end")
        results, done, _ = self.drive("\n".join(lines) + "\n", **kw)
        assert len(done) == 1 and done[0]["done"] == len(results), (results, done)
        return sorted(results, key=lambda r: r["index"])

    def one(self, qid, *rcpts, **kw):
        (res,) = self.deliver(qid, *rcpts, **kw)
        return res


def prefix(rcpt, sender=SENDER):
    return ("Return-Path: <%s>\nDelivered-To: %s\n" % (sender, rcpt)).encode()


def maildir_files(path):
    new = path / "new"
    return sorted(p for p in new.iterdir()) if new.is_dir() else []


# ------------------------------------------------------------- Maildir


def test_maildir_byte_for_byte_with_crlf_input(local):
    lo = local()
    body = b"Subject: crlf\r\nFrom: a@a.test\r\n\r\nline one\r\nFrom here\r\nlast\r\n"
    qid = lo.inject("bob@%s" % HOST, body=body)
    res = lo.one(qid)
    assert res["class"] == "ok" and res["reply"] == "2.0.0 delivered to maildir"
    assert res["relay"] == "local:maildir"
    (path,) = lo.mta.wait_maildir("bob")
    data = path.read_bytes()
    assert data == prefix("bob@%s" % HOST) + lo.stored(qid)
    assert b"\r" not in data and b"\nline one\nFrom here\nlast\n" in data  # no quoting in Maildir
    # maildir(5): new/TIME.MusecPpidQn.HOST,S=SIZE, nothing left in tmp/
    m = re.fullmatch(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.mta\.onehop\.test,S=(\d+)", path.name)
    assert m and int(m.group(5)) == len(data) and abs(int(m.group(1)) - time.time()) < 60
    assert path.parent.name == "new"
    assert list((path.parent.parent / "tmp").iterdir()) == []
    assert (path.parent.parent / "cur").is_dir()


def test_maildir_names_are_unique(local):
    lo = local()
    qid = lo.inject("bob@%s" % HOST)
    results, done, _ = lo.drive("".join("job %s\nend\n" % qid for _ in range(12)))
    assert len(done) == 12 and all(r["class"] == "ok" for r in results)
    files = lo.mta.wait_maildir("bob", n=12)
    assert len({p.name for p in files}) == 12


def test_extension_goes_to_the_user(local):
    lo = local()
    qid = lo.inject("bob+lists@%s" % HOST)
    assert lo.one(qid)["class"] == "ok"
    (path,) = lo.mta.wait_maildir("bob")
    assert path.read_bytes().startswith(prefix("bob+lists@%s" % HOST))


def test_maildirsize_quota_is_temporary(local):
    lo = local()
    md = lo.mta.path("mail", "bob", "Maildir")
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    (md / "maildirsize").write_text("1000S,10C\n900 3\n")
    qid = lo.inject("bob@%s" % HOST, body="Subject: big\n\n" + "x" * 300 + "\n")
    res = lo.one(qid)
    assert res["class"] == "temporary" and res["reply"].startswith("4.2.2"), res
    assert maildir_files(md) == [] and list((md / "tmp").iterdir()) == []
    (md / "maildirsize").write_text("100000S,10C\n900 3\n")
    assert lo.one(qid)["class"] == "ok"
    size = len(maildir_files(md)[0].read_bytes())
    assert (md / "maildirsize").read_text() == "100000S,10C\n900 3\n%d 1\n" % size


def test_unwritable_mailbox_is_temporary(local):
    lo = local()
    lo.mta.write("blocker", "a file where the Maildir's parent should be\n")
    lo.mta.set_conf(mailbox="%s/blocker/%%u/Maildir/" % lo.mta.dir)
    qid = lo.inject("bob@%s" % HOST)
    res = lo.one(qid)
    assert res["class"] == "temporary" and "cannot make the maildir" in res["reply"], res


def test_unsafe_local_part_is_refused(local):
    lo = local()
    qid = lo.inject("bob@%s" % HOST)
    res = lo.one(qid, (0, None, ".hidden@%s" % HOST))
    assert res["class"] == "permanent" and res["reply"].startswith("5.1.3"), res


def test_delivered_to_loop_bounces(local):
    lo = local()
    qid = lo.inject("bob@%s" % HOST,
                    body="Delivered-To: BOB@%s\nSubject: loop\n\nbody\n" % HOST.upper())
    res = lo.one(qid)
    assert res["class"] == "permanent" and res["reply"].startswith("5.4.6"), res
    assert lo.mta.maildir("bob") == []
    # another recipient's Delivered-To, or one in the body, is no loop
    qid = lo.inject("bob@%s" % HOST, body="Delivered-To: carol@%s\nSubject: x\n\n"
                    "Delivered-To: bob@%s\n" % (HOST, HOST))
    assert lo.one(qid)["class"] == "ok"


def test_log_lines(local):
    lo = local()
    qid = lo.inject("team@%s" % HOST)
    lo.deliver(qid, (0, "team@%s" % HOST, "carol@%s" % HOST), (0, None, "dave@%s" % HOST))
    lines = {l.fields["to"]: l for l in lo.mta.log(service="local", qid=qid) if l.status}
    carol, dave = lines["<carol@%s>" % HOST], lines["<dave@%s>" % HOST]
    assert carol.fields["orig_to"] == "<team@%s>" % HOST and "orig_to" not in dave.fields
    for line in (carol, dave):
        assert line.fields["relay"] == "local" and line.status == "sent"
        assert line.reason == "delivered to maildir" and float(line.fields["delay"]) >= 0
    assert re.search(r": to=<carol@mta\.onehop\.test>, orig_to=<team@mta\.onehop\.test>, "
                     r"relay=local, delay=[\d.]+, status=sent \(delivered to maildir\)$",
                     carol.raw)


# ---------------------------------------------------------------- mbox


def test_mbox_byte_for_byte(local):
    lo = local()
    mbox = lo.mta.path("mail", "bob.mbox")
    lo.mta.set_conf(mailbox="%s/mail/%%u.mbox" % lo.mta.dir)
    body = "Subject: mbox\n\nFrom the start\n>From quoted once\nFrom\nnot From here\nend"
    qid = lo.inject("bob@%s" % HOST, body=body)
    res = lo.one(qid)
    assert res["class"] == "ok" and res["relay"] == "local:mbox", res
    data = mbox.read_bytes()
    first, rest = data.split(b"\n", 1)
    assert re.fullmatch(rb"From alice@a\.test [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d "
                        rb"\d\d:\d\d:\d\d \d{4}", first), first
    stored = lo.stored(qid)
    quoted = b"\n".join(b">" + l if l.startswith(b"From ") else l for l in stored.split(b"\n"))
    if not quoted.endswith(b"\n"):
        quoted += b"\n"
    assert rest == prefix("bob@%s" % HOST) + quoted + b"\n"
    assert b"\n>From the start\n>>From quoted once\n" not in rest  # mboxo: only "From "
    assert b"\n>From the start\n>From quoted once\nFrom\nnot From here\nend\n\n" in rest
    assert not lo.mta.path("mail", "bob.mbox.lock").exists()
    # a second message is appended after the empty line
    assert lo.one(qid)["class"] == "ok"
    again = mbox.read_bytes()
    assert again.startswith(data) and again[len(data):].startswith(b"From alice@a.test ")


def test_mbox_null_sender_from_line(local):
    lo = local()
    lo.mta.set_conf(mailbox="%s/mail/%%u.mbox" % lo.mta.dir)
    qid = lo.inject("bob@%s" % HOST, sender="")
    assert lo.one(qid)["class"] == "ok"
    data = lo.mta.path("mail", "bob.mbox").read_bytes()
    assert data.startswith(b"From MAILER-DAEMON ") and b"\nReturn-Path: <>\n" in data


def test_mbox_write_failing_half_way_leaves_it_as_it_was(local):
    lo = local()
    mbox = lo.mta.path("mail", "bob.mbox")
    lo.mta.set_conf(mailbox="%s/mail/%%u.mbox" % lo.mta.dir)
    old = b"From someone Sun Dec  6 10:00:00 2026\nSubject: old\n\n" + b"o" * 50000 + b"\n\n"
    mbox.write_bytes(old)
    qid = lo.inject("bob@%s" % HOST, body="Subject: large\n\n" + ("y" * 99 + "\n") * 300)

    def limit():  # a write past 60000 bytes fails with EFBIG (SIGXFSZ ignored)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000))

    res = lo.one(qid, preexec=limit)
    assert res["class"] == "temporary" and "4.2.2" in res["reply"], res
    assert mbox.read_bytes() == old
    assert not lo.mta.path("mail", "bob.mbox.lock").exists()
    res = lo.one(qid)  # without the limit it goes in
    assert res["class"] == "ok" and mbox.read_bytes().startswith(old)
    assert len(mbox.read_bytes()) > 60000


def test_mbox_waits_for_a_dot_lock(local):
    lo = local()
    lo.mta.set_conf(mailbox="%s/mail/%%u.mbox" % lo.mta.dir)
    lock = lo.mta.path("mail", "bob.mbox.lock")
    lock.write_text("")
    qid = lo.inject("bob@%s" % HOST)
    proc = subprocess.Popen(["sleep", "1.5"])
    try:
        started = time.monotonic()
        killer = subprocess.Popen(["sh", "-c", "sleep 1; rm -f '%s'" % lock])
        res = lo.one(qid)
        killer.wait(timeout=10)
    finally:
        proc.wait(timeout=10)
    assert res["class"] == "ok" and time.monotonic() - started >= 0.9
    assert lo.mta.path("mail", "bob.mbox").read_bytes().startswith(b"From alice@a.test ")


def test_file_target_is_an_mbox_append(local):
    lo = local()
    target = lo.mta.path("archive")
    qid = lo.inject("log@%s" % HOST, body="Subject: f\n\nFrom x\n")
    res = lo.one(qid, (1, "log@%s" % HOST, str(target)))
    assert res["class"] == "ok" and res["relay"] == "local:file", res
    data = target.read_bytes()
    assert data.startswith(b"From alice@a.test ")
    assert data.endswith(prefix("log@%s" % HOST) + lo.stored(qid).replace(b"\nFrom x", b"\n>From x")
                         + b"\n")
    assert lo.one(qid, (1, "log@%s" % HOST, "/dev/null"))["class"] == "ok"


def test_file_target_through_a_symlink_is_refused(local):
    lo = local()
    real = lo.mta.write("real", "")
    link = lo.mta.path("link")
    link.symlink_to(real)
    qid = lo.inject("log@%s" % HOST)
    res = lo.one(qid, (1, "log@%s" % HOST, str(link)))
    assert res["class"] == "temporary" and real.read_bytes() == b"", res


@pytest.fixture
def tiny_fs(request):
    """A 64 KiB tmpfs (root), unmounted at teardown."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("needs root to mount a tmpfs (CI=true: root tests must run)",
                        pytrace=False)
        pytest.skip("needs root to mount a tmpfs")
    where = Path(tempfile.mkdtemp(prefix="onehop-local-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True,
                   timeout=30)
    yield where
    subprocess.run(["umount", str(where)], timeout=30)
    where.rmdir()


def test_disk_full_is_temporary_and_leaves_nothing(local, tiny_fs):
    lo = local(conf={"mailbox": "%s/%%u/Maildir/" % tiny_fs})
    qid = lo.inject("bob@%s" % HOST, body="Subject: big\n\n" + ("w" * 99 + "\n") * 1000)
    res = lo.one(qid)
    assert res["class"] == "temporary" and res["reply"].startswith("4.3.1"), res
    md = tiny_fs / "bob" / "Maildir"
    assert maildir_files(md) == [] and list((md / "tmp").iterdir()) == []
    lo.mta.set_conf(mailbox="%s/%%u.mbox" % tiny_fs)
    (tiny_fs / "bob.mbox").write_bytes(b"From x Sun Dec  6 10:00:00 2026\n\nold\n\n")
    res = lo.one(qid)
    assert res["class"] == "temporary" and res["reply"].startswith("4.3.1"), res
    assert (tiny_fs / "bob.mbox").read_bytes() == b"From x Sun Dec  6 10:00:00 2026\n\nold\n\n"


def test_concurrency_is_bounded_by_local_concurrency(local):
    lo = local(conf={"local_concurrency": "2"})
    marks = lo.mta.path("marks")
    marks.mkdir()
    qid = lo.inject("team@%s" % HOST)
    cmd = ("|cat >/dev/null; echo start $(date +%%s.%%N) >> %s/$$; sleep 0.6; "
           "echo end $(date +%%s.%%N) >> %s/$$" % (marks, marks))
    rcpts = [(1, "t%d@%s" % (i, HOST), cmd) for i in range(5)]
    results = lo.deliver(qid, *rcpts)
    assert [r["class"] for r in results] == ["ok"] * 5
    spans = []
    for f in marks.iterdir():
        times = dict(l.split() for l in f.read_text().splitlines())
        spans.append((float(times["start"]), float(times["end"])))
    assert len(spans) == 5
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most == 2, spans


# ------------------------------------------------------------ commands


def test_command_gets_message_and_variables(local):
    lo = local()
    out = lo.mta.path("cmd")
    out.mkdir()
    cmd = "|cat > %s/msg; env > %s/env; pwd > %s/pwd" % (out, out, out)
    qid = lo.inject("team+ext@%s" % HOST, body="Subject: c\r\n\r\nFrom a\r\nb\r\n")
    res = lo.one(qid, (1, "team+ext@%s" % HOST, cmd))
    assert res["class"] == "ok" and res["relay"] == "local:command", res
    assert res["reply"].startswith("2.0.0 delivered to command: cat > ")
    assert (out / "msg").read_bytes() == prefix("team+ext@%s" % HOST) + lo.stored(qid)
    env = dict(l.split("=", 1) for l in (out / "env").read_text().splitlines() if "=" in l)
    me = pwd.getpwuid(os.geteuid())
    want = {"SENDER": SENDER, "RECIPIENT": "team+ext@%s" % HOST,
            "ORIGINAL_RECIPIENT": "team+ext@%s" % HOST, "LOCAL": "team+ext", "EXTENSION": "ext",
            "DOMAIN": HOST, "USER": me.pw_name, "LOGNAME": me.pw_name, "HOME": me.pw_dir,
            "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for key, value in want.items():
        assert env.get(key) == value, (key, env)
    assert env["SHELL"]
    # nothing of the daemon's environment
    allowed = set(want) | {"SHELL", "PWD", "SHLVL", "_", "OLDPWD"}
    assert set(env) <= allowed, set(env) - allowed
    assert "ONEHOP_TEST_TAG" not in env and "ONEHOP_CHANNEL_LOCAL" not in env


def test_command_sees_no_descriptor_of_the_daemon(local):
    lo = local()
    out = lo.mta.path("fds")
    qid = lo.inject("team@%s" % HOST)
    probe = "|cat >/dev/null; for f in /proc/$$/fd/*; do readlink $f; done > %s; true" % out
    res = lo.one(qid, (1, "team@%s" % HOST, probe))
    assert res["class"] == "ok", res
    targets = out.read_text().split()
    assert targets and not [t for t in targets if "socket:" in t or "/queue/" in t], targets


@pytest.mark.parametrize("status,cls,code", EXIT_ROWS, ids=["exit%d" % r[0] for r in EXIT_ROWS])
def test_command_exit_status_row(local, status, cls, code):
    lo = local()
    qid = lo.inject("team@%s" % HOST)
    res = lo.one(qid, (1, "team@%s" % HOST, "|echo said-%d; exit %d" % (status, status)))
    assert res["class"] == cls and res["reply"].startswith(code + " "), res
    if status:
        assert "said-%d" % status in res["reply"]
        assert lo.mta.wait_log("status=%s .*said-%d" %
                               ("deferred" if cls == "temporary" else "bounced", status))


def test_command_killed_by_a_signal_is_temporary(local):
    lo = local()
    qid = lo.inject("team@%s" % HOST)
    res = lo.one(qid, (1, "team@%s" % HOST, "|kill -9 $$"))
    assert res["class"] == "temporary" and "signal 9" in res["reply"], res


def test_command_not_reading_its_input_is_fine(local):
    lo = local()
    qid = lo.inject("team@%s" % HOST, body="Subject: big\n\n" + ("z" * 999 + "\n") * 2000)
    assert lo.one(qid, (1, "team@%s" % HOST, "|true"))["class"] == "ok"


def test_command_hanging_is_killed_at_the_timeout(local):
    lo = local(conf={"local_command_timeout": "2s"})
    pidfile = lo.mta.path("pid")
    qid = lo.inject("team@%s" % HOST)
    started = time.monotonic()
    res = lo.one(qid, (1, "team@%s" % HOST, "|(sleep 60 & echo $! > %s; wait)" % pidfile))
    took = time.monotonic() - started
    assert res["class"] == "temporary" and "time limit of 2 s" in res["reply"], res
    assert 1.5 <= took < 15
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert not os.path.exists("/proc/%d" % pid) or "Z" in open("/proc/%d/stat" % pid).read()
    assert lo.mta.wait_log("status=deferred .*time limit")


# ----------------------------------------------------- passwd mode, root


def test_unknown_user_is_permanent(local):
    lo = local(conf={"local_users": "passwd"})
    qid = lo.inject("nosuchuser%s@%s" % (uuid.uuid4().hex[:8], HOST))
    res = lo.one(qid)
    assert res["class"] == "permanent" and res["reply"].startswith("5.1.1"), res
    assert lo.mta.wait_log("status=bounced \\(unknown user")


class Users:
    """System users made for one test (useradd -m), removed at teardown."""

    def __init__(self):
        self.made = []
        self.groups = []

    def add(self, groups=(), root=False):
        name = "ohl%s" % uuid.uuid4().hex[:8]
        args = ["useradd", "--create-home", "--shell", "/bin/sh"]
        if groups:
            args += ["--groups", ",".join(groups)]
        if root:  # a second name for uid 0, with a home of its own
            args += ["--non-unique", "--uid", "0", "--gid", "0"]
        subprocess.run(args + [name], check=True, capture_output=True, timeout=60)
        self.made.append(name)
        return pwd.getpwnam(name)

    def group(self):
        name = "ohg%s" % uuid.uuid4().hex[:8]
        subprocess.run(["groupadd", name], check=True, capture_output=True, timeout=60)
        self.groups.append(name)
        return grp.getgrnam(name)

    def drop(self):
        for name in self.made:
            home = pwd.getpwnam(name).pw_dir
            subprocess.run(["userdel", "--force", "--remove", name], capture_output=True,
                           timeout=60)
            if home.startswith("/home/ohl"):  # one a test took away from its user
                shutil.rmtree(home, ignore_errors=True)
        for name in self.groups:
            subprocess.run(["groupdel", name], capture_output=True, timeout=60)


@pytest.fixture
def users():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        if os.environ.get("CI") == "true":
            pytest.fail("needs root and useradd (CI=true: root tests must run)", pytrace=False)
        pytest.skip("needs root and useradd")
    u = Users()
    try:
        yield u
    finally:
        u.drop()


def passwd_local(local, **conf):
    settings = {"local_users": "passwd", "mailbox": "~/Maildir/"}
    settings.update(conf)
    return local(conf=settings)


def test_root_delivers_as_the_user(local, users):
    extra = users.group()
    user = users.add(groups=[extra.gr_name])
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok", res
    md = "%s/Maildir" % user.pw_dir
    (path,) = maildir_files(Path(md))
    for p in (path, path.parent, path.parent.parent):
        st = p.stat()
        assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid), p
    assert path.read_bytes() == prefix("%s@%s" % (user.pw_name, HOST)) + lo.stored(qid)


def test_root_command_probe_runs_with_the_users_ids_and_groups(local, users):
    extra = users.group()
    user = users.add(groups=[extra.gr_name])
    forward = "%s/.forward" % user.pw_dir
    with open(forward, "w") as f:
        f.write('"|id -u > $HOME/uid; id -g > $HOME/gid; id -G > $HOME/groups; '
                'echo $USER $HOME > $HOME/who"\n')
    os.chown(forward, user.pw_uid, user.pw_gid)
    os.chmod(forward, 0o644)
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok" and res["relay"] == "local:command", res

    def read(name):
        return open("%s/%s" % (user.pw_dir, name)).read().split()

    assert read("uid") == [str(user.pw_uid)] and read("gid") == [str(user.pw_gid)]
    assert str(extra.gr_gid) in read("groups") and "0" not in read("groups")
    assert read("who") == [user.pw_name, user.pw_dir]
    assert os.stat("%s/uid" % user.pw_dir).st_uid == user.pw_uid


def test_root_forward_to_an_address_is_reinjected(local, users):
    user = users.add()
    forward = "%s/.forward" % user.pw_dir
    with open(forward, "w") as f:
        f.write("# my forward\ncarol@elsewhere.test, \\%s\n" % user.pw_name)
    os.chown(forward, user.pw_uid, user.pw_gid)
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok", res
    m = re.fullmatch(r"2\.0\.0 delivered to maildir; forwarded as ([0-9A-Z]{18})", res["reply"])
    assert m, res
    new = m.group(1)
    show = lo.mta.queue_show(new)
    text = json.dumps(show)
    assert SENDER in text and "carol@elsewhere.test" in text
    assert lo.stored(new) == ("Delivered-To: %s@%s\n" % (user.pw_name, HOST)).encode() + \
        lo.stored(qid)
    # the \user target: the user's own mailbox as well
    assert len(maildir_files(Path(user.pw_dir, "Maildir"))) == 1
    assert lo.mta.wait_log("forwarded as %s" % new)


def test_root_forward_only_address(local, users):
    user = users.add()
    forward = "%s/.forward" % user.pw_dir
    with open(forward, "w") as f:
        f.write("dave@elsewhere.test\n")
    os.chown(forward, user.pw_uid, user.pw_gid)
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok" and re.fullmatch(r"2\.0\.0 forwarded as [0-9A-Z]{18}",
                                                 res["reply"]), res
    assert not os.path.exists("%s/Maildir" % user.pw_dir)


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "other owner"])
def test_root_unsafe_forward_is_ignored(local, users, how):
    user, other = users.add(), users.add()
    forward = "%s/.forward" % user.pw_dir
    with open(forward, "w") as f:
        f.write("carol@elsewhere.test\n")
    os.chown(forward, other.pw_uid if how == "other owner" else user.pw_uid, user.pw_gid)
    os.chmod(forward, {"world-writable": 0o646, "group-writable": 0o664}.get(how, 0o644))
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok" and res["reply"] == "2.0.0 delivered to maildir", res
    assert lo.mta.wait_log(r"\.forward .*; ignored")
    assert len(lo.mta.queue()["messages"]) == 1  # nothing re-injected


def test_root_own_forward_commands_run_as_nobody(local, users, request):
    root = users.add(root=True)
    nobody = pwd.getpwnam("nobody")
    out = Path(tempfile.mkdtemp(prefix="onehop-local-probe-"))
    os.chmod(out, 0o1777)
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    with open("%s/.forward" % root.pw_dir, "w") as f:
        f.write('\\%s\n"|id -u > %s/uid"\n' % (root.pw_name, out))
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (root.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok", res
    assert (out / "uid").read_text().split() == [str(nobody.pw_uid)]
    (path,) = maildir_files(Path(root.pw_dir, "Maildir"))  # the mailbox itself: as root
    assert path.stat().st_uid == 0


def test_root_mbox_in_a_directory_closed_to_the_user_keeps_the_fcntl_lock(local, users,
                                                                          request):
    user = users.add()
    spool = Path(tempfile.mkdtemp(prefix="onehop-local-spool-"))
    request.addfinalizer(lambda: shutil.rmtree(spool, ignore_errors=True))
    os.chmod(spool, 0o755)  # as /var/mail without the mail group: no dot-lock there
    mbox = spool / user.pw_name
    mbox.write_bytes(b"")
    os.chown(mbox, user.pw_uid, user.pw_gid)
    os.chmod(mbox, 0o600)
    lo = passwd_local(local, mailbox="%s/%%u" % spool)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "ok" and res["relay"] == "local:mbox", res
    assert mbox.read_bytes().startswith(b"From alice@a.test ")
    assert mbox.stat().st_uid == user.pw_uid and not (spool / (user.pw_name + ".lock")).exists()


def test_root_alias_command_runs_as_nobody(local, users, request):
    nobody = pwd.getpwnam("nobody")
    lo = passwd_local(local)
    out = Path(tempfile.mkdtemp(prefix="onehop-local-probe-"))
    os.chmod(out, 0o1777)
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    qid = lo.inject("team@%s" % HOST)
    res = lo.one(qid, (1, "team@%s" % HOST, "|id -u > %s/uid" % out))
    assert res["class"] == "ok", res
    assert (out / "uid").read_text().split() == [str(nobody.pw_uid)]
    # an aliases file owned by a user: that user's rights
    user = users.add()
    os.chown(lo.mta.path("aliases"), user.pw_uid, user.pw_gid)
    res = lo.one(qid, (1, "team@%s" % HOST, "|id -u > %s/uid2" % out))
    assert res["class"] == "ok", res
    assert (out / "uid2").read_text().split() == [str(user.pw_uid)]


def test_root_unwritable_home_is_temporary(local, users):
    user = users.add()
    os.chmod(user.pw_dir, 0o555)
    os.chown(user.pw_dir, 0, 0)
    lo = passwd_local(local)
    qid = lo.inject("%s@%s" % (user.pw_name, HOST))
    res = lo.one(qid)
    assert res["class"] == "temporary" and res["reply"].startswith("4.2.0"), res


# --------------------------------------------- end to end: onehop start


@pytest.fixture
def e2e(onehop, master_bin):
    """Factory: an `onehop start`-able instance (as the unprivileged user
    when root: test_master's new_instance), its mail/ writable by it."""

    def factory(routes="", aliases="", **conf):
        mta = new_instance(onehop, master_bin, **conf)
        mta.write("routes", routes)
        mta.write("aliases", aliases)
        if mta.run_as:
            os.chown(mta.path("mail"), mta.run_as.pw_uid, mta.run_as.pw_gid)
        return mta

    return factory


def wait_queue_empty(mta, timeout=30.0):
    deadline = time.monotonic() + timeout
    while mta.qstat()["total"]:
        assert time.monotonic() < deadline, mta.log_tail()
        time.sleep(0.2)


def test_e2e_sendmail_to_a_local_user_arrives_in_the_maildir(e2e, master_bin):
    mta = e2e()
    mta.start()
    body = b"From: alice@a.test\r\nSubject: e2e\r\n\r\nFrom the start\r\nhello local\r\n"
    r = mta.sendmail("-f", SENDER, "bob@%s" % HOST, data=body)
    assert r.rc == 0, r
    (path,) = mta.wait_maildir("bob")
    data = path.read_bytes()
    assert data.startswith(prefix("bob@%s" % HOST)) and b"\r" not in data
    assert data.endswith(b"\n\nFrom the start\nhello local\n")
    if mta.run_as:
        assert path.stat().st_uid == mta.run_as.pw_uid
    (sent,) = mta.wait_delivery("bob@%s" % HOST, "sent")
    assert sent.service == "local" and sent.fields["relay"] == "local"
    assert sent.reason == "delivered to maildir"
    wait_queue_empty(mta)


def test_e2e_alias_to_two_local_users(e2e, master_bin):
    mta = e2e(aliases="team: carol, dave\n")
    mta.start()
    r = mta.sendmail("-f", SENDER, "team@%s" % HOST, data=b"Subject: team\n\nfor the team\n")
    assert r.rc == 0, r
    for user in ("carol", "dave"):
        (path,) = mta.wait_maildir(user)
        assert path.read_bytes().startswith(prefix("%s@%s" % (user, HOST)))
        (line,) = mta.wait_delivery("%s@%s" % (user, HOST), "sent")
        assert line.fields["orig_to"] == "<team@%s>" % HOST
    wait_queue_empty(mta)


def test_e2e_bounce_arrives_in_the_senders_local_maildir(e2e, master_bin, smtp_peers):
    peer = smtp_peers.start("hard.b.test", rcpt={"bob@b.test": "550 5.1.1 no such user"})
    mta = e2e(routes="b.test [%s]:%d\n" % (peer.ip, smtp_peers.port))
    mta.start()
    sender = "alice@%s" % HOST
    r = mta.sendmail("-f", sender, "bob@b.test", data=b"Subject: doomed\n\nto bounce\n")
    assert r.rc == 0, r
    mta.wait_delivery("bob@b.test", "bounced")
    (path,) = mta.wait_maildir("alice")
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <>\nDelivered-To: alice@mta.onehop.test\n"), data[:200]
    assert b"MAILER-DAEMON@mta.onehop.test" in data and b"multipart/report" in data
    assert b"Final-Recipient: rfc822; bob@b.test" in data and b"Status: 5.1.1" in data
    assert b"Subject: doomed" in data  # the original headers
    mta.wait_delivery(sender, "sent")
    wait_queue_empty(mta)


def test_e2e_as_root_local_keeps_root_and_delivers_as_the_user(accounts, users, onehop,
                                                                master_bin):
    # accounts first: the instance (onehop) is stopped before they are removed
    from test_master import new_instance as make
    user = users.add()
    mta = make(onehop, master_bin, run_as=None, user=accounts.base, local_users="passwd",
               mailbox="~/Maildir/")
    os.chmod(mta.dir, 0o755)  # the accounts traverse DIR to its files
    mta.start()
    procs = {p["name"]: p for p in mta.status()["processes"]}
    assert procs["local"]["uid"] == 0 and procs["router"]["uid"] == accounts["router"].pw_uid
    # as an installed set-uid onehop-queue would: committed by the queue account
    q = accounts["queue"]
    r = subprocess.run([str(master_bin / "sendmail"), "-C", str(mta.dir), "-f", SENDER,
                        "%s@%s" % (user.pw_name, HOST)], input=b"Subject: root e2e\n\nhi\n",
                       env=mta.env(), user=q.pw_uid, group=q.pw_gid, extra_groups=[],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    md = Path(user.pw_dir, "Maildir")
    deadline = time.monotonic() + 30
    while not maildir_files(md):
        assert time.monotonic() < deadline, mta.log_tail()
        time.sleep(0.2)
    (path,) = maildir_files(md)
    assert (path.stat().st_uid, path.stat().st_gid) == (user.pw_uid, user.pw_gid)
    assert path.read_bytes().startswith(prefix("%s@%s" % (user.pw_name, HOST)))
    mta.wait_delivery("%s@%s" % (user.pw_name, HOST), "sent")


def test_e2e_as_root_forward_reroutes_through_the_router(accounts, users, onehop, master_bin):
    from test_master import new_instance as make
    user, other = users.add(), users.add()
    forward = "%s/.forward" % user.pw_dir
    with open(forward, "w") as f:
        f.write("%s@%s\n" % (other.pw_name, HOST))
    os.chown(forward, user.pw_uid, user.pw_gid)
    mta = make(onehop, master_bin, run_as=None, user=accounts.base, local_users="passwd",
               mailbox="~/Maildir/")
    os.chmod(mta.dir, 0o755)
    mta.start()
    q = accounts["queue"]
    r = subprocess.run([str(master_bin / "sendmail"), "-C", str(mta.dir), "-f", SENDER,
                        "%s@%s" % (user.pw_name, HOST)], input=b"Subject: fwd e2e\n\nhi\n",
                       env=mta.env(), user=q.pw_uid, group=q.pw_gid, extra_groups=[],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    md = Path(other.pw_dir, "Maildir")
    deadline = time.monotonic() + 30
    while not maildir_files(md):
        assert time.monotonic() < deadline, mta.log_tail()
        time.sleep(0.2)
    (path,) = maildir_files(md)
    data = path.read_bytes()
    assert path.stat().st_uid == other.pw_uid
    assert data.startswith(("Return-Path: <%s>\nDelivered-To: %s@%s\nDelivered-To: %s@%s\n" %
                            (SENDER, other.pw_name, HOST, user.pw_name, HOST)).encode()), data
    (line,) = mta.wait_delivery("%s@%s" % (user.pw_name, HOST), "sent")
    assert re.fullmatch(r"forwarded as [0-9A-Z]{18}", line.reason), line.reason
    assert not os.path.exists("%s/Maildir" % user.pw_dir)


def test_e2e_local_killed_during_deliveries_loses_nothing(e2e, master_bin):
    mta = e2e(local_concurrency="1")
    n = 60
    for i in range(n):  # queued while stopped: the deliveries then come one after another
        r = mta.sendmail("-f", SENDER, "u%d@%s" % (i % 4, HOST),
                         data=("Subject: kill %d\n\ntoken-%d\n" % (i, i)).encode())
        assert r.rc == 0, r
    mta.start()
    mta.wait_log(r"onehop/local\[\d+\]: \w+: to=<", timeout=30)
    pid = {p["name"]: p for p in mta.status()["processes"]}["local"]["pid"]
    os.kill(pid, 9)
    done_before = len(mta.deliveries(status="sent"))
    assert done_before < n, "the kill came after the last delivery"
    mta.wait_log(r"onehop/master\[\d+\]: local .*(exited|killed|signal)", timeout=10)
    deadline = time.monotonic() + 60
    while True:
        got = [p.read_bytes() for u in range(4) for p in mta.maildir("u%d" % u)]
        tokens = {int(m) for b in got for m in re.findall(rb"token-(\d+)", b)}
        if tokens == set(range(n)) and mta.qstat()["total"] == 0:
            break
        assert time.monotonic() < deadline, (sorted(set(range(n)) - tokens), mta.log_tail())
        time.sleep(0.3)
    assert len(got) >= n  # at least once: a delivery cut by the kill may come twice
    for b in got:  # every message whole
        assert b.startswith(b"Return-Path: <%s>\nDelivered-To: u" % SENDER.encode())
        assert re.search(rb"\n\ntoken-\d+\n$", b), b
