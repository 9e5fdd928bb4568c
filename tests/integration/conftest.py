"""pytest fixtures of onehop's black-box integration suite (run from this
directory: ONEHOP_BIN=<dir> /usr/bin/python3 -m pytest -q).

dns          a fresh DNSServer (fixtures/dnsserver.py) on 127.0.0.1:<free port>, UDP and TCP
smtp_peers   SMTPPeers (fixtures/smtppeer.py): .start(name, **script) -> a scripted peer on a
             new 127.0.0.N at smtp_peers.port; .refusing() -> an address that refuses
sinks        the same object as smtp_peers
onehop_bin   Path of the programs under test ($ONEHOP_BIN, default <repo>/bin)
onehop       instance factory (fixtures/instance.py): onehop(conf={...}, routes=..., sites=...,
             aliases=...) -> Instance wired to dns (dns_servers) and smtp_peers (remote_port);
             each is stopped (if started) and its processes killed at teardown
accounts     (root) the SPEC 7 accounts under the test base name `ohtest` (`user = ohtest`;
             $ONEHOP_TEST_ACCOUNTS names another, so that two suites can run at once):
             accounts.base, accounts["queue"] -> pwd entry, ...; made with useradd --system
             and removed at teardown. Without root or useradd the test is skipped, and
             under CI=true it fails instead

Sanitizers: when $ONEHOP_SAN_REPORTS names a directory (where the programs
write ASan/UBSan reports through ASAN_OPTIONS=log_path=...), a test after
which a new report appears fails, and the session fails if any report
exists at its end.
"""

import grp
import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from fixtures.dnsserver import DNSServer
from fixtures.instance import Instance
from fixtures.paths import onehop_bin as onehop_bin_path
from fixtures.smtppeer import SMTPPeers


@pytest.fixture
def dns():
    server = DNSServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_peers():
    peers = SMTPPeers()
    try:
        yield peers
    finally:
        peers.stop()


@pytest.fixture
def sinks(smtp_peers):
    return smtp_peers


@pytest.fixture
def onehop_bin():
    return onehop_bin_path()


@pytest.fixture
def qbin():
    """bin/onehop-queue, driven directly by the queue tests."""
    path = onehop_bin_path() / "onehop-queue"
    if not path.is_file():
        pytest.fail("%s is missing: build it first" % path, pytrace=False)
    return path


@pytest.fixture
def conf(tmp_path):
    """A minimal configuration directory for onehop-queue (injproto.make_config)."""
    import injproto
    return injproto.make_config(tmp_path / "c")


@pytest.fixture
def onehop(request, dns, smtp_peers, onehop_bin):
    made = []
    request.node.onehop_instances = made

    def factory(conf=None, routes="", sites="", aliases="", **kwargs):
        if not (onehop_bin / "onehop").is_file():
            pytest.fail("%s/onehop is missing: build it with `make` or point ONEHOP_BIN at "
                        "the directory of the onehop programs" % onehop_bin, pytrace=False)
        instance = Instance(conf, routes, sites, aliases, dns=dns, peers=smtp_peers,
                            bin_dir=onehop_bin, **kwargs)
        made.append(instance)
        return instance

    yield factory
    for instance in reversed(made):
        instance.close()
        if instance.leftovers:
            warnings.warn("%r: killed processes left running after stop: %s" %
                          (instance, instance.leftovers))


ACCOUNT_ROLES = ("smtpd", "queue", "router", "dns", "remote")


class Accounts(dict):
    """role -> pwd entry of BASE-role; .base is BASE (onehop.conf's `user`)."""

    def __init__(self, base):
        super().__init__((role, pwd.getpwnam("%s-%s" % (base, role))) for role in ACCOUNT_ROLES)
        self.base = base


def _drop_accounts(base):
    for role in ACCOUNT_ROLES:
        subprocess.run(["userdel", "%s-%s" % (base, role)], capture_output=True, timeout=60)
    try:
        grp.getgrnam(base)
        subprocess.run(["groupdel", base], capture_output=True, timeout=60)
    except KeyError:
        pass


@pytest.fixture
def accounts():
    base = os.environ.get("ONEHOP_TEST_ACCOUNTS", "ohtest")
    missing = [t for t in ("useradd", "userdel", "groupdel") if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        why = "needs root and %s" % ", ".join(missing or ["useradd"])
        if os.environ.get("CI") == "true":
            pytest.fail(why + " (CI=true: root tests must run)", pytrace=False)
        pytest.skip(why)
    _drop_accounts(base)  # leftovers of a run that was killed
    try:
        for role in ACCOUNT_ROLES:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                            "%s-%s" % (base, role)], check=True, capture_output=True,
                           timeout=60)
        yield Accounts(base)
    finally:
        _drop_accounts(base)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the log tail of every instance of the test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for instance in getattr(item, "onehop_instances", []):
            report.sections.append(("onehop log %s" % instance.dir,
                                    instance.log_tail(60) or "(empty)"))


# ------------------------------------------------------------------ sanitizers


def _san_dir():
    path = os.environ.get("ONEHOP_SAN_REPORTS")
    return Path(path) if path else None


def _san_reports():
    directory = _san_dir()
    if directory is None or not directory.is_dir():
        return set()
    return {p for p in directory.rglob("*") if p.is_file()}


def _describe(reports, lines=30):
    text = []
    for path in sorted(reports):
        try:
            head = path.read_text(errors="replace").splitlines()[:lines]
        except OSError as e:
            head = ["(unreadable: %s)" % e]
        text.append("== %s\n%s" % (path, "\n".join(head)))
    return "\n".join(text)


@pytest.fixture(autouse=True)
def _sanitizer_reports_fail_the_test():
    if _san_dir() is None:
        yield
        return
    before = _san_reports()
    yield
    new = _san_reports() - before
    if new:
        pytest.fail("sanitizer report(s) written during this test:\n" + _describe(new),
                    pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    reports = _san_reports()
    if reports:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "sanitizer reports in %s fail the session:\n%s" % (_san_dir(),
                                                                     _describe(reports, 10))
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
