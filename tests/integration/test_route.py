"""onehop route (SPEC 1, 4, 5; issue 11 items 2-4): the routing decision
explained for each recipient without a running daemon: every routes form
and the lookup order, aliases of every target kind and an alias loop, the
hub-and-two-spokes example of SPEC 5 with site_direct_smtp yes and no, a
non-smtp link, a domain in no site, relayhost, a route back to this host
(D5), and `onehop route --graph` checked by Graphviz's own `dot -Tsvg`.

Each test writes a configuration directory (fixtures/instance.py) and runs
the real bin/onehop on it; nothing is started, so nothing is left running.
"""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

# SPEC 5's example (site3 on an rpc link) and a site that no link reaches.
HUB_SITES = """\
site hub     hub.example.com                         # site NAME DOMAIN...
site site1   site1.example.com  corp1.example
site site2   site2.example.com
site site3   site3.example.com
site lone    lone.example.com
local site1                                          # the site this server is in
link site1 hub  10 smtp  [gw.hub.example.com]        # link A B COST TYPE [GATEWAY]
link site2 hub  10 smtp
link site3 hub  20 rpc   [gw.hub.example.com]
"""

# SPEC 4's example, one route per form, plus `local` and a route back here.
ROUTES = """\
# pattern          next hop
example.com        [192.0.2.10]:25        # deliver to this address, no MX lookup
.example.com       relay.example.net      # subdomains: look up relay.example.net's MX
partner.test       [mx.partner.test]:2526 # host name, A/AAAA lookup only (no MX)
bad.test           error:5.1.2 no such domain here
multi.test         a.test, [b.test]:2525, relay.test:26
here.test          local
*                  [smarthost.isp.test]:587
"""


def route_json(instance, *addresses):
    """onehop route --json ADDRESS... parsed: address -> its recipients."""
    got = instance.json("route", "--json", *addresses)
    assert [a["address"] for a in got] == list(addresses)
    return {a["address"]: a["recipients"] for a in got}


def one(instance, address):
    recipients = route_json(instance, address)[address]
    assert len(recipients) == 1, recipients
    return recipients[0]


def hops(result, key="nexthop"):
    return [h[key] for h in result["next_hops"]]


# ------------------------------------------------------------------ routes


@pytest.mark.parametrize("address, line, rule, action, next_hops, hop_count", [
    ("u@example.com", 2, "route", "remote", ["[192.0.2.10]:25"], 1),
    ("u@a.b.example.com", 3, "route", "remote", ["relay.example.net"], 1),
    ("u@partner.test", 4, "route", "remote", ["[mx.partner.test]:2526"], 1),
    ("u@multi.test", 6, "route", "remote", ["a.test", "[b.test]:2525", "relay.test:26"], 1),
    ("u@here.test", 7, "route", "local", ["local"], 0),
    ("u@anywhere.test", 8, "route", "remote", ["[smarthost.isp.test]:587"], 2),
])
def test_each_routes_form(onehop, address, line, rule, action, next_hops, hop_count):
    instance = onehop(routes=ROUTES)
    r = one(instance, address)
    assert (r["rule"], r["line"], r["action"]) == (rule, line, action)
    assert hops(r) == next_hops
    assert r["hop_count"] == hop_count
    assert r["description"] == "routes line %d" % line
    assert r["status"] is None and r["reason"] is None


def test_error_route_bounces_with_its_text(onehop):
    instance = onehop(routes=ROUTES)
    r = one(instance, "u@bad.test")
    assert (r["rule"], r["line"], r["action"]) == ("route", 5, "bounce")
    assert (r["status"], r["reason"]) == ("5.1.2", "no such domain here")
    text = instance.cmd("route", "u@bad.test")
    assert text.rc == 0
    assert text.out == "u@bad.test: routes line 5: bounced 5.1.2 no such domain here\n"


def test_routes_lookup_order_exact_then_parents_then_star(onehop):
    # written in the "wrong" order: the order of lookup, not of the file, decides
    instance = onehop(routes="*  [star.test]\n.example.com [sub.test]\n.a.example.com [a-sub.test]\n"
                             "a.example.com [exact.test]\n")
    got = route_json(instance, "u@a.example.com", "u@x.a.example.com", "u@y.example.com",
                     "u@example.com", "u@other.test")
    assert hops(got["u@a.example.com"][0]) == ["[exact.test]"]
    assert hops(got["u@x.a.example.com"][0]) == ["[a-sub.test]"]
    assert hops(got["u@y.example.com"][0]) == ["[sub.test]"]
    assert hops(got["u@example.com"][0]) == ["[star.test]"]  # .example.com: subdomains only
    assert hops(got["u@other.test"][0]) == ["[star.test]"]
    assert [got[a][0]["line"] for a in sorted(got)] == [4, 1, 1, 3, 2]


def test_route_back_to_this_host_is_deferred_not_used(onehop):
    instance = onehop()
    host, port = instance.smtp_address
    instance.write("routes", "self.test [%s]:%d\nme.test [mta.onehop.test]\n" % (host, port))
    got = route_json(instance, "u@self.test", "u@me.test")
    for address, hop in (("u@self.test", "[%s]:%d" % (host, port)),
                         ("u@me.test", "[mta.onehop.test]")):
        r = got[address][0]
        assert (r["action"], r["status"]) == ("defer", "4.4.6")
        assert r["reason"] == "mail for %s loops back to myself (next hop %s)" % (
            address.split("@")[1], hop)


# ----------------------------------------------------------------- aliases

ALIASES = """\
team: alice, bob@remote.test, "|/usr/bin/filter --tag team",
      /var/tmp/team.archive, :include:lists/team.txt
loop1: loop2
loop2: loop3
loop3: loop1
"""


def test_alias_with_every_target_kind(onehop):
    instance = onehop(aliases=ALIASES)
    (instance.dir / "lists").mkdir()
    instance.write("lists/team.txt", "# members\ncarol\ndave@remote.test, erin@local.test\n")
    recipients = route_json(instance, "team@localhost")["team@localhost"]
    got = [(r["recipient"], r["rule"], r["action"], hops(r), r["hop_count"]) for r in recipients]
    assert got == [
        ("alice@mta.onehop.test", "local", "local", ["local"], 0),
        ("bob@remote.test", "mx", "remote", ["remote.test"], 1),
        ("|/usr/bin/filter --tag team", "alias-command", "local", ["local"], 0),
        ("/var/tmp/team.archive", "alias-file", "local", ["local"], 0),
        ("carol@mta.onehop.test", "local", "local", ["local"], 0),
        ("dave@remote.test", "mx", "remote", ["remote.test"], 1),
        ("erin@local.test", "local", "local", ["local"], 0),
    ]
    include = "team -> :include:%s/lists/team.txt" % instance.dir
    assert [r["via"] for r in recipients] == ["team"] * 4 + [include] * 3
    text = instance.cmd("route", "team@localhost")
    assert text.rc == 0
    lines = text.out.splitlines()
    assert lines[0] == "team@localhost: alias team (aliases line 1), 7 recipients"
    assert lines[3] == "  |/usr/bin/filter --tag team: alias-command (aliases line 1), " \
                       "next hop local, 0 hops"
    assert lines[4] == "  /var/tmp/team.archive: alias-file (aliases line 2), next hop local, 0 hops"
    assert lines[6] == "  dave@remote.test: mx, next hop MX remote.test, 1 hop (via %s)" % include


def test_alias_loop_is_bounced_with_a_clear_reason(onehop):
    instance = onehop(aliases=ALIASES)
    r = one(instance, "loop1@localhost")
    assert (r["rule"], r["action"], r["status"]) == ("alias", "bounce", "5.4.6")
    assert r["reason"] == "alias loop: loop1 -> loop2 -> loop3 -> loop1"
    assert r["line"] == 5  # loop3's line closes the loop


def test_unknown_local_user_with_local_users_passwd(onehop):
    instance = onehop(conf={"local_users": "passwd"})
    got = route_json(instance, "root@localhost", "no-such-user-zq@localhost")
    assert got["root@localhost"][0]["action"] == "local"
    r = got["no-such-user-zq@localhost"][0]
    assert (r["action"], r["status"]) == ("bounce", "5.1.1")


# ------------------------------------------------------------------- sites

HUB_DIRECT = ("bob@site2.example.com: site path site1->hub->site2 direct (rule 3), "
              "next hop MX site2.example.com, 1 hop; fallback (rule 5, every MX failed "
              "temporarily): [gw.hub.example.com], 2 hops\n")


def test_hub_and_two_spokes_direct(onehop):
    instance = onehop(sites=HUB_SITES, conf={"site_direct_smtp": "yes"})
    text = instance.cmd("route", "bob@site2.example.com")
    assert (text.rc, text.out, text.err) == (0, HUB_DIRECT, "")
    r = one(instance, "bob@site2.example.com")
    assert (r["rule"], r["path"], hops(r), r["hop_count"]) == (
        "site-direct", ["site1", "hub", "site2"], ["site2.example.com"], 1)
    assert r["next_hops"][0]["kind"] == "mx"
    fallback = r["fallback"]
    assert "nexthop" not in json.dumps(fallback), "a fallback names no next hop of this attempt"
    assert (fallback["rule"], hops(fallback, "gateway"), fallback["hop_count"]) == (
        "site-gateway", ["[gw.hub.example.com]"], 2)


def test_hub_and_two_spokes_without_direct_smtp(onehop):
    instance = onehop(sites=HUB_SITES, conf={"site_direct_smtp": "no"})
    r = one(instance, "bob@site2.example.com")
    assert (r["rule"], r["path"], hops(r), r["hop_count"], r["fallback"]) == (
        "site-gateway", ["site1", "hub", "site2"], ["[gw.hub.example.com]"], 2, None)
    text = instance.cmd("route", "bob@site2.example.com")
    assert text.out == ("bob@site2.example.com: site path site1->hub->site2 gateway (rule 4), "
                        "next hop [gw.hub.example.com], 2 hops\n")


def test_first_link_without_gateway_goes_to_the_far_sites_mx(onehop):
    sites = HUB_SITES.replace("link site1 hub  10 smtp  [gw.hub.example.com]",
                              "link site1 hub  10 smtp")
    instance = onehop(sites=sites, conf={"site_direct_smtp": "no"})
    r = one(instance, "bob@site2.example.com")
    assert (r["rule"], hops(r), r["next_hops"][0]["kind"]) == (
        "site-gateway", ["hub.example.com"], "mx")


def test_non_smtp_link_goes_to_the_gateway(onehop):
    instance = onehop(sites=HUB_SITES, conf={"site_direct_smtp": "yes"})
    r = one(instance, "carol@site3.example.com")
    assert (r["rule"], r["path"], hops(r), r["hop_count"]) == (
        "site-gateway", ["site1", "hub", "site3"], ["[gw.hub.example.com]"], 2)


def test_local_site_and_domain_in_no_site(onehop):
    instance = onehop(sites=HUB_SITES)
    got = route_json(instance, "u@corp1.example", "u@lone.example.com", "u@elsewhere.test")
    assert (got["u@corp1.example"][0]["rule"], got["u@corp1.example"][0]["action"]) == (
        "site-local", "local")
    for address in ("u@lone.example.com", "u@elsewhere.test"):  # rule 6 / no site: MX
        r = got[address][0]
        assert (r["rule"], hops(r), r["hop_count"], r["path"]) == (
            "mx", [address.split("@")[1]], 1, None)


def test_relayhost_after_sites_before_mx(onehop):
    instance = onehop(sites=HUB_SITES, conf={"relayhost": "[relay.isp.test]:587"})
    got = route_json(instance, "u@elsewhere.test", "bob@site2.example.com")
    r = got["u@elsewhere.test"][0]
    assert (r["rule"], hops(r), r["hop_count"]) == ("relayhost", ["[relay.isp.test]:587"], 2)
    assert got["bob@site2.example.com"][0]["rule"] == "site-direct"


# ------------------------------------------------------------------- graph


def dot_program():
    dot = shutil.which("dot")
    if dot is None:
        why = "Graphviz's dot is missing (scripts/deps.sh test installs graphviz)"
        if os.environ.get("CI") == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return dot


def test_graph_is_accepted_by_dot_with_the_chosen_paths_marked(onehop, tmp_path):
    dot = dot_program()
    instance = onehop(sites=HUB_SITES)
    graph = instance.cmd("route", "--graph")
    assert graph.rc == 0, graph.err
    lines = graph.out.splitlines()
    assert lines[0] == "graph sites {"
    assert '    label="local site: site1";' in lines
    chosen = [line for line in lines if " -- " in line and "color=blue" in line]
    assert len(chosen) == 3  # site1-hub, hub-site2, hub-site3: the tree of least-cost paths
    assert all("lone" not in line for line in chosen)
    assert any('"site3" -- "hub"' in line and "style=dashed" in line for line in lines)
    svg = subprocess.run([dot, "-Tsvg"], input=graph.out.encode(), capture_output=True,
                         timeout=60)
    assert svg.returncode == 0, svg.stderr.decode()
    root = ET.fromstring(svg.stdout)
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {"site1", "hub", "site2", "site3", "lone"} <= titles
    assert "site1--hub" in titles


# ------------------------------------------------------------ usage, errors


def test_configuration_mistakes_are_reported_and_fail(onehop):
    instance = onehop(routes="example.com\n")
    r = instance.cmd("route", "u@example.com")
    assert r.rc == 1
    assert "%s/routes:1:" % instance.dir in r.err
    assert r.out == ""


@pytest.mark.parametrize("args", [("route",), ("route", "--graph", "u@x.test"),
                                  ("route", "--frobnicate", "u@x.test")])
def test_usage_errors(onehop, args):
    r = onehop().cmd(*args)
    assert r.rc == 2
    assert "usage: onehop [-C DIR] route" in r.err
