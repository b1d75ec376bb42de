#!/usr/bin/python3
"""Dual-stack in one node-cache (issue 12 item 3): -localip with IPv4 and IPv6 addresses, as in
kube-proxy iptables mode the link-local IP and the kube-dns IP of each family
(169.254.20.10,10.96.0.10,fd00::10,fd00:96::a).

The Kube-OVN overlay's Corefile with its literal 169.254.20.10 turned back into the upstream
placeholder (`bind __PILLAR__LOCAL__DNS__`, `health __PILLAR__LOCAL__DNS__:8080`), so node-cache
renders the address list itself; knotd serves as kube-dns-upstream (10.96.0.11, the cluster zones
forward there since the cache owns the kube-dns IPs) and as the node's resolver (127.0.0.1).

DualStackIptablesTest: the rendered `bind` lists all four addresses and `health` only the first;
all four are on the link; every address answers over UDP and TCP; iptables holds exactly the 12
rules of each IPv4 address and ip6tables exactly those of each IPv6 address (inserted order);
/health answers on the first IP only; coredns_dns_requests_total counts both client families
(family="1" and "2", the upstream label); the readiness probe passes on an address of either
family; a successor started with the same flags takes every listener of both families (handover)
and serves them with the rules unchanged; SIGTERM → exit 0, no rule in either family, no address.

DualStackNftablesTest: the same with -firewall=nftables: one `inet node-local-dns` table with the
48 rules (ip and ip6 matches), no iptables/ip6tables rule, gone after SIGTERM."""

import os

import dns.rcode

import daemonset_base as base
import sys_support as s

V4 = (s.LOCAL_V4, s.CLUSTER_DNS)
V6 = (s.LOCAL_V6, "fd00:96::a")
ALL = (V4[0], V4[1], V6[0], V6[1])
TABLE = "node-local-dns"


class DualStackIptablesTest(base.DaemonSetBase):
    LOCALIP = ",".join(ALL)
    LOCAL = s.LOCAL_V4
    # node-cache owns 10.96.0.10 (iptables mode): knotd is only kube-dns-upstream and the resolver.
    NS_ADDRESSES = (s.UPSTREAM_SVC_IP,)
    KNOT_LISTEN = ((s.UPSTREAM_SVC_IP, 53), ("127.0.0.1", 53))

    def base_corefile(self, text):
        text = super().base_corefile(text)
        text = text.replace("bind %s\n" % s.LOCAL_V4, "bind __PILLAR__LOCAL__DNS__\n")
        text = text.replace("health %s:8080" % s.LOCAL_V4, "health __PILLAR__LOCAL__DNS__:8080")
        return text.replace("forward . %s " % s.CLUSTER_DNS, "forward . %s " % s.UPSTREAM_SVC_IP)

    def assert_rules_gone(self):
        for v6 in (False, True):
            self.assertEqual(self.ns.nodelocal_rules(v6), [],
                             "%s rules left after SIGTERM\n%s%s"
                             % ("ip6tables" if v6 else "iptables", self.ns.iptables_save(v6),
                                self.nc.context()))

    def assert_rules(self):
        self.wait_rules_exact(self.ns, list(V4), False, 3.0, "IPv4 rules 3 s after the pidfile")
        self.wait_rules_exact(self.ns, list(V6), True, 3.0, "IPv6 rules 3 s after the pidfile")

    def test_dual_stack_lifecycle(self):
        # -- the rendered Corefile: every address bound, health on the first --
        with open(self.conf) as f:
            rendered = f.read()
        self.assertNotIn("__PILLAR__", rendered, rendered)
        self.assertIn("bind %s\n" % " ".join(ALL), rendered, rendered)
        self.assertIn("health %s:8080\n" % s.LOCAL_V4, rendered, rendered)
        addrs = self.ns.addresses(s.LINK)
        for ip in ALL:
            self.assertIn(ip, addrs, "%s on %s" % (ip, s.LINK))

        # -- DNS on every address, both transports --
        for ip in ALL:
            for proto in ("udp", "tcp"):
                for name, want in (("kubernetes.default.svc.cluster.local", {"10.96.0.1"}),
                                   ("www.example.test", {"192.0.2.10", "192.0.2.11"})):
                    m = self.ns.dns(name, "A", ip, 53, proto)
                    what = "%s A @%s/%s" % (name, ip, proto)
                    self.assertEqual(m.rcode(), dns.rcode.NOERROR, "%s:\n%s" % (what, m))
                    self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, want,
                                     "%s:\n%s" % (what, m))

        # -- rules for both families --
        self.assert_rules()

        # -- health on the first IP only; metrics keep the upstream's family label --
        status, body = self.ns.http_get("http://%s:8080/health" % s.LOCAL_V4)
        self.assertEqual(status, 200, "GET /health on the first IP: %r" % body)
        status, _ = self.ns.http_get("http://[%s]:8080/health" % s.LOCAL_V6, timeout=2)
        self.assertEqual(status, 0, "health also listens on the IPv6 address")
        for family in ("1", "2"):
            n = s.node_metric(self.ns, self.metrics, "coredns_dns_requests_total", family=family)
            self.assertGreater(n, 0, "coredns_dns_requests_total{family=%s}" % family)

        # -- readiness probe on an address of either family --
        for addr in ("%s:53" % s.LOCAL_V4, "[%s]:53" % s.LOCAL_V6):
            r = self.ns.run([s.h.node_cache_binary(), "-probe-ready", addr], timeout=10)
            self.assertEqual(r.returncode, 0, "-probe-ready %s: %s" % (addr, r.stdout + r.stderr))

        # -- handover: a successor with the same flags takes every socket of both families --
        nxt = self.start_node_cache(self.ns, self.args, self.tmp, name="successor",
                                    env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.UPSTREAM_SVC_IP})
        s.h.wait_until(lambda: "Handover: took" in nxt.output(), 10, interval=0.05,
                       what="the successor took the sockets")
        self.assertEqual(self.nc.wait_exit(15), 0, "predecessor after the handover\n"
                         + self.nc.context())
        self.assertNotIn("Handover: closed", nxt.output(),
                         "handed-over sockets the successor did not use\n" + nxt.context())
        self.nc = nxt
        for ip in ALL:
            for proto in ("udp", "tcp"):
                m = self.ns.dns("www.example.test", "A", ip, 53, proto)
                self.assertEqual(m.rcode(), dns.rcode.NOERROR,
                                 "after the handover @%s/%s:\n%s" % (ip, proto, m))
        self.assert_rules()

        # -- SIGTERM: both families torn down --
        self.assertEqual(self.nc.stop(), 0, "exit code on SIGTERM\n" + self.nc.context())
        self.assert_rules_gone()
        left = self.ns.addresses(s.LINK)
        for ip in ALL:
            self.assertNotIn(ip, left, "%s left on the link after SIGTERM" % ip)
        self.assertTrue(self.ns.link_exists(s.LINK), "the test's link was deleted")
        self.assertFalse(os.path.exists(self.pidfile), "pidfile left after exit")


class DualStackNftablesTest(DualStackIptablesTest):
    EXTRA_ARGS = ("-firewall", "nftables")

    def assert_rules(self):
        def table_complete():
            rules = self.ns.nft_rules("inet", TABLE)
            return rules is not None and len(rules) == 12 * len(ALL)
        s.h.wait_until(table_complete, 5.0, interval=0.1,
                       what="table inet %s with %d rules" % (TABLE, 12 * len(ALL)))
        listing = self.ns.nft("list", "table", "inet", TABLE)
        for ip in ALL:
            fam = "ip6" if ":" in ip else "ip"
            for want in ("%s daddr %s udp dport 53 notrack", "%s daddr %s tcp dport 53 notrack",
                         "%s saddr %s udp sport 53 accept", "%s daddr %s tcp dport 8080 notrack"):
                self.assertIn(want % (fam, ip), listing)
        self.assertEqual(self.ns.nodelocal_rules(False), [], "iptables rules with nftables")
        self.assertEqual(self.ns.nodelocal_rules(True), [], "ip6tables rules with nftables")

    def assert_rules_gone(self):
        self.assertIsNone(self.ns.nft_rules("inet", TABLE), "table left after SIGTERM\n"
                          + self.nc.context())
        super().assert_rules_gone()


if __name__ == "__main__":
    s.run_tests()
