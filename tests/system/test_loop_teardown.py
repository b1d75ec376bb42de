#!/usr/bin/python3
"""`loop` detection tears down before exiting (unlike upstream node-cache, which exits
without teardown and leaves NOTRACK rules that black-hole node DNS).

The DaemonSet invocation with the overlay's Corefile, but the namespace's resolv.conf (the `.`
block's upstream) points at 169.254.20.10 itself. The 12 rules are also pre-installed, as a
previous crashed instance would have left them (kubernetes/dns#438). node-cache must detect the
loop, log the CoreDNS loop message, exit 1, and leave no rule, no 169.254.20.10 on the link (the
link itself stays: the test created it) and no pidfile."""

import os

import daemonset_base as base
import sys_support as s


class LoopTeardownTest(s.SystemTestCase):
    def test_loop_exits_after_teardown(self):
        tmp = self.make_tmp()
        ns = self.start_ns(addresses=(s.CLUSTER_DNS, s.UPSTREAM_SVC_IP),
                           resolv_conf="nameserver %s\n" % s.LOCAL_V4)
        self.start_knot(listen=[(s.CLUSTER_DNS, 53), (s.UPSTREAM_SVC_IP, 53)], netns=ns)
        for rule in s.expected_rules(s.LOCAL_V4):
            rc, out = ns.iptables(False, "-t", rule[0], "-I", rule[1], "1", *s.rule_args(rule))
            self.assertEqual(rc, 0, "pre-installing %s: %s" % (rule, out))
        self.assert_rules_exact(ns, s.LOCAL_V4, False, "pre-installed leftovers")

        corefile, args, source = s.kube_ovn_overlay()
        base_path = os.path.join(tmp, "Corefile.base")
        with open(base_path, "w") as f:
            f.write(corefile.replace("__PILLAR__DNS__DOMAIN__", "cluster.local"))
        conf = os.path.join(tmp, "Corefile")
        pidfile = os.path.join(tmp, "node-cache.pid")
        argv = s.daemonset_argv(args, conf, pidfile) + [
            "-basecorefile", base_path, "-syncinterval", str(base.SYNC),
            "-metrics-listen-address", "127.0.0.1:9353"]
        nc = self.start_node_cache(ns, argv, tmp,
                                   env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.UPSTREAM_SVC_IP})
        rc = nc.wait_exit(45)
        self.assertIsNotNone(rc, "no loop detected within 45 s (Corefile from %s)\n%s"
                             % (source, nc.context()))
        self.assertEqual(rc, 1, "exit code after loop detection\n" + nc.context())
        out = nc.output()
        loop_lines = [l for l in out.splitlines()
                      if "plugin/loop: Loop (" in l and 'detected for zone "."' in l
                      and "HINFO" in l]
        self.assertTrue(loop_lines, "no CoreDNS-style loop message for zone \".\"\n"
                        + nc.context())
        self.assertIn("Tearing down", out, "teardown not logged before the loop exit")
        self.assertEqual(ns.nodelocal_rules(False), [],
                         "iptables rules left behind after the loop exit\n" + ns.iptables_save()
                         + nc.context())
        self.assertNotIn(s.LOCAL_V4, ns.addresses(s.LINK),
                         "169.254.20.10 left on the link after the loop exit\n" + nc.context())
        self.assertTrue(ns.link_exists(s.LINK), "the test's link was deleted")
        self.assertFalse(os.path.exists(pidfile), "pidfile left after the loop exit")


if __name__ == "__main__":
    s.run_tests()
