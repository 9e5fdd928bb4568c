"""onehop-dnscache as a process (issue 4.1, 4.4, 4.5): its socket and who may
use it (peer credentials, issue 9.4), `onehop dns` when it is not running,
requests in flight when it stops or dies, flush and dump, serve-stale (RFC 8767), reload, hostile clients.
"""

import os
import pwd
import signal
import stat
import subprocess
import sys
import time

import pytest

from fixtures.dnscache import ERROR, LOOKUP, Client, _str, _u32, record
from fixtures.dnscache import dnscache  # noqa: F401 (fixture)


def test_not_running_is_said_clearly(onehop):
    mta = onehop()
    r = mta.cmd("dns", "MX", "b.test")
    assert r.rc == 1
    assert "dnscache is not running" in r.err
    for args in (["--dump"], ["--flush"]):
        r = mta.cmd("dns", *args)
        assert r.rc == 1 and "dnscache is not running" in r.err


# A client run as another uid (subprocess user=): one A lookup, then what
# came back: "answer", "closed" (EOF or reset before any byte) or "denied".
_AS_UID_CLIENT = r"""
import socket, struct, sys
name = b"h.test"
body = (b"\x01" + struct.pack(">I", 7) + b"\x01" + struct.pack(">I", 1) +
        b"\x03" + struct.pack(">I", len(name)) + name)
rec = struct.pack(">IHH", 8 + len(body), 1, 3) + body
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied"); sys.exit(0)
try:
    s.sendall(rec)
    got = s.recv(4096)
except (ConnectionResetError, BrokenPipeError):
    got = b""
print("answer" if got else "closed")
"""


def _need_root(why):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("needs root: %s (CI=true: root tests must run)" % why, pytrace=False)
        pytest.skip("needs root: %s" % why)


def _ask_as(cache, uid):
    """Run the one-lookup client as uid against the cache's socket."""
    top = cache.socket_path.parent
    while top.parent != top and top.parent.name.startswith("onehop-it-"):
        top = top.parent  # the instance's own tree, made for this test
    assert top.name.startswith("onehop-it-") and top in cache.socket_path.parents
    for d in [top, *[p for p in cache.socket_path.parents if top in p.parents]]:
        os.chmod(d, os.stat(d).st_mode | 0o005)  # let uid reach the socket
    gid = pwd.getpwuid(uid).pw_gid
    r = subprocess.run([sys.executable, "-c", _AS_UID_CLIENT, str(cache.socket_path)],
                       user=uid, group=gid, extra_groups=[], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def test_socket_mode_leaves_the_choice_to_peer_credentials(dnscache):
    cache = dnscache()
    mode = stat.S_IMODE(os.stat(cache.socket_path).st_mode)
    assert mode == 0o666  # who may connect is decided by SO_PEERCRED (next tests)


def test_socket_refuses_nobody(dns, dnscache):
    _need_root("connects as nobody")
    dns.a("h.test", "127.0.0.5")
    cache = dnscache()
    nobody = pwd.getpwnam("nobody").pw_uid
    assert _ask_as(cache, nobody) == "closed"
    refused = [line.text for line in cache.mta.log(service="dnscache")
               if "refused a connection from uid %d " % nobody in line.text]
    assert len(refused) == 1, cache.mta.log(service="dnscache")
    assert cache.answer("A", "h.test")["addresses"] == ["127.0.0.5"]  # root still served


def test_socket_admits_router_remote_and_smtpd_accounts_only(dns, dnscache, accounts):
    base = getattr(accounts, "base", None) or accounts.user
    uid = {role: pwd.getpwnam("%s-%s" % (base, role)).pw_uid
           for role in ("remote", "router", "smtpd", "queue")}
    dns.a("h.test", "127.0.0.5")
    cache = dnscache({"user": base})
    assert _ask_as(cache, uid["remote"]) == "answer"
    assert _ask_as(cache, uid["router"]) == "answer"
    assert _ask_as(cache, uid["smtpd"]) == "answer"  # client names (RDNS)
    queue = uid["queue"]
    assert _ask_as(cache, queue) == "closed"
    log = [line.text for line in cache.mta.log(service="dnscache")]
    assert sum("refused a connection from uid %d " % queue in t for t in log) == 1, log


def test_logs_as_onehop_dnscache_with_its_pid(dnscache):
    cache = dnscache()
    lines = cache.mta.log(service="dnscache")
    assert lines and lines[0].pid == cache.proc.pid
    assert "started" in lines[0].text


def test_a_second_daemon_does_not_steal_the_socket(dnscache):
    cache = dnscache()
    second = cache.mta.run("onehop-dnscache", timeout=10)
    assert second.rc == 1
    assert cache.mta.log(service="dnscache")[-1].text.startswith(
        "fatal: another onehop-dnscache is serving")
    assert cache.accepts() and cache.alive()


def test_sigterm_stops_cleanly_and_removes_the_socket(dnscache):
    cache = dnscache()
    assert cache.stop(signal.SIGTERM) == 0
    assert not cache.socket_path.exists()


def _clients_in_flight(cache, n, qtype="MX", name="slow.test"):
    return [subprocess.Popen([str(cache.mta.program("onehop")), "-C", str(cache.mta.dir),
                              "dns", "--json", qtype, name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=cache.mta.env()) for _ in range(n)]


def test_restart_with_requests_in_flight_gives_temporary_failures(dns, dnscache):
    dns.mx("slow.test", [(10, "mx.slow.test")])
    dns.mode("slow.test", "normal", delay=3.0)
    cache = dnscache({"dns_timeout": "10s"})
    clients = _clients_in_flight(cache, 5)
    assert dns.wait_queries(1, "slow.test", "MX", timeout=5)
    time.sleep(0.3)  # every client has sent its request
    started = time.monotonic()
    cache.stop(signal.SIGTERM)
    cache.start()
    for p in clients:
        out, err = p.communicate(timeout=10)
        assert p.returncode == 1
        assert b"temporary failure" in err or b"closed the connection" in err
    assert time.monotonic() - started < 8  # not a hang until the upstream answers
    dns.mode("slow.test", "normal")
    assert cache.answer("MX", "slow.test")["status"] == "ok"


def test_daemon_killed_with_requests_in_flight(dns, dnscache):
    dns.mx("slow.test", [(10, "mx.slow.test")])
    dns.mode("slow.test", "normal", delay=3.0)
    cache = dnscache({"dns_timeout": "10s"})
    with Client(cache.socket_path, timeout=10) as c:
        for k in range(1, 4):
            c.lookup(k, "ROUTE", "slow.test")
        assert dns.wait_queries(1, "slow.test", "MX", timeout=5)
        cache.stop(signal.SIGKILL)
        assert c.recv_record() is None  # end of file at once, no answer invented
    cache.start()  # the stale socket file does not stop a new daemon
    dns.mode("slow.test", "normal")
    assert cache.answer("ROUTE", "slow.test")["hosts"][0]["host"] == "mx.slow.test"


def test_flush_one_name_and_everything(dns, dnscache):
    dns.mx("b.test", [(10, "mx.b.test")])
    dns.a("mx.b.test", "127.0.0.5")
    cache = dnscache()
    cache.answer("ROUTE", "b.test")
    assert cache.counters()["cache_entries"] == 3  # MX, A, AAAA
    assert cache.flush("mx.b.test") == 2
    entries = cache.dump()["entries"]
    assert [(e["type"], e["name"]) for e in entries] == [("MX", "b.test")]
    assert cache.flush() == 1
    assert cache.dump()["entries"] == []
    assert cache.answer("MX", "b.test")["from_cache"] is False


def test_dump_shows_entries_with_remaining_ttl_and_counters(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=100)
    cache = dnscache()
    cache.answer("A", "h.test")
    cache.answer("A", "h.test")
    cache.ask("MX", "gone.test")
    dump = cache.dump()
    by_name = {(e["type"], e["name"]): e for e in dump["entries"]}
    entry = by_name[("A", "h.test")]
    assert entry["addresses"] == ["127.0.0.5"] and 98 <= entry["ttl"] <= 100
    assert entry["from_cache"] is True
    assert by_name[("MX", "gone.test")]["status"] == "nxdomain"
    c = dump["counters"]
    assert c["requests"] == 3 and c["requests_a"] == 2 and c["requests_mx"] == 1
    assert c["hits"] == 1 and c["misses"] == 2 and c["upstream_queries"] == 2
    assert c["answers_ok"] == 1 and c["answers_nxdomain"] == 1
    text = cache.mta.cmd("dns", "--dump")
    assert text.rc == 0 and "hits" in text.out and "h.test A: ok" in text.out


def test_human_output_says_ttl_and_cache(dns, dnscache):
    dns.mx("b.test", [(10, "mx.b.test")], ttl=300)
    cache = dnscache()
    first = cache.mta.cmd("dns", "MX", "b.test")
    second = cache.mta.cmd("dns", "mx", "B.TEST.")
    assert first.rc == 0 and "from upstream" in first.out and "ttl 300" in first.out
    assert "10 mx.b.test" in first.out
    assert second.rc == 0 and "from cache" in second.out


def test_serve_stale_after_upstream_failure(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=1)
    cache = dnscache({"dns_serve_stale": "yes", "dns_serve_stale_max": "1h"})
    assert cache.answer("A", "h.test")["status"] == "ok"
    time.sleep(1.2)
    dns.mode("h.test", "servfail")
    stale = cache.answer("A", "h.test")
    assert stale["status"] == "ok" and stale["stale"] is True
    assert stale["addresses"] == ["127.0.0.5"] and stale["ttl"] == 30
    assert cache.counters()["stale_served"] == 1
    dns.mode("h.test", "normal")
    fresh = cache.answer("A", "h.test")
    assert fresh["stale"] is False and fresh["from_cache"] is False


def test_no_stale_answer_by_default(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=1)
    cache = dnscache()
    cache.answer("A", "h.test")
    time.sleep(1.2)
    dns.mode("h.test", "servfail")
    rc, answer, _ = cache.ask("A", "h.test")
    assert rc == 1 and answer["status"] == "tempfail"


def test_stale_answer_only_within_serve_stale_max(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=1)
    cache = dnscache({"dns_serve_stale": "yes", "dns_serve_stale_max": "1s"})
    cache.answer("A", "h.test")
    time.sleep(2.3)
    dns.mode("h.test", "servfail")
    assert cache.answer("A", "h.test")["status"] == "tempfail"


def test_reload_applies_new_servers_and_limits(dns, dnscache):
    other = type(dns)().start()
    try:
        dns.a("h.test", "127.0.0.5", ttl=300)
        other.a("h.test", "127.0.0.6", ttl=300)
        cache = dnscache()
        assert cache.answer("A", "h.test")["addresses"] == ["127.0.0.5"]
        cache.mta.set_conf(dns_servers=other.address, dns_max_ttl="1s")
        cache.proc.send_signal(signal.SIGHUP)
        cache.mta.wait_log(r"reloaded", timeout=5)
        cache.flush()
        answer = cache.answer("A", "h.test")
        assert answer["addresses"] == ["127.0.0.6"] and answer["ttl"] == 1
    finally:
        other.stop()


def test_garbage_from_one_client_does_not_hurt_others(dns, dnscache):
    dns.a("h.test", "127.0.0.5")
    cache = dnscache()
    with Client(cache.socket_path) as good, Client(cache.socket_path) as bad:
        bad.send(b"\x00\x00\x00\x05junk and more")
        got = bad.recv_record()
        assert got is not None and got[0] == ERROR
        assert bad.recv_record() is None
        good.lookup(7, "A", "h.test")
        assert good.answers(1)[7]["hosts"][0]["addresses"] == ["127.0.0.5"]
    with Client(cache.socket_path) as bad:
        bad.send(record(99))  # unknown request type
        assert bad.recv_record()[0] == ERROR
    assert cache.alive() and cache.counters()["protocol_errors"] == 2


def test_unknown_query_type_in_a_request_is_invalid(dnscache):
    cache = dnscache()
    with Client(cache.socket_path) as c:
        c.send(record(LOOKUP, _u32(1), _u32(16), _str("h.test")))  # TXT
        answer = c.answers(1)[1]
    assert answer["status"] == "invalid"
