"""The soak's unreliable outside world: SMTP peers and a DNS server that fail
at random, per one seeded RNG, until the faults are removed.

What it does: World starts, on 127.0.0.0/8 only, the DNS server of the
integration suite (tests/integration/fixtures/dnsserver.py, dnslib) and its
aiosmtpd peers (fixtures/smtppeer.py), all on one port: one peer per
remote domain dN.soak.test (N = 1..DOMAINS), one for the senders' domain
ret.soak.test (where DSNs to remote senders arrive), and an address that
refuses connections, published as the better MX of d1.soak.test. While
World.faults is on, every peer draws from the RNG at each stage:

  greeting  421 (the session is refused) or a slow banner
  RCPT      451, a random 552 (a bounce, SPEC D4 (a)), or a slow reply;
            recipients named bounce-* always get 550 5.1.1
  DATA      451 to the command, the connection dropped after the first
            line of message data, 451 after the final dot, a slow reply
and a fault thread stops d2's peer for a few seconds now and then (its
connections refused), and sets a DNS name (an MX or a peer's A record) to
SERVFAIL or to silence (a timeout) for a few seconds. The senders' peer
never answers 5xx: a DSN it refused would be dropped as SPEC D6 allows,
and the checker could not find it. heal() removes every fault; the
bounce-* recipients keep their 550.

It must never: listen outside 127.0.0.0/8, give a 5xx to a DSN, or keep a
fault after heal().
"""

import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from fixtures.dnsserver import DNSServer  # noqa: E402
from fixtures.smtppeer import CLOSE, Delay, SMTPPeers  # noqa: E402

DOMAINS = 4
SENDER_DOMAIN = "ret.soak.test"
TTL = 5  # seconds: DNS answers expire often, so the faults below are met


def remote_domain(n):
    return "d%d.soak.test" % n


class Faults:
    """The seeded random source and the on/off switch shared by every peer."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.on = True
        self.counts = {}

    def draw(self, table, kind):
        """One of table's (probability, what, reply) rows, or None: no fault."""
        chosen = None
        with self.lock:
            if not self.on:
                return None
            x = self.rng.random()
            for probability, what, reply in table:
                if x < probability:
                    self.counts[(kind, what)] = self.counts.get((kind, what), 0) + 1
                    chosen = reply
                    break
                x -= probability
        return chosen() if callable(chosen) else chosen

    def uniform(self, a, b):
        with self.lock:
            return self.rng.uniform(a, b)

    def chance(self, p):
        with self.lock:
            return self.on and self.rng.random() < p


def _slow(faults, low, high):
    return lambda: Delay(faults.uniform(low, high), None)


class World:
    """DNS server, peers and the fault thread (see the module comment)."""

    def __init__(self, seed, dns_port, peer_port):
        self.faults = Faults(seed)
        self.dns = DNSServer(port=dns_port)
        self.dns.start()
        self.peers = SMTPPeers(port=peer_port)
        self.domain_peers = {}  # domain -> [SMTPPeer, ...] (d2's is restarted)
        self.refusing_ip = self.peers.refusing()
        self._stop = threading.Event()
        self._thread = None
        self.events = []  # (time, what) of every fault the thread set

    # -------------------------------------------------------------- set up

    def start(self):
        for n in range(1, DOMAINS + 1):
            domain = remote_domain(n)
            peer = self.peers.start("mx.%s" % domain, **self._script(5))
            self.domain_peers[domain] = [peer]
            self._publish(domain, peer.ip, better=self.refusing_ip if n == 1 else None)
        peer = self.peers.start("mx.%s" % SENDER_DOMAIN, **self._script(0))
        self.domain_peers[SENDER_DOMAIN] = [peer]
        self._publish(SENDER_DOMAIN, peer.ip)
        self._thread = threading.Thread(target=self._fault_loop, name="soak-faults",
                                        daemon=True)
        self._thread.start()
        return self

    def _publish(self, domain, ip, better=None):
        hosts = [(20, "mx.%s" % domain)]
        self.dns.a("mx.%s" % domain, [ip], ttl=TTL)
        if better:
            hosts.append((10, "mx0.%s" % domain))
            self.dns.a("mx0.%s" % domain, [better], ttl=TTL)
        self.dns.mx(domain, hosts, ttl=TTL)

    def _script(self, bounce_percent):
        """The peer's stages: each a callable that draws a fault."""
        f = self.faults
        bounce = bounce_percent / 1000.0
        greeting = [(0.03, "421 greeting", "421 4.3.2 soak: too busy, come back later"),
                    (0.02, "slow greeting", _slow(f, 1, 4))]
        rcpt = [(0.04, "451 RCPT", "451 4.3.0 soak: try RCPT later"),
                (bounce, "552 RCPT", "552 5.2.2 soak: mailbox full"),
                (0.02, "slow RCPT", _slow(f, 0.5, 3))]
        data_cmd = [(0.02, "451 DATA", "451 4.3.0 soak: no DATA now")]
        in_data = [(0.02, "drop mid-DATA", CLOSE)]
        data = [(0.03, "451 end of DATA", "451 4.3.0 soak: could not store it"),
                (0.01, "very slow end of DATA", _slow(f, 6, 12)),
                (0.02, "slow end of DATA", _slow(f, 0.5, 3))]

        def on_rcpt(ctx):
            local = (ctx.argument or "").strip("<>").split("@")[0].lower()
            if local.startswith("bounce"):
                return "550 5.1.1 soak: no such user here"
            return f.draw(rcpt, "peer")

        return dict(greeting=lambda ctx: f.draw(greeting, "peer"), rcpt=on_rcpt,
                    data_cmd=lambda ctx: f.draw(data_cmd, "peer"),
                    in_data=lambda ctx: f.draw(in_data, "peer"),
                    data=lambda ctx: f.draw(data, "peer"))

    # ---------------------------------------------------------- the thread

    def _fault_loop(self):
        names = []
        for domain in self.domain_peers:
            names += [(domain, "MX"), ("mx.%s" % domain, "A")]
        down_until = 0.0
        while not self._stop.wait(2.0):
            now = time.monotonic()
            if down_until and now >= down_until:
                self._restart_d2()
                down_until = 0.0
            elif not down_until and self.faults.chance(0.06):
                self._stop_d2()
                down_until = now + self.faults.uniform(4, 12)
            for name, qtype in names:
                if self.faults.chance(0.02):
                    self._dns_fault(name, qtype, "servfail")
                elif self.faults.chance(0.01):
                    self._dns_fault(name, qtype, "timeout")
        if down_until:
            self._restart_d2()

    def _dns_fault(self, name, qtype, mode):
        seconds = self.faults.uniform(3, 10)
        self.dns.mode(name, mode, qtype=qtype)
        self._note("dns %s" % mode, "%s %s %s for %.0f s" % (name, qtype, mode, seconds))
        timer = threading.Timer(seconds, self.dns.mode, (name, "normal"), {"qtype": qtype})
        timer.daemon = True
        timer.start()

    def _stop_d2(self):
        self.domain_peers[remote_domain(2)][-1].stop()
        self._note("peer stopped", "peer of %s stopped (connections refused)" % remote_domain(2))

    def _restart_d2(self):
        peers = self.domain_peers[remote_domain(2)]
        peers.append(self.peers.start(peers[-1].name, ip=peers[-1].ip, **self._script(5)))
        self._note("peer restarted", "peer of %s listening again" % remote_domain(2))

    def _note(self, kind, what):
        with self.faults.lock:
            self.events.append((time.time(), what))
            key = ("world", kind)
            self.faults.counts[key] = self.faults.counts.get(key, 0) + 1

    # -------------------------------------------------------------- heal

    def heal(self):
        """Remove every fault: peers accept everything, DNS answers."""
        with self.faults.lock:
            self.faults.on = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.dns.clear_modes()

    def all_peers(self):
        return [p for peers in self.domain_peers.values() for p in peers]

    def stop(self):
        self.heal()
        self.peers.stop()
        self.dns.stop()

