"""The ADDR view of the dnscache (common/dnsproto.h, issue 9 item 4): the A
and AAAA answers of one host, with their TTLs, in one request, for `[host]`
next hops and `relayhost`; through `onehop dns ADDR` (the blocking client of
common/dnsclient.h) and through the socket protocol directly.
"""

import pytest

from fixtures.dnscache import QTYPES
from fixtures.dnscache import dnscache  # noqa: F401 (fixture)


def only_host(answer):
    assert answer["type"] == "ADDR" and len(answer["hosts"]) == 1
    return answer["hosts"][0]


def test_both_families_with_the_smaller_ttl(dns, dnscache):
    dns.a("relay.test", ["127.0.0.5", "127.0.0.6"], ttl=300)
    dns.aaaa("relay.test", "::1", ttl=60)
    cache = dnscache()
    answer = cache.answer("ADDR", "relay.test")
    host = only_host(answer)
    assert answer["status"] == "ok" and answer["reason"] == ""
    assert answer["ttl"] == 60 and answer["from_cache"] is False
    assert answer["canonical_name"] == "relay.test"
    assert host["host"] == "relay.test" and host["preference"] == 0
    assert host["status"] == "ok" and host["ttl"] == 60
    assert host["addresses"] == ["127.0.0.5", "127.0.0.6", "::1"]
    again = cache.answer("ADDR", "relay.test")
    assert again["from_cache"] is True and 59 <= again["ttl"] <= 60
    assert only_host(again)["addresses"] == host["addresses"]
    assert dns.count("relay.test", "A") == 1 and dns.count("relay.test", "AAAA") == 1
    counters = cache.counters()
    assert counters["requests_addr"] == 2 and counters["hits"] == 2


def test_shares_the_cached_a_and_aaaa_answers(dns, dnscache):
    dns.a("relay.test", "127.0.0.5", ttl=300)
    dns.aaaa("relay.test", "::1", ttl=300)
    cache = dnscache()
    cache.answer("A", "relay.test")
    cache.answer("AAAA", "relay.test")
    answer = cache.answer("ADDR", "relay.test")
    assert answer["from_cache"] is True and only_host(answer)["addresses"] == ["127.0.0.5", "::1"]
    assert dns.count("relay.test", "A") == 1 and dns.count("relay.test", "AAAA") == 1


def test_one_family_only_takes_the_negative_ttl_too(dns, dnscache):
    dns.a("relay.test", "127.0.0.5", ttl=300)  # AAAA: NODATA, negative TTL 30
    answer = dnscache().answer("ADDR", "relay.test")
    assert answer["status"] == "ok" and answer["ttl"] == 30
    assert only_host(answer)["addresses"] == ["127.0.0.5"]


@pytest.mark.parametrize("setup,status,rc,reason", [
    ("nxdomain", "nxdomain", 0, "A: no such domain (NXDOMAIN)"),
    ("nodata", "nodata", 0, "A: no record of that type (NODATA)"),
    ("a_servfail_aaaa_nodata", "tempfail", 1, "A: SERVFAIL from the upstream resolver"),
    ("a_ok_aaaa_servfail", "ok", 0, ""),
])
def test_status_is_the_hosts(dns, dnscache, setup, status, rc, reason):
    if setup == "nodata":
        dns.txt("relay.test", ["exists, no address"])
    elif setup == "a_servfail_aaaa_nodata":
        dns.txt("relay.test", ["exists"])
        dns.mode("relay.test", "servfail", qtype="A")
    elif setup == "a_ok_aaaa_servfail":
        dns.a("relay.test", "127.0.0.5")
        dns.mode("relay.test", "servfail", qtype="AAAA")
    cache = dnscache()
    got_rc, answer, _ = cache.ask("ADDR", "relay.test")
    host = only_host(answer)
    assert (got_rc, answer["status"], host["status"]) == (rc, status, status)
    assert answer["reason"].startswith(reason) and host["reason"] == answer["reason"]
    if status != "ok":
        assert host["addresses"] == []


def test_canonical_name_is_the_a_answers(dns, dnscache):
    dns.cname("relay.test", "real.test", ttl=40)
    dns.a("real.test", "127.0.0.8", ttl=300)
    dns.aaaa("real.test", "::2", ttl=300)
    answer = dnscache().answer("ADDR", "relay.test")
    assert answer["canonical_name"] == "real.test" and answer["ttl"] == 40
    assert only_host(answer)["addresses"] == ["127.0.0.8", "::2"]


def test_text_output(dns, dnscache):
    dns.a("relay.test", "127.0.0.5", ttl=300)
    dns.aaaa("relay.test", "::1", ttl=120)
    r = dnscache().mta.cmd("dns", "addr", "relay.test")
    assert r.rc == 0, r.err
    assert r.out.splitlines() == ["relay.test ADDR: ok, ttl 120, from upstream",
                                  "  0 relay.test ok, ttl 120: 127.0.0.5 ::1"]


def test_pipelined_on_the_socket(dns, dnscache):
    dns.a("r1.test", "127.0.0.5")
    dns.aaaa("r2.test", "::5")
    cache = dnscache()
    with cache.client() as c:
        c.lookup(1, "ADDR", "r1.test")
        c.lookup(2, "ADDR", "r2.test")
        c.lookup(3, "ADDR", "bad..name")
        got = c.answers(3)
    assert got[1]["qtype"] == QTYPES["ADDR"] and got[1]["status"] == "ok"
    assert got[1]["hosts"][0]["addresses"] == ["127.0.0.5"]
    assert got[2]["status"] == "ok" and got[2]["hosts"][0]["addresses"] == ["::5"]
    assert got[3]["status"] == "invalid"
