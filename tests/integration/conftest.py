"""pytest fixtures of onehop's black-box integration suite.

dns          a fresh DNSServer (fixtures/dnsserver.py) on 127.0.0.1, started and stopped per test
smtp_peers   SMTPPeers (fixtures/smtppeer.py): .start(name, **script) -> a scripted peer on a
             new 127.0.0.N at smtp_peers.port; .refusing() -> an address that refuses
sinks        the same object as smtp_peers
"""

import pytest

from fixtures.dnsserver import DNSServer
from fixtures.smtppeer import SMTPPeers


@pytest.fixture
def dns():
    server = DNSServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_peers():
    peers = SMTPPeers()
    try:
        yield peers
    finally:
        peers.stop()


@pytest.fixture
def sinks(smtp_peers):
    return smtp_peers
