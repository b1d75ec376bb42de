#!/usr/bin/python3
"""Reload under load (issue 3 item 5; SIGUSR1 and the CoreDNS reload plugin).

node-cache in DaemonSet mode (interface + iptables, -localip 169.254.20.10) serves a Corefile given
directly as -conf (-basecorefile points to a file that does not exist, so nothing is rendered).
Two knotd instances (A on 10.96.0.21, B on 10.96.0.22) serve the same zones except `probe.test`,
which is 192.0.2.101 on A and 192.0.2.102 on B. The `.` block has no cache and forwards to A or
B; the cluster.local block is cached.

While dnsperf sends 2000 queries/s for 25 s (cached cluster names and uncached external names),
the Corefile changes 10 times, alternating the `.` upstream: 8 changes are followed by SIGUSR1,
2 are left to the `reload 2s 1s` directive alone. After each change `probe.test` must come from
the new upstream (bounded wait); at the end dnsperf must report "Queries lost: 0".

Then a broken Corefile (a stray `}` on its last line) + SIGUSR1: a log line naming
<Corefile>:<line>, coredns_reload_failed_total +1 (once, although `reload` keeps polling the same
file), and the previous config keeps serving."""

import os
import re
import signal
import time

import sys_support as s

KNOT_A, KNOT_B = "10.96.0.21", "10.96.0.22"
PROBE_IP = {KNOT_A: "192.0.2.101", KNOT_B: "192.0.2.102"}
METRICS = "127.0.0.1:9353"
RATE, SECONDS = 2000, 25
DIRECTIVE_ONLY = (4, 8)  # change numbers (1-based) left to the reload directive

COREFILE = """# generation {gen}
cluster.local:53 {{
    errors
    cache {{
        success 9984 30
        denial 9984 5
    }}
    reload 2s 1s
    bind 169.254.20.10
    forward . {a} {{
        force_tcp
    }}
    prometheus :9253
    health 169.254.20.10:8080
}}
.:53 {{
    errors
    reload 2s 1s
    bind 169.254.20.10
    forward . {up}
    prometheus :9253
}}
"""


def probe_zone(ip):
    return ("$ORIGIN probe.test.\n$TTL 60\n"
            "@ 60 IN SOA ns.probe.test. hostmaster.probe.test. 1 7200 1800 86400 5\n"
            "@ 60 IN NS ns\nns 60 IN A 192.0.2.53\n@ 60 IN A %s\n" % ip)


class ReloadUnderLoadTest(s.SystemTestCase):
    def setUp(self):
        self.tmp = self.make_tmp()
        self.ns = self.start_ns(addresses=(KNOT_A, KNOT_B))
        for ip in (KNOT_A, KNOT_B):
            zones = dict(s.h.DEFAULT_ZONES)
            zones["probe.test"] = probe_zone(PROBE_IP[ip])
            self.start_knot(listen=[(ip, 53)], zones=zones, netns=self.ns)
        self.conf = os.path.join(self.tmp, "Corefile")
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")
        self.gen = 0
        self.write_conf(KNOT_A)
        args = ["-localip", s.LOCAL_V4, "-conf", self.conf, "-upstreamsvc", "kube-dns-upstream",
                "-pidfile", self.pidfile,
                "-basecorefile", os.path.join(self.tmp, "no-such-dir", "Corefile.base"),
                "-syncinterval", "2", "-metrics-listen-address", METRICS]
        self.nc = self.start_node_cache(self.ns, args, self.tmp,
                                        env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": KNOT_A})
        self.wait_serving(self.nc, self.ns, s.LOCAL_V4, self.pidfile)

    def write_conf(self, upstream, text=None):
        """Atomically replaces the Corefile (a reader never sees a half-written file)."""
        self.gen += 1
        if text is None:
            text = COREFILE.format(gen=self.gen, a=KNOT_A, up=upstream)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)
        return text

    def probe(self):
        r = self.ns.run(["kdig", "+time=1", "+retry=1", "+short", "@" + s.LOCAL_V4, "probe.test",
                         "A"], timeout=10)
        return r.stdout.strip()

    def wait_probe(self, want, timeout, what):
        t0 = time.monotonic()
        seen = []

        def probed():
            seen.append(self.probe())
            return seen[-1] == want

        try:
            s.h.wait_until(probed, timeout, "probe.test to be %r" % want, interval=0.1)
        except AssertionError:
            raise AssertionError("%s: probe.test is %r after %.1fs, want %r\n%s"
                                 % (what, seen[-1] if seen else None, timeout, want,
                                    self.nc.context()))
        return time.monotonic() - t0

    def reload_failed(self):
        return s.node_metric(self.ns, METRICS, "coredns_reload_failed_total")

    def test_reload_under_load(self):
        self.wait_probe(PROBE_IP[KNOT_A], 3, "initial config")
        names = ["kubernetes.default.svc.cluster.local A",
                 "kube-dns.kube-system.svc.cluster.local A"]
        names += ["svc-%d.ns-%d.svc.cluster.local A" % (i, i % 10) for i in range(0, 300, 15)]
        names += ["www.example.test A", "mutable.example.test A", "nxname.example.test A"]
        names += ["q%d.uniq.example.test A" % i for i in range(40)]
        qfile = os.path.join(self.tmp, "queries.txt")
        with open(qfile, "w") as f:
            f.write("\n".join(names) + "\n")
        perf_out = os.path.join(self.tmp, "dnsperf.out")
        perf = self.start_dnsperf(self.ns, ["-s", s.LOCAL_V4, "-d", qfile, "-Q", str(RATE),
                                            "-l", str(SECONDS), "-t", "5"], perf_out)
        t_start = time.monotonic()
        time.sleep(1.0)

        upstream = KNOT_A
        timings = []
        for change in range(1, 11):
            upstream = KNOT_B if upstream == KNOT_A else KNOT_A
            self.write_conf(upstream)
            if change in DIRECTIVE_ONLY:
                # reload 2s 1s: period 2 s ± 0.5 s, plus the check granularity
                took = self.wait_probe(PROBE_IP[upstream], 4.5,
                                       "change %d (reload directive only)" % change)
            else:
                self.nc.signal(signal.SIGUSR1)
                took = self.wait_probe(PROBE_IP[upstream], 2.0, "change %d (SIGUSR1)" % change)
            timings.append(round(took, 2))
            self.assertTrue(self.nc.alive(), self.nc.context())
            time.sleep(0.5)
        self.assertLess(time.monotonic() - t_start, SECONDS - 2,
                        "the changes must happen while dnsperf runs (timings %s)" % timings)

        rc = s.h.wait_proc(perf, SECONDS + 20)
        with open(perf_out) as f:
            report = f.read()
        self.assertEqual(rc, 0, "dnsperf exit code\n" + report)
        sent = re.search(r"Queries sent:\s+(\d+)", report)
        lost = re.search(r"Queries lost:\s+(\d+)", report)
        self.assertTrue(sent and lost, "cannot parse dnsperf's report:\n" + report)
        self.assertGreaterEqual(int(sent.group(1)), RATE * SECONDS * 0.8,
                                "dnsperf sent too few queries\n" + report)
        self.assertEqual(int(lost.group(1)), 0,
                         "queries lost during 10 reloads (reload timings %s)\n%s\n%s"
                         % (timings, report, self.nc.context()))
        self.assertGreaterEqual(self.nc.output().count("Reloading complete"), 10,
                                self.nc.context())

        rc = self.nc.stop()
        self.assertEqual(rc, 0, self.nc.context())

    def test_broken_corefile_refused(self):
        """A syntax error: file:line logged, reload_failed_total +1, the old config serves."""
        self.wait_probe(PROBE_IP[KNOT_A], 3, "initial config")
        upstream = KNOT_B
        self.write_conf(upstream)
        self.nc.signal(signal.SIGUSR1)
        self.wait_probe(PROBE_IP[upstream], 2.0, "good change before the broken one")
        before = self.reload_failed()
        # a stray `}` after the last block: the error is on the file's last line
        broken = COREFILE.format(gen=self.gen + 1, a=KNOT_A, up=KNOT_B) + "}\n"
        bad_line = broken.count("\n")
        self.write_conf(None, broken)
        self.nc.signal(signal.SIGUSR1)
        where = "%s:%d" % (self.conf, bad_line)

        def error_logged():
            return [l for l in self.nc.output().splitlines()
                    if where in l and ("[ERROR]" in l or "[WARNING]" in l)]
        s.h.wait_until(error_logged, 3.0, what="a reload error naming %s (the stray `}`)\n%s"
                       % (where, self.nc.context()))
        s.h.wait_until(lambda: self.reload_failed() >= before + 1, 3.0,
                       what="coredns_reload_failed_total + 1")
        self.assertEqual(self.probe(), PROBE_IP[upstream], "old config no longer serving")
        self.assertTrue(self.nc.alive(), self.nc.context())
        m = self.ns.dns("kubernetes.default.svc.cluster.local", "A", s.LOCAL_V4, 53, "tcp")
        self.assertEqual([rd.to_text() for rs in m.answer for rd in rs], ["10.96.0.1"])
        status, _ = self.ns.http_get("http://169.254.20.10:8080/health")
        self.assertEqual(status, 200, "health after a refused reload")
        # The reload directive keeps polling the same broken file: CoreDNS counts one failure per
        # distinct content ("Let not try to restart with the same file"), not one per poll.
        time.sleep(3.5)
        self.assertEqual(self.reload_failed(), before + 1,
                         "coredns_reload_failed_total after one broken Corefile, SIGUSR1 and "
                         "3.5 s of `reload 2s 1s` polling\n" + self.nc.context())
        rc = self.nc.stop()
        self.assertEqual(rc, 0, self.nc.context())


if __name__ == "__main__":
    s.run_tests()
