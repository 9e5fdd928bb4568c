"""`make install`, `make install-sendmail` and `make uninstall` (INSTALL;
Makefile; scripts/install-*.sh; etc/onehop.service.in).

Into a DESTDIR (any user): the tree is laid out file by file (commands,
daemons, modes, hard links, man pages, the systemd unit, the
configuration), the installed `onehop check` accepts the installed
configuration, a second install keeps an edited configuration, and
install-sendmail / uninstall keep and restore what was at the sendmail
names.

As root into the real system (a private PREFIX, SYSCONFDIR, queue and run
directories and account base name, so that it cannot collide with the host
or another test): the accounts and directories exactly as the programs make
them, the unit accepted by `systemd-analyze verify`, `onehop start`, a
delivery to an aiosmtpd sink by sendmail and by SMTP (swaks), and to a local
Maildir (each when its daemon is built), `onehop stop` leaving no process, `make uninstall` removing every
installed file and keeping the configuration, the queue and the accounts;
the teardown removes the accounts, and the system is as it was. And
make install-sendmail on the system's own names (in a private mount
namespace over /usr, /etc and dpkg's database): Postfix's files diverted
with dpkg-divert and kept byte for byte, all back after uninstall. Without
root it is skipped with the reason; under CI=true (CI runs as root) it
fails instead.
"""

import configparser
import filecmp
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ACCOUNT_ROLES, _drop_accounts
from fixtures.instance import free_port
from fixtures.maketree import make, make_args, make_env, wait_for_files
from fixtures.paths import REPO, onehop_bin

COMMANDS = ("onehop", "sendmail", "mailq", "newaliases")
MESSAGE = (b"From: root@mta.install.test\nTo: rcpt@remote.test\nSubject: installed\n"
           b"Date: Sun, 06 Dec 2026 10:00:00 +0000\nMessage-ID: <i1@mta.install.test>\n\n"
           b"through the installed onehop\n")


def _daemons():
    return sorted(p.name for p in onehop_bin().glob("onehop-*"))


def _man_pages():
    return sorted((REPO / "docs" / "man").glob("*.[1-8]"))


def _files(top):
    """Every file and symbolic link below top, relative, as a set."""
    out = set()
    for root, _dirs, files in os.walk(top):
        for name in files:
            out.add(str((Path(root) / name).relative_to(top)))
    return out


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(path)
    return parser


def _check_unit(path, sbindir, sysconfdir, run_dir):
    unit = _unit(path)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    onehop = "%s/onehop -C %s" % (sbindir, sysconfdir)
    assert service["Type"] == "forking"
    assert service["PIDFile"] == "%s/master.pid" % run_dir
    assert service["ExecStart"] == onehop + " start"
    assert service["ExecStartPre"] == onehop + " check"
    assert service["ExecReload"] == onehop + " reload"
    assert service["ExecStop"] == onehop + " stop"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "postfix.service" in unit["Unit"]["Conflicts"].split()


# ------------------------------------------------------------------- DESTDIR


@pytest.fixture
def destdir():
    directory = Path(tempfile.mkdtemp(prefix="onehop-destdir-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_destdir_install_lays_out_the_tree(destdir):
    r = make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    assert r.returncode == 0, r.stderr.decode()
    assert b"DESTDIR is set: no account created" in r.stderr
    expected = {"usr/sbin/%s" % c for c in COMMANDS}
    expected |= {"usr/libexec/onehop/%s" % d for d in _daemons()}
    expected |= {"usr/share/man/man%s/%s" % (m.suffix[1:], m.name) for m in _man_pages()}
    expected |= {"usr/lib/systemd/system/onehop.service"}
    expected |= {"etc/onehop/%s" % f for f in ("onehop.conf", "routes", "sites", "aliases")}
    assert _files(destdir) == expected
    assert "onehop-master" in _daemons() and "onehop-queue" in _daemons()

    for c in ("onehop", "sendmail"):
        path = destdir / "usr/sbin" / c
        assert _mode(path) == 0o755, path
        assert filecmp.cmp(path, onehop_bin() / c, shallow=False), path
    sendmail = os.stat(destdir / "usr/sbin/sendmail")
    for c in ("mailq", "newaliases"):  # hard links, as in bin/
        assert os.stat(destdir / "usr/sbin" / c).st_ino == sendmail.st_ino
    for d in _daemons():
        path = destdir / "usr/libexec/onehop" / d
        assert _mode(path) == 0o755, path  # no set-uid bit into a DESTDIR: no account
        assert filecmp.cmp(path, onehop_bin() / d, shallow=False), path
    for m in _man_pages():
        path = destdir / ("usr/share/man/man%s" % m.suffix[1:]) / m.name
        assert _mode(path) == 0o644 and path.read_bytes() == m.read_bytes(), path

    unit = destdir / "usr/lib/systemd/system/onehop.service"
    assert _mode(unit) == 0o644
    _check_unit(unit, "/usr/sbin", "/etc/onehop", "/run/onehop")

    etc = destdir / "etc/onehop"
    conf = (etc / "onehop.conf").read_text()
    assert "\ndaemon_dir = /usr/libexec/onehop\n" in conf
    assert (etc / "aliases").read_text() == "postmaster: root\n"
    assert (etc / "routes").read_text() == "" and (etc / "sites").read_text() == ""
    check = subprocess.run([str(destdir / "usr/sbin/onehop"), "-C", str(etc), "check"],
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check

    # a second install keeps what the administrator changed
    (etc / "onehop.conf").write_text(conf + "myhostname = mx.example.test\n")
    (etc / "aliases").write_text("postmaster: admin\n")
    r = make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    assert r.returncode == 0, r.stderr.decode()
    assert (etc / "onehop.conf").read_text() == conf + "myhostname = mx.example.test\n"
    assert (etc / "aliases").read_text() == "postmaster: admin\n"
    assert _files(destdir) == expected


def test_a_broken_configuration_fails_the_install(destdir):
    """An existing configuration that `onehop check` refuses: make install
    says where and fails (the administrator fixes it, nothing is lost)."""
    etc = destdir / "etc/onehop"
    etc.mkdir(parents=True)
    (etc / "onehop.conf").write_text("no_such_key = 1\n")
    r = make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    assert r.returncode != 0
    assert b"onehop.conf:1: " in r.stdout + r.stderr
    assert (etc / "onehop.conf").read_text().startswith("no_such_key = 1\n")


def test_install_sendmail_keeps_and_uninstall_restores(destdir):
    r = make("install", "DESTDIR=%s" % destdir)  # PREFIX=/usr/local, the default
    assert r.returncode == 0, r.stderr.decode()
    (destdir / "usr/bin").mkdir(parents=True)
    (destdir / "usr/lib").mkdir(parents=True)
    (destdir / "usr/bin/mailq").write_text("the old mailq\n")
    os.symlink("../sbin/sendmail", destdir / "usr/lib/sendmail")
    before = _files(destdir)

    r = make("install-sendmail", "DESTDIR=%s" % destdir)
    assert r.returncode == 0, r.stderr.decode()
    links = {"usr/sbin/sendmail": "sendmail", "usr/lib/sendmail": "sendmail",
             "usr/bin/mailq": "mailq", "usr/bin/newaliases": "newaliases"}
    for name, command in links.items():
        assert os.readlink(destdir / name) == "/usr/local/sbin/%s" % command, name
    assert (destdir / "usr/bin/mailq.pre-onehop").read_text() == "the old mailq\n"
    assert os.readlink(destdir / "usr/lib/sendmail.pre-onehop") == "../sbin/sendmail"
    # twice is the same (the links are ours already)
    r = make("install-sendmail", "DESTDIR=%s" % destdir)
    assert r.returncode == 0, r.stderr.decode()
    assert not (destdir / "usr/bin/mailq.pre-onehop.pre-onehop").exists()

    r = make("uninstall", "DESTDIR=%s" % destdir)
    assert r.returncode == 0, r.stderr.decode()
    assert (destdir / "usr/bin/mailq").read_text() == "the old mailq\n"
    assert os.readlink(destdir / "usr/lib/sendmail") == "../sbin/sendmail"
    left = _files(destdir)
    # everything installed is gone; the configuration and the old files stay
    assert left == {"etc/onehop/%s" % f for f in ("onehop.conf", "routes", "sites", "aliases")} \
        | {"usr/bin/mailq", "usr/lib/sendmail"}
    assert left < before | {"usr/bin/mailq", "usr/lib/sendmail"}
    assert not (destdir / "usr/local/libexec/onehop").exists()


# --------------------------------------------------------------------- root


def _cannot_run(why):
    """Root tests fail under CI=true (CI runs as root) and are skipped elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(why + " (CI=true: root tests must run)", pytrace=False)
    pytest.skip(why)


def _account_names(base):
    """The users and groups named BASE or BASE-*: those the install makes
    (other suites add and remove their own accounts meanwhile)."""
    def ours(name):
        return name == base or name.startswith(base + "-")

    return ({p.pw_name for p in pwd.getpwall() if ours(p.pw_name)},
            {g.gr_name for g in grp.getgrall() if ours(g.gr_name)})


class SystemInstall:
    """A private root install: PREFIX, SYSCONFDIR, queue and run dirs under top."""

    def __init__(self, top, base):
        self.top = top
        self.base = base
        self.prefix = top / "prefix"
        self.etc = top / "etc"
        self.spool = top / "spool"
        self.run = top / "run"
        self.mail = top / "mail"
        # a build of its own, so that SYSCONFDIR is the programs' compiled-in
        # default (onehop-queue keeps its set-uid privilege only for that one)
        self.vars = ["PREFIX=%s" % self.prefix, "SYSCONFDIR=%s" % self.etc,
                     "BUILD=%s" % (top / "build"), "BIN=%s" % (top / "bin")]
        self.onehop = self.prefix / "sbin" / "onehop"
        self.pids = set()

    def cmd(self, *args, data=b""):
        return subprocess.run([str(self.onehop), "-C", str(self.etc)] + list(args), input=data,
                              capture_output=True, timeout=90)

    def master_pid(self):
        try:
            return int((self.run / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        pid = self.master_pid()
        if pid and self.onehop.exists():
            self.cmd("stop")
        for p in self.pids | ({pid} if pid else set()):
            try:
                if b"onehop" in Path("/proc/%d/cmdline" % p).read_bytes():
                    os.kill(p, 9)
            except OSError:
                pass


@pytest.fixture
def system_install(dns, smtp_peers):
    if os.geteuid() != 0:
        _cannot_run("needs root (a real make install)")
    missing = [t for t in ("useradd", "usermod", "userdel", "groupadd", "groupdel", "setpriv")
               if not shutil.which(t)]
    if missing:
        _cannot_run("needs %s" % ", ".join(missing))
    base = os.environ.get("ONEHOP_TEST_INSTALL_USER", "ohinst")
    _drop_accounts(base)  # leftovers of a run that was killed
    accounts_before = _account_names(base)
    assert accounts_before == (set(), set())
    top = Path(tempfile.mkdtemp(prefix="onehop-inst-", dir="/tmp"))
    top.chmod(0o755)
    si = SystemInstall(top, base)
    si.accounts_before = accounts_before
    si.sink = smtp_peers.start("sink")
    si.smtp_listen = "127.0.0.1:%d" % free_port()
    si.etc.mkdir()
    (si.etc / "onehop.conf").write_text(
        "user = %s\nqueue_dir = %s\nrun_dir = %s\nlog = %s/maillog\nmyhostname = "
        "mta.install.test\nlocal_domains = $myhostname, localhost\nsmtp_listen = "
        "%s\ndns_servers = %s\nmailbox = %s/%%u/\nretry_min = 1s\nretry_max = 2s\n"
        % (base, si.spool, si.run, top, si.smtp_listen, dns.address, si.mail))
    (si.etc / "routes").write_text("remote.test [%s]:%d\n" % (si.sink.ip, si.sink.port))
    try:
        yield si
    finally:
        si.stop()
        if si.onehop.exists():
            make("uninstall", *si.vars)
        _drop_accounts(base)
        shutil.rmtree(top)


def _owner_mode(path):
    st = os.lstat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, \
        stat.S_IMODE(st.st_mode)


def test_root_install_start_deliver_stop_uninstall(system_install):
    si = system_install
    base = si.base
    r = make("install", *si.vars, "-j2")
    assert r.returncode == 0, r.stderr.decode()
    err = r.stderr.decode()
    assert "was built for" not in err, err
    for role in ACCOUNT_ROLES:
        assert "created account %s-%s" % (base, role) in err, err

    # SPEC 7 accounts: system accounts, no login, no home, all in group BASE
    members = set(grp.getgrnam(base).gr_mem)
    for role in ACCOUNT_ROLES:
        pw = pwd.getpwnam("%s-%s" % (base, role))
        assert pw.pw_uid != 0 and pw.pw_shell == "/usr/sbin/nologin", pw
        assert grp.getgrgid(pw.pw_gid).gr_name == "%s-%s" % (base, role)
        assert pw.pw_name in members
    q, rt, d = ("%s-%s" % (base, x) for x in ("queue", "router", "dns"))
    # the queue and run directories as the programs make them (queue_modes.h, account.c)
    assert _owner_mode(si.spool) == (q, rt, 0o2755)
    for place in ("incoming", "active", "corrupt"):
        assert _owner_mode(si.spool / place) == (q, rt, 0o2750), place
    assert _owner_mode(si.spool / "state") == (rt, rt, 0o700)
    assert _owner_mode(si.run) == ("root", d, 0o1775)
    libexec = si.prefix / "libexec" / "onehop"
    assert _owner_mode(libexec / "onehop-queue") == (q, base, 0o4755)
    assert (si.etc / "onehop.conf").read_text().endswith("daemon_dir = %s\n" % libexec)

    # a second install (an upgrade) finds everything in place and keeps it
    again = make("install", *si.vars)
    assert again.returncode == 0, again.stderr.decode()
    assert "created account" not in again.stderr.decode()
    assert _owner_mode(libexec / "onehop-queue") == (q, base, 0o4755)
    assert _owner_mode(si.spool / "state") == (rt, rt, 0o700)

    unit = si.prefix / "lib/systemd/system/onehop.service"
    _check_unit(unit, si.prefix / "sbin", si.etc, si.run)
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                           capture_output=True, timeout=60)
        assert v.returncode == 0, v

    start = si.cmd("start")
    assert start.returncode == 0, start
    status = json.loads(si.cmd("status", "--json").stdout)
    procs = status["processes"] if isinstance(status, dict) else status
    si.pids = {p["pid"] for p in procs if p.get("pid")}
    users = {p["name"]: p["user"] for p in procs}
    assert users["router"] == rt and users["dnscache"] == d and users["cleaner"] == q, users

    # no -C: the compiled-in SYSCONFDIR, through the set-uid onehop-queue
    sent = subprocess.run([str(si.prefix / "sbin/sendmail"), "-f",
                           "root@mta.install.test", "rcpt@remote.test"], input=MESSAGE,
                          capture_output=True, timeout=60)
    assert sent.returncode == 0, sent
    (msg,) = si.sink.wait(1, timeout=60)
    assert msg.rcpt_tos == ["rcpt@remote.test"]
    assert b"through the installed onehop" in msg.data
    if (libexec / "onehop-smtpd").exists() and shutil.which("swaks"):  # and by SMTP
        smtp = subprocess.run(["swaks", "--server", si.smtp_listen, "--from",
                               "root@mta.install.test", "--to", "smtp@remote.test"],
                              capture_output=True, timeout=60)
        assert smtp.returncode == 0, smtp
        si.sink.wait(2, timeout=60)
        assert users["smtpd"] == "%s-smtpd" % base, users
    if (libexec / "onehop-local").exists():
        local = subprocess.run([str(si.prefix / "sbin/sendmail"), "root@mta.install.test"], input=MESSAGE, capture_output=True,
                               timeout=60)
        assert local.returncode == 0, local
        (mail,) = wait_for_files(si.mail / "root" / "new")
        assert os.stat(mail).st_uid == 0 and b"through the installed onehop" in mail.read_bytes()

    stop = si.cmd("stop")
    assert stop.returncode == 0, stop
    alive = [p for p in si.pids if os.path.exists("/proc/%d" % p)]
    assert alive == [], alive

    r = make("uninstall", *si.vars)
    assert r.returncode == 0, r.stderr.decode()
    assert _files(si.prefix) == set()
    # kept, as INSTALL says: the configuration, the queue, the accounts
    assert {"onehop.conf", "routes", "sites", "aliases"} <= set(os.listdir(si.etc))
    assert (si.spool / "incoming").is_dir() and (si.spool / "state").is_dir()
    assert pwd.getpwnam("%s-queue" % base)
    _drop_accounts(base)
    assert _account_names(base) == si.accounts_before


# ----------------------------------------------- install-sendmail, real system

# Run inside a private mount namespace whose /usr, /var/lib/dpkg and /etc
# are overlays with upper directories of the test's own: make
# install-sendmail and make uninstall change the system's names
# (/usr/sbin/sendmail...) and dpkg's diversions there, and the host sees
# nothing. Prints what a test needs to compare, one "key value" a line.
_NAMESPACE_SCRIPT = r"""
set -eu
work=$1; repo=$2; bin=$3; shift 3
for d in usr var/lib/dpkg etc; do
    n=$(echo "$d" | tr / _)
    mkdir -p "$work/$n.up" "$work/$n.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$n.up,workdir=$work/$n.work" "/$d"
done
mkdir -p /usr/local/sbin
for c in onehop sendmail; do install -m 755 "$bin/$c" /usr/local/sbin/$c; done
ln -f /usr/local/sbin/sendmail /usr/local/sbin/mailq
ln -f /usr/local/sbin/sendmail /usr/local/sbin/newaliases
show() {
    for n in /usr/sbin/sendmail /usr/lib/sendmail /usr/bin/mailq /usr/bin/newaliases; do
        if [ -L "$n" ]; then echo "$1 link $n $(readlink "$n")"
        elif [ -e "$n" ]; then echo "$1 file $n $(sha256sum < "$n" | cut -c1-64)"
        else echo "$1 none $n -"; fi
        if [ -e "$n.pre-onehop" ] || [ -L "$n.pre-onehop" ]; then
            echo "$1 kept $n $(sha256sum < "$n.pre-onehop" | cut -c1-64)"
        fi
        echo "$1 truename $n $(dpkg-divert --truename "$n")"
    done
}
show before
make -s -C "$repo" install-sendmail "$@" >&2
show installed
make -s -C "$repo" install-sendmail "$@" >&2
show again
make -s -C "$repo" uninstall "$@" >&2
show after
"""


def _parse_shown(text):
    shown = {}
    for line in text.splitlines():
        stage, kind, name, value = line.split(" ", 3)
        shown.setdefault(stage, {}).setdefault(name, {})[kind] = value
    return shown


def test_install_sendmail_on_the_real_system_diverts_and_uninstall_restores(destdir):
    if os.geteuid() != 0:
        _cannot_run("needs root (the system's sendmail names, in a mount namespace)")
    for tool in ("unshare", "mount", "dpkg-divert", "dpkg"):
        if not shutil.which(tool):
            _cannot_run("%s is not installed" % tool)
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        _NAMESPACE_SCRIPT, "sh", str(destdir), str(REPO), str(onehop_bin())]
                       + make_args(), capture_output=True, timeout=300, env=make_env(), cwd="/")
    if r.returncode != 0 and b"mount" in r.stderr and b"overlay" in r.stderr:
        _cannot_run("no overlay mounts in a private namespace here: %s" % r.stderr.decode())
    assert r.returncode == 0, r.stderr.decode()
    shown = _parse_shown(r.stdout.decode())
    targets = {"/usr/sbin/sendmail": "sendmail", "/usr/lib/sendmail": "sendmail",
               "/usr/bin/mailq": "mailq", "/usr/bin/newaliases": "newaliases"}
    for name, command in targets.items():
        before, installed = shown["before"][name], shown["installed"][name]
        assert installed["link"] == "/usr/local/sbin/%s" % command, (name, installed)
        assert shown["again"][name] == installed, name
        packaged = subprocess.run(["dpkg", "-S", name], capture_output=True).returncode == 0
        if packaged:  # diverted: dpkg itself knows where the package's file went
            assert installed["truename"] == name + ".pre-onehop", (name, installed)
        else:
            assert installed["truename"] == name, (name, installed)
        if "file" in before:  # what was there is kept byte for byte
            assert installed["kept"] == before["file"], (name, before, installed)
        # and everything is as it was after uninstall, the diversion gone
        assert shown["after"][name] == before, (name, before, shown["after"][name])
    # the host saw nothing of it
    for name in targets:
        assert not os.path.lexists(name + ".pre-onehop"), name
