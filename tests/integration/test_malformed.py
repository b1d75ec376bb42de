#!/usr/bin/python3
"""7. Malformed packets over UDP and TCP (truncated header, QDCOUNT 0/2, compression loops,
label > 63, name > 255, truncated question, a response packet QR=1, random bytes): the reply is
FORMERR (same ID, QR=1) or nothing (QR=1 packets: nothing at all), never a crash: afterwards the
server still answers a valid query over UDP and TCP and /metrics is scrapeable.

The tally (test_tally, and test_reference_tally against the reference k8s-dns-node-cache when
NLD_REFERENCE_NODE_CACHE is set, measured only) sends every input once more and prints how each
was answered (MALFORMED lines, for docs/reliability.md)."""

import random
import socket
import struct
import time

import dns.rcode

import harness as h

QNAME = "kubernetes.default.svc.cluster.local"


def header(qid=0x4242, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


QUESTION = wire_name(QNAME) + struct.pack("!HH", 1, 1)

# (description, packet) — each must be answered with FORMERR or not at all
MALFORMED = [
    ("truncated header (5 bytes)", header()[:5]),
    ("header only, QDCOUNT=1", header()),
    ("QDCOUNT=0", header(qd=0)),
    ("QDCOUNT=2", header(qd=2) + QUESTION + QUESTION),
    ("QDCOUNT=2 but one question", header(qd=2) + QUESTION),
    ("compression pointer to itself", header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1)),
    ("two-pointer compression loop",
     header() + b"\x01a\xc0\x0e" + b"\xc0\x0c" + struct.pack("!HH", 1, 1)),
    ("compression pointer past the end", header() + b"\xc0\xff" + struct.pack("!HH", 1, 1)),
    ("label length 64", header() + b"\x40" + b"a" * 64 + b"\x00" + struct.pack("!HH", 1, 1)),
    ("label length 0x7f", header() + b"\x7f" + b"a" * 127 + b"\x00" + struct.pack("!HH", 1, 1)),
    ("name longer than 255 bytes",
     header() + (b"\x3f" + b"a" * 63) * 5 + b"\x00" + struct.pack("!HH", 1, 1)),
    ("question without type/class", header() + wire_name(QNAME)),
    ("label runs past the end", header() + b"\x20abc"),
    ("ANCOUNT=1 with no answer records", header(an=1) + QUESTION),
    ("ARCOUNT=3", header(ar=3) + QUESTION),
]

RESPONSE_PACKET = ("response packet QR=1", header(flags=0x8180) + QUESTION)


class MalformedTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        self.prom = h.free_port()
        self.corefile = """cluster.local:{port} {{
    bind 127.0.0.1
    errors
    cache 30
    forward . 127.0.0.1:{knot}
    prometheus 127.0.0.1:{prom}
}}
""".format(port=self.port, knot=self.knot.port, prom=self.prom)
        if not self._testMethodName.startswith("test_reference_"):
            self.start()

    def start(self, reference=False):
        """Ours, or the reference (the test is skipped when it is not set)."""
        probe = ("127.0.0.1", self.port, QNAME)
        if reference:
            self.nc = self.start_reference(self.corefile, probe)
        else:
            self.nc = self.start_node_cache(self.corefile, probe)

    def assert_formerr_or_nothing(self, reply, sent, ctx):
        if reply is None or reply == b"":
            return
        self.assertGreaterEqual(len(reply), 12, "%s: reply shorter than a header: %r"
                                % (ctx, reply))
        qid, flags = struct.unpack("!HH", reply[:4])
        self.assertTrue(flags & 0x8000, "%s: reply without QR: %r" % (ctx, reply))
        if len(sent) >= 2:
            self.assertEqual(qid, struct.unpack("!H", sent[:2])[0], "%s: ID not echoed" % ctx)
        self.assertEqual(flags & 0x000F, dns.rcode.FORMERR,
                         "%s: want FORMERR or no reply, got rcode %d: %r"
                         % (ctx, flags & 0x000F, reply))

    def assert_alive_and_answering(self, ctx):
        self.assertTrue(self.nc.alive(), "%s: node-cache died:\n%s" % (ctx, self.nc.output()))
        for proto in ("udp", "tcp"):
            m = h.ask(QNAME, "A", "127.0.0.1", self.port, proto=proto)
            self.assertRcode(m, dns.rcode.NOERROR, "%s: valid %s query afterwards" % (ctx, proto))
            self.assertEqual(len(m.answer), 1)

    def assert_metrics_scrapeable(self):
        samples = self.nc.metrics("127.0.0.1:%d" % self.prom)
        names = h.metric_names(samples)
        self.assertIn("coredns_dns_requests_total", names)
        # (hits_total has samples only once a hit happened, like a Prometheus CounterVec)
        self.assertIn("coredns_cache_requests_total", names)

    def test_malformed_udp(self):
        for desc, pkt in MALFORMED:
            reply = h.raw_udp_exchange(pkt, "127.0.0.1", self.port, timeout=0.5)
            self.assert_formerr_or_nothing(reply, pkt, "UDP " + desc)
            self.assertTrue(self.nc.alive(), "died after UDP %s:\n%s" % (desc, self.nc.output()))
        self.assert_alive_and_answering("after malformed UDP")
        self.assert_metrics_scrapeable()

    def test_malformed_tcp(self):
        for desc, pkt in MALFORMED:
            reply = h.raw_tcp_exchange(struct.pack("!H", len(pkt)) + pkt, "127.0.0.1", self.port,
                                       timeout=0.7)
            if reply:
                n = struct.unpack("!H", reply[:2])[0]
                self.assert_formerr_or_nothing(reply[2:2 + n], pkt, "TCP " + desc)
            self.assertTrue(self.nc.alive(), "died after TCP %s:\n%s" % (desc, self.nc.output()))
        self.assert_alive_and_answering("after malformed TCP")
        self.assert_metrics_scrapeable()

    def test_response_packet_gets_no_reply(self):
        desc, pkt = RESPONSE_PACKET
        reply = h.raw_udp_exchange(pkt, "127.0.0.1", self.port, timeout=1.0)
        self.assertIsNone(reply, "a QR=1 packet must be dropped silently, got %r" % reply)
        self.assert_alive_and_answering("after a QR=1 packet")

    def test_broken_tcp_framing(self):
        cases = [
            ("length prefix larger than the data, then close", struct.pack("!H", 100) + b"\x00" * 5),
            ("zero length prefix", struct.pack("!H", 0)),
            ("one byte only", b"\x00"),
            ("length 12 with a response header", struct.pack("!H", 12) + header(flags=0x8180)),
        ]
        for desc, payload in cases:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            s.sendall(payload)
            s.close()
            self.assertTrue(self.nc.alive(), "died after TCP %s:\n%s" % (desc, self.nc.output()))
        # a connection that sends half a message and stays open must not block other clients
        idle = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        try:
            idle.sendall(struct.pack("!H", 60) + b"\x12")
            self.assert_alive_and_answering("while a TCP client stalls mid-message")
        finally:
            idle.close()
        self.assert_alive_and_answering("after broken TCP framing")

    def test_random_bytes(self):
        rng = random.Random(20261126)
        sent = []
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.05)
        try:
            for _ in range(400):
                pkt = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 11, 12, 13, 30, 64,
                                                                          200, 511, 600))))
                sent.append(pkt)
                s.sendto(pkt, ("127.0.0.1", self.port))
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                try:
                    reply, _ = s.recvfrom(65535)
                except socket.timeout:
                    continue
                self.assertGreaterEqual(len(reply), 12, "reply shorter than a header: %r" % reply)
                self.assertTrue(struct.unpack("!H", reply[2:4])[0] & 0x8000,
                                "reply without QR: %r" % reply)
        finally:
            s.close()
        for i in range(0, 400, 40):  # some random streams over TCP as well
            try:
                h.raw_tcp_exchange(b"".join(sent[i:i + 40]), "127.0.0.1", self.port, timeout=0.3)
            except OSError:
                pass
        self.assert_alive_and_answering("after random bytes")
        self.assert_metrics_scrapeable()

    def tally(self, label):
        """Every malformed input over UDP and TCP, the QR=1 packet and 400 random datagrams, once
        each; prints and returns {outcome: count} (FORMERR, no reply, other: rcode N) and whether
        a valid query over UDP and TCP is answered afterwards."""
        outcomes = {}
        odd = []  # (kind, input, outcome) answered other than FORMERR or silence

        def count(reply, kind, desc=None):
            if not reply:
                key = "no reply"
            elif len(reply) < 12 or not struct.unpack("!H", reply[2:4])[0] & 0x8000:
                key = "not a DNS response"
            else:
                rcode = struct.unpack("!H", reply[2:4])[0] & 0x000F
                key = "FORMERR" if rcode == dns.rcode.FORMERR else \
                    "other: %s" % dns.rcode.to_text(rcode)
            outcomes.setdefault(kind, {}).setdefault(key, 0)
            outcomes[kind][key] += 1
            if desc and key not in ("FORMERR", "no reply"):
                odd.append((kind, desc, key))

        for desc, pkt in MALFORMED + [RESPONSE_PACKET]:
            count(h.raw_udp_exchange(pkt, "127.0.0.1", self.port, timeout=0.5), "udp", desc)
            reply = h.raw_tcp_exchange(struct.pack("!H", len(pkt)) + pkt, "127.0.0.1", self.port,
                                       timeout=0.7)
            count(reply[2:2 + struct.unpack("!H", reply[:2])[0]] if reply and len(reply) >= 2
                  else None, "tcp", desc)
        rng = random.Random(20261203)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.05)
        replies = []
        try:
            for _ in range(400):
                s.sendto(bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 11, 12, 13, 30,
                                                                             64, 200, 511)))),
                         ("127.0.0.1", self.port))
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                try:
                    replies.append(s.recvfrom(65535)[0])
                except socket.timeout:
                    continue
        finally:
            s.close()
        for reply in replies:
            count(reply, "random (of 400)")
        answering = {}
        for proto in ("udp", "tcp"):
            try:
                m = h.ask(QNAME, "A", "127.0.0.1", self.port, proto=proto, timeout=2)
                answering[proto] = m.rcode() == dns.rcode.NOERROR and len(m.answer) == 1
            except Exception:  # noqa: BLE001 - reported, not raised
                answering[proto] = False
        print("MALFORMED %s: %d malformed + 1 QR=1 over UDP and TCP, 400 random datagrams: %s; "
              "answered other than FORMERR: %s; alive %s, valid query answered afterwards %s"
              % (label, len(MALFORMED), outcomes, odd or "none", self.nc.alive(), answering),
              flush=True)
        return outcomes, answering

    def test_tally(self):
        outcomes, answering = self.tally("ours")
        for kind in ("udp", "tcp"):
            self.assertEqual(set(outcomes[kind]) - {"FORMERR", "no reply"}, set(), kind)
        # a random datagram may happen to be a query (REFUSED, NOTIMP): a response all the same
        self.assertNotIn("not a DNS response", outcomes.get("random (of 400)", {}))
        self.assertEqual(answering, {"udp": True, "tcp": True})

    def test_reference_tally(self):
        self.start(reference=True)
        self.tally("reference")


if __name__ == "__main__":
    h.run_tests()
