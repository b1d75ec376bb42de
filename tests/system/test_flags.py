#!/usr/bin/python3
"""Flag validation as k8s-dns-node-cache's (issue 3 item 1): every bad invocation exits 1
with a one-line error naming the offending flag or value, before anything is touched (no
iptables rule, no address on the link, no link created, no Corefile rendered, no pidfile).
`-syncinterval=30s` (which crashes the upstream's ticker) and `-syncinterval 30` are
accepted and mean 30 seconds: node-cache starts, installs its rules, and a rule deleted right
after start is not put back within 3 s."""

import os
import time

import sys_support as s

COREFILE = """cluster.local:53 {
    errors
    cache 30
    bind 169.254.20.10
    forward . 10.96.0.10
}
"""

# (description, flags replacing/adding to the good invocation, substrings the error must contain)
BAD = [
    # Mixed families are accepted (dual-stack, test_dualstack.py); a bad element is still named.
    ("bad element in a dual-stack -localip", {"-localip": "169.254.20.10,fd00::zz"},
     ["localip", "fd00::zz"]),
    ("bracketed IPv6 in -localip", {"-localip": "[fd00::10],169.254.20.10"},
     ["localip", "[fd00::10]"]),
    ("non-IP -localip", {"-localip": "not-an-ip"}, ["localip", "not-an-ip"]),
    ("empty element in -localip", {"-localip": "169.254.20.10,"}, ["localip"]),
    ("empty -localip", {"-localip": ""}, ["localip"]),
    ("non-integer -health-port", {"-health-port": "80x"}, ["health-port", "80x"]),
    ("non-integer -dns.port", {"-dns.port": "fiftythree"}, ["dns.port", "fiftythree"]),
    ("bad -syncinterval", {"-syncinterval": "soon"}, ["syncinterval", "soon"]),
    ("extra positional argument", {"": "surplus"}, ["surplus"]),
    ("unknown flag", {"-no-such-flag": "1"}, ["no-such-flag"]),
]


class FlagsTest(s.SystemTestCase):
    def setUp(self):
        self.tmp = self.make_tmp()
        self.ns = self.start_ns(addresses=(s.CLUSTER_DNS,))
        self.base = os.path.join(self.tmp, "Corefile.base")
        with open(self.base, "w") as f:
            f.write(COREFILE)
        self.conf = os.path.join(self.tmp, "Corefile")
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")

    def good(self):
        return {"-localip": s.LOCAL_V4, "-conf": self.conf, "-upstreamsvc": "kube-dns-upstream",
                "-pidfile": self.pidfile, "-basecorefile": self.base, "-syncinterval": "2",
                "-metrics-listen-address": "127.0.0.1:9353"}

    @staticmethod
    def argv(flags):
        out, positional = [], []
        for k, v in flags.items():
            if k == "":
                positional.append(v)
            else:
                out += [k, v]
        return out + positional

    def assert_untouched(self, what):
        self.assertEqual(self.ns.nodelocal_rules(False), [], what + ": iptables rules added")
        self.assertEqual(self.ns.nodelocal_rules(True), [], what + ": ip6tables rules added")
        for addr in (s.LOCAL_V4, s.LOCAL_V6):
            self.assertNotIn(addr, self.ns.addresses(s.LINK), what + ": address added")
        self.assertFalse(os.path.exists(self.conf), what + ": Corefile rendered")
        self.assertFalse(os.path.exists(self.pidfile), what + ": pidfile written")
        self.assertEqual(self.link_names(), self.baseline_links, what + ": links changed")

    def link_names(self):
        return sorted(l.split(":")[1].strip().split("@")[0]
                      for l in self.ns.ip("-o", "link", "show").splitlines() if l.strip())

    def test_bad_invocations(self):
        self.baseline_links = self.link_names()
        self.assertIn(s.LINK, self.baseline_links)
        for what, change, must in BAD:
            with self.subTest(what):
                flags = self.good()
                flags.update(change)
                argv = [s.h.node_cache_binary()] + self.argv(flags)
                r = self.ns.run(argv, timeout=15)
                ctx = "%s: argv %s\nexit %s, stdout %r, stderr %r" % (
                    what, argv, r.returncode, r.stdout, r.stderr)
                self.assertEqual(r.returncode, 1, ctx)
                lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
                self.assertEqual(len(lines), 1, "want a one-line error\n" + ctx)
                for m in must:
                    self.assertIn(m, lines[0], ctx)
                self.assert_untouched(what)

    def check_accepted(self, interval_args):
        self.ns_knot = self.start_knot(listen=[(s.CLUSTER_DNS, 53)], netns=self.ns)
        flags = self.good()
        del flags["-syncinterval"]
        argv = self.argv(flags) + interval_args
        nc = self.start_node_cache(self.ns, argv, self.tmp,
                                   env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.CLUSTER_DNS})
        self.wait_serving(nc, self.ns, s.LOCAL_V4, self.pidfile)
        self.wait_rules_exact(self.ns, s.LOCAL_V4, False, 5.0, "rules with %s" % interval_args)
        rule = s.expected_rules(s.LOCAL_V4)[0]
        rc, out = self.ns.iptables(False, "-t", "raw", "-D", "PREROUTING", *s.rule_args(rule))
        self.assertEqual(rc, 0, out)
        time.sleep(3.0)
        self.assertEqual(len(self.ns.nodelocal_rules(False)), 11,
                         "%s: a rule deleted after start was restored within 3 s, so the "
                         "interval is not 30 s\n%s" % (interval_args, nc.context()))
        self.assertTrue(nc.alive(), nc.context())
        rc = nc.stop()
        self.assertEqual(rc, 0, nc.context())
        self.assertEqual(self.ns.nodelocal_rules(False), [], "rules after SIGTERM")

    def test_syncinterval_go_duration_accepted(self):
        self.check_accepted(["-syncinterval=30s"])

    def test_syncinterval_integer_seconds_accepted(self):
        self.check_accepted(["-syncinterval", "30"])


if __name__ == "__main__":
    s.run_tests()
