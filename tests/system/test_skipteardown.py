#!/usr/bin/python3
"""-skipteardown (the HA "two DaemonSets" setup, kubernetes/dns#324): the DaemonSet
invocation plus -skipteardown; SIGTERM → exit 0, and the 12 iptables rules and 169.254.20.10 on
the link stay where they were. The test then removes them itself (and deletes the namespace)."""

import os

import daemonset_base as base
import sys_support as s


class SkipTeardownTest(base.DaemonSetBase):
    EXTRA_ARGS = ("-skipteardown",)

    def test_sigterm_keeps_rules_and_address(self):
        self.wait_rules_exact(self.ns, self.LOCAL, False, 3.0, "3 s after the pidfile")
        self.assertIn(self.LOCAL, self.ns.addresses(s.LINK))
        m = self.q("kubernetes.default.svc.cluster.local", "A", "udp")
        self.assertEqual([rd.to_text() for rs in m.answer for rd in rs], ["10.96.0.1"], str(m))

        rc = self.nc.stop()
        self.assertEqual(rc, 0, "exit code on SIGTERM with -skipteardown\n" + self.nc.context())
        self.assert_rules_exact(self.ns, self.LOCAL, False,
                                "rules must stay after SIGTERM with -skipteardown\n"
                                + self.nc.context())
        self.assertIn(self.LOCAL, self.ns.addresses(s.LINK),
                      "169.254.20.10 must stay on the link with -skipteardown\n"
                      + self.nc.context())
        self.assertTrue(self.ns.link_exists(s.LINK))
        self.assertNotIn("Tearing down", self.nc.output())
        self.assertFalse(os.path.exists(self.pidfile), "pidfile removed at exit")

        # clean up what node-cache deliberately left behind
        self.ns.flush_rules()
        self.ns.ip("addr", "del", self.LOCAL + "/32", "dev", s.LINK)
        self.assertEqual(self.ns.nodelocal_rules(False), [])
        self.assertNotIn(self.LOCAL, self.ns.addresses(s.LINK))


if __name__ == "__main__":
    s.run_tests()
