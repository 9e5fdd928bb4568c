"""pytest fixtures of onehop's black-box integration suite.

dns        a fresh DNSServer (fixtures/dnsserver.py) on 127.0.0.1, started and stopped per test
"""

import pytest

from fixtures.dnsserver import DNSServer


@pytest.fixture
def dns():
    server = DNSServer().start()
    try:
        yield server
    finally:
        server.stop()
