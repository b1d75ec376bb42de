#!/usr/bin/python3
"""10. Several upstreams: `policy sequential` with the first one down (closed port) → answers come
from the second; with both up → always the first; `policy round_robin` spreads queries evenly
across two responders."""

import time
import uuid

import dns.rcode

import harness as h


class PolicyTest(h.NodeCacheTestCase):
    def setUp(self):
        self.closed = h.free_port()
        self.second = self.start_responder(answer_ip="192.0.2.2")
        self.s1 = self.start_responder(answer_ip="192.0.2.11")
        self.s2 = self.start_responder(answer_ip="192.0.2.12")
        self.r1 = self.start_responder(answer_ip="192.0.2.21")
        self.r2 = self.start_responder(answer_ip="192.0.2.22")
        self.port = h.free_port()
        corefile = """seqdown.test:{port} {{
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:{closed} {second} {{
        policy sequential
    }}
}}
sequp.test:{port} {{
    bind 127.0.0.1
    errors
    forward . {s1} {s2} {{
        policy sequential
    }}
}}
rr.test:{port} {{
    bind 127.0.0.1
    errors
    forward . {r1} {r2} {{
        policy round_robin
    }}
}}
""".format(port=self.port, closed=self.closed, second=self.second.addr, s1=self.s1.addr,
           s2=self.s2.addr, r1=self.r1.addr, r2=self.r2.addr)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "probe.sequp.test"))

    def ask(self, zone, proto="udp"):
        name = "%s.%s" % (uuid.uuid4().hex[:10], zone)
        t0 = time.monotonic()
        m = h.ask(name, "A", "127.0.0.1", self.port, proto=proto, timeout=8)
        return name, m, time.monotonic() - t0

    def answer_ip(self, m):
        return {rd.to_text() for rs in m.answer for rd in rs}

    def test_sequential_first_down(self):
        for i in range(10):
            proto = "udp" if i % 2 == 0 else "tcp"
            name, m, elapsed = self.ask("seqdown.test", proto)
            ctx = "query %d %s (%s)" % (i, name, proto)
            self.assertRcode(m, dns.rcode.NOERROR, ctx)
            self.assertEqual(self.answer_ip(m), {"192.0.2.2"}, ctx)
            self.assertLess(elapsed, 3.0, "%s took %.2f s with a refusing first upstream"
                            % (ctx, elapsed))
            self.assertEqual(self.second.count(name), 1, ctx)

    def test_sequential_both_up_uses_first(self):
        names = []
        for i in range(10):
            name, m, _ = self.ask("sequp.test")
            self.assertEqual(self.answer_ip(m), {"192.0.2.11"}, "query %d %s" % (i, name))
            names.append(name)
        self.assertEqual(sum(self.s2.count(n) for n in names), 0,
                         "sequential policy sent queries to the second upstream")

    def test_round_robin_spreads(self):
        names = []
        for i in range(20):
            name, m, _ = self.ask("rr.test")
            self.assertRcode(m, dns.rcode.NOERROR, name)
            self.assertIn(self.answer_ip(m), ({"192.0.2.21"}, {"192.0.2.22"}), name)
            names.append(name)
        a = sum(self.r1.count(n) for n in names)
        b = sum(self.r2.count(n) for n in names)
        self.assertEqual(a + b, 20)
        self.assertLessEqual(abs(a - b), 2, "round_robin split 20 queries %d/%d" % (a, b))


if __name__ == "__main__":
    h.run_tests()
