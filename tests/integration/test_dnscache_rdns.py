"""The RDNS view of the dnscache (common/dnsproto.h): the client name of an
address for onehop-smtpd's "connect from NAME[ADDR]" (SPEC 8), its PTR
names forward-confirmed as Postfix does (the name's A or AAAA must hold the
address), each part cached on its own; spoken on the socket protocol, and
through `onehop dns --json RDNS`.
"""

import pytest
from dnslib import PTR

from fixtures.dnscache import QTYPES
from fixtures.dnscache import dnscache  # noqa: F401 (fixture)

REV9 = "9.0.0.127.in-addr.arpa"
REV6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"  # ::1


def ask(cache, *requests):
    with cache.client() as c:
        for i, name in enumerate(requests, 1):
            c.lookup(i, "RDNS", name)
        got = c.answers(len(requests))
    return [got[i] for i in range(1, len(requests) + 1)]


def test_forward_confirmed_name(dns, dnscache):
    dns.add(REV9, "PTR", PTR("client.test"), ttl=300)
    dns.a("client.test", ["127.0.0.8", "127.0.0.9"], ttl=60)
    cache = dnscache()
    (a,) = ask(cache, REV9)
    assert a["qtype"] == QTYPES["RDNS"] and a["name"] == REV9
    assert (a["status"], a["reason"], a["canonical_name"]) == ("ok", "", "client.test")
    assert a["ttl"] == 60
    assert [(h["host"], h["addresses"]) for h in a["hosts"]] == [
        ("client.test", ["127.0.0.8", "127.0.0.9"])]
    (again,) = ask(cache, REV9)  # from the cache: no new query upstream
    assert again["canonical_name"] == "client.test" and again["flags"] & 1
    assert dns.count(REV9, "PTR") == 1 and dns.count("client.test", "A") == 1
    assert dns.count("client.test", "AAAA") == 0  # only the address's family is asked
    assert cache.counters()["requests_rdns"] == 2


def test_ipv6_and_the_second_ptr_name_confirms(dns, dnscache):
    dns.add(REV6, "PTR", PTR("first.test"))
    dns.add(REV6, "PTR", PTR("second.test"))
    dns.aaaa("first.test", "::2")
    dns.aaaa("second.test", "::1")
    (a,) = ask(dnscache(), REV6)
    assert (a["status"], a["canonical_name"]) == ("ok", "second.test")
    assert [h["host"] for h in a["hosts"]] == ["first.test", "second.test"]


def test_ptr_whose_a_does_not_match_is_unknown(dns, dnscache):
    dns.add(REV9, "PTR", PTR("liar.test"))
    dns.a("liar.test", "127.0.0.10")
    (a,) = ask(dnscache(), REV9)
    assert a["status"] == "nodata" and a["canonical_name"] == REV9
    assert a["reason"] == "hostname liar.test does not resolve to address 127.0.0.9"


def test_ptr_name_without_address(dns, dnscache):
    dns.add(REV9, "PTR", PTR("gone.test"))  # gone.test: NXDOMAIN
    (a,) = ask(dnscache(), REV9)
    assert a["status"] == "nodata"
    assert a["reason"] == "hostname gone.test does not resolve to address 127.0.0.9"
    assert a["hosts"][0]["status"] == "nxdomain"


def test_nxdomain_and_timeout(dns, dnscache):
    dns.mode("10.0.0.127.in-addr.arpa", "timeout")
    cache = dnscache(conf={"dns_lookup_timeout": "2s"})
    nx, slow = ask(cache, REV9, "10.0.0.127.in-addr.arpa")
    assert nx["status"] == "nxdomain" and nx["hosts"] == []
    assert slow["status"] == "tempfail" and slow["hosts"] == []


def test_forward_lookup_timeout_is_temporary(dns, dnscache):
    dns.add(REV9, "PTR", PTR("slow.test"))
    dns.mode("slow.test", "timeout")
    (a,) = ask(dnscache(conf={"dns_lookup_timeout": "2s"}), REV9)
    assert a["status"] == "tempfail" and a["reason"].startswith("forward lookup of slow.test")


@pytest.mark.parametrize("name", ["b.test", "9.0.0.in-addr.arpa", "300.0.0.127.in-addr.arpa",
                                  "0.ip6.arpa"])
def test_not_a_reverse_name_is_invalid(dns, dnscache, name):
    (a,) = ask(dnscache(), name)
    assert a["status"] == "invalid" and "reverse name" in a["reason"]
    assert dns.total == 0


def test_through_onehop_dns(dns, dnscache):
    dns.add(REV9, "PTR", PTR("client.test"))
    dns.a("client.test", "127.0.0.9")
    answer = dnscache().answer("RDNS", REV9)
    assert answer["status"] == "ok" and answer["canonical_name"] == "client.test"


def test_onehop_dns_text_names_the_ptr_host(dns, dnscache):
    """The text view names the PTR host before its addresses, as ROUTE and
    ADDR do (the JSON view always did)."""
    dns.add(REV9, "PTR", PTR("client.test"))
    dns.a("client.test", "127.0.0.9")
    r = dnscache().mta.cmd("dns", "RDNS", REV9)
    assert r.rc == 0, r
    hosts = [l.strip() for l in r.out.splitlines()[1:] if "canonical name" not in l]
    assert len(hosts) == 1 and "client.test" in hosts[0] and hosts[0].endswith(": 127.0.0.9"), r.out
