"""onehop-smtpd and the routes file (SPEC 4, D4 b, D6): a recipient whose
domain has an `error:` route is not refused at RCPT time: the server
accepts it like any relayed recipient, and the router bounces it with the
route's text in a DSN to the sender. Relay control still comes first: the
same recipient from a client outside mynetworks is refused (554 5.7.1).
"""

import os
import smtplib

import pytest

from fixtures.paths import onehop_bin as onehop_bin_path

RUN_AS = "nobody" if os.geteuid() == 0 else None


@pytest.fixture
def mta(onehop, smtp_peers):
    if not (onehop_bin_path() / "onehop-smtpd").is_file():
        pytest.fail("bin/onehop-smtpd is missing: build it first", pytrace=False)
    peer = smtp_peers.start("src")
    routes = "bad.test  error:5.1.2 no such domain here\nsrc.test  [%s]\n" % peer.ip
    m = onehop(conf={"mynetworks": "127.0.0.1/32"}, routes=routes, run_as=RUN_AS)
    m.peer = peer
    m.start()
    return m


def test_error_route_accepted_then_bounced_with_its_text(mta):
    refused = mta.submit("alice@src.test", ["bob@bad.test"],
                         b"Subject: error route\r\n\r\nbody\r\n")
    assert refused == {}
    (line,) = mta.wait_delivery("bob@bad.test", "bounced", timeout=20)
    assert "no such domain here" in line.reason
    (dsn,) = mta.peer.wait(1, timeout=20)
    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == ["alice@src.test"]
    report = dsn.email()
    assert report.get_content_type() == "multipart/report"
    assert b"no such domain here" in dsn.data
    assert b"Subject: error route" in dsn.data


def test_error_route_from_outside_mynetworks_is_a_relay_refusal(mta):
    host, port = mta.smtp_address
    with smtplib.SMTP(host, port, source_address=("127.0.0.9", 0), timeout=15) as client:
        client.ehlo("outside.test")
        assert client.mail("alice@src.test")[0] == 250
        code, text = client.rcpt("bob@bad.test")
    assert (code, text[:5]) == (554, b"5.7.1")
