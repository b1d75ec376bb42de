#!/usr/bin/python3
"""5. Upstream down (a closed port): the client gets SERVFAIL within the forward budget (< 6 s),
over UDP and TCP, with and without force_tcp (the fast-failing RST/ICMP case that makes CoreDNS
spin, coredns/coredns#7723); the process does not spin (utime+stime over those seconds < 1 s), stays
healthy (/health 200, other zones answer, /metrics scrapeable)."""

import concurrent.futures
import time
import uuid

import dns.exception
import dns.rcode

import harness as h

CPU_BUDGET = 1.0  # seconds of CPU allowed while the failing queries are pending


class UpstreamDownTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.closed = h.free_port()  # nothing listens there: ICMP port unreachable / TCP RST
        self.port = h.free_port()
        self.health = h.free_port()
        self.prom = h.free_port()
        corefile = """down.test:{port} {{
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:{closed}
}}
downtcp.test:{port} {{
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:{closed} {{
        force_tcp
    }}
}}
example.test:{port} {{
    bind 127.0.0.1
    errors
    cache 30
    forward . 127.0.0.1:{knot}
    health 127.0.0.1:{health}
    prometheus 127.0.0.1:{prom}
}}
""".format(port=self.port, closed=self.closed, knot=self.knot.port, health=self.health,
           prom=self.prom)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "www.example.test"))

    def one(self, zone, proto):
        name = "%s.%s" % (uuid.uuid4().hex[:10], zone)
        t0 = time.monotonic()
        try:
            m = h.ask(name, "A", "127.0.0.1", self.port, proto=proto, timeout=8)
        except dns.exception.Timeout:
            return name, None, time.monotonic() - t0
        return name, m, time.monotonic() - t0

    def assert_still_healthy(self):
        self.assertTrue(self.nc.alive(), self.nc.output())
        status, body = h.http_get("http://127.0.0.1:%d/health" % self.health)
        self.assertEqual(status, 200, body)
        m = h.ask("www.example.test", "A", "127.0.0.1", self.port)
        self.assertRcode(m, dns.rcode.NOERROR)
        samples = self.nc.metrics("127.0.0.1:%d" % self.prom)
        self.assertIn("coredns_dns_requests_total", h.metric_names(samples))

    def run_failing(self, zone, proto, concurrency=1):
        cpu0 = self.nc.cpu_seconds()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
            results = list(ex.map(lambda _: self.one(zone, proto), range(concurrency)))
        for name, m, elapsed in results:
            ctx = "%s A over %s via %s" % (name, proto, zone)
            self.assertIsNotNone(m, "%s: no reply within 8 s (want SERVFAIL < 6 s)" % ctx)
            self.assertRcode(m, dns.rcode.SERVFAIL, ctx)
            self.assertLess(elapsed, 6.0, "%s: SERVFAIL took %.2f s" % (ctx, elapsed))
        # measure CPU over (at least) 5 s from the first query
        time.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
        cpu = self.nc.cpu_seconds() - cpu0
        self.assertLess(cpu, CPU_BUDGET,
                        "node-cache used %.2f s CPU in %.1f s with a dead upstream (%s, %s, x%d)"
                        % (cpu, time.monotonic() - t0, zone, proto, concurrency))
        self.assert_still_healthy()

    def test_udp_upstream_closed_udp_client(self):
        self.run_failing("down.test", "udp")

    def test_udp_upstream_closed_tcp_client(self):
        self.run_failing("down.test", "tcp")

    def test_force_tcp_upstream_refused(self):
        self.run_failing("downtcp.test", "udp")

    def test_concurrent_failing_queries(self):
        self.run_failing("downtcp.test", "udp", concurrency=20)
        self.run_failing("down.test", "udp", concurrency=20)

    def test_errors_plugin_logs_failure(self):
        # CoreDNS errors plugin: "[ERROR] plugin/errors: 2 <qname> <qtype>: <err>" on stdout
        name, m, _ = self.one("down.test", "udp")
        self.assertRcode(m, dns.rcode.SERVFAIL)
        want = "[ERROR] plugin/errors: 2 %s. A:" % name
        h.wait_until(lambda: want in self.nc.output(), 3,
                     what="log line %r; output:\n%s" % (want, self.nc.output()[-2000:]))


if __name__ == "__main__":
    h.run_tests()
