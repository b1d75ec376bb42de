#!/usr/bin/python3
"""-firewall=nftables and -firewall=auto (issue 12 item 4): node-cache as the DaemonSet runs it,
in a namespace, with its rules in its own table `inet node-local-dns` instead of iptables.

NftablesTest: the table holds the 12 rules per local IP (the iptables rules translated), no
iptables rule is written, DNS traffic to the local IP leaves no conntrack entry while the
forwarded upstream flow does (conntrack is live in the namespace: a pre-existing unrelated table
uses `ct state`), the table comes back within -syncinterval after `nft delete table`, the unrelated
table is never touched and SIGTERM leaves `nft list ruleset` exactly as it was before the start.

NftablesV6Test: the same for -localip fd00::10.

KubeProxyTest: a kube-proxy-like `ip kube-proxy` table (nftables mode) DNATs the kube-dns IP
10.96.0.10:53 to a pod IP where nothing listens; node-cache with -firewall=auto picks nftables
because of it, binds 10.96.0.10 as well (-localip 169.254.20.10,10.96.0.10, like the upstream
manifest) and answers there itself (id.server CH TXT is node-cache's identity), the DNAT rule's
counter stays 0; after teardown the same query is DNATed (counter > 0), which shows the DNAT was
live all along and only the NOTRACK rules kept it away."""

import os
import re
import signal
import time

import dns.rcode

import daemonset_base as base
import harness as h
import sys_support as s
import test_daemonset_v6 as v6

TABLE = "node-local-dns"
CHAINS = {"raw-prerouting", "raw-output", "filter-input", "filter-output"}


def rule_comments(rules):
    return [r.get("comment") for _, r in rules]


class _NftBase(base.DaemonSetBase):
    def ruleset(self):
        return self.ns.nft("list", "ruleset")

    def wait_table(self, n_rules, timeout):
        def ok():
            rules = self.ns.nft_rules("inet", TABLE)
            return rules is not None and len(rules) == n_rules
        h.wait_until(ok, timeout, interval=0.1, what="table inet %s with %d rules" % (TABLE, n_rules))


class NftablesTest(_NftBase):
    EXTRA_ARGS = ("-firewall", "nftables")

    def before_start(self):
        # An unrelated table that uses conntrack (so the namespace tracks flows at all).
        self.ns.nft("add", "table", "inet", "nld-test-other")
        self.ns.nft("add", "chain", "inet", "nld-test-other", "in",
                    "{ type filter hook input priority 10; }")
        self.ns.nft("add", "rule", "inet", "nld-test-other", "in", "ct", "state",
                    "established,related", "counter", "accept")
        self.before = self.ruleset()

    def test_rules_untracked_repaired_and_torn_down(self):
        self.wait_table(12, 5.0)
        rules = self.ns.nft_rules("inet", TABLE)
        self.assertEqual({c for c, _ in rules}, CHAINS)
        self.assertEqual(sorted(rule_comments(rules)),
                         sorted([s.COMMENT_SKIP] * 8 + [s.COMMENT_ALLOW] * 4))
        listing = self.ns.nft("list", "table", "inet", TABLE)
        ip = ("ip6 " if self.V6 else "ip ")
        for want in (ip + "daddr %s udp dport 53 notrack",
                     ip + "daddr %s tcp dport 53 notrack",
                     ip + "saddr %s udp sport 53 notrack",
                     ip + "daddr %s udp dport 53 accept",
                     ip + "saddr %s tcp sport 53 accept",
                     ip + "daddr %s tcp dport 8080 notrack",
                     "type filter hook prerouting priority raw",
                     "type filter hook input priority filter"):
            self.assertIn(want.replace("%s", self.LOCAL), listing)
        self.assertEqual(self.ns.nodelocal_rules(self.V6), [], "iptables rules with nftables")
        self.assertIn("Firewall backend: nftables (-firewall=nftables)", self.nc.output())

        # Queries over both protocols: answered, and no conntrack entry for the local IP; the
        # forwarded upstream flows (to 10.96.0.11, force_tcp) are tracked, so conntrack works.
        for i, proto in enumerate(("udp", "tcp", "udp", "tcp")):
            r = self.q("nft-%d-%d.default.svc.cluster.local" % (os.getpid(), i), "A", proto)
            self.assertIn(r.rcode(), (dns.rcode.NOERROR, dns.rcode.NXDOMAIN))
        family = ["-f", "ipv6"] if self.V6 else []
        local = [line for line in self.ns.conntrack(*family) if "=" + self.LOCAL + " " in line]
        self.assertEqual(local, [], "conntrack entries for the local IP")
        flows = self.ns.conntrack()
        self.assertTrue(any("dport=53" in line for line in flows),
                        "no tracked upstream flow: is conntrack active? %s" % flows)

        # Deleted → back within the sync interval; the unrelated table is left alone.
        self.ns.nft("delete", "table", "inet", TABLE)
        self.wait_table(12, base.SYNC * 3 + 2)
        self.assertIn("ct state established,related counter",
                      self.ns.nft("list", "table", "inet", "nld-test-other"))

        # SIGTERM: the ruleset is what it was before node-cache started (counters aside).
        self.nc.signal(signal.SIGTERM)
        self.assertEqual(self.nc.wait_exit(15), 0, self.nc.context())
        self.assertIsNone(self.ns.nft_rules("inet", TABLE))
        strip = lambda text: re.sub(r"counter packets \d+ bytes \d+", "counter", text)
        self.assertEqual(strip(self.ruleset()), strip(self.before))


class NftablesV6Test(NftablesTest):
    """The same with -localip fd00::10: ip6 matches in the same inet table."""
    V6 = True
    LOCAL = s.LOCAL_V6
    HEALTH = "[fd00::10]:8080"

    def base_corefile(self, text):
        return v6.DaemonSetV6Test.base_corefile(self, text)


class KubeProxyTest(_NftBase):
    EXTRA_ARGS = ("-firewall", "auto")
    LOCALIP = s.LOCAL_V4 + "," + s.CLUSTER_DNS
    NS_ADDRESSES = (s.UPSTREAM_SVC_IP,)
    KNOT_LISTEN = ((s.UPSTREAM_SVC_IP, 53), ("127.0.0.1", 53))
    POD = "10.244.0.5"   # the "coredns pod" behind the Service: nothing listens there

    def base_corefile(self, text):
        # The cache owns the kube-dns IP here (upstream manifest style): the cluster zones go to
        # kube-dns-upstream, as the upstream's __PILLAR__CLUSTER__DNS__ does in that mode.
        text = super().base_corefile(text).replace("forward . " + s.CLUSTER_DNS,
                                                   "forward . " + s.UPSTREAM_SVC_IP)
        return text.replace("bind " + s.LOCAL_V4 + "\n", "bind __PILLAR__LOCAL__DNS__\n")

    def before_start(self):
        self.ns.ip("addr", "add", self.POD + "/32", "dev", "lo")
        self.ns.nft("add", "table", "ip", "kube-proxy")
        for chain, hook in (("nat-prerouting", "prerouting"), ("nat-output", "output")):
            self.ns.nft("add", "chain", "ip", "kube-proxy", chain,
                        "{ type nat hook %s priority -100; }" % hook)
            for proto in ("udp", "tcp"):
                self.ns.nft("add", "rule", "ip", "kube-proxy", chain, "ip", "daddr",
                            s.CLUSTER_DNS, proto, "dport", "53", "counter", "dnat", "to",
                            self.POD + ":53")

    def dnat_packets(self):
        text = self.ns.nft("list", "table", "ip", "kube-proxy")
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", text))

    def identity(self):
        r = self.ns.run(["kdig", "+time=2", "+retry=0", "+short", "@" + s.CLUSTER_DNS,
                         "id.server", "CH", "TXT"], timeout=10)
        return r.stdout.strip()

    def test_auto_picks_nftables_and_kube_proxy_does_not_steal(self):
        self.assertIn("Firewall backend: nftables (kube-proxy runs in nftables mode "
                      "(table ip kube-proxy exists))", self.nc.output())
        self.wait_table(24, 5.0)
        self.assertEqual(self.ns.nodelocal_rules(False), [])
        for proto in ("udp", "tcp"):
            r = self.ns.dns("kubernetes.default.svc.cluster.local", "A", s.CLUSTER_DNS, 53, proto)
            self.assertEqual(r.rcode(), dns.rcode.NOERROR)
        self.assertTrue(self.identity(), "no id.server answer from node-cache on the kube-dns IP")
        self.assertEqual(self.dnat_packets(), 0, "kube-proxy's DNAT saw the cache's traffic")

        self.assertEqual(self.nc.stop(), 0, self.nc.context())
        # Without our table the DNAT applies: the query goes to the pod IP (nothing there). The
        # service range is routed as on a node, so the kube-dns IP is reachable once node-cache
        # removed it from its link.
        self.ns.ip("route", "replace", "10.96.0.0/12", "dev", "lo")
        r = self.ns.run(["kdig", "+time=1", "+retry=0", "@" + s.CLUSTER_DNS, "id.server", "CH",
                     "TXT"], timeout=10)
        self.assertGreater(self.dnat_packets(), 0, "the DNAT rule was never live")


if __name__ == "__main__":
    s.run_tests()
