#!/usr/bin/python3
"""3. Answers larger than 512 bytes: UDP without EDNS → TC=1 within 512 bytes; the same over TCP
→ the full answer; with EDNS 1232 → full if it fits, TC=1 if the answer is larger than 1232 bytes;
with EDNS 4096 a cached ~2.4 KB answer comes over UDP in full. Checked on a cache miss and on a
hit. (knotd is configured with udp-max-payload 4096, so the upstream is never the limiter.)"""

import socket
import struct

import dns.flags
import dns.message
import dns.rcode

import harness as h

BIG = "big.example.test"    # ~900 bytes of TXT
HUGE = "huge.example.test"  # ~2400 bytes of TXT


class TruncationTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        corefile = """example.test:{port} {{
    bind 127.0.0.1
    errors
    cache 300
    forward . 127.0.0.1:{knot}
}}
""".format(port=self.port, knot=self.knot.port)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "ns.example.test"))
        self.full = {BIG: h.rrsets_text(h.ask(BIG, "TXT", self.knot.host, self.knot.port,
                                              proto="tcp").answer),
                     HUGE: h.rrsets_text(h.ask(HUGE, "TXT", self.knot.host, self.knot.port,
                                               proto="tcp").answer)}
        self.assertEqual(len(self.full[BIG]), len(h.BIG_TXT))
        self.assertEqual(len(self.full[HUGE]), len(h.HUGE_TXT))

    def raw_udp(self, name, edns, payload=1232):
        q = h.make_query(name, "TXT", edns=edns, payload=payload)
        reply = h.raw_udp_exchange(q.to_wire(), "127.0.0.1", self.port, timeout=5)
        self.assertIsNotNone(reply, "no UDP reply for %s TXT (edns=%s)" % (name, edns))
        limit = 512 if edns is False else max(512, payload)
        self.assertLessEqual(len(reply), limit, "UDP reply of %d bytes exceeds the client's "
                             "limit %d (%s, edns=%s)" % (len(reply), limit, name, edns))
        m = dns.message.from_wire(reply, ignore_trailing=True)
        self.assertEqual(m.id, q.id)
        return m

    def assert_truncated(self, m, ctx):
        self.assertTrue(m.flags & dns.flags.TC, "%s: TC not set:\n%s" % (ctx, m))
        self.assertNotIn(dns.rcode.to_text(m.rcode()), ("SERVFAIL", "FORMERR", "REFUSED"), ctx)

    def assert_full(self, m, name, ctx):
        self.assertFalse(m.flags & dns.flags.TC, "%s: TC set:\n%s" % (ctx, m))
        self.assertRcode(m, dns.rcode.NOERROR, ctx)
        self.assertEqual(h.rrsets_text(m.answer), self.full[name],
                         "%s: answer differs from knot's full answer" % ctx)

    def tcp(self, name, **kw):
        return h.ask(name, "TXT", "127.0.0.1", self.port, proto="tcp", **kw)

    def test_over_512_udp_first(self):
        # cache miss path: the first query of all is UDP without EDNS
        self.assert_truncated(self.raw_udp(BIG, edns=False), "UDP no EDNS (miss)")
        self.assert_full(self.tcp(BIG), BIG, "TCP")
        self.assert_truncated(self.raw_udp(BIG, edns=False), "UDP no EDNS (after TCP)")
        self.assert_full(self.raw_udp(BIG, edns=0, payload=1232), BIG, "UDP EDNS 1232")

    def test_over_512_tcp_first(self):
        self.assert_full(self.tcp(BIG), BIG, "TCP (miss)")
        self.assert_truncated(self.raw_udp(BIG, edns=False), "UDP no EDNS (hit)")
        self.assert_full(self.raw_udp(BIG, edns=0, payload=1232), BIG, "UDP EDNS 1232 (hit)")

    def test_over_512_edns_first(self):
        self.assert_full(self.raw_udp(BIG, edns=0, payload=1232), BIG, "UDP EDNS 1232 (miss)")
        self.assert_truncated(self.raw_udp(BIG, edns=False), "UDP no EDNS (hit)")
        self.assert_full(self.tcp(BIG, edns=0), BIG, "TCP EDNS (hit)")

    def test_over_1232(self):
        self.assert_truncated(self.raw_udp(HUGE, edns=0, payload=1232), "UDP EDNS 1232 (miss)")
        self.assert_full(self.tcp(HUGE), HUGE, "TCP")
        self.assert_truncated(self.raw_udp(HUGE, edns=0, payload=1232), "UDP EDNS 1232 (hit)")
        self.assert_truncated(self.raw_udp(HUGE, edns=False), "UDP no EDNS (hit)")
        self.assert_full(self.raw_udp(HUGE, edns=0, payload=4096), HUGE, "UDP EDNS 4096 (hit)")

    def test_tcp_length_prefix_matches(self):
        # the TCP reply must be exactly one length-prefixed message, nothing after it
        q = h.make_query(HUGE, "TXT", edns=False)
        wire = q.to_wire()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            hdr = h.recv_exact(s, 2)
            self.assertIsNotNone(hdr, "TCP connection closed without a reply")
            body = h.recv_exact(s, struct.unpack("!H", hdr)[0])
            self.assertIsNotNone(body, "TCP reply shorter than its length prefix")
            s.settimeout(0.3)
            try:
                extra = s.recv(100)
            except socket.timeout:
                extra = b""
            self.assertEqual(extra, b"", "unexpected bytes after the TCP reply")
        finally:
            s.close()
        self.assert_full(dns.message.from_wire(body), HUGE, "TCP raw")


if __name__ == "__main__":
    h.run_tests()
