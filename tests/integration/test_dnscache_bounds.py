"""The dnscache's bounds (issue 9 item 4): what it serves stale, the TTL it
reports for a host it could not ask, how long a CNAME chain may be when it
is chased query by query, and how long one name's lookup may take
(dns_timeout per try, dns_lookup_timeout in all), against the scripted DNS
server of fixtures/dnsserver.py.
"""

import signal
import time

import pytest

from fixtures.dnscache import dnscache  # noqa: F401 (fixture)
from fixtures.dnsserver import DNSServer

# ------------------------------------------------------------- serve-stale


@pytest.mark.parametrize("qtype,negative", [("A", "nxdomain"), ("AAAA", "nodata")])
def test_a_negative_answer_is_never_served_stale(dns, dnscache, qtype, negative):
    # RFC 8767 is for keeping mail moving in an outage: a stale NXDOMAIN or
    # NODATA would bounce it instead, so after the negative answer's
    # dns_negative_max_ttl the outage is a temporary failure.
    dns.a("h.test", "127.0.0.5")  # h.test exists without AAAA: NODATA for AAAA
    name = "gone.test" if negative == "nxdomain" else "h.test"
    cache = dnscache({"dns_serve_stale": "yes", "dns_serve_stale_max": "1h",
                      "dns_negative_max_ttl": "1s"})
    first = cache.answer(qtype, name)
    assert first["status"] == negative and first["ttl"] == 1
    time.sleep(1.3)
    dns.mode(name, "servfail")
    rc, answer, _ = cache.ask(qtype, name)
    assert rc == 1 and answer["status"] == "tempfail", answer
    assert answer["stale"] is False and "SERVFAIL" in answer["reason"]
    assert cache.counters()["stale_served"] == 0
    # (a positive answer still is: test_dnscache_daemon.py test_serve_stale_after_upstream_failure)


# --------------------------------------------------------------- ROUTE TTL


def test_route_host_with_an_unusable_name_has_ttl_0(dns, dnscache):
    dns.mx("b.test", [(10, "bad!name.test"), (20, "mx.b.test")], ttl=300)
    dns.a("mx.b.test", "127.0.0.5", ttl=300)
    answer = dnscache().answer("ROUTE", "b.test")
    bad, good = answer["hosts"]
    assert bad["host"] == "bad\\033name.test"  # RFC 1035 5.1: "!" escaped as \DDD
    assert bad["status"] == "tempfail"
    assert "unusable MX host name" in bad["reason"]
    assert bad["ttl"] == 0 and bad["addresses"] == []
    assert good["status"] == "ok" and good["ttl"] == 30  # AAAA: NODATA, negative TTL 30
    assert answer["status"] == "ok" and answer["ttl"] == 0  # this delivery only


# ------------------------------------------------------- CNAME, link by link


def _chain(server, links):
    """c0.test -> c1.test -> ... -> cN.test (N links), cN.test A 127.0.0.9."""
    for i in range(links):
        server.cname(f"c{i}.test", f"c{i + 1}.test", ttl=300 - i)
    server.a(f"c{links}.test", "127.0.0.9", ttl=600)


def test_cname_chain_of_8_links_chased_query_by_query(dnscache):
    with DNSServer(chase=False) as server:  # one link per answer
        _chain(server, 8)
        cache = dnscache({"dns_servers": server.address})
        answer = cache.answer("A", "c0.test")
        assert answer["status"] == "ok" and answer["addresses"] == ["127.0.0.9"]
        assert answer["canonical_name"] == "c8.test"
        assert answer["ttl"] == 293  # the smallest TTL along the chain (c7 -> c8)
        assert [server.count(f"c{i}.test", "A") for i in range(9)] == [1] * 9
        assert cache.counters()["cname_followups"] == 8


def test_cname_chain_of_9_links_chased_query_by_query_is_too_long(dnscache):
    with DNSServer(chase=False) as server:
        _chain(server, 9)
        cache = dnscache({"dns_servers": server.address})
        rc, answer, _ = cache.ask("A", "c0.test")
        assert rc == 1 and answer["status"] == "tempfail"
        assert answer["reason"] == "CNAME chain longer than 8 links"
        assert server.count("c9.test", "A") == 0  # the 9th link's target is never asked
        assert cache.counters()["failures_cname"] == 1


def test_cname_chain_of_8_links_in_one_answer(dns, dnscache):
    _chain(dns, 8)  # this server follows the chain itself, 8 links in one answer
    answer = dnscache().answer("A", "c0.test")
    assert answer["status"] == "ok" and answer["canonical_name"] == "c8.test"


# ------------------------------------------------------------ retry timing


def _timed_ask(cache, qtype, name):
    started = time.monotonic()
    rc, answer, _ = cache.ask(qtype, name)
    return rc, answer, time.monotonic() - started


def _ask_past_the_bound(cache, name, bound):
    """Ask A name of a cache whose dns_lookup_timeout is bound seconds: a
    timeout then (each caller's case takes at least bound + 2 s without it)."""
    rc, answer, took = _timed_ask(cache, "A", name)
    assert rc == 1 and answer["status"] == "tempfail"
    assert answer["reason"] == "timeout: no answer within dns_lookup_timeout (%ds)" % bound
    assert bound - 0.2 <= took < bound + 1.2, took
    return answer


def test_c_ares_alone_takes_three_dns_timeouts_per_server(dns, dnscache):
    # onehop-dnscache(8): two rounds over the servers, the second waiting
    # twice dns_timeout: 1 s + 2 s for one server that never answers.
    dns.mode("silent.test", "timeout")
    cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "20s"})
    rc, answer, took = _timed_ask(cache, "A", "silent.test")
    assert rc == 1 and answer["status"] == "tempfail" and "timeout" in answer["reason"]
    assert 2.8 <= took < 4.5, took
    assert dns.count("silent.test", "A") == 2


def test_dns_lookup_timeout_bounds_one_name(dns, dnscache):
    dns.mode("silent.test", "timeout")
    cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "1s"})  # c-ares alone: 3 s
    _ask_past_the_bound(cache, "silent.test", 1)
    assert cache.counters()["failures_timeout"] == 1


def test_dns_lookup_timeout_bounds_every_server_together(dns, dnscache):
    # Two silent servers: c-ares alone would take 2 x (1 s + 2 s) = 6 s.
    with DNSServer() as other:
        dns.mode("*", "timeout")
        other.mode("*", "timeout")
        cache = dnscache({"dns_servers": f"{dns.address}, {other.address}",
                          "dns_timeout": "1s", "dns_lookup_timeout": "2s"})
        _ask_past_the_bound(cache, "silent.test", 2)
        # one try each (the second round, at 2 s, may just have begun)
        assert dns.count("silent.test", "A") in (1, 2) and other.count("silent.test", "A") == 1


def test_dns_lookup_timeout_covers_a_cname_chain(dnscache):
    # Each link answers after 0.8 s: 4 links take 3.2 s, more than the bound.
    with DNSServer(chase=False) as server:
        _chain(server, 4)
        server.mode("*", "normal", delay=0.8)
        cache = dnscache({"dns_servers": server.address, "dns_timeout": "1s",
                          "dns_lookup_timeout": "2s"})
        _ask_past_the_bound(cache, "c0.test", 2)
        assert server.count("c4.test", "A") == 0


def test_an_answer_after_a_timeout_is_asked_afresh(dns, dnscache):
    dns.a("h.test", "127.0.0.5")
    dns.mode("h.test", "timeout")
    cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "1s"})
    assert cache.ask("A", "h.test")[0] == 1
    dns.mode("h.test", "normal")
    answer = cache.answer("A", "h.test")
    assert answer["status"] == "ok" and answer["from_cache"] is False
    assert cache.alive()


def test_onehop_check_refuses_a_lookup_timeout_below_dns_timeout(onehop):
    mta = onehop(conf={"dns_timeout": "5s", "dns_lookup_timeout": "3s"})
    r = mta.cmd("check")
    assert r.rc == 1
    assert ("dns_timeout (5s) must not be greater than dns_lookup_timeout (3s)"
            in r.out + r.err)


def test_reload_applies_dns_lookup_timeout_to_later_lookups(dns, dnscache):
    dns.mode("silent.test", "timeout")
    cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "20s"})
    cache.mta.set_conf(dns_lookup_timeout="1s")
    cache.proc.send_signal(signal.SIGHUP)
    cache.mta.wait_log(r"reloaded", timeout=5)
    _ask_past_the_bound(cache, "silent.test", 1)


def test_a_shorter_dns_lookup_timeout_overtakes_a_lookup_in_flight(dns, dnscache):
    # The deadlines are kept in order: one begun after a reload to 1 s ends
    # at 1 s although one begun before, with 20 s, is still waiting.
    dns.mode("*", "timeout")
    cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "20s"})
    with cache.client() as c:
        c.lookup(1, "A", "first.test")
        assert dns.wait_queries(1, "first.test", "A", timeout=5)
        cache.mta.set_conf(dns_lookup_timeout="1s")
        cache.proc.send_signal(signal.SIGHUP)
        cache.mta.wait_log(r"reloaded", timeout=5)
        started = time.monotonic()
        c.lookup(2, "A", "second.test")
        answer = c.answers(1)[2]
        took = time.monotonic() - started
    assert answer["reason"] == "timeout: no answer within dns_lookup_timeout (1s)"
    assert 0.8 <= took < 2.2, took


def test_reload_with_a_query_in_flight_changes_the_servers_once_it_is_done(dns, dnscache):
    # c-ares 1.18 cannot change servers while a query is in flight (a lookup
    # past its dns_lookup_timeout leaves one behind for up to 3 x dns_timeout):
    # the reload is taken, and the new servers are used once it is done.
    with DNSServer() as other:
        dns.mode("silent.test", "timeout")
        other.a("h.test", "127.0.0.6")
        cache = dnscache({"dns_timeout": "1s", "dns_lookup_timeout": "1s"})
        assert cache.ask("A", "silent.test")[0] == 1  # its c-ares query runs on to 3 s
        cache.mta.set_conf(dns_servers=other.address)
        cache.proc.send_signal(signal.SIGHUP)
        cache.mta.wait_log(r"reloaded", timeout=5)
        cache.mta.wait_log(r"servers %s in use" % other.address, timeout=10)
        assert cache.answer("A", "h.test")["addresses"] == ["127.0.0.6"]
        assert not [l for l in cache.mta.log(service="dnscache") if "refused" in l.text]
