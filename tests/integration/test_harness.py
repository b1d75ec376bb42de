#!/usr/bin/python3
"""Self-test of the harness against the real upstream parts only (knotd, kdig/dig, the python
responder, network namespaces): needs no node-cache binary. If this fails, the node-cache
integration tests cannot be trusted."""

import subprocess
import time

import dns.flags
import dns.rcode

import harness as h


class KnotTest(h.NodeCacheTestCase):
    NEEDS_BINARY = False

    def setUp(self):
        self.knot = self.start_knot()

    def test_zones_served(self):
        k = self.knot
        m = h.ask("kubernetes.default.svc.cluster.local", "A", k.host, k.port)
        self.assertEqual(h.rrsets_text(m.answer),
                         {("kubernetes.default.svc.cluster.local.", "A", "10.96.0.1")})
        self.assertEqual(m.answer[0].ttl, 5)
        m = h.ask("1.0.96.10.in-addr.arpa", "PTR", k.host, k.port, proto="tcp")
        self.assertEqual(m.answer[0][0].to_text(), "kubernetes.default.svc.cluster.local.")
        m = h.ask("svc-299.ns-9.svc.cluster.local", "A", k.host, k.port)
        self.assertEqual(len(m.answer), 1)
        m = h.ask("abc123.uniq.example.test", "A", k.host, k.port)
        self.assertEqual(m.answer[0][0].to_text(), "192.0.2.99")

    def test_negative_answers_use_min_soa_ttl_minimum(self):
        k = self.knot
        m = h.ask("nope.example.test", "A", k.host, k.port)
        self.assertEqual(m.rcode(), dns.rcode.NXDOMAIN)
        # RFC 2308: knot sends the SOA with TTL min(300, MINIMUM 7)
        self.assertEqual(m.authority[0].ttl, 7)
        m = h.ask("www.example.test", "AAAA", k.host, k.port)
        self.assertEqual(m.rcode(), dns.rcode.NOERROR)
        self.assertEqual(len(m.answer), 0)
        self.assertEqual(m.authority[0].rdtype, 6)

    def test_big_rrsets(self):
        k = self.knot
        m = h.ask("big.example.test", "TXT", k.host, k.port, edns=False)
        self.assertTrue(m.flags & dns.flags.TC, "big TXT must not fit 512 bytes")
        m = h.ask("big.example.test", "TXT", k.host, k.port, edns=0, payload=1232)
        self.assertFalse(m.flags & dns.flags.TC, "big TXT must fit 1232 bytes")
        self.assertEqual(len(m.answer[0]), len(h.BIG_TXT))
        m = h.ask("huge.example.test", "TXT", k.host, k.port, edns=0, payload=1232)
        self.assertTrue(m.flags & dns.flags.TC, "huge TXT must not fit 1232 bytes")
        m = h.ask("huge.example.test", "TXT", k.host, k.port, proto="tcp")
        self.assertEqual(len(m.answer[0]), len(h.HUGE_TXT))

    def test_stats_and_reload(self):
        k = self.knot
        before = k.proto_counts()
        h.ask("www.example.test", "A", k.host, k.port)
        h.ask("www.example.test", "A", k.host, k.port, proto="tcp")
        after = k.proto_counts()
        self.assertEqual(after["udp"] - before["udp"], 1)
        self.assertEqual(after["tcp"] - before["tcp"], 1)
        k.set_zone("example.test", h.external_zone().replace("192.0.2.20", "192.0.2.21"))
        m = h.ask("mutable.example.test", "A", k.host, k.port)
        self.assertEqual(m.answer[0][0].to_text(), "192.0.2.21")

    def test_cli_clients(self):
        k = self.knot
        for tool in (["dig"], ["kdig"]):
            for t in ("+notcp", "+tcp"):
                r = subprocess.run(tool + ["@" + k.host, "-p", str(k.port), t, "+short",
                                           "kubernetes.default.svc.cluster.local", "A"],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(r.stdout.strip(), "10.96.0.1", r)


class ResponderTest(h.NodeCacheTestCase):
    NEEDS_BINARY = False

    def test_records_transport_and_delays(self):
        r = self.start_responder(delay=0.2, answer_ip="192.0.2.7")
        t0 = time.monotonic()
        m = h.ask("a.resp.test", "A", r.host, r.port)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual(m.answer[0][0].to_text(), "192.0.2.7")
        h.ask("b.resp.test", "A", r.host, r.port, proto="tcp")
        m = h.ask("nxthing.resp.test", "A", r.host, r.port)
        self.assertEqual(m.rcode(), dns.rcode.NXDOMAIN)
        self.assertEqual(r.count("a.resp.test", "udp"), 1)
        self.assertEqual(r.count("b.resp.test", "tcp"), 1)
        self.assertEqual(r.count("b.resp.test", "udp"), 0)


class NetNsTest(h.NodeCacheTestCase):
    NEEDS_BINARY = False

    def test_knot_in_namespace(self):
        ns = self.start_netns(addresses=("169.254.20.10",))
        k = self.start_knot(listen=[("169.254.20.10", 53)], netns=ns)
        r = ns.run(["dig", "+short", "@169.254.20.10", "kubernetes.default.svc.cluster.local"])
        self.assertEqual(r.stdout.strip(), "10.96.0.1", r)
        self.assertGreaterEqual(k.query_count(), 1)


if __name__ == "__main__":
    h.run_tests()
