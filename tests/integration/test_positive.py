#!/usr/bin/python3
"""1. Positive answers via UDP and TCP (dnspython, dig, kdig): equal to knot's; the second query
is a cache hit (cache hit metric grows, knot's query counter does not, a zone change in knot is not
seen while cached); TTL counts down; the client's ID and QNAME case (0x20) are echoed on hits."""

import os
import socket
import struct
import subprocess
import time

import dns.flags
import dns.message
import dns.rcode

import harness as h

NAMES = [
    ("kubernetes.default.svc.cluster.local", "A"),
    ("svc-123.ns-3.svc.cluster.local", "A"),
    ("kube-dns.kube-system.svc.cluster.local", "A"),
    ("1.0.96.10.in-addr.arpa", "PTR"),
    ("www.example.test", "A"),
    ("ns.example.test", "A"),
]


class PositiveTest(h.NodeCacheTestCase):
    FLAGS = []  # default -workers (one per CPU)

    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        self.prom = h.free_port()
        self.health = h.free_port()
        # Keys without a port: -dns.port supplies it.
        corefile = """cluster.local example.test 96.10.in-addr.arpa {{
    errors
    bind 127.0.0.1
    cache 300
    forward . 127.0.0.1:{knot}
    prometheus 127.0.0.1:{prom}
    health 127.0.0.1:{health}
}}
""".format(knot=self.knot.port, prom=self.prom, health=self.health)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "ns.dns.cluster.local"),
                                        flags=["-dns.port", str(self.port)] + self.FLAGS)

    def q(self, name, rdtype="A", proto="udp", **kw):
        return h.ask(name, rdtype, "127.0.0.1", self.port, proto=proto, **kw)

    def prom_samples(self):
        return self.nc.metrics("127.0.0.1:%d" % self.prom)

    def _compare_with_knot(self, proto):
        for name, rdtype in NAMES:
            want = h.ask(name, rdtype, self.knot.host, self.knot.port, proto=proto)
            got = self.q(name, rdtype, proto=proto)
            ctx = "%s %s over %s" % (name, rdtype, proto)
            self.assertRcode(got, dns.rcode.NOERROR, ctx)
            self.assertTrue(got.flags & dns.flags.QR, ctx)
            self.assertEqual(h.rrsets_text(got.answer), h.rrsets_text(want.answer),
                             "%s: answer differs from knot's\nknot:\n%s\nnode-cache:\n%s"
                             % (ctx, want, got))
            for rrset in got.answer:
                self.assertGreater(rrset.ttl, 0, ctx)
                self.assertLessEqual(rrset.ttl, want.answer[0].ttl, ctx)

    def test_udp_answers_equal_knot(self):
        self._compare_with_knot("udp")

    def test_tcp_answers_equal_knot(self):
        self._compare_with_knot("tcp")

    def test_dig_and_kdig(self):
        cases = [("kubernetes.default.svc.cluster.local", "A", "10.96.0.1"),
                 ("1.0.96.10.in-addr.arpa", "PTR", "kubernetes.default.svc.cluster.local."),
                 ("www.example.test", "A", "192.0.2.10\n192.0.2.11")]
        for tool in ("dig", "kdig"):
            for transport in ("+notcp", "+tcp"):
                for name, rdtype, want in cases:
                    r = subprocess.run([tool, "@127.0.0.1", "-p", str(self.port), transport,
                                        "+short", "+time=5", "+retry=0", name, rdtype],
                                       capture_output=True, text=True, timeout=15)
                    got = "\n".join(sorted(r.stdout.split()))
                    self.assertEqual(got, want, "%s %s %s %s: %s %s"
                                     % (tool, transport, name, rdtype, r.stdout, r.stderr))
                    self.assertEqual(r.returncode, 0, r)

    def test_second_query_is_cache_hit(self):
        name = "svc-42.ns-2.svc.cluster.local"
        first = self.q(name)
        self.assertRcode(first, dns.rcode.NOERROR)
        knot_before = self.knot.query_count()
        hits_before = h.metric_sum(self.prom_samples(), "coredns_cache_hits_total")
        second = self.q(name)
        third = self.q(name, proto="tcp")
        knot_after = self.knot.query_count()
        hits_after = h.metric_sum(self.prom_samples(), "coredns_cache_hits_total")
        for m in (second, third):
            self.assertEqual(h.rrsets_text(m.answer), h.rrsets_text(first.answer))
        self.assertEqual(knot_after, knot_before,
                         "repeated query for %s reached knot (%d -> %d queries): not a cache hit"
                         % (name, knot_before, knot_after))
        self.assertEqual(hits_after - hits_before, 2,
                         "coredns_cache_hits_total went %s -> %s for 2 cached queries"
                         % (hits_before, hits_after))

    def test_cache_hit_sets_aa(self):
        # AA is forced to 1 on every cache hit (CoreDNS cache plugin parity, for old glibc)
        name = "svc-43.ns-3.svc.cluster.local"
        self.q(name)
        hit = self.q(name)
        self.assertTrue(hit.flags & dns.flags.AA, "AA not set on a cache hit:\n%s" % hit)

    def test_zone_change_not_seen_while_cached(self):
        first = self.q("mutable.example.test")
        self.assertEqual(h.rrsets_text(first.answer),
                         {("mutable.example.test.", "A", "192.0.2.20")})
        self.knot.set_zone("example.test",
                           h.external_zone().replace("192.0.2.20", "192.0.2.21"))
        direct = h.ask("mutable.example.test", "A", self.knot.host, self.knot.port)
        self.assertEqual(direct.answer[0][0].to_text(), "192.0.2.21")
        for proto in ("udp", "tcp"):
            again = self.q("mutable.example.test", proto=proto)
            self.assertEqual(h.rrsets_text(again.answer),
                             {("mutable.example.test.", "A", "192.0.2.20")},
                             "cached answer changed after the upstream zone changed (%s)" % proto)

    def _ttl_countdown(self, name, max_ttl):
        t_send1 = time.monotonic()
        first = self.q(name)
        t_recv1 = time.monotonic()
        ttl1 = first.answer[0].ttl
        self.assertGreater(ttl1, 0)
        self.assertLessEqual(ttl1, max_ttl)
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t_recv1)))
        t_send2 = time.monotonic()
        second = self.q(name)
        t_recv2 = time.monotonic()
        ttl2 = second.answer[0].ttl
        # the entry was stored between t_send1 and t_recv1 and read between t_send2 and t_recv2;
        # +1 on the upper bound allows a whole-second clock
        lo = int(t_send2 - t_recv1)
        hi = int(t_recv2 - t_send1) + 1
        self.assertTrue(lo <= ttl1 - ttl2 <= hi,
                        "%s: TTL %d then %d %.1f s later (want a countdown by %d..%d s)"
                        % (name, ttl1, ttl2, t_send2 - t_recv1, lo, hi))

    def test_ttl_counts_down_long_ttl(self):
        self._ttl_countdown("www.example.test", 300)

    def test_ttl_counts_down_cluster_ttl(self):
        self._ttl_countdown("svc-7.ns-7.svc.cluster.local", 5)

    def _raw_query(self, qname, qid, proto):
        q = dns.message.make_query(qname, "A", use_edns=False)
        q.id = qid
        wire = q.to_wire()
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.sendto(wire, ("127.0.0.1", self.port))
            reply, _ = s.recvfrom(65535)
            s.close()
        else:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall(struct.pack("!H", len(wire)) + wire)
            hdr = h.recv_exact(s, 2)
            reply = h.recv_exact(s, struct.unpack("!H", hdr)[0])
            s.close()
        return wire, reply

    def _assert_echo(self, qname, qid, proto):
        wire, reply = self._raw_query(qname, qid, proto)
        self.assertEqual(struct.unpack("!H", reply[:2])[0], qid, "ID not echoed (%s)" % proto)
        qlen = len(wire) - 12  # question section of the query (no EDNS, no other records)
        self.assertEqual(reply[12:12 + qlen], wire[12:],
                         "question (0x20 case) not echoed byte-for-byte over %s: sent %r got %r"
                         % (proto, wire[12:], reply[12:12 + qlen]))
        m = dns.message.from_wire(reply)
        self.assertRcode(m, dns.rcode.NOERROR)
        self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, {"10.96.0.1"})

    def test_id_and_case_echoed_on_hit(self):
        self.q("kubernetes.default.svc.cluster.local")  # populate (lower case)
        knot_before = self.knot.query_count()
        self._assert_echo("KuBeRnEtEs.DeFaUlT.svc.cluster.local", 0xBEEF, "udp")
        self._assert_echo("kUbErNeTeS.dEfAuLt.SVC.CLUSTER.local", 0x1234, "tcp")
        self._assert_echo("kubernetes.default.svc.cluster.local", 0x0001, "udp")
        self.assertEqual(self.knot.query_count(), knot_before,
                         "mixed-case queries were not served from the cache")

    def test_case_echoed_when_cache_populated_by_mixed_case(self):
        self._assert_echo("KuBeRnEtEs.DeFaUlT.SVC.cluster.LOCAL", 0x7777, "udp")
        self._assert_echo("kubernetes.default.svc.cluster.local", 0x8888, "udp")

    def test_logs_and_sigterm(self):
        # CoreDNS-style log lines on stdout; SIGTERM → exit 0 and the pidfile is removed
        self.assertTrue(os.path.exists(self.nc.pidfile))
        wait_for_info = h.wait_until(
            lambda: [ln for ln in self.nc.output().splitlines() if ln.startswith("[INFO] ")],
            5, what="an '[INFO] ' line on node-cache's stdout")
        self.assertTrue(wait_for_info)
        rc = self.nc.stop()
        self.assertEqual(rc, 0, "exit code on SIGTERM; output:\n%s" % self.nc.output())
        self.assertFalse(os.path.exists(self.nc.pidfile), "pidfile left behind after SIGTERM")


class PositiveFourWorkersTest(PositiveTest):
    """Same with 4 workers: a repeat from another source port / connection must still hit the one
    cache entry (no per-worker cache misses, TTL keeps counting down)."""
    FLAGS = ["-workers", "4"]


if __name__ == "__main__":
    h.run_tests()
