#!/usr/bin/python3
"""node-cache as the Kube-OVN DaemonSet runs it, IPv4 (issue 3).

In a network namespace: a veth `nodelocaldns` (the node's existing link; this kernel has no dummy
links), knotd as kube-dns (10.96.0.10:53), as kube-dns-upstream (10.96.0.11:53, via
$KUBE_DNS_UPSTREAM_SERVICE_HOST) and as the node's resolver (127.0.0.1:53 through the namespace's
resolv.conf). node-cache gets the overlay's Corefile as -basecorefile and the DaemonSet's exact
args (paths moved into a temp dir) plus -basecorefile, -syncinterval 2, -metrics-listen-address.

Checks: answers on 169.254.20.10 over UDP and TCP (cluster, reverse and external names); exactly
the 12 iptables rules of upstream node-cache with both comments, in inserted order; GET /health 200;
setup_errors_total{interface_add} 0; a deleted rule comes back within the sync interval + 1 s;
SIGTERM → exit 0, rules and 169.254.20.10 gone, the link still there, pidfile removed."""

import os

import dns.rcode

import daemonset_base as base
import sys_support as s

SYNC = base.SYNC


class DaemonSetV4Test(base.DaemonSetBase):
    def test_daemonset_lifecycle(self):
        ctx = "Corefile from %s\n" % self.source
        # -- the rendered Corefile --
        with open(self.conf) as f:
            rendered = f.read()
        self.assertNotIn("__PILLAR__", rendered, ctx + rendered)
        self.assertIn("bind %s" % self.LOCAL, rendered, ctx + rendered)
        self.assertIn("forward . /etc/resolv.conf", rendered, ctx + rendered)
        if "__PILLAR__CLUSTER__DNS__" in self.base:
            self.assertIn("forward . %s {" % s.UPSTREAM_SVC_IP, rendered, ctx + rendered)

        # -- DNS over UDP and TCP --
        cases = [("kubernetes.default.svc.cluster.local", "A", {"10.96.0.1"}),
                 ("svc-7.ns-7.svc.cluster.local", "A", {"10.96.1.8"}),
                 ("10.0.96.10.in-addr.arpa", "PTR", {"kube-dns.kube-system.svc.cluster.local."}),
                 ("www.example.test", "A", {"192.0.2.10", "192.0.2.11"})]
        for _ in range(2):  # second round from the cache
            for proto in ("udp", "tcp"):
                for name, rdtype, want in cases:
                    m = self.q(name, rdtype, proto)
                    what = "%s %s @%s/%s" % (name, rdtype, self.LOCAL, proto)
                    self.assertEqual(m.rcode(), dns.rcode.NOERROR, "%s:\n%s" % (what, m))
                    self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, want,
                                     "%s:\n%s" % (what, m))

        # -- iptables: exactly the 12 rules, in inserted order --
        self.wait_rules_exact(self.ns, self.LOCAL, self.V6, 3.0, "3 s after the pidfile")
        save = self.ns.iptables_save(self.V6)
        self.assertIn('--comment "%s"' % s.COMMENT_SKIP, save)
        self.assertIn('--comment "%s"' % s.COMMENT_ALLOW, save)

        # -- health and node-cache metrics --
        status, body = self.ns.http_get("http://%s/health" % self.HEALTH)
        self.assertEqual(status, 200, "GET http://%s/health: %r" % (self.HEALTH, body))
        self.assertEqual(s.node_metric(self.ns, self.metrics,
                                       "coredns_nodecache_setup_errors_total",
                                       errortype="interface_add"), 0,
                         "interface_add errors with an existing link\n" + self.nc.context())
        status, body = self.ns.http_get("http://%s/metrics" % self.metrics)
        self.assertIn('coredns_nodecache_setup_errors_total{errortype="interface_add"}', body)
        self.assertIn(self.LOCAL, self.ns.addresses(s.LINK), "local IP on the link")

        # -- a deleted rule is restored within the sync interval --
        rule = s.expected_rules(self.LOCAL)[1]  # raw PREROUTING udp NOTRACK
        added_back = "Added back nodelocaldns rule"
        logged_before = self.nc.output().count(added_back)
        rc, out = self.ns.iptables(self.V6, "-t", "raw", "-D", "PREROUTING", *s.rule_args(rule))
        self.assertEqual(rc, 0, "deleting %s: %s" % (rule, out))
        self.assertEqual(len(self.ns.nodelocal_rules(self.V6)), 11, "rule deleted")
        self.wait_rules_exact(self.ns, self.LOCAL, self.V6, SYNC + 1.0,
                              "rule not restored within %d s + 1 s\n%s"
                              % (SYNC, self.nc.context()))
        s.h.wait_until(lambda: self.nc.output().count(added_back) == logged_before + 1, 1.0,
                       what="one more %r log line" % added_back)
        line = [l for l in self.nc.output().splitlines() if added_back in l][-1]
        for word in ("PREROUTING", "udp", self.LOCAL):
            self.assertIn(word, line, "the restored rule's log line")
        self.assertEqual(self.nc.output().count(added_back), logged_before + 1,
                         "only the deleted rule is added back\n" + self.nc.context())

        # -- SIGTERM: teardown, exit 0 --
        rc = self.nc.stop()
        self.assertEqual(rc, 0, "exit code on SIGTERM\n" + self.nc.context())
        self.assertEqual(self.ns.nodelocal_rules(self.V6), [], "rules left after SIGTERM\n"
                         + self.ns.iptables_save(self.V6) + self.nc.context())
        self.assertTrue(self.ns.link_exists(s.LINK),
                        "the link %s (created by the test, not node-cache) was deleted" % s.LINK)
        self.assertNotIn(self.LOCAL, self.ns.addresses(s.LINK),
                         "local IP left on the link after SIGTERM")
        self.assertFalse(os.path.exists(self.pidfile), "pidfile left after exit")
        self.assertIn("Tearing down", self.nc.output())


if __name__ == "__main__":
    s.run_tests()
