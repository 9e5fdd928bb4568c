"""onehop-dnscache: what is cached and for how long (SPEC D2, issue 4.2).

Each test counts the queries that reach the scriptable DNS server: an answer
is re-asked upstream once its TTL (clamped by dns_min_ttl / dns_max_ttl) is
over and not before; TTL 0 is never cached; negative answers are kept at
most dns_negative_max_ttl; identical concurrent requests share one upstream
query; the least recently used names leave a full cache first.
"""

import threading
import time

from fixtures.dnscache import F_COALESCED, Client, dnscache  # noqa: F401 (fixture)


def test_answer_reasked_after_its_ttl_and_not_before(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=2)
    cache = dnscache()
    first = cache.answer("A", "h.test")
    assert first["status"] == "ok" and first["addresses"] == ["127.0.0.5"]
    assert first["from_cache"] is False and first["ttl"] == 2
    asked = time.monotonic()
    assert dns.count("h.test", "A") == 1
    time.sleep(1.2)
    again = cache.answer("A", "h.test")
    assert again["from_cache"] is True and again["ttl"] <= 1
    assert time.monotonic() - asked < 2
    assert dns.count("h.test", "A") == 1
    time.sleep(max(0, 2.2 - (time.monotonic() - asked)))
    after = cache.answer("A", "h.test")
    assert after["from_cache"] is False
    assert dns.count("h.test", "A") == 2
    counters = cache.counters()
    assert counters["hits"] == 1 and counters["misses"] == 2
    assert counters["upstream_queries"] == 2


def test_changed_answer_seen_after_the_ttl(dns, dnscache):
    dns.mx("b.test", [(10, "mx1.b.test")], ttl=1)
    cache = dnscache()
    assert [m["host"] for m in cache.answer("MX", "b.test")["mx"]] == ["mx1.b.test"]
    dns.mx("b.test", [(5, "mx9.b.test")], ttl=1)
    assert [m["host"] for m in cache.answer("MX", "b.test")["mx"]] == ["mx1.b.test"]
    time.sleep(1.2)
    assert cache.answer("MX", "b.test")["mx"] == [{"preference": 5, "host": "mx9.b.test"}]


def test_max_ttl_clamps_a_long_ttl(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=3600)
    cache = dnscache({"dns_max_ttl": "1s"})
    assert cache.answer("A", "h.test")["ttl"] == 1
    assert cache.answer("A", "h.test")["from_cache"] is True
    time.sleep(1.2)
    assert cache.answer("A", "h.test")["from_cache"] is False
    assert dns.count("h.test", "A") == 2


def test_min_ttl_raises_a_short_ttl(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=1)
    cache = dnscache({"dns_min_ttl": "4s"})
    assert cache.answer("A", "h.test")["ttl"] == 4
    time.sleep(1.5)
    again = cache.answer("A", "h.test")
    assert again["from_cache"] is True and again["ttl"] in (2, 3)
    assert dns.count("h.test", "A") == 1


def test_ttl_zero_is_never_cached(dns, dnscache):
    dns.a("h.test", "127.0.0.5", ttl=0)
    cache = dnscache({"dns_min_ttl": "10s"})
    for _ in range(3):
        a = cache.answer("A", "h.test")
        assert a["status"] == "ok" and a["ttl"] == 0 and a["from_cache"] is False
    assert dns.count("h.test", "A") == 3
    assert cache.counters()["not_cached_ttl0"] == 3


def test_nodata_kept_at_most_negative_max_ttl(dns, dnscache):
    dns.negative_ttl = 3600  # the SOA says an hour
    dns.a("b.test", "127.0.0.5")
    cache = dnscache({"dns_negative_max_ttl": "1s"})
    first = cache.answer("MX", "b.test")
    assert first["status"] == "nodata" and first["ttl"] == 1
    assert cache.answer("MX", "b.test")["from_cache"] is True
    time.sleep(1.2)
    assert cache.answer("MX", "b.test")["from_cache"] is False
    assert dns.count("b.test", "MX") == 2


def test_nxdomain_kept_for_the_soa_minimum(dns, dnscache):
    dns.soa("test", ttl=60, minimum=1)  # RFC 2308 5: min(SOA TTL, MINIMUM) = 1
    cache = dnscache()
    first = cache.answer("A", "gone.test")
    assert first["status"] == "nxdomain" and first["ttl"] == 1
    assert cache.answer("A", "gone.test")["from_cache"] is True
    time.sleep(1.2)
    assert cache.answer("A", "gone.test")["from_cache"] is False
    assert dns.count("gone.test", "A") == 2


def test_domain_that_gains_an_mx_is_seen_after_the_negative_ttl(dns, dnscache):
    dns.a("b.test", "127.0.0.5")
    cache = dnscache({"dns_negative_max_ttl": "1s"})
    assert cache.answer("MX", "b.test")["status"] == "nodata"
    dns.mx("b.test", [(10, "mx.b.test")])
    assert cache.answer("MX", "b.test")["status"] == "nodata"  # still cached
    time.sleep(1.2)
    assert cache.answer("MX", "b.test")["mx"] == [{"preference": 10, "host": "mx.b.test"}]


def test_negative_max_ttl_zero_caches_no_negative_answer(dns, dnscache):
    cache = dnscache({"dns_negative_max_ttl": "0"})
    for _ in range(2):
        a = cache.answer("MX", "gone.test")
        assert a["status"] == "nxdomain" and a["ttl"] == 0
    assert dns.count("gone.test", "MX") == 2


def test_100_concurrent_requests_make_one_upstream_query(dns, dnscache):
    dns.mx("b.test", [(10, "mx.b.test")])
    dns.mode("b.test", "normal", qtype="MX", delay=1.0)  # keep the first query in flight
    cache = dnscache({"dns_timeout": "5s"})  # no c-ares retry while it waits
    results, errors = {}, []

    def one_connection(k):
        try:
            with Client(cache.socket_path) as c:
                c.lookup(k, "MX", "b.test")
                results.update(c.answers(1))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=one_connection, args=(k,)) for k in range(1, 101)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert sorted(results) == list(range(1, 101))
    assert all(a["status"] == "ok" and a["hosts"][0]["host"] == "mx.b.test"
               for a in results.values())
    assert dns.count("b.test", "MX") == 1
    counters = cache.counters()
    assert counters["upstream_queries"] == 1
    assert counters["coalesced"] == 99
    assert sum(1 for a in results.values() if a["flags"] & F_COALESCED) == 99


def test_pipelined_requests_on_one_connection_coalesce_too(dns, dnscache):
    dns.a("h.test", "127.0.0.5")
    dns.mode("h.test", "normal", delay=0.5)
    cache = dnscache()
    with Client(cache.socket_path) as c:
        for k in range(1, 51):
            c.lookup(k, "A", "h.test")
        answers = c.answers(50)
    assert all(a["hosts"][0]["addresses"] == ["127.0.0.5"] for a in answers.values())
    assert dns.count("h.test", "A") == 1


def test_lru_keeps_the_newest_names(dns, dnscache):
    names = ["n%d.test" % i for i in range(150)]
    for name in names:
        dns.a(name, "127.0.0.9", ttl=600)
    cache = dnscache({"dns_cache_size": "100"})
    with Client(cache.socket_path) as c:
        for k, name in enumerate(names):
            c.lookup(k, "A", name)
            c.answers(1)  # one at a time: the order of use is the order asked
    assert cache.counters()["cache_entries"] == 100
    assert cache.counters()["evictions"] == 50
    dns.reset_counts()
    with Client(cache.socket_path) as c:
        for k, name in enumerate(reversed(names[50:])):  # the newest 100: all cached
            c.lookup(k, "A", name)
            assert c.answers(1)[k]["flags"] & 1
    assert dns.total == 0
    for name in names[:10]:  # the oldest: asked again
        assert cache.answer("A", name)["from_cache"] is False
    assert dns.total == 10
