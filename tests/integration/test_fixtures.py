"""Tests of the integration fixtures themselves: each scripted behaviour of the
DNS server and SMTP peers is what a real client sees, and the instance
fixture drives the real programs. If these fail, no other integration test
can be trusted."""

import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from fixtures.dnsserver import HOSTILE_MODES, DNSServer, ask, ask_raw
from fixtures.paths import onehop_bin, tool_path
from fixtures.smtppeer import CLOSE, Delay

HERE = Path(__file__).resolve().parent
DIG = shutil.which("dig")


def parse(packet):
    assert packet is not None, "no answer (timeout)"
    return DNSRecord.parse(packet)


def answers(packet, qtype=None):
    reply = parse(packet)
    return [(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata), rr.ttl) for rr in reply.rr
            if qtype is None or rr.rtype == getattr(QTYPE, qtype)]


# ------------------------------------------------------------------ DNS: zone data


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_dns_mx_answer_with_ttl(dns, proto):
    dns.mx("b.test", [(10, "mx1.b.test"), (20, "mx2.b.test")], ttl=77)
    reply = parse(ask(dns.address, "b.test", "MX", proto))
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 1
    assert sorted(answers(reply.pack())) == [
        ("b.test.", "MX", "10 mx1.b.test.", 77), ("b.test.", "MX", "20 mx2.b.test.", 77)]


def test_dns_a_aaaa_cname_txt(dns):
    dns.a("h.test", ["127.0.0.7", "127.0.0.8"], ttl=11)
    dns.aaaa("h.test", "::1", ttl=12)
    dns.cname("alias.test", "h.test", ttl=13)
    dns.txt("t.test", ["hello", "world"], ttl=14)
    assert sorted(answers(ask(dns.address, "h.test", "A"))) == [
        ("h.test.", "A", "127.0.0.7", 11), ("h.test.", "A", "127.0.0.8", 11)]
    assert answers(ask(dns.address, "h.test", "AAAA")) == [("h.test.", "AAAA", "::1", 12)]
    # an in-zone CNAME target is followed in the same answer
    assert answers(ask(dns.address, "alias.test", "A")) == [
        ("alias.test.", "CNAME", "h.test.", 13),
        ("h.test.", "A", "127.0.0.7", 11), ("h.test.", "A", "127.0.0.8", 11)]
    assert answers(ask(dns.address, "alias.test", "CNAME")) == [
        ("alias.test.", "CNAME", "h.test.", 13)]
    assert [a[2] for a in answers(ask(dns.address, "t.test", "TXT"))] == ['"hello"', '"world"']


def test_dns_null_mx_and_mx_to(dns):
    dns.null_mx("nomail.test")
    assert answers(ask(dns.address, "nomail.test", "MX"))[0][2] == "0 ."
    host = dns.mx_to("c.test", "127.0.0.9", ttl=40)
    assert host == "mx.c.test"
    assert answers(ask(dns.address, "c.test", "MX")) == [("c.test.", "MX", "10 mx.c.test.", 40)]
    assert answers(ask(dns.address, "mx.c.test", "A")) == [("mx.c.test.", "A", "127.0.0.9", 40)]


def soa_of(reply):
    soas = [rr for rr in reply.auth if rr.rtype == QTYPE.SOA]
    assert len(soas) == 1, "expected one SOA in the authority section: %s" % reply
    return soas[0]


def test_dns_nxdomain_carries_soa_with_negative_ttl(dns):
    dns.negative_ttl = 17
    dns.a("known.b.test", "127.0.0.2")
    reply = parse(ask(dns.address, "unknown.b.test", "MX"))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.rr == []
    soa = soa_of(reply)
    assert str(soa.rname) == "test."  # default zone apex: the last label
    assert soa.ttl == 17 and soa.rdata.times[4] == 17


def test_dns_nodata_carries_soa_and_empty_nonterminal_exists(dns):
    dns.a("mx.b.test", "127.0.0.2")
    reply = parse(ask(dns.address, "mx.b.test", "MX"))
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []
    soa_of(reply)
    # b.test has a name below it: NODATA, not NXDOMAIN (RFC 8020)
    reply = parse(ask(dns.address, "b.test", "A"))
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


def test_dns_explicit_soa_sets_negative_ttl_per_zone(dns):
    dns.soa("b.test", ttl=100, minimum=7)
    reply = parse(ask(dns.address, "x.b.test", "A"))
    soa = soa_of(reply)
    assert str(soa.rname) == "b.test."
    assert (soa.ttl, soa.rdata.times[4]) == (100, 7)
    assert answers(ask(dns.address, "b.test", "SOA"))[0][1] == "SOA"


def test_dns_cname_not_chased_with_chase_false():
    with DNSServer(chase=False) as server:
        server.cname("alias.test", "h.test", ttl=13)
        server.a("h.test", "127.0.0.7", ttl=11)
        reply = parse(ask(server.address, "alias.test", "A"))
        assert reply.header.rcode == RCODE.NOERROR and not reply.auth
        assert answers(reply.pack()) == [("alias.test.", "CNAME", "h.test.", 13)]
        assert answers(ask(server.address, "h.test", "A")) == [("h.test.", "A", "127.0.0.7", 11)]


def test_dns_names_outside_served_zones_are_refused():
    with DNSServer(zones=["b.test"]) as server:
        server.a("h.b.test", "127.0.0.3")
        assert parse(ask(server.address, "other.test", "A")).header.rcode == RCODE.REFUSED
        assert parse(ask(server.address, "nope.b.test", "A")).header.rcode == RCODE.NXDOMAIN
        assert answers(ask(server.address, "H.B.Test", "A"))[0][2] == "127.0.0.3"


def test_dns_zone_changes_at_run_time(dns):
    dns.a("h.test", "127.0.0.2", ttl=5)
    assert answers(ask(dns.address, "h.test", "A")) == [("h.test.", "A", "127.0.0.2", 5)]
    dns.a("h.test", "127.0.0.3", ttl=6)
    assert answers(ask(dns.address, "h.test", "A")) == [("h.test.", "A", "127.0.0.3", 6)]
    dns.remove("h.test", "A")
    assert parse(ask(dns.address, "h.test", "A")).header.rcode == RCODE.NXDOMAIN
    dns.add("h.test", "A", __import__("dnslib").A("127.0.0.4"), ttl=8)
    dns.remove("h.test")
    assert parse(ask(dns.address, "h.test", "A")).header.rcode == RCODE.NXDOMAIN


def test_dns_load_zone_text(dns):
    dns.load_zone("z.test. 3600 IN SOA ns.z.test. h.z.test. 1 2 3 4 9\n"
                  "z.test. 60 IN MX 5 mail.z.test.\nmail.z.test. 30 IN A 127.0.0.6\n")
    assert answers(ask(dns.address, "z.test", "MX")) == [("z.test.", "MX", "5 mail.z.test.", 60)]
    soa = soa_of(parse(ask(dns.address, "none.z.test", "A")))
    assert (soa.ttl, soa.rdata.times[4]) == (3600, 9)


# ------------------------------------------------------------------ DNS: answer modes


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("mode,rcode", [("servfail", RCODE.SERVFAIL), ("refused", RCODE.REFUSED),
                                        ("nxdomain", RCODE.NXDOMAIN)])
def test_dns_error_modes(dns, proto, mode, rcode):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", mode)
    reply = parse(ask(dns.address, "b.test", "MX", proto))
    assert reply.header.rcode == rcode and reply.rr == []
    # other names are not affected
    assert parse(ask(dns.address, "mx.b.test", "A", proto)).header.rcode == RCODE.NOERROR


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_dns_timeout_mode_is_silent(dns, proto):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", "timeout")
    started = time.monotonic()
    assert ask(dns.address, "b.test", "MX", proto, timeout=0.5) is None
    assert time.monotonic() - started >= 0.45
    assert dns.count("b.test", "MX", proto) == 1


def test_dns_truncate_mode_sets_tc_over_udp_only(dns):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", "truncate")
    reply = parse(ask(dns.address, "b.test", "MX", "udp", edns=4096))
    assert reply.header.tc == 1 and reply.rr == []
    reply = parse(ask(dns.address, "b.test", "MX", "tcp"))
    assert reply.header.tc == 0 and len(reply.rr) == 1


def test_dns_mode_per_qtype_and_proto(dns):
    dns.mx_to("b.test", "127.0.0.2")
    dns.a("b.test", "127.0.0.3")
    dns.mode("b.test", "servfail", qtype="MX")
    dns.mode("b.test", "refused", qtype="A", proto="udp")
    assert parse(ask(dns.address, "b.test", "MX")).header.rcode == RCODE.SERVFAIL
    assert parse(ask(dns.address, "b.test", "A", "udp")).header.rcode == RCODE.REFUSED
    assert parse(ask(dns.address, "b.test", "A", "tcp")).header.rcode == RCODE.NOERROR
    dns.mode("b.test", "normal", qtype="MX")
    assert parse(ask(dns.address, "b.test", "MX")).header.rcode == RCODE.NOERROR


def test_dns_mode_list_is_used_one_per_query_and_wildcard(dns):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", ["servfail", "nxdomain", "normal"])
    rcodes = [parse(ask(dns.address, "b.test", "MX")).header.rcode for _ in range(4)]
    assert rcodes == [RCODE.SERVFAIL, RCODE.NXDOMAIN, RCODE.NOERROR, RCODE.NOERROR]
    dns.mode("*", "refused")
    assert parse(ask(dns.address, "anything.test", "A")).header.rcode == RCODE.REFUSED
    dns.clear_modes()
    assert parse(ask(dns.address, "b.test", "MX")).header.rcode == RCODE.NOERROR


def test_dns_delay(dns):
    dns.a("slow.test", "127.0.0.2")
    dns.mode("slow.test", "normal", delay=0.4)
    started = time.monotonic()
    assert answers(ask(dns.address, "slow.test", "A", timeout=3))
    assert time.monotonic() - started >= 0.35


def test_dns_wrongid_mode(dns):
    dns.a("h.test", "127.0.0.2")
    dns.mode("h.test", "wrongid")
    reply = parse(ask(dns.address, "h.test", "A", qid=0x1234))
    assert reply.header.id == 0x1234 ^ 0xFFFF


def _question_end(packet):
    offset = 12
    while packet[offset]:
        offset += packet[offset] + 1
    return offset + 1 + 4


def _pointer_at(packet, offset):
    word = struct.unpack("!H", packet[offset:offset + 2])[0]
    assert word & 0xC000 == 0xC000, "no compression pointer at %d" % offset
    return word & 0x3FFF


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_dns_hostile_modes_are_malformed_as_described(dns, proto):
    checks = {}
    for mode in ("loop", "loop2", "forward", "count", "rdlength", "label", "garbage", "short"):
        name = "%s.hostile.test" % mode
        dns.a(name, "127.0.0.2")
        dns.mode(name, mode)
        checks[mode] = ask(dns.address, name, "MX", proto, qid=4242)
        assert checks[mode] is not None, mode
        assert checks[mode][:2] == struct.pack("!H", 4242), mode
    start = _question_end(checks["loop"])
    assert _pointer_at(checks["loop"], start) == start
    p = checks["loop2"]
    start = _question_end(p)
    second = _pointer_at(p, start)
    assert second > start and _pointer_at(p, second) == start
    p = checks["forward"]
    start = _question_end(p)
    assert _pointer_at(p, start) > start
    assert struct.unpack("!HHHH", checks["count"][4:12]) == (1, 60, 5, 5)
    p = checks["rdlength"]
    rdlength_at = _question_end(p) + 2 + 8
    rdlength = struct.unpack("!H", p[rdlength_at:rdlength_at + 2])[0]
    assert rdlength_at + 2 + rdlength > len(p)
    p = checks["label"]
    start = _question_end(p)
    end = p.index(b"\x00", start)
    assert end + 1 - start > 255
    assert len(checks["garbage"]) == 202
    assert len(checks["short"]) < 12
    for mode in ("loop", "loop2", "forward", "count", "garbage", "short"):
        with pytest.raises(Exception):
            DNSRecord.parse(checks[mode])


# --------------------------------------------------------- DNS: sizes, TC, malformed queries


def big_mx(dns, name, n):
    hosts = [(i, "mail-exchanger-number-%02d.%s" % (i, name)) for i in range(n)]
    dns.mx(name, hosts, ttl=300)
    return hosts


def test_dns_udp_answer_over_512_without_edns_is_truncated(dns):
    big_mx(dns, "big.test", 20)  # about 700 bytes
    reply = parse(ask(dns.address, "big.test", "MX", "udp"))
    assert reply.header.tc == 1 and len(reply.pack()) <= 512 and len(reply.rr) < 20
    reply = parse(ask(dns.address, "big.test", "MX", "udp", edns=1232))
    assert reply.header.tc == 0 and len(reply.rr) == 20


def test_dns_udp_answer_over_edns_size_is_truncated_tcp_is_whole(dns):
    big_mx(dns, "big.test", 60)  # well over 1232 bytes
    for size in (4096, 1232, 600):
        packet = ask(dns.address, "big.test", "MX", "udp", edns=size)
        reply = parse(packet)
        assert reply.header.tc == 1, size
        assert len(packet) <= min(size, 1232)
        assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]
    reply = parse(ask(dns.address, "big.test", "MX", "tcp"))
    assert reply.header.tc == 0 and len(reply.rr) == 60
    assert len(reply.pack()) > 1232


def test_dns_malformed_query_gets_formerr_and_runt_gets_silence(dns):
    bad = struct.pack("!HHHHHH", 77, 0x0100, 1, 0, 0, 0) + b"\x05ab"
    reply = ask_raw(("127.0.0.1", dns.port), bad, "udp", timeout=1)
    assert reply is not None
    assert struct.unpack("!HH", reply[:4]) == (77, 0x8000 | 0x0100 | RCODE.FORMERR)
    assert ask_raw(("127.0.0.1", dns.port), b"\x01\x02\x03", "udp", timeout=0.3) is None
    assert dns.count() == 2


# ------------------------------------------------------------------ DNS: counters


def test_dns_counts_per_name_qtype_proto_and_log(dns):
    dns.mx_to("b.test", "127.0.0.2")
    ask(dns.address, "b.test", "MX", "udp")
    ask(dns.address, "B.TEST.", "MX", "udp")
    ask(dns.address, "b.test", "MX", "tcp")
    ask(dns.address, "mx.b.test", "A", "udp")
    assert dns.count("b.test", "MX", "udp") == 2
    assert dns.count("b.test", "MX", "tcp") == 1
    assert dns.count("b.test", "MX") == 3
    assert dns.count("b.test", "A") == 0
    assert dns.count(qtype="A") == 1
    assert dns.count(proto="udp") == 3
    assert dns.total == 4
    log = dns.queries()
    assert [(q.name, q.qtype, q.proto) for q in log] == [
        ("b.test", "MX", "udp"), ("b.test", "MX", "udp"), ("b.test", "MX", "tcp"),
        ("mx.b.test", "A", "udp")]
    dns.reset_counts()
    assert dns.total == 0 and dns.queries() == []


def test_dns_wait_queries(dns):
    dns.a("h.test", "127.0.0.2")

    def later():
        time.sleep(0.3)
        for _ in range(3):
            ask(dns.address, "h.test", "A")

    thread = threading.Thread(target=later)
    thread.start()
    assert dns.wait_queries(3, "h.test", "A", timeout=5)
    thread.join()
    started = time.monotonic()
    assert not dns.wait_queries(4, "h.test", "A", timeout=0.3)
    assert time.monotonic() - started < 2


def test_dns_concurrent_changes_and_queries(dns):
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            dns.a("h.test", "127.0.0.%d" % (2 + i % 200), ttl=i % 100)
            dns.remove("h.test") if i % 7 == 0 else None
            i += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for i in range(200):
            reply = parse(ask(dns.address, "h.test", "A", "udp" if i % 2 else "tcp"))
            assert reply.header.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN)
    finally:
        stop.set()
        thread.join()
    assert dns.count("h.test", "A") == 200


def test_dns_stop_frees_the_port():
    server = DNSServer().start()
    port = server.port
    server.a("h.test", "127.0.0.2")
    assert ask(server.address, "h.test", "A") is not None
    server.stop()
    assert ask(("127.0.0.1", port), "h.test", "A", "tcp", timeout=0.5) is None
    again = DNSServer(port=port).start()  # both sockets can be bound again
    again.stop()


# ------------------------------------------------------------------ DNS: real clients


needs_dig = pytest.mark.skipif(DIG is None, reason="dig not installed (Debian bind9-dnsutils)")


def dig(dns, *args):
    out = subprocess.run([DIG, "@127.0.0.1", "-p", str(dns.port), "+time=2", "+tries=1", *args],
                         capture_output=True, text=True, timeout=20)
    return out.stdout


@needs_dig
def test_dig_sees_records_rcodes_and_ttls(dns):
    dns.mx("b.test", [(10, "mx.b.test")], ttl=123)
    assert "b.test.\t\t\t123\tIN\tMX\t10 mx.b.test." in dig(dns, "b.test", "MX")
    assert "status: NXDOMAIN" in dig(dns, "nope.b.test", "MX")
    dns.mode("b.test", "servfail")
    assert "status: SERVFAIL" in dig(dns, "b.test", "MX")
    dns.mode("b.test", "timeout")
    assert "timed out" in dig(dns, "b.test", "MX")


@needs_dig
def test_dig_retries_truncated_answer_over_tcp(dns):
    hosts = big_mx(dns, "big.test", 60)
    dns.mode("big.test", "truncate")
    out = dig(dns, "big.test", "MX")
    assert "Truncated, retrying in TCP mode" in out
    assert out.count("\tIN\tMX\t") == len(hosts)
    assert dns.count("big.test", "MX", "udp") == 1
    assert dns.count("big.test", "MX", "tcp") == 1


@needs_dig
def test_standalone_server_with_zone_file(tmp_path):
    zone = tmp_path / "zone"
    zone.write_text("b.test. 60 IN MX 10 mx.b.test.\nmx.b.test. 60 IN A 127.0.0.5\n")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen([sys.executable, str(HERE / "fixtures" / "dnsserver.py"),
                             "--port", str(port), "--zone", str(zone)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on 127.0.0.1:%d" % port in proc.stdout.readline()
        out = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+short", "b.test", "MX"],
                             capture_output=True, text=True, timeout=20).stdout
        assert out.strip() == "10 mx.b.test."
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0


# ------------------------------------------------------------------ DNS: c-ares


def dnsq(dns, qtype, *names, extra=()):
    """Run tests/tools/dnsq (c-ares) against the fixture: (rc, records, stderr)."""
    path = tool_path("dnsq")
    assert path is not None, (
        "tests/tools/dnsq is not built: run `make tools` (or make integration), "
        "or set ONEHOP_TOOLS to the directory holding it")
    proc = subprocess.run([str(path), "-s", dns.address, "-t", "1000", "-r", "2", *extra,
                           qtype, *names], capture_output=True, text=True, timeout=60)
    assert proc.returncode >= 0, "dnsq killed by signal %d: %s" % (-proc.returncode, proc.stderr)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def test_cares_truncated_mode_gets_the_full_answer_over_tcp(dns):
    hosts = big_mx(dns, "big.test", 60)
    assert len(parse(ask(dns.address, "big.test", "MX", "tcp")).pack()) > 1232
    dns.mode("big.test", "truncate")
    rc, records, err = dnsq(dns, "MX", "big.test")
    assert rc == 0, err
    assert sorted(records) == sorted("big.test MX %d %s" % h for h in hosts)
    assert dns.count("big.test", "MX", "udp") >= 1
    assert dns.count("big.test", "MX", "tcp") >= 1


def test_cares_large_answer_is_retried_over_tcp_without_a_mode(dns):
    hosts = big_mx(dns, "big.test", 60)
    rc, records, err = dnsq(dns, "MX", "big.test")
    assert rc == 0, err
    assert len(records) == len(hosts)
    assert dns.count("big.test", "MX", "udp") == 1
    assert dns.count("big.test", "MX", "tcp") == 1


def test_cares_sees_addresses_with_ttls_and_absolute_names(dns):
    dns.a("h.b.test", ["127.0.0.7", "127.0.0.8"], ttl=42)
    dns.aaaa("h.b.test", "::1", ttl=43)
    rc, records, err = dnsq(dns, "A", "h.b.test")
    assert rc == 0, err
    assert sorted(records) == ["h.b.test A 127.0.0.7 42", "h.b.test A 127.0.0.8 42"]
    rc, records, err = dnsq(dns, "AAAA", "h.b.test")
    assert (rc, records) == (0, ["h.b.test AAAA ::1 43"])
    assert [q.name for q in dns.queries()] == ["h.b.test", "h.b.test"]  # no search list


# c-ares 1.18 treats SERVFAIL and REFUSED as a failed server (it moves on to
# the next one) unless ARES_FLAG_NOCHECKRESP is set; later versions say so.
@pytest.mark.parametrize("mode,messages", [
    ("servfail", ("Server failure", "Could not contact DNS servers")),
    ("refused", ("Query refused", "Could not contact DNS servers")),
    ("nxdomain", ("Domain name not found",)),
    ("timeout", ("Timeout",))])
def test_cares_reports_error_modes(dns, mode, messages):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", mode)
    rc, records, err = dnsq(dns, "MX", "b.test")
    assert rc == 1 and records == []
    assert any(m in err for m in messages), err


@pytest.mark.parametrize("mode", HOSTILE_MODES + ("wrongid",))
def test_cares_survives_hostile_answers(dns, mode):
    dns.mx_to("b.test", "127.0.0.2")
    dns.mode("b.test", mode)
    rc, records, err = dnsq(dns, "MX", "b.test", extra=("-t", "300", "-r", "1"))
    if mode in ("label", "forward"):
        assert rc in (0, 1)  # c-ares may accept these; it must not crash
    else:
        assert rc == 1, "c-ares accepted a %s answer: %s" % (mode, records)


# ------------------------------------------------------------------ SMTP peers

SWAKS = shutil.which("swaks")
needs_swaks = pytest.mark.skipif(SWAKS is None, reason="swaks not installed (Debian swaks)")


def swaks(peer, *args, to="bob@b.test", sender="alice@a.test", helo="client.a.test"):
    """Run swaks against peer: (exit status, transcript)."""
    proc = subprocess.run([SWAKS, "--server", peer.ip, "--port", str(peer.port),
                           "--from", sender, "--to", to, "--helo", helo, "--timeout", "10",
                           "--header", "Subject: fixture test", "--body", "hello peer", *args],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


@needs_swaks
def test_smtp_peer_records_envelope_and_content(smtp_peers):
    peer = smtp_peers.start("mx1.b.test")
    assert peer.ip.startswith("127.0.0.") and peer.ip != "127.0.0.1"
    rc, out = swaks(peer, to="bob@b.test,carol@b.test")
    assert rc == 0, out
    assert "220 mx1.b.test ESMTP" in out
    (message,) = peer.wait(1, timeout=5)
    assert message.mail_from == "alice@a.test"
    assert message.rcpt_tos == ["bob@b.test", "carol@b.test"]
    assert message.ehlo == "client.a.test"
    assert message.client[0] == "127.0.0.1"
    assert message.header("Subject") == "fixture test"
    assert b"hello peer" in message.data
    assert message.data.endswith(b"\r\n")
    assert peer.connections == 1 and peer.transactions == [1]
    assert [c[1] for c in peer.commands] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert peer.wait(1, match="carol@b.test") == [message]


@needs_swaks
@pytest.mark.parametrize("script,exit_code", [
    ({"greeting": "554 5.7.1 go away"}, 21),
    ({"greeting": CLOSE}, 6),
    ({"ehlo": "550 5.7.1 no EHLO for you", "helo": "550 5.7.1 nor HELO"}, 22),
    ({"mail": "451 4.3.0 try later"}, 23),
    ({"rcpt": "550 5.1.1 no such user"}, 24),
    ({"data_cmd": "554 5.5.1 no DATA"}, 25),
    ({"data": "552 5.3.4 too big"}, 26),
])
def test_smtp_peer_scripted_failures_reach_the_client(smtp_peers, script, exit_code):
    peer = smtp_peers.start("mx.b.test", **script)
    rc, out = swaks(peer)
    assert rc == exit_code, out
    assert peer.received() == []
    reply = next(iter(script.values()))
    if reply is not CLOSE:
        assert reply in out


@needs_swaks
def test_smtp_peer_rcpt_per_address_and_data_rejection_recorded(smtp_peers):
    peer = smtp_peers.start(rcpt={"bad@b.test": "550 5.1.1 unknown", "*": "250 2.1.5 fine"})
    rc, out = swaks(peer, to="good@b.test,bad@b.test")
    assert rc == 0, out
    assert "550 5.1.1 unknown" in out
    assert peer.wait(1)[0].rcpt_tos == ["good@b.test"]
    peer.script(data="554 5.6.0 content rejected")
    rc, out = swaks(peer)
    assert rc == 26
    assert [m.rcpt_tos for m in peer.rejected] == [["bob@b.test"]]
    assert len(peer.received()) == 1


@needs_swaks
def test_smtp_peer_reply_lists_and_callables(smtp_peers):
    peer = smtp_peers.start(rcpt=["451 4.2.0 later", "452 4.2.2 full"])
    assert swaks(peer)[0] == 24
    assert swaks(peer)[0] == 24
    assert swaks(peer)[0] == 0  # the list is used up: default behaviour
    seen = []

    def by_address(ctx):
        seen.append((ctx.stage, ctx.argument, ctx.mail_from, ctx.connection))
        return "550 5.1.1 not here" if ctx.argument.startswith("x") else None

    peer.script(rcpt=by_address)
    assert swaks(peer, to="xavier@b.test")[0] == 24
    assert swaks(peer, to="yves@b.test")[0] == 0
    assert seen == [("rcpt", "xavier@b.test", "alice@a.test", 3),
                    ("rcpt", "yves@b.test", "alice@a.test", 4)]
    assert peer.connections == 5 and peer.transactions == [0, 0, 1, 0, 1]


@needs_swaks
@pytest.mark.parametrize("stage", ["ehlo", "mail", "rcpt", "data_cmd", "in_data", "data"])
def test_smtp_peer_close_drops_the_connection(smtp_peers, stage):
    peer = smtp_peers.start(**{stage: CLOSE})
    rc, out = swaks(peer)
    assert rc not in (0, 1), out
    assert peer.received() == []
    assert peer.connections == 1


def test_smtp_peer_delay_and_connection_reuse(smtp_peers):
    import smtplib
    peer = smtp_peers.start(data=Delay(0.5, "250 2.0.0 slow but fine"))
    with smtplib.SMTP(peer.ip, peer.port, timeout=10) as client:
        client.ehlo("reuse.a.test")
        started = time.monotonic()
        client.sendmail("a@a.test", ["b@b.test"], b"Subject: one\r\n\r\nbody one\r\n")
        assert time.monotonic() - started >= 0.45
        client.sendmail("a@a.test", ["c@b.test"], b"Subject: two\r\n\r\n..dot\r\n")
    first, second = peer.wait(2, timeout=5)
    assert first.reply == "250 2.0.0 slow but fine"
    # smtplib dot-stuffs "..dot" to "...dot"; the peer records the unstuffed original
    assert second.data == b"Subject: two\r\n\r\n..dot\r\n"
    assert peer.connections == 1 and peer.transactions == [2]
    assert peer.ehlo_names == ["reuse.a.test"]


def test_smtp_peer_greeting_reject_answers_quit_only(smtp_peers):
    peer = smtp_peers.start(greeting="554 5.7.1 you are denied")
    with socket.create_connection((peer.ip, peer.port), timeout=5) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline() == b"554 5.7.1 you are denied\r\n"
        stream.write(b"EHLO x.test\r\n")
        stream.flush()
        assert stream.readline().startswith(b"503 ")
        stream.write(b"QUIT\r\n")
        stream.flush()
        assert stream.readline().startswith(b"221 ")
        assert stream.readline() == b""


def test_smtp_peers_distinct_addresses_refusing_and_stop(smtp_peers):
    one = smtp_peers.start("one")
    two = smtp_peers.start("two")
    dead = smtp_peers.refusing()
    assert len({one.ip, two.ip, dead}) == 3
    assert one.port == two.port == smtp_peers.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dead, smtp_peers.port), timeout=5)
    one.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((one.ip, one.port), timeout=5)
    again = smtp_peers.start("one-again", ip=one.ip)
    with socket.create_connection((again.ip, again.port), timeout=5) as sock:
        assert sock.recv(100).startswith(b"220 one-again ")
    again.wait_connections(1, timeout=5)


def test_smtp_peer_waits_are_bounded(smtp_peers):
    peer = smtp_peers.start()
    started = time.monotonic()
    with pytest.raises(AssertionError, match="0 of 1 matching messages"):
        peer.wait(1, timeout=0.3)
    with pytest.raises(AssertionError, match="0 of 1 connections"):
        peer.wait_connections(1, timeout=0.3)
    assert time.monotonic() - started < 3


# ------------------------------------------------------------------ instance


def test_instance_writes_the_configuration_directory(onehop, dns, smtp_peers):
    mta = onehop(conf={"relayhost": "[127.0.0.9]:2525", "retry_max": None},
                 routes="b.test [127.0.0.5]\n", aliases="postmaster: root")
    text = mta.path("onehop.conf").read_text()
    assert "dns_servers = %s\n" % dns.address in text
    assert "remote_port = %d\n" % smtp_peers.port in text
    assert "relayhost = [127.0.0.9]:2525\n" in text
    assert "queue_dir = queue\n" in text and "run_dir = run\n" in text
    assert "log = maillog\n" in text
    assert "retry_max" not in text
    assert mta.path("routes").read_text() == "b.test [127.0.0.5]\n"
    assert mta.path("aliases").read_text() == "postmaster: root\n"
    assert mta.path("sites").read_text() == ""
    assert mta.log_path == mta.dir / "maillog"
    host, port = mta.smtp_address
    assert host == "127.0.0.1" and 0 < port < 65536
    assert len(str(mta.run_dir / "master.sock")) < 100  # fits a unix socket address
    mta.set_conf(myhostname="other.test")
    assert "myhostname = other.test\n" in mta.path("onehop.conf").read_text()


def test_log_line_parser_reads_spec_section_8_lines():
    from fixtures.instance import parse_log_line
    sent = parse_log_line("Nov 22 10:00:00 host onehop/remote[420]: 4Xb9kQz1Y2: to=<bob@b.test>, "
                          "relay=mx1.b.test[127.0.0.2]:2526, delay=0.21, "
                          "status=sent (250 2.0.0 Ok)")
    assert (sent.service, sent.pid, sent.qid) == ("remote", 420, "4Xb9kQz1Y2")
    assert sent.to == "bob@b.test" and sent.fields["relay"] == "mx1.b.test[127.0.0.2]:2526"
    assert (sent.status, sent.reason) == ("sent", "250 2.0.0 Ok")
    deferred = parse_log_line("onehop/remote[420]: 4Xb9kQz1Y2: to=<carol@c.test>, relay=none, "
                              "delay=31, status=deferred (connect to mx.c.test[127.0.0.3]:2526: "
                              "Connection refused)")
    assert deferred.status == "deferred"
    assert deferred.reason == "connect to mx.c.test[127.0.0.3]:2526: Connection refused"
    arrival = parse_log_line("onehop/queue[815]: 4Xb9kQz1Y2: from=<alice@a.test>, size=1234, "
                             "nrcpt=2")
    assert arrival.sender == "alice@a.test" and arrival.fields["nrcpt"] == "2"
    assert arrival.status is None
    removed = parse_log_line("onehop/router[419]: 4Xb9kQz1Y2: removed")
    assert removed.qid == "4Xb9kQz1Y2" and removed.fields == {}
    connect = parse_log_line("onehop/smtpd[812]: connect from client.test[127.0.0.9]")
    assert connect.qid is None and connect.text == "connect from client.test[127.0.0.9]"
    assert parse_log_line("onehop/smtpd[812]: warning: something odd").qid is None
    null = parse_log_line("onehop/queue[1]: 4Xb9kQz1Y3: from=<>, size=1, nrcpt=1")
    assert null.sender == ""
    assert parse_log_line("kernel: unrelated") is None


FAKE_ONEHOP = """#!/bin/sh
# a stand-in for onehop: start leaves a daemon behind that keeps stdout open
[ "$1" = -C ] && { dir=$2; shift 2; }
case $1 in
start) sleep 300 & echo "$!" > "$dir/daemon.pid"; echo started; exit 0 ;;
stop) echo stopped >> "$dir/stop-calls"; exit 0 ;;
*) echo "fake onehop: $1" >&2; exit 2 ;;
esac
"""


def fake_bin(tmp_path):
    directory = tmp_path / "fakebin"
    directory.mkdir(exist_ok=True)
    (directory / "onehop").write_text(FAKE_ONEHOP)
    (directory / "onehop").chmod(0o755)
    return directory


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_instance_teardown_stops_then_kills_leftovers(tmp_path):
    from fixtures.instance import Instance
    mta = Instance(bin_dir=fake_bin(tmp_path), keep=True)
    try:
        started = time.monotonic()
        result = mta.start()
        assert time.monotonic() - started < 10  # a daemon holding stdout does not hang us
        assert result.out == "started\n"
        daemon = int(mta.path("daemon.pid").read_text())
        assert _pid_alive(daemon)
        mta.close()
        assert not _pid_alive(daemon)
        assert mta.leftovers == [daemon]
        assert mta.path("stop-calls").read_text() == "stopped\n"
    finally:
        shutil.rmtree(mta.dir, ignore_errors=True)


def test_instance_teardown_without_start_does_not_stop(tmp_path):
    from fixtures.instance import Instance
    mta = Instance(bin_dir=fake_bin(tmp_path), keep=True)
    try:
        assert mta.cmd("frobnicate") == (2, "", "fake onehop: frobnicate\n")
        mta.close()
        assert not mta.path("stop-calls").exists()
        assert mta.leftovers == []
    finally:
        shutil.rmtree(mta.dir, ignore_errors=True)
    mta = Instance(bin_dir=fake_bin(tmp_path))
    mta.close()
    assert not mta.dir.exists()


def test_instance_programs_come_from_onehop_bin_only(tmp_path):
    from fixtures.instance import Instance
    mta = Instance(bin_dir=tmp_path / "nothing-here")
    try:
        with pytest.raises(AssertionError, match="nothing-here/onehop is missing"):
            mta.cmd("check")
    finally:
        mta.close()


# ------------------------------------------------------------- onehop check (real program)

needs_onehop = pytest.mark.skipif(
    not (onehop_bin() / "onehop").is_file(),
    reason="%s/onehop is missing: build it (make) or set ONEHOP_BIN" % onehop_bin())

DIAG_LINE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+): (?P<message>.+)$")


@needs_onehop
def test_check_default_instance_configuration_is_clean(onehop):
    mta = onehop()
    assert mta.cmd("check") == (0, "", "")


@needs_onehop
def test_check_reports_each_mistake_as_file_line(onehop):
    mta = onehop(conf={"no_such_key": "1"},
                 routes="good.test [127.0.0.5]:2525\nbad.test [127.0.0.6]:99999\n",
                 sites="site hub hub.test\nsite one one.test\nlocal one\n"
                       "link one nowhere 10 smtp\n")
    conf_line = list(mta.conf).index("no_such_key") + 1
    rc, out, err = mta.cmd("check")
    assert rc == 1
    found = [DIAG_LINE.match(line) for line in (out + err).splitlines()]
    found = [(Path(m["file"]).name, int(m["line"])) for m in found if m]
    assert sorted(found) == sorted([("onehop.conf", conf_line), ("routes", 2), ("sites", 4)])
    for line in (out + err).splitlines():
        m = DIAG_LINE.match(line)
        if m:
            assert Path(m["file"]).parent == mta.dir


@needs_onehop
def test_check_unknown_subcommand_is_a_usage_error(onehop):
    mta = onehop()
    rc, out, err = mta.cmd("no-such-command")
    assert rc == 2
    assert "no-such-command" in err


@needs_onehop
def test_check_dash_c_wins_over_onehop_config(onehop):
    good = onehop()
    bad = onehop(routes="bad.test [127.0.0.6]:99999\n")
    # without -C: $ONEHOP_CONFIG names the directory
    rc, out, err = good.run("onehop", "check", config=False, env={"ONEHOP_CONFIG": str(bad.dir)})
    assert rc == 1 and "routes:1:" in out + err
    rc, out, err = bad.run("onehop", "check", config=False, env={"ONEHOP_CONFIG": str(good.dir)})
    assert (rc, out, err) == (0, "", "")
    # with -C: the option wins over the environment
    rc, out, err = good.run("onehop", "-C", str(good.dir), "check", config=False,
                            env={"ONEHOP_CONFIG": str(bad.dir)})
    assert (rc, out, err) == (0, "", "")
    rc, out, err = good.run("onehop", "-C", str(bad.dir), "check", config=False,
                            env={"ONEHOP_CONFIG": str(good.dir)})
    assert rc == 1
