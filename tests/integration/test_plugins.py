#!/usr/bin/python3
"""Corefile plugins the upstream image compiles in, beyond the manifest's: `loadbalance` and
`bufsize`, with knotd as the upstream. Every scenario runs on ours and, when
NLD_REFERENCE_NODE_CACHE is set, on the real k8s-dns-node-cache (CoreDNS 1.10) with the same
Corefile and the same assertions: both must behave alike (differential), else the test fails.

- loadbalance: 60 queries for a name with 4 A (and 3 AAAA) records, nearly all cache hits: the
  set of records is always knot's, the order varies (at least 6 of the 24 orders seen; a fixed
  order has probability 0 with a real shuffle and 1 without one); without the plugin one order.
- bufsize 512: a ~900-byte TXT asked with EDNS 4096 comes back truncated (TC=1, at most 512
  bytes) over UDP, on the miss and on the hit; complete over TCP; without the plugin the same
  query gets the full answer over UDP. A client without EDNS is unaffected (512 either way).
"""

import dns.flags
import dns.message
import dns.rcode

import harness as h

POOL = "pool.example.test"
BIG = "big.example.test"  # ~900 bytes of TXT


class PluginsTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()

    def corefile(self, port, plugins):
        return """example.test:{port} {{
    bind 127.0.0.1
    errors
    {plugins}
    cache 300
    forward . 127.0.0.1:{knot}
}}
""".format(port=port, plugins=plugins, knot=self.knot.port)

    def start(self, plugins, reference):
        port = h.free_port()
        probe = ("127.0.0.1", port, "ns.example.test")
        cf = self.corefile(port, plugins)
        self.start_side(cf, probe, reference)
        return port

    def orders(self, port, rdtype, n=60):
        want = sorted(r.to_text() for r in h.ask(POOL, rdtype, self.knot.host,
                                                  self.knot.port).answer[0])
        seen = set()
        for i in range(n):
            m = h.ask(POOL, rdtype, "127.0.0.1", port, proto="tcp" if i % 5 == 0 else "udp")
            self.assertEqual(m.rcode(), dns.rcode.NOERROR)
            self.assertEqual(len(m.answer), 1, m)
            got = [r.to_text() for r in m.answer[0]]
            self.assertEqual(sorted(got), want, "the records themselves never change")
            seen.add(tuple(got))
        return seen

    def check_loadbalance(self, reference):
        port = self.start("loadbalance round_robin", reference)
        self.assertGreaterEqual(len(self.orders(port, "A")), 6, "A records not shuffled")
        self.assertGreaterEqual(len(self.orders(port, "AAAA")), 3, "AAAA records not shuffled")

    def check_no_loadbalance(self, reference):
        port = self.start("", reference)
        self.assertEqual(len(self.orders(port, "A", n=20)), 1, "order changes without the plugin")

    def udp_txt(self, port, edns, payload=4096):
        q = h.make_query(BIG, "TXT", edns=edns, payload=payload)
        wire = h.raw_udp_exchange(q.to_wire(), "127.0.0.1", port, timeout=5)
        self.assertIsNotNone(wire, "no UDP reply")
        m = dns.message.from_wire(wire, ignore_trailing=True)
        self.assertEqual(m.id, q.id)
        return wire, m

    def check_bufsize(self, reference):
        port = self.start("bufsize 512", reference)
        for round_ in ("miss", "hit"):
            wire, m = self.udp_txt(port, edns=0)
            self.assertLessEqual(len(wire), 512, round_)
            self.assertTrue(m.flags & dns.flags.TC, "%s: EDNS 4096 under bufsize 512 must be "
                            "truncated:\n%s" % (round_, m))
            if round_ == "miss":
                # Fill the cache over TCP (complete answer) for the hit round.
                full = h.ask(BIG, "TXT", "127.0.0.1", port, proto="tcp")
                self.assertFalse(full.flags & dns.flags.TC)
                self.assertGreater(len(full.to_wire()), 800)
        wire, m = self.udp_txt(port, edns=False)
        self.assertLessEqual(len(wire), 512)
        self.assertTrue(m.flags & dns.flags.TC)

    def check_no_bufsize(self, reference):
        port = self.start("", reference)
        wire, m = self.udp_txt(port, edns=0)
        self.assertFalse(m.flags & dns.flags.TC, m)
        self.assertGreater(len(wire), 800)

    def test_loadbalance(self):
        self.check_loadbalance(False)

    def test_no_loadbalance(self):
        self.check_no_loadbalance(False)

    def test_bufsize(self):
        self.check_bufsize(False)

    def test_no_bufsize(self):
        self.check_no_bufsize(False)

    def test_reference_loadbalance(self):
        self.check_loadbalance(True)

    def test_reference_no_loadbalance(self):
        self.check_no_loadbalance(True)

    def test_reference_bufsize(self):
        self.check_bufsize(True)

    def test_reference_no_bufsize(self):
        self.check_no_bufsize(True)


if __name__ == "__main__":
    h.run_tests()
