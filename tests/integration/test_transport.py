#!/usr/bin/python3
"""4. Upstream transport: `force_tcp` → the upstream sees TCP only; `prefer_udp` → UDP even for TCP
clients (and a TC=1 upstream reply is retried over TCP); neither → the client's transport;
`force_tcp` wins over `prefer_udp`. The upstreams are recording python responders."""

import uuid

import dns.flags
import dns.rcode

import harness as h


class TransportTest(h.NodeCacheTestCase):
    def setUp(self):
        self.ftcp = self.start_responder(answer_ip="192.0.2.1")
        self.pudp = self.start_responder(answer_ip="192.0.2.2", tc_over_udp_names=["tc.pudp.test"])
        self.plain = self.start_responder(answer_ip="192.0.2.3")
        self.both = self.start_responder(answer_ip="192.0.2.4")
        self.port = h.free_port()
        corefile = """ftcp.test:{port} {{
    bind 127.0.0.1
    forward . {ftcp} {{
        force_tcp
    }}
}}
pudp.test:{port} {{
    bind 127.0.0.1
    forward . {pudp} {{
        prefer_udp
    }}
}}
plain.test:{port} {{
    bind 127.0.0.1
    forward . {plain}
}}
both.test:{port} {{
    bind 127.0.0.1
    forward . {both} {{
        prefer_udp
        force_tcp
    }}
}}
""".format(port=self.port, ftcp=self.ftcp.addr, pudp=self.pudp.addr, plain=self.plain.addr,
           both=self.both.addr)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "probe.plain.test"))

    def check(self, resp, zone, client_proto, want_upstream, ip):
        name = "%s.%s" % (uuid.uuid4().hex[:10], zone)
        m = h.ask(name, "A", "127.0.0.1", self.port, proto=client_proto)
        ctx = "client %s query %s" % (client_proto, name)
        self.assertRcode(m, dns.rcode.NOERROR, ctx)
        self.assertFalse(m.flags & dns.flags.TC, ctx)
        self.assertEqual(h.rrsets_text(m.answer), {(name + ".", "A", ip)}, ctx)
        seen = [q[0] for q in resp.queries(name)]
        self.assertEqual(seen, [want_upstream],
                         "%s: upstream saw transports %s, want [%s]" % (ctx, seen, want_upstream))

    def test_force_tcp(self):
        self.check(self.ftcp, "ftcp.test", "udp", "tcp", "192.0.2.1")
        self.check(self.ftcp, "ftcp.test", "tcp", "tcp", "192.0.2.1")
        self.assertEqual(self.ftcp.count(transport="udp"), 0,
                         "force_tcp upstream got UDP queries: %s" % self.ftcp.queries())

    def test_prefer_udp(self):
        self.check(self.pudp, "pudp.test", "tcp", "udp", "192.0.2.2")
        self.check(self.pudp, "pudp.test", "udp", "udp", "192.0.2.2")

    def test_prefer_udp_retries_truncated_over_tcp(self):
        m = h.ask("tc.pudp.test", "A", "127.0.0.1", self.port, proto="udp")
        self.assertRcode(m, dns.rcode.NOERROR)
        self.assertFalse(m.flags & dns.flags.TC,
                         "TC=1 from a prefer_udp upstream must be retried over TCP:\n%s" % m)
        self.assertEqual(h.rrsets_text(m.answer), {("tc.pudp.test.", "A", "192.0.2.2")})
        seen = [q[0] for q in self.pudp.queries("tc.pudp.test")]
        self.assertEqual(seen, ["udp", "tcp"])

    def test_client_transport_followed(self):
        self.check(self.plain, "plain.test", "udp", "udp", "192.0.2.3")
        self.check(self.plain, "plain.test", "tcp", "tcp", "192.0.2.3")
        self.check(self.plain, "plain.test", "udp", "udp", "192.0.2.3")

    def test_force_tcp_wins_over_prefer_udp(self):
        self.check(self.both, "both.test", "udp", "tcp", "192.0.2.4")
        self.check(self.both, "both.test", "tcp", "tcp", "192.0.2.4")


if __name__ == "__main__":
    h.run_tests()
