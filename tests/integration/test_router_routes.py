"""onehop-router end to end: each form of the routes file (SPEC 4) and the
site topology (SPEC 5) decide where real mail goes. `onehop start`
instances with the real daemons, the dnslib DNS fixture and aiosmtpd peers;
each test checks which peer got the message and which did not, and the
route `onehop queue show` or the log reports.
"""

import time

from test_master import master_bin  # noqa: F401 (a fixture)
from test_router import SENDER, instance, queue_ids, send, wait_queue_empty


def got(peer, token):
    return [m for m in peer.received() if token.encode() in m.data]


# ----------------------------------------------------------- routes (SPEC 4)


def test_each_routes_form(onehop, master_bin, smtp_peers, dns):
    exact = smtp_peers.start("exact.test")
    relay = smtp_peers.start("relay.r.test")
    bracket = smtp_peers.start("gw.h.test")
    listed = smtp_peers.start("second.l.test")
    star = smtp_peers.start("star.test")
    sender = smtp_peers.start("mx.a.test")
    dead = smtp_peers.refusing()
    port = smtp_peers.port
    dns.mx_to("relay.r.test", relay.ip)
    dns.a("gw.h.test", [bracket.ip])
    routes = "\n".join([
        "b.test [%s]:%d" % (exact.ip, port),             # exact domain, an address
        ".sub.test relay.r.test",                         # subdomains: MX of a bare host
        "h.test [gw.h.test]",                             # [host]: its A, no MX
        "l.test [%s]:%d, [%s]:%d" % (dead, port, listed.ip, port),  # a list, in order
        "bad.test error:5.1.2 no such domain here",       # error:
        "a.test [%s]:%d" % (sender.ip, port),
        "* [%s]:%d" % (star.ip, port),                    # everything else
    ]) + "\n"
    mta = instance(onehop, master_bin, routes=routes)
    mta.start()
    cases = [("bob@b.test", exact), ("bob@x.sub.test", relay), ("bob@h.test", bracket),
             ("bob@l.test", listed), ("bob@z.test", star)]
    for i, (rcpt, _) in enumerate(cases):
        send(mta, [rcpt], "tok-routes-%d" % i)
    send(mta, ["bob@bad.test"], "tok-routes-bad")
    for i, (rcpt, peer) in enumerate(cases):
        deadline = time.monotonic() + 20
        while not got(peer, "tok-routes-%d" % i) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(got(peer, "tok-routes-%d" % i)) == 1, (rcpt, mta.log_tail())
        for _, other in cases:
            if other is not peer:
                assert not got(other, "tok-routes-%d" % i), (rcpt, other)
    # the list: the first next hop refused, the second took it within the same attempt
    assert mta.deliveries(to="bob@l.test", status="deferred") == []
    # [host]: an A lookup, never an MX one
    assert dns.count("gw.h.test", "A") >= 1 and dns.count("gw.h.test", "MX") == 0
    # a bare host: its MX
    assert dns.count("relay.r.test", "MX") >= 1
    (bounced,) = mta.wait_delivery("bob@bad.test", "bounced", timeout=20)
    assert bounced.service == "router" and "5.1.2 no such domain here" in bounced.reason
    (dsn,) = sender.wait(1, timeout=20)
    assert "Status: 5.1.2" in dsn.text
    wait_queue_empty(mta)


def test_queue_show_records_the_route(onehop, master_bin, smtp_peers):
    peer = smtp_peers.start("busy.b.test", rcpt="451 4.2.0 later")
    mta = instance(onehop, master_bin, retry_min="60s", retry_max="60s",
                   routes="# comment\nb.test [%s]:%d\n" % (peer.ip, smtp_peers.port))
    mta.start()
    send(mta, ["bob@b.test"], "tok-show-route")
    (qid,) = queue_ids(mta)
    mta.wait_delivery("bob@b.test", "deferred", timeout=20)
    time.sleep(0.5)
    (r,) = mta.queue_show(qid)["recipients"]
    assert r["route"] == "routes line 2 -> [%s]:%d" % (peer.ip, smtp_peers.port), r


# ------------------------------------------------------------- sites (SPEC 5)

SITES = """\
site hub   hub.test
site site1 site1.test
site site2 site2.test
site site3 site3.test
local site1
link site1 hub 10 smtp [%(gw)s]:%(port)d
link site2 hub 10 smtp
link site3 hub 20 rpc
"""


def sites_instance(onehop, master_bin, smtp_peers, dns, direct):
    hub = smtp_peers.start("gw.hub.test")
    spoke2 = smtp_peers.start("mx.site2.test")
    spoke3 = smtp_peers.start("mx.site3.test")
    nosite = smtp_peers.start("mx.nosite.test")
    dns.mx_to("site2.test", spoke2.ip)
    dns.mx_to("site3.test", spoke3.ip)
    dns.mx_to("nosite.test", nosite.ip)
    mta = instance(onehop, master_bin, site_direct_smtp=direct)
    mta.write("sites", SITES % {"gw": hub.ip, "port": smtp_peers.port})
    mta.start()
    return mta, hub, spoke2, spoke3, nosite


def test_sites_direct_one_hop_never_through_the_hub(onehop, master_bin, smtp_peers, dns):
    mta, hub, spoke2, spoke3, nosite = sites_instance(onehop, master_bin, smtp_peers, dns, "yes")
    send(mta, ["bob@site2.test"], "tok-site-direct")
    send(mta, ["bob@nosite.test"], "tok-site-none")
    send(mta, ["bob@site3.test"], "tok-site-rpc")
    (at2,) = spoke2.wait(1, timeout=20)
    assert b"tok-site-direct" in at2.data
    (at_none,) = nosite.wait(1, timeout=20)        # a domain in no site: its MX
    assert b"tok-site-none" in at_none.data
    (at_hub,) = hub.wait(1, timeout=20)            # a non-smtp link on the path: the gateway
    assert b"tok-site-rpc" in at_hub.data and at_hub.rcpt_tos == ["bob@site3.test"]
    wait_queue_empty(mta)
    assert not got(hub, "tok-site-direct") and spoke3.received() == []
    qids = {l.to: l.qid for l in mta.deliveries(status="sent")}
    assert set(qids) == {"bob@site2.test", "bob@nosite.test", "bob@site3.test"}


def test_sites_direct_smtp_no_goes_to_the_hub_gateway(onehop, master_bin, smtp_peers, dns):
    mta, hub, spoke2, spoke3, nosite = sites_instance(onehop, master_bin, smtp_peers, dns, "no")
    send(mta, ["bob@site2.test"], "tok-site-gw")
    (at_hub,) = hub.wait(1, timeout=20)
    assert b"tok-site-gw" in at_hub.data
    (sent,) = mta.wait_delivery("bob@site2.test", "sent", timeout=10)
    assert sent.fields["relay"].startswith("%s[%s]" % (hub.ip, hub.ip))
    wait_queue_empty(mta)
    assert spoke2.received() == []


def test_sites_dns_failure_of_the_direct_mx_is_no_reason_for_the_hub(onehop, master_bin,
                                                                       smtp_peers, dns):
    """SPEC 5 rule 5 only when every MX failed temporarily: a SERVFAIL for the
    domain's MX keeps the next attempts direct (the hub never gets it)."""
    mta, hub, spoke2, spoke3, nosite = sites_instance(onehop, master_bin, smtp_peers, dns, "yes")
    dns.mode("site2.test", "servfail", qtype="MX")
    send(mta, ["bob@site2.test"], "tok-site-servfail")
    mta.wait_delivery("bob@site2.test", "deferred", n=3, timeout=30)
    assert hub.received() == [] and spoke2.received() == []
    dns.mode("site2.test", "normal", qtype="MX")
    (at2,) = spoke2.wait(1, timeout=30)
    assert b"tok-site-servfail" in at2.data
    wait_queue_empty(mta)
    assert hub.received() == []


def test_an_error_route_bounces_without_a_warning(onehop, master_bin, smtp_peers):
    """A recipient bounced by an error: route (SPEC 4) alone in its message:
    its DSN goes out and the log has no warning (the bounce-sent flag is
    recorded while the state still knows the message, not after the bounce
    finished it)."""
    sender = smtp_peers.start("mx.a.test")
    routes = "bad.test error:5.1.2 no such domain here\na.test [%s]:%d\n" % (
        sender.ip, smtp_peers.port)
    mta = instance(onehop, master_bin, routes=routes)
    mta.start()
    send(mta, ["bob@bad.test"], "tok-error-route")
    (bounced,) = mta.wait_delivery("bob@bad.test", "bounced", timeout=20)
    assert bounced.service == "router" and "5.1.2 no such domain here" in bounced.reason
    (dsn,) = sender.wait(1, timeout=20)
    assert "Status: 5.1.2" in dsn.text and "bob@bad.test" in dsn.text
    mta.wait_delivery(SENDER, "sent", timeout=20)
    wait_queue_empty(mta)
    warnings = [l for l in mta.log_lines() if "warning:" in l]
    assert warnings == [], "\n".join(warnings)
