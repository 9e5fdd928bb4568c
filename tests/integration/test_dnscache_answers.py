"""onehop-dnscache: what each upstream answer means (issue 4.1, 4.3; SPEC
D1, D3, D4): the classes (ok, nodata, nxdomain, null MX, temporary failure
with its reason), large answers over TCP, hostile answers, CNAME chains,
and the ROUTE delivery view.
"""

import pytest

from fixtures.dnscache import dnscache  # noqa: F401 (fixture)
from fixtures.dnsserver import DNSServer


@pytest.mark.parametrize("mode, status, reason", [
    ("servfail", "tempfail", "SERVFAIL"),
    ("timeout", "tempfail", "timeout"),
    ("refused", "tempfail", "REFUSED"),
    ("nxdomain", "nxdomain", "NXDOMAIN"),
])
def test_upstream_outcome_maps_to_its_class(dns, dnscache, mode, status, reason):
    dns.mx("b.test", [(10, "mx.b.test")])
    dns.mode("b.test", mode)
    cache = dnscache()
    rc, answer, err = cache.ask("MX", "b.test")
    assert answer["status"] == status
    assert reason in answer["reason"]
    assert rc == (1 if status == "tempfail" else 0)
    if status == "tempfail":
        assert "temporary failure" in err
        assert answer["ttl"] == 0
    assert cache.alive()


def test_nodata(dns, dnscache):
    dns.a("b.test", "127.0.0.5")
    rc, answer, _ = dnscache().ask("MX", "b.test")
    assert rc == 0 and answer["status"] == "nodata" and answer["mx"] == []


def test_null_mx(dns, dnscache):
    dns.null_mx("n.test")
    cache = dnscache()
    answer = cache.answer("MX", "n.test")
    assert answer["status"] == "null-mx" and "RFC 7505" in answer["reason"]
    route = cache.answer("ROUTE", "n.test")
    assert route["status"] == "null-mx" and route["hosts"] == []


def test_cname_loop_is_a_temporary_failure(dns, dnscache):
    dns.cname("a.test", "b.test")
    dns.cname("b.test", "a.test")
    cache = dnscache()
    rc, answer, _ = cache.ask("A", "a.test")
    assert rc == 1 and answer["status"] == "tempfail" and "CNAME" in answer["reason"]
    assert cache.counters()["failures_cname"] == 1


def test_cname_chain_followed(dns, dnscache):
    dns.cname("www.test", "web.test", ttl=40)
    dns.cname("web.test", "host.test", ttl=300)
    dns.a("host.test", "127.0.0.8", ttl=300)
    answer = dnscache().answer("A", "www.test")
    assert answer["status"] == "ok" and answer["addresses"] == ["127.0.0.8"]
    assert answer["canonical_name"] == "host.test"
    assert answer["ttl"] == 40  # the smallest TTL of the chain


def test_cname_left_unchased_by_the_server_is_chased(dnscache):
    # A server serving only "test" gives the CNAME leaving its zone and stops
    # there (no SOA): the cache asks the target itself, and this server
    # refuses it, which is the class of the whole answer.
    only_test = DNSServer(zones=["test"]).start()
    try:
        only_test.cname("www.test", "elsewhere.example")
        cache = dnscache({"dns_servers": only_test.address})
        rc, answer, _ = cache.ask("A", "www.test")
        assert only_test.count("www.test", "A") == 1
        assert only_test.count("elsewhere.example", "A") == 1
        assert rc == 1 and answer["status"] == "tempfail" and "REFUSED" in answer["reason"]
        assert cache.counters()["cname_followups"] == 1
    finally:
        only_test.stop()


@pytest.mark.parametrize("mode", ["loop", "loop2", "forward", "count", "rdlength", "label",
                                  "garbage", "short"])
def test_hostile_answer_is_a_temporary_failure_and_the_daemon_lives(dns, dnscache, mode):
    dns.mx("b.test", [(10, "mx.b.test")])
    dns.mode("b.test", mode)
    cache = dnscache()
    for qtype in ("MX", "A", "AAAA"):
        rc, answer, _ = cache.ask(qtype, "b.test")
        assert rc == 1 and answer["status"] == "tempfail", (qtype, answer)
        assert answer["ttl"] == 0
    assert cache.alive()
    dns.mode("b.test", "normal")
    assert cache.answer("MX", "b.test")["status"] == "ok"  # nothing bad was cached


def test_malformed_answers_are_counted(dns, dnscache):
    dns.mode("b.test", "count")
    cache = dnscache()
    cache.ask("MX", "b.test")
    assert cache.counters()["failures_malformed"] == 1


@pytest.mark.parametrize("nrecords", [60, 200])  # about 1,600 and 5,000 bytes
def test_large_mx_answers_arrive_whole_over_tcp(dns, dnscache, nrecords):
    hosts = [(10 + i % 7, "mail-exchanger-number-%03d.b.test" % i) for i in range(nrecords)]
    dns.mx("b.test", hosts)
    cache = dnscache()
    answer = cache.answer("MX", "b.test")
    assert answer["status"] == "ok"
    assert len(answer["mx"]) == nrecords
    got = {(m["preference"], m["host"]) for m in answer["mx"]}
    assert got == set(hosts)
    prefs = [m["preference"] for m in answer["mx"]]
    assert prefs == sorted(prefs)
    assert dns.count("b.test", "MX", "udp") >= 1
    assert dns.count("b.test", "MX", "tcp") >= 1  # truncated over UDP, retried over TCP


def test_queries_are_absolute_with_edns0(dns, dnscache):
    dns.a("single", "127.0.0.5")
    cache = dnscache()
    assert cache.answer("A", "single")["status"] == "ok"
    assert cache.answer("AAAA", "nothing.test")["status"] == "nxdomain"
    names = {q.name for q in dns.queries()}
    assert names == {"single", "nothing.test"}  # no search domain appended, ever
    assert all(q.edns_size == 1232 for q in dns.queries())


def test_mx_sorted_by_preference(dns, dnscache):
    dns.mx("b.test", [(30, "c.b.test"), (10, "a.b.test"), (20, "b.b.test")])
    answer = dnscache().answer("MX", "b.test")
    assert [m["host"] for m in answer["mx"]] == ["a.b.test", "b.b.test", "c.b.test"]


# ------------------------------------------------------------------ ROUTE


def test_route_lists_hosts_by_preference_with_addresses(dns, dnscache):
    dns.mx("b.test", [(20, "mx2.b.test"), (10, "mx1.b.test")], ttl=300)
    dns.a("mx1.b.test", ["127.0.0.5", "127.0.0.6"], ttl=120)
    dns.aaaa("mx1.b.test", "::1", ttl=200)
    dns.a("mx2.b.test", "127.0.0.7", ttl=60)
    dns.aaaa("mx2.b.test", [], ttl=60)
    dns.negative_ttl = 100
    cache = dnscache()
    route = cache.answer("ROUTE", "b.test")
    assert route["status"] == "ok" and route["implicit_mx"] is False
    assert [(h["preference"], h["host"]) for h in route["hosts"]] == [
        (10, "mx1.b.test"), (20, "mx2.b.test")]
    assert route["hosts"][0]["addresses"] == ["127.0.0.5", "127.0.0.6", "::1"]
    assert route["hosts"][1]["addresses"] == ["127.0.0.7"]
    assert route["ttl"] == 60  # the smallest TTL of every record involved
    assert route["hosts"][0]["ttl"] == 120
    again = cache.answer("ROUTE", "b.test")
    assert again["from_cache"] is True and again["ttl"] <= 60


def test_route_expires_with_its_shortest_part(dns, dnscache):
    import time
    dns.mx("b.test", [(10, "mx.b.test")], ttl=300)
    dns.a("mx.b.test", "127.0.0.5", ttl=1)
    cache = dnscache()
    assert cache.answer("ROUTE", "b.test")["ttl"] <= 1
    dns.a("mx.b.test", "127.0.0.6", ttl=1)
    time.sleep(1.2)
    route = cache.answer("ROUTE", "b.test")
    assert route["hosts"][0]["addresses"] == ["127.0.0.6"]
    assert dns.count("b.test", "MX") == 1  # the MX set was still fresh


def test_route_without_mx_is_the_domain_itself(dns, dnscache):
    dns.a("c.test", "127.0.0.7")
    route = dnscache().answer("ROUTE", "c.test")
    assert route["status"] == "ok" and route["implicit_mx"] is True  # RFC 5321 5.1
    assert [(h["preference"], h["host"], h["addresses"]) for h in route["hosts"]] == [
        (0, "c.test", ["127.0.0.7"])]


def test_route_every_host_nxdomain_is_nxdomain(dns, dnscache):
    dns.mx("b.test", [(10, "gone1.b.test"), (20, "gone2.b.test")])
    route = dnscache().answer("ROUTE", "b.test")
    assert route["status"] == "nxdomain"
    assert [h["status"] for h in route["hosts"]] == ["nxdomain", "nxdomain"]


def test_route_mix_of_nxdomain_and_failure_is_temporary(dns, dnscache):
    dns.mx("b.test", [(10, "gone.b.test"), (20, "broken.b.test")])
    dns.mode("broken.b.test", "servfail")
    rc, route, _ = dnscache().ask("ROUTE", "b.test")
    assert rc == 1 and route["status"] == "tempfail"
    assert [h["status"] for h in route["hosts"]] == ["nxdomain", "tempfail"]
    assert "SERVFAIL" in route["hosts"][1]["reason"]


def test_route_one_host_failing_still_routes_to_the_other(dns, dnscache):
    dns.mx("b.test", [(10, "broken.b.test"), (20, "mx2.b.test")])
    dns.mode("broken.b.test", "servfail")
    dns.a("mx2.b.test", "127.0.0.7")
    route = dnscache().answer("ROUTE", "b.test")
    assert route["status"] == "ok"
    assert route["hosts"][0]["status"] == "tempfail" and route["hosts"][0]["addresses"] == []
    assert route["hosts"][1]["addresses"] == ["127.0.0.7"]
    assert route["ttl"] == 0  # a failed part is not cached: the view is not either


def test_route_of_nxdomain_domain(dns, dnscache):
    route = dnscache().answer("ROUTE", "nowhere.test")
    assert route["status"] == "nxdomain" and route["hosts"] == []


def test_invalid_names_are_refused_before_any_query(dns, dnscache):
    cache = dnscache()
    r = cache.mta.cmd("dns", "A", "bad..name")
    assert r.rc == 2 and "bad name" in r.err
    assert dns.total == 0
