#!/usr/bin/python3
"""SIGINT and SIGQUIT tear down like SIGTERM (as upstream node-cache; issue 3 item 4): the
DaemonSet invocation, then the signal → exit 0, the 12 rules and 169.254.20.10 gone, the link
(created by the test) kept, pidfile removed."""

import os
import signal

import daemonset_base as base
import sys_support as s


class _SignalCase(base.DaemonSetBase):
    SIGNAL = None

    def check_signal(self):
        self.wait_rules_exact(self.ns, self.LOCAL, False, 3.0, "3 s after the pidfile")
        self.nc.signal(self.SIGNAL)
        rc = self.nc.wait_exit(15)
        name = signal.Signals(self.SIGNAL).name
        self.assertEqual(rc, 0, "exit code on %s\n%s" % (name, self.nc.context()))
        self.assertEqual(self.ns.nodelocal_rules(False), [], "rules left after %s\n%s"
                         % (name, self.ns.iptables_save()))
        self.assertNotIn(self.LOCAL, self.ns.addresses(s.LINK), "address left after " + name)
        self.assertTrue(self.ns.link_exists(s.LINK), "the test's link was deleted")
        self.assertFalse(os.path.exists(self.pidfile), "pidfile left after " + name)


class SigintTest(_SignalCase):
    SIGNAL = signal.SIGINT

    def test_sigint_tears_down(self):
        self.check_signal()


class SigquitTest(_SignalCase):
    SIGNAL = signal.SIGQUIT

    def test_sigquit_tears_down(self):
        self.check_signal()


if __name__ == "__main__":
    s.run_tests()
