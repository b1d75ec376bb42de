#!/usr/bin/python3
"""node-cache as the DaemonSet runs it, IPv6 (-localip fd00::10): the same lifecycle as
test_daemonset_v4 (answers over UDP/TCP, exactly 12 ip6tables rules with both comments, health,
a deleted rule restored within the sync interval, SIGTERM teardown with the link kept). The
overlay's Corefile gets the IPv6 form of the health address (`[fd00::10]:8080`)."""

import sys_support as s
import test_daemonset_v4 as v4


class DaemonSetV6Test(v4.DaemonSetV4Test):
    V6 = True
    LOCAL = s.LOCAL_V6
    HEALTH = "[fd00::10]:8080"

    def base_corefile(self, text):
        text = text.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
        text = text.replace("health __PILLAR__LOCAL__DNS__:8080",
                            "health [__PILLAR__LOCAL__DNS__]:8080")
        text = text.replace("health %s:8080" % s.LOCAL_V4, "health [%s]:8080" % s.LOCAL_V6)
        return text.replace(s.LOCAL_V4, s.LOCAL_V6)


if __name__ == "__main__":
    s.run_tests()
