#!/usr/bin/python3
"""No `nodelocaldns` link exists, so node-cache must create a dummy link, which this kernel refuses
(EOPNOTSUPP: the test kernel has no dummy links). Issue 3 item 3: a clear error mentioning
the dummy type, coredns_nodecache_setup_errors_total{errortype="interface_add"} counted on the
node-cache metrics endpoint, and, when the address already exists elsewhere (169.254.20.10/32 on
the namespace's lo), DNS keeps being served (and the iptables rules are installed). Without the
address anywhere node-cache cannot bind: it must exit non-zero with a clear error, leaving no
iptables rules behind."""

import os

import dns.rcode

import sys_support as s

COREFILE = """cluster.local:53 {
    errors
    cache 30
    bind 169.254.20.10
    forward . 10.96.0.10
    health 169.254.20.10:8080
}
"""
METRICS = "127.0.0.1:9353"


class DummyRefusedTest(s.SystemTestCase):
    def start(self, addresses):
        self.tmp = self.make_tmp()
        self.ns = self.start_ns(addresses=addresses, veth=False)
        self.knot = self.start_knot(listen=[(s.CLUSTER_DNS, 53)], netns=self.ns)
        self.assertFalse(self.ns.link_exists(s.LINK))
        base = os.path.join(self.tmp, "Corefile.base")
        with open(base, "w") as f:
            f.write(COREFILE)
        self.conf = os.path.join(self.tmp, "Corefile")
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")
        args = ["-localip", s.LOCAL_V4, "-conf", self.conf, "-upstreamsvc", "kube-dns-upstream",
                "-pidfile", self.pidfile, "-basecorefile", base, "-syncinterval", "2",
                "-metrics-listen-address", METRICS]
        return self.start_node_cache(self.ns, args, self.tmp,
                                     env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.CLUSTER_DNS})

    def assert_dummy_error_logged(self, nc):
        lines = [l for l in nc.output().splitlines()
                 if "dummy" in l.lower() and s.LINK in l and "[ERROR]" in l]
        self.assertTrue(lines, "no [ERROR] line mentioning the dummy type and %s\n%s"
                        % (s.LINK, nc.context()))

    def test_address_elsewhere_keeps_serving(self):
        nc = self.start((s.CLUSTER_DNS, s.LOCAL_V4))
        self.wait_serving(nc, self.ns, s.LOCAL_V4, self.pidfile)
        self.assert_dummy_error_logged(nc)
        errors = s.node_metric(self.ns, METRICS, "coredns_nodecache_setup_errors_total",
                               errortype="interface_add")
        self.assertGreaterEqual(errors, 1, "interface_add not counted\n" + nc.context())
        for proto in ("udp", "tcp"):
            m = self.ns.dns("kubernetes.default.svc.cluster.local", "A", s.LOCAL_V4, 53, proto)
            self.assertEqual(m.rcode(), dns.rcode.NOERROR, str(m))
            self.assertEqual([rd.to_text() for rs in m.answer for rd in rs], ["10.96.0.1"])
        status, _ = self.ns.http_get("http://%s:8080/health" % s.LOCAL_V4)
        self.assertEqual(status, 200)
        self.wait_rules_exact(self.ns, s.LOCAL_V4, False, 5.0, "rules while serving")
        self.assertFalse(self.ns.link_exists(s.LINK), "a link appeared although dummy is refused")

        rc = nc.stop()
        self.assertEqual(rc, 0, "exit code on SIGTERM\n" + nc.context())
        self.assertEqual(self.ns.nodelocal_rules(False), [], "rules left after SIGTERM")
        self.assertIn(s.LOCAL_V4, self.ns.addresses("lo"),
                      "node-cache removed an address from lo, which it does not manage")

    def test_no_address_fails_clearly(self):
        nc = self.start((s.CLUSTER_DNS,))
        rc = nc.wait_exit(20)
        self.assertIsNotNone(rc, "node-cache still running without its address after 20 s\n"
                             + nc.context())
        self.assertNotEqual(rc, 0, "exit code when it cannot bind 169.254.20.10\n" + nc.context())
        self.assert_dummy_error_logged(nc)
        self.assertIn(s.LOCAL_V4, nc.output(), "the error names the address it could not bind")
        self.assertEqual(self.ns.nodelocal_rules(False), [],
                         "iptables rules left although node-cache never served\n"
                         + self.ns.iptables_save())
        self.assertFalse(os.path.exists(self.pidfile), "pidfile written without listeners")
        self.assertFalse(self.ns.link_exists(s.LINK))


if __name__ == "__main__":
    s.run_tests()
