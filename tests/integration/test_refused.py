#!/usr/bin/python3
"""6. REFUSED for a name outside every zone (Corefile with only `cluster.local:PORT`), over UDP and
TCP and with dig; names inside the zone (and the zone apex, any case) are answered."""

import subprocess

import dns.rcode

import harness as h


class RefusedTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        corefile = """cluster.local:{port} {{
    bind 127.0.0.1
    errors
    cache 30
    forward . 127.0.0.1:{knot}
}}
""".format(port=self.port, knot=self.knot.port)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port,
                                                   "kubernetes.default.svc.cluster.local"))

    def q(self, name, rdtype="A", proto="udp"):
        return h.ask(name, rdtype, "127.0.0.1", self.port, proto=proto)

    def test_outside_zone_refused(self):
        before = self.knot.query_count()
        for name, rdtype in [("www.example.test", "A"), ("local", "SOA"), (".", "NS"),
                             ("xcluster.local", "A"), ("cluster.local.example.test", "A"),
                             ("1.0.96.10.in-addr.arpa", "PTR")]:
            for proto in ("udp", "tcp"):
                m = self.q(name, rdtype, proto)
                self.assertRcode(m, dns.rcode.REFUSED, "%s %s over %s" % (name, rdtype, proto))
                self.assertEqual(len(m.answer), 0)
        self.assertEqual(self.knot.query_count(), before,
                         "queries outside every zone must not be forwarded")

    def test_inside_zone_answered(self):
        for name, rdtype in [("kubernetes.default.svc.cluster.local", "A"),
                             ("cluster.local", "SOA"), ("CLUSTER.Local", "NS"),
                             ("svc-1.ns-1.svc.CLUSTER.LOCAL", "A")]:
            for proto in ("udp", "tcp"):
                m = self.q(name, rdtype, proto)
                self.assertRcode(m, dns.rcode.NOERROR, "%s %s over %s" % (name, rdtype, proto))
                self.assertEqual(len(m.answer), 1, "%s %s: %s" % (name, rdtype, m))

    def test_dig_reports_refused(self):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+time=5", "+retry=0",
                            "www.example.test", "A"], capture_output=True, text=True, timeout=15)
        self.assertIn("status: REFUSED", r.stdout, r.stdout + r.stderr)


if __name__ == "__main__":
    h.run_tests()
