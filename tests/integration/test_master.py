"""onehop-master and `onehop start/stop/reload/status` (SPEC 1, 7, 8;
docs/man/onehop-master.8), with real processes.

Run as root (CI), the unprivileged tests run the instance as `nobody`
(Instance(run_as=...)): SPEC 7 "started by an ordinary user, everything
runs as that user"; the root tests use the ohtest-* accounts of the
`accounts` fixture. A stand-in daemon (fixtures/fake_daemon.py, installed
as onehop-router in a daemon_dir of the test's own) makes a daemon that
crashes, fails to start, or ignores STOP. Every wait is bounded; every
process is stopped at teardown (by the instance's tag and pids).
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fixtures.paths import onehop_bin as onehop_bin_path

FAKE_DAEMON = Path(__file__).resolve().parent / "fixtures" / "fake_daemon.py"
RUN_AS = "nobody" if os.geteuid() == 0 else None
# the rows of daemons/master/table.c in their order, with their programs
ROWS = (("cleaner", "onehop-queue"), ("dnscache", "onehop-dnscache"), ("router", "onehop-router"),
        ("remote", "onehop-remote"), ("local", "onehop-local"), ("queue", "onehop-queue"),
        ("smtpd", "onehop-smtpd"))
DAEMONS = tuple(n for n, prog in ROWS if (onehop_bin_path() / prog).exists())  # those built
# the real ones beside a fake onehop-router (its daemon_dir has no local or smtpd)
BESIDE_FAKE = ("cleaner", "dnscache", "remote", "queue")


# ------------------------------------------------------------------ helpers


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat_line = f.read()
    except OSError:
        return False
    return stat_line[stat_line.rindex(b")") + 2:][:1] != b"Z"


def proc_ids(pid, key):
    """The four ids of the Uid: or Gid: line of /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError("no %s line for pid %d" % (key, pid))


def by_name(status):
    return {p["name"]: p for p in status["processes"]}


def instance_user():
    import pwd
    return pwd.getpwnam(RUN_AS) if RUN_AS else pwd.getpwuid(os.geteuid())


@pytest.fixture(scope="module")
def master_bin():
    """The programs, where the instance's user can run them (a copy when the
    build tree is closed to it, e.g. under /root)."""
    onehop_bin = onehop_bin_path()
    if not (onehop_bin / "onehop-master").is_file():
        pytest.fail("%s/onehop-master is missing: build it first" % onehop_bin, pytrace=False)
    r = subprocess.run(["test", "-x", str(onehop_bin / "onehop")], user=RUN_AS, timeout=10)
    if RUN_AS is None or r.returncode == 0:
        yield onehop_bin
        return
    copy = Path(tempfile.mkdtemp(prefix="onehop-bin-"))
    os.chmod(copy, 0o755)
    for name in os.listdir(onehop_bin):
        shutil.copy2(onehop_bin / name, copy / name)
        os.chmod(copy / name, 0o755)
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def new_instance(onehop, master_bin, fake=None, run_as=RUN_AS, **conf):
    """An instance; with fake, its daemon_dir holds the real daemons and the
    stand-in under that name (True: onehop-router; FAKE_DAEMON_MODE is set
    by the test)."""
    mta = onehop(conf=conf or None, run_as=run_as)
    mta.bin_dir = master_bin
    if fake:
        daemons = mta.path("daemons")
        daemons.mkdir()
        for name in ("onehop-master", "onehop-queue", "onehop-dnscache", "onehop-remote"):
            (daemons / name).symlink_to(master_bin / name)
        name = "onehop-router" if fake is True else fake
        shutil.copy(FAKE_DAEMON, daemons / name)
        os.chmod(daemons / name, 0o755)
        os.chmod(daemons, 0o755)
        mta.set_conf(daemon_dir=str(daemons))
    return mta


def master_pid(mta):
    return int(mta.path("run", "master.pid").read_text().split()[0])


def log_count(mta, pattern):
    import re
    rx = re.compile(pattern)
    return sum(1 for line in mta.log_lines() if rx.search(line))


# -------------------------------------------------------------- lifecycle


def test_start_status_stop(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    status = mta.status()
    assert status["running"] is True
    procs = by_name(status)
    assert list(procs) == ["master"] + list(DAEMONS), status
    user = instance_user()
    assert procs["master"]["pid"] == master_pid(mta)
    for name, p in procs.items():
        assert alive(p["pid"]), p
        assert p["uid"] == user.pw_uid and p["user"] == user.pw_name, p
        assert proc_ids(p["pid"], "Uid")[:3] == (user.pw_uid,) * 3, p
        assert p["restarts"] == 0 and p["state"] == "running", p
        assert 0 <= p["uptime"] < 60, p
    assert status["queue"]["total"] == 0 and status["queue"]["incoming"] == 0, status
    text = mta.cmd("status")
    assert text.rc == 0 and "dnscache" in text.out and str(procs["cleaner"]["pid"]) in text.out

    pids = [p["pid"] for p in procs.values()]
    r = mta.stop()
    assert r.rc == 0, r
    assert not [p for p in pids if alive(p)], "still running right after stop returned"
    assert not mta.path("run", "master.pid").exists()
    assert not mta.path("run", "master.sock").exists()
    assert log_count(mta, r"onehop/master\[\d+\]: stopped") == 1
    for name in DAEMONS:   # each heard STOP on its link and stopped by itself
        mta.wait_log(r"%s \(pid %d\) exited with status 0" % (name, procs[name]["pid"]),
                     timeout=5)

    stopped = mta.cmd("status", "--json")
    assert stopped.rc == 1 and "is stopped" in stopped.err, stopped
    view = json.loads(stopped.out)
    assert view["running"] is False and view["processes"] == [] and view["queue"]["total"] == 0
    plain = mta.cmd("status")
    assert plain.rc == 1 and "is stopped" in plain.err and "total:" in plain.out


def test_an_empty_smtp_listen_disables_the_smtp_server(onehop, master_bin):
    """SPEC 3: `smtp_listen =` empty disables the server: start succeeds and
    every other daemon runs, onehop-smtpd is not started."""
    mta = new_instance(onehop, master_bin, smtp_listen="")
    mta.start()
    procs = by_name(mta.status())
    assert "smtpd" not in procs, procs
    assert "router" in procs and "master" in procs, procs
    assert mta.stop().rc == 0


def test_a_second_start_is_refused(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    first = master_pid(mta)
    r = mta.cmd("start")
    assert r.rc == 1, r
    assert "already running (master pid %d)" % first in r.err, r
    assert master_pid(mta) == first and alive(first)
    assert by_name(mta.status())["master"]["pid"] == first


def test_a_stale_pid_file_is_replaced(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    run = mta.path("run")
    run.mkdir()
    (run / "master.pid").write_text("%d\n" % gone.pid)
    user = instance_user()
    for p in (run, run / "master.pid"):
        os.chown(p, user.pw_uid, user.pw_gid)
    mta.start()
    assert master_pid(mta) != gone.pid and alive(master_pid(mta))
    mta.wait_log(r"replaced the stale pid file of master pid %d" % gone.pid, timeout=5)


def test_reload_rereads_and_refuses_what_check_refuses(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    before = {n: p["pid"] for n, p in by_name(mta.status()).items()}
    mta.set_conf(dns_cache_size=1234)
    mta.write("routes", "example.test  [127.0.0.9]:2525\n")
    r = mta.cmd("reload")
    assert r.rc == 0, r
    mta.wait_log(r"onehop/dnscache\[\d+\]: reloaded: .*cache size 1234", timeout=10)
    reloads = log_count(mta, r"onehop/dnscache\[\d+\]: reloaded")

    mta.write("routes", "example.test  [127.0.0.9]:2525\nbroken.test\n")
    assert mta.cmd("check").rc == 1
    mta.set_conf(dns_cache_size=99)
    r = mta.cmd("reload")
    assert r.rc == 1, r
    assert "routes:2:" in r.err, r
    mta.wait_log(r"reload refused: 1 mistake", timeout=5)
    time.sleep(0.5)
    assert log_count(mta, r"onehop/dnscache\[\d+\]: reloaded") == reloads
    after = by_name(mta.status())
    assert {n: p["pid"] for n, p in after.items()} == before
    assert all(p["state"] == "running" and p["restarts"] == 0 for p in after.values()), after


def test_sighup_reloads(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    mta.set_conf(dns_cache_size=777)
    os.kill(master_pid(mta), signal.SIGHUP)
    mta.wait_log(r"onehop/dnscache\[\d+\]: reloaded: .*cache size 777", timeout=10)


def test_kill_minus_nine_of_each_daemon_is_restarted(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    for name in DAEMONS:
        before = by_name(mta.status())[name]
        old = before["pid"]
        os.kill(old, signal.SIGKILL)

        def restarted():
            p = by_name(mta.status())[name]
            return p if p["pid"] not in (0, old) and p["state"] == "running" else None
        p = wait_for(restarted, 10, "%s to be restarted" % name)
        # its channel peers are restarted with it (the router is one of each channel)
        assert p["restarts"] >= before["restarts"] + 1 and alive(p["pid"]) and not alive(old), p
        mta.wait_log(r"%s \(pid %d\) was killed by signal 9" % (name, old), timeout=5)
    wait_for(lambda: all(p["state"] == "running" for p in by_name(mta.status()).values()), 10,
             "every daemon running again")
    assert all(p["restarts"] >= 1 for n, p in by_name(mta.status()).items() if n != "master")


def test_a_daemon_that_keeps_exiting_is_not_restarted_forever(onehop, master_bin, monkeypatch):
    mta = new_instance(onehop, master_bin, fake=True)
    monkeypatch.setenv("FAKE_DAEMON_MODE", "crash-after-first")
    monkeypatch.setenv("FAKE_DAEMON_MARK", str(mta.path("fake.mark")))
    mta.start()
    router = by_name(mta.status())["router"]
    assert router["state"] == "running" and alive(router["pid"])
    os.kill(router["pid"], signal.SIGKILL)   # from now on every start exits at once
    mta.wait_log(r"onehop/master\[\d+\]: error: router exited 5 times within 60 s: crash loop",
                 timeout=20)
    router = by_name(mta.status())["router"]
    assert router["state"] == "crashloop" and router["pid"] == 0 and router["restarts"] == 4
    starts = log_count(mta, r"router started: pid")
    assert starts == 5
    time.sleep(1.5)
    assert log_count(mta, r"router started: pid") == starts, "restarted after the crash loop"
    # the cleaner, the router's channel peer, was restarted with each exit
    wait_for(lambda: all(by_name(mta.status())[n]["state"] == "running" for n in BESIDE_FAKE), 10,
             "the other daemons to run")
    assert "crashloop" in mta.cmd("status").out


def test_kill_minus_nine_of_the_master_leaves_no_orphan(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.start()
    procs = by_name(mta.status())
    daemons = [procs[n]["pid"] for n in DAEMONS]
    os.kill(procs["master"]["pid"], signal.SIGKILL)
    wait_for(lambda: not [p for p in daemons if alive(p)], 5,
             "every daemon to exit after its master was killed")
    assert mta.cmd("status").rc == 1
    mta.start()   # the stale pid file is taken over
    mta.wait_log(r"replaced the stale pid file of master pid %d" % procs["master"]["pid"],
                 timeout=5)


def test_start_fails_with_the_daemons_own_error(onehop, master_bin, monkeypatch):
    mta = new_instance(onehop, master_bin, fake=True)
    text = "cannot listen on 127.0.0.1:25: Address already in use (fake)"
    monkeypatch.setenv("FAKE_DAEMON_MODE", "fail")
    monkeypatch.setenv("FAKE_DAEMON_TEXT", text)
    r = mta.cmd("start")
    assert r.rc == 1, r
    assert text in r.err, r
    started = [int(m) for m in
               (l.text.split("pid ")[1].split(",")[0] for l in mta.log("master")
                if " started: pid " in l.text)]
    assert len(started) == len(BESIDE_FAKE) + 1, mta.log_tail()  # and the fake router
    wait_for(lambda: not [p for p in started if alive(p)], 10, "every daemon to be stopped")
    assert not mta.path("run", "master.pid").exists()
    assert mta.cmd("status").rc == 1


def test_start_fails_with_a_real_daemons_own_error(onehop, master_bin):
    """The dnscache's own log_die() text (a live dnscache holds its socket)
    reaches `onehop start` through the master link."""
    mta = new_instance(onehop, master_bin)
    who = {} if RUN_AS is None else dict(user=RUN_AS, group=instance_user().pw_gid,
                                         extra_groups=[])
    squatter = subprocess.Popen([str(master_bin / "onehop-dnscache"), "-C", str(mta.dir)],
                                env=mta.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **who)
    try:
        wait_for(lambda: mta.path("run", "dnscache.sock").exists(), 10, "the first dnscache")
        r = mta.cmd("start")
        assert r.rc == 1, r
        assert "another onehop-dnscache is serving %s" % mta.path("run", "dnscache.sock") in r.err
        assert mta.cmd("status").rc == 1
        assert squatter.poll() is None, "the running dnscache was displaced"
    finally:
        squatter.terminate()
        squatter.wait(timeout=10)


def test_start_refuses_a_configuration_check_refuses(onehop, master_bin):
    mta = new_instance(onehop, master_bin)
    mta.write("routes", "broken.test\n")
    r = mta.cmd("start")
    assert r.rc == 1, r
    assert "routes:1:" in r.err, r
    assert not mta.path("run", "master.pid").exists()


def test_smtp_listen_is_bound_by_the_master_and_passed(onehop, master_bin, monkeypatch):
    """The smtpd row (a stand-in onehop-smtpd) gets smtp_listen's sockets,
    bound and listening, named in ONEHOP_LISTEN_FDS."""
    mta = new_instance(onehop, master_bin, fake="onehop-smtpd")
    host, port = mta.smtp_address
    monkeypatch.setenv("FAKE_DAEMON_MODE", "listen-report")
    monkeypatch.setenv("FAKE_DAEMON_MARK", str(mta.path("listeners")))
    mta.start()
    assert mta.path("listeners").read_text() == "%s:%d listening\n" % (host, port)
    with socket.create_connection((host, port), timeout=5):
        pass
    smtpd = by_name(mta.status())["smtpd"]
    assert smtpd["state"] == "running"


def test_a_port_in_use_fails_start(onehop, master_bin, monkeypatch):
    mta = new_instance(onehop, master_bin, fake="onehop-smtpd")
    host, port = mta.smtp_address
    monkeypatch.setenv("FAKE_DAEMON_MODE", "ready-wait")
    with socket.socket() as taken:
        taken.bind((host, port))
        taken.listen(1)
        r = mta.cmd("start")
    assert r.rc == 1, r
    assert "cannot listen on %s:%d: Address already in use" % (host, port) in r.err, r
    assert mta.cmd("status").rc == 1


def test_stop_kills_what_does_not_stop_within_the_bound(onehop, master_bin, monkeypatch):
    mta = new_instance(onehop, master_bin, fake=True)
    monkeypatch.setenv("FAKE_DAEMON_MODE", "ready-deaf")
    monkeypatch.setenv("ONEHOP_MASTER_STOP_TIMEOUT", "2")
    mta.start()
    deaf = by_name(mta.status())["router"]["pid"]
    t0 = time.monotonic()
    r = mta.stop()
    elapsed = time.monotonic() - t0
    assert r.rc == 0, r
    assert "killed router (pid %d) after 2 s" % deaf in r.out, r
    assert 1.5 <= elapsed < 15, elapsed
    assert not alive(deaf)
    mta.wait_log(r"router \(pid %d\) did not stop within 2 s: killed" % deaf, timeout=5)


# ------------------------------------------------------------------- root


def test_as_root_each_daemon_runs_under_its_account(onehop, master_bin, accounts):
    mta = new_instance(onehop, master_bin, run_as=None, user=accounts.base)
    os.chmod(mta.dir, 0o755)   # the accounts traverse DIR to its files
    mta.start()
    procs = by_name(mta.status())
    assert procs["master"]["uid"] == 0 and proc_ids(procs["master"]["pid"], "Uid")[:3] == (0, 0, 0)
    for name, role in (("cleaner", "queue"), ("dnscache", "dns")):
        pw = accounts[role]
        p = procs[name]
        assert p["user"] == pw.pw_name and p["uid"] == pw.pw_uid, p
        assert proc_ids(p["pid"], "Uid") == (pw.pw_uid,) * 4, p
        assert proc_ids(p["pid"], "Gid") == (pw.pw_gid,) * 4, p
        with open("/proc/%d/status" % p["pid"]) as f:
            groups = [l.split()[1:] for l in f if l.startswith("Groups:")][0]
        assert "0" not in groups, groups
    queue = os.stat(mta.path("queue"))
    assert (queue.st_uid, queue.st_gid) == (accounts["queue"].pw_uid,
                                            accounts["router"].pw_gid)
    assert stat.S_IMODE(queue.st_mode) == 0o2755
    state = os.stat(mta.path("queue", "state"))
    assert state.st_uid == accounts["router"].pw_uid and stat.S_IMODE(state.st_mode) == 0o700
    run = os.stat(mta.path("run"))
    assert (run.st_uid, run.st_gid, stat.S_IMODE(run.st_mode)) == \
        (0, accounts["dns"].pw_gid, 0o1775)
    # the accounts cannot open the root-owned log file: they log to it through
    # the standard error the master gave them
    mta.wait_log(r"onehop/dnscache\[%d\]: started: socket" % procs["dnscache"]["pid"], timeout=5)
    pids = [p["pid"] for p in procs.values()]
    assert mta.stop().rc == 0
    assert not [p for p in pids if alive(p)]


def test_control_socket_refuses_another_uid(onehop, master_bin, accounts):
    """Peer credentials, not only the socket's mode: with the socket opened
    to everyone, a third account is still turned away."""
    mta = new_instance(onehop, master_bin)
    os.chmod(mta.dir, 0o755)
    mta.start()
    os.chmod(mta.path("run"), 0o755)
    os.chmod(mta.path("run", "master.sock"), 0o666)
    other = accounts["remote"]
    r = subprocess.run([str(master_bin / "onehop"), "-C", str(mta.dir), "status"],
                       user=other.pw_uid, group=other.pw_gid, extra_groups=[],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 1, r
    assert b"answer" in r.stderr, r   # turned away: the connection closes at once
    mta.wait_log(r"onehop/master\[\d+\]: warning: .*refused a connection from uid %d" %
                 other.pw_uid, timeout=5)
    assert mta.status()["running"] is True   # its own user still gets in


def test_as_root_a_missing_account_fails_start_naming_it(onehop, master_bin, accounts):
    """accounts: root (or a failure under CI=true); the ohtest ones exist, ohmissing's not."""
    mta = new_instance(onehop, master_bin, run_as=None, user="ohmissing")
    r = mta.cmd("start")
    assert r.rc == 1, r
    assert "account ohmissing-queue does not exist; make install creates the accounts" in r.err, r
    assert mta.cmd("status").rc == 1


# ------------------------------------------------- stop during deliveries
# `onehop stop` while a delivery runs: the agents finish it and answer the
# router, which journals the outcome before it stops, so the next start does
# not deliver it again (exactly once, not at least once).


def test_stop_during_a_local_command_delivery_delivers_it_once(onehop, master_bin):
    from test_router import send, wait_queue_empty, wait_until
    from test_router_local import local_instance
    mta = local_instance(onehop, master_bin)
    out = mta.path("out")
    out.mkdir()
    if mta.run_as:
        os.chown(out, mta.run_as.pw_uid, mta.run_as.pw_gid)
    mta.write("aliases", "slow: \"|echo started >> %s/starts; sleep 3; cat >> %s/runs\"\n"
              % (out, out))
    mta.start()
    send(mta, ["slow@mta.onehop.test"], "tok-stop-local")
    wait_until(lambda: (out / "starts").exists(), 20, "the command started", mta)
    t0 = time.monotonic()
    r = mta.stop()
    assert r.rc == 0, r
    assert time.monotonic() - t0 < 30
    assert (out / "runs").read_bytes().count(b"body of tok-stop-local") == 1
    mta.start()
    wait_queue_empty(mta, timeout=20)
    time.sleep(1)
    starts = (out / "starts").read_text().count("started")
    runs = (out / "runs").read_bytes().count(b"body of tok-stop-local")
    print("stop during a |command delivery: %d runs, %d delivered" % (starts, runs))
    assert (starts, runs) == (1, 1), mta.log_tail()
    assert log_count(mta, r"to=<slow@mta\.onehop\.test>.*status=sent") == 1


def test_stop_during_a_remote_delivery_delivers_it_once(onehop, master_bin, smtp_peers):
    from fixtures.smtppeer import Delay
    from test_router import instance, routes_to, send, wait_queue_empty, wait_until
    peer = smtp_peers.start("mx.b.test", data=Delay(3, None))
    mta = instance(onehop, master_bin, routes=routes_to(smtp_peers.port, b_test=peer))
    mta.start()
    send(mta, ["bob@b.test"], "tok-stop-remote")
    wait_until(lambda: any(cmd == "DATA" for _, cmd, _ in peer.commands), 20, "DATA at the peer",
               mta)
    r = mta.stop()
    assert r.rc == 0, r
    assert len(peer.received()) == 1
    peer.script(data=None)
    mta.start()
    wait_queue_empty(mta, timeout=20)
    time.sleep(1)
    print("stop during a remote delivery: the peer accepted %d" % len(peer.received()))
    assert len(peer.received()) == 1, mta.log_tail()


# ------------------------------------------- collateral exits of a router kill
# The router is one end of the cleaner's, the remote's and the local's
# channels: when it dies they are restarted with it (or exit on its end of
# file, whatever their status). Those exits are the router's, not theirs: they
# count no restart and no crash towards their crash-loop limit.

ROUTER_PEERS = tuple(n for n in ("cleaner", "remote", "local") if n in DAEMONS)
CORE = ("router",) + ROUTER_PEERS


@pytest.mark.parametrize("victim", ["router", "local"])
def test_kill_minus_nine_in_a_row_counts_only_the_victims_restarts(onehop, master_bin, victim):
    """The router, or local: then the router is restarted for local's sake,
    and the cleaner and the remote, which see the router close its channels
    (a sanitizer build's router takes a while to exit after that), for the
    router's: only the victim's restarts are counted."""
    from test_router import send
    if victim not in DAEMONS:
        pytest.skip("%s is not built" % victim)
    mta = new_instance(onehop, master_bin)
    mta.start()
    before = by_name(mta.status())
    kills = 4   # one short of the victim's own crash loop (5 exits within 60 s)
    old = before[victim]["pid"]
    for k in range(kills):
        send(mta, ["nobody@nowhere.test"], "tok-kill-%d" % k)   # work under way in the channels
        os.kill(old, signal.SIGKILL)
        mta.wait_log(r"%s \(pid %d\) was killed by signal 9" % (victim, old), timeout=10)
        new = wait_for(lambda: (lambda p: p["pid"] if p["pid"] not in (0, old) else None)(
            by_name(mta.status())[victim]), 10, "%s to be started again" % victim)
        old = new
    wait_for(lambda: all(p["state"] == "running" for p in by_name(mta.status()).values()), 30,
             "every daemon running again")
    time.sleep(1)   # a late collateral exit would show now
    after = by_name(mta.status())
    print("after %d kills of %s: restarts %s" %
          (kills, victim, {n: after[n]["restarts"] for n in CORE}))
    assert after[victim]["restarts"] == before[victim]["restarts"] + kills, mta.log_tail(200)
    for name in CORE:
        assert after[name]["state"] == "running", after[name]
        if name == victim:
            continue
        assert after[name]["restarts"] == before[name]["restarts"], (name, mta.log_tail())
        # an exit seen before its cause's was taken back once the cause was seen
        assert (log_count(mta, r"master\[\d+\]: %s will be restarted in" % name) ==
                log_count(mta, r"master\[\d+\]: %s: its last exit followed" % name)), \
            mta.log_tail()
    assert log_count(mta, r"crash loop") == 0, mta.log_tail()
    assert all(alive(after[n]["pid"]) for n in CORE)


def test_stop_during_a_burst_of_local_deliveries_repeats_none(onehop, master_bin):
    """`onehop stop` while local runs a burst of |command deliveries (10 at
    once, local_concurrency): every result local wrote before it closed its
    link is journalled by the router before it stops, so the next start
    delivers no message a second time."""
    from test_router import send, wait_queue_empty, wait_until
    from test_router_local import local_instance
    mta = local_instance(onehop, master_bin)
    out = mta.path("out")
    out.mkdir()
    if mta.run_as:
        os.chown(out, mta.run_as.pw_uid, mta.run_as.pw_gid)
    mta.write("aliases", "slow: \"|sleep 1; cat >> %s/runs\"\n" % out)
    mta.start()
    count = 40
    for k in range(count):
        send(mta, ["slow@mta.onehop.test"], "tok-burst-%d" % k)
    wait_until(lambda: (out / "runs").exists(), 30, "the first delivery", mta)
    r = mta.stop()
    assert r.rc == 0, r
    at_stop = (out / "runs").read_bytes().count(b"body of tok-burst-")
    mta.start()
    wait_queue_empty(mta, timeout=60)
    time.sleep(1)
    data = (out / "runs").read_bytes()
    copies = {k: data.count(b"body of tok-burst-%d\n" % k) for k in range(count)}
    print("stop during %d |command deliveries: %d done by the stop, %d copies in all" %
          (count, at_stop, sum(copies.values())))
    assert 0 < at_stop < count, "no delivery was under way at the stop"
    assert min(copies.values()) == 1, mta.log_tail()
    assert max(copies.values()) == 1, ({k: n for k, n in copies.items() if n > 1}, mta.log_tail())
