#!/usr/bin/python3
"""Zero-loss handover between node-cache processes (issue 10 items 1, 2 and 5; docs/availability.md).

node-cache runs as the DaemonSet does (interface + iptables on 169.254.20.10, a knotd upstream on
10.96.0.21) with a state directory. While dnsperf sends a constant 10,000 queries/s for names the
cache holds, a new node-cache with the same flags is started HANDOVERS times, alternating
-workers 1 and 2; each takes the listening sockets and the cache from the running one, which
drains and exits by itself. Asserted:
  * dnsperf: 0 queries lost, every answer NOERROR (no SERVFAIL);
  * every predecessor exits by itself with code 0, and the pidfile names the newest process;
  * warm cache: in the first second after each successor starts serving, at most 5 % of the
    queries reach the upstream (the hit ratio before is ~100 %, so ≥ 95 % of it is kept);
  * the interface and the 12 rules are there throughout and exactly once; SIGTERM of the last
    process tears them down as before.
Readiness across a handover (issue 13): `node-cache -probe-ready 169.254.20.10:53` passes only for
the POD_UID of the process that answers there: the owner's before, the successor's once the owner
stopped reading, the owner's again when a successor died and the owner resumed.
Then the half-way failures: a candidate started while another is taking over waits its turn
(never two owners), a stale socket file is no obstacle, and a successor that dies after it took
the sockets leaves the predecessor serving (it resumes).
Figures (per-handover upstream queries, drain times) are printed for the closing note."""

import os
import re
import signal
import time

import sys_support as s

KNOT = "10.96.0.21"
RATE = 10000
HANDOVERS = 20
NAMES = 500
METRICS = "127.0.0.1:9353"

COREFILE = """handover.test:53 {
    errors
    cache 600
    bind 169.254.20.10
    forward . %s
    health 169.254.20.10:8080
    prometheus :9253
}
""" % KNOT


def zone():
    lines = ["$ORIGIN handover.test.", "$TTL 600",
             "@ 600 IN SOA ns.handover.test. hostmaster.handover.test. 1 7200 1800 86400 600",
             "@ 600 IN NS ns", "ns 600 IN A 192.0.2.53"]
    lines += ["n%d 600 IN A 192.0.2.%d" % (i, i % 250 + 1) for i in range(NAMES)]
    return "\n".join(lines) + "\n"


class HandoverTest(s.SystemTestCase):
    def setUp(self):
        self.tmp = self.make_tmp("nld-sys-handover-")
        self.ns = self.start_ns(addresses=(KNOT,))
        self.knot = self.start_knot(listen=[(KNOT, 53)], zones={"handover.test": zone()},
                                    netns=self.ns)
        self.conf = os.path.join(self.tmp, "Corefile")
        with open(self.conf, "w") as f:
            f.write(COREFILE)
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")
        self.state = os.path.join(self.tmp, "state")
        self.count = 0

    def start(self, workers, name=None, uid=None):
        self.count += 1
        args = ["-localip", s.LOCAL_V4, "-conf", self.conf, "-upstreamsvc", "kube-dns-upstream",
                "-pidfile", self.pidfile, "-basecorefile", os.path.join(self.tmp, "none", "base"),
                "-metrics-listen-address", METRICS, "-statedir", self.state,
                "-workers", str(workers)]
        return self.start_node_cache(self.ns, args, self.tmp, name=name or "nc%d" % self.count,
                                     env={"POD_UID": uid} if uid else None)

    def probe_ready(self, uid):
        """Exit code and output of the DaemonSet's readiness probe run as pod `uid`."""
        r = self.ns.run(["env", "POD_UID=" + uid, s.h.node_cache_binary(), "-probe-ready",
                         s.LOCAL_V4 + ":53"], timeout=10)
        return r.returncode, r.stdout + r.stderr

    def assert_ready_only(self, uid, other, context):
        rc, out = self.probe_ready(uid)
        self.assertEqual(rc, 0, "%s: probe as %s: %s" % (context, uid, out))
        rc, out = self.probe_ready(other)
        self.assertEqual(rc, 1, "%s: probe as %s: %s" % (context, other, out))
        self.assertIn('id.server "%s"' % uid, out)

    def wait_log(self, nc, needle, timeout):
        s.h.wait_until(lambda: needle in nc.output(), timeout, interval=0.02,
                       what="%r in the log\n%s" % (needle, nc.context()))

    def assert_pidfile_names(self, nc):
        with open(self.pidfile) as f:
            self.assertEqual(f.read().strip(), str(nc.pid), "pidfile\n" + nc.context())

    def ask(self, name="n1.handover.test", proto="udp"):
        m = self.ns.dns(name, "A", s.LOCAL_V4, 53, proto)
        return [rd.to_text() for rs in m.answer for rd in rs]

    def test_handovers_under_load(self):
        first = self.start(1)
        self.wait_serving(first, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        qfile = os.path.join(self.tmp, "queries.txt")
        with open(qfile, "w") as f:
            f.write("".join("n%d.handover.test A\n" % i for i in range(NAMES)))
        # Prime the cache: every name once.
        r = self.ns.run(["dnsperf", "-s", s.LOCAL_V4, "-d", qfile, "-n", "1", "-t", "5"],
                        timeout=60)
        self.assertIn("Queries lost:         0", r.stdout, r.stdout)
        upstream0 = self.knot.query_count()

        seconds = 50
        perf_out = os.path.join(self.tmp, "dnsperf.out")
        perf = self.start_dnsperf(self.ns, ["-s", s.LOCAL_V4, "-d", qfile, "-Q", str(RATE),
                                            "-l", str(seconds), "-t", "5", "-c", "4"], perf_out)
        t_start = time.monotonic()
        time.sleep(1.0)

        current = first
        figures = []
        for i in range(HANDOVERS):
            workers = 2 if i % 2 == 0 else 1
            before = self.knot.query_count()
            t0 = time.monotonic()
            nxt = self.start(workers)
            self.wait_log(nxt, "Handover: took", 10)
            took = time.monotonic() - t0
            time.sleep(1.0)
            misses = self.knot.query_count() - before
            rc = current.wait_exit(15)
            drained = time.monotonic() - t0
            self.assertEqual(rc, 0, "predecessor %d did not exit by itself with 0 (rc %s)\n%s"
                             % (i, rc, current.context()))
            self.assertIn("Handover: drained", current.output(), current.context())
            self.assertTrue(nxt.alive(), nxt.context())
            figures.append((workers, round(took, 2), misses, round(drained, 2)))
            # ≥ 95 % of the hit ratio before (~100 %): ≤ 5 % of a second's queries go upstream
            self.assertLessEqual(misses, RATE * 0.05,
                                 "handover %d: %d upstream queries in the first second (cold "
                                 "cache?)\n%s" % (i, misses, nxt.context()))
            self.assert_pidfile_names(nxt)
            self.assert_rules_exact(self.ns, s.LOCAL_V4, msg="after handover %d" % i)
            self.assertIn(s.LOCAL_V4, self.ns.addresses(s.LINK), "interface address")
            current = nxt
        self.assertLess(time.monotonic() - t_start, seconds - 2,
                        "the handovers must happen while dnsperf runs: %s" % figures)

        rc = s.h.wait_proc(perf, seconds + 20)
        with open(perf_out) as f:
            report = f.read()
        print("handovers (workers, seconds to take over, upstream queries in the first second, "
              "seconds until the predecessor exited):", figures)
        print("upstream queries during the run: %d" % (self.knot.query_count() - upstream0))
        print(report)
        self.assertEqual(rc, 0, "dnsperf exit code\n" + report)
        sent = int(re.search(r"Queries sent:\s+(\d+)", report).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", report).group(1))
        self.assertGreaterEqual(sent, RATE * seconds * 0.9, "dnsperf sent too few\n" + report)
        self.assertEqual(lost, 0, "queries lost across %d handovers\n%s" % (HANDOVERS, report))
        codes = re.search(r"Response codes:\s+(.*)", report).group(1)
        self.assertTrue(codes.startswith("NOERROR") and "," not in codes,
                        "answers other than NOERROR: %s" % codes)

        status, _ = self.ns.http_get("http://169.254.20.10:8080/health")
        self.assertEqual(status, 200, "/health after the handovers")
        self.assertEqual(current.stop(), 0, current.context())
        self.assertEqual(self.ns.nodelocal_rules(), [], "rules after SIGTERM of the last owner")

    def restart_under_load(self, start, seconds=10, restart_at=3.0):
        """dnsperf at RATE for `seconds`; at `restart_at` the running process is replaced the
        upstream way (SIGTERM, wait for its exit, start a new one). Returns (lost, sent)."""
        qfile = os.path.join(self.tmp, "queries.txt")
        with open(qfile, "w") as f:
            f.write("".join("n%d.handover.test A\n" % i for i in range(NAMES)))
        nc = start()
        self.wait_serving(nc, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        self.ns.run(["dnsperf", "-s", s.LOCAL_V4, "-d", qfile, "-n", "1", "-t", "2"], timeout=60)
        out_path = os.path.join(self.tmp, "dnsperf-restart.out")
        # -q: outstanding queries, so dnsperf keeps sending (and counting losses) while down
        perf = self.start_dnsperf(self.ns, ["-s", s.LOCAL_V4, "-d", qfile, "-Q", str(RATE),
                                            "-l", str(seconds), "-t", "2", "-c", "4",
                                            "-q", "100000"], out_path)
        time.sleep(restart_at)
        self.assertEqual(nc.stop(), 0, nc.context())
        nxt = start()
        self.assertEqual(s.h.wait_proc(perf, seconds + 15), 0)
        self.assertTrue(nxt.alive(), nxt.context())
        nxt.stop()
        with open(out_path) as f:
            report = f.read()
        sent = int(re.search(r"Queries sent:\s+(\d+)", report).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", report).group(1))
        return lost, sent

    def test_restart_the_upstream_way_loses_queries(self):
        """The comparison for docs/availability.md: a rollout as the upstream DaemonSet does it
        (old process terminated, new one started) under the same load. With our binary and no
        state directory, and with the real k8s-dns-node-cache when NLD_REFERENCE_NODE_CACHE is
        set. Queries are lost in both (which also shows the 0 above is a real measurement).
        The reference cannot put the address on a veth (it insists on a dummy link, which this
        kernel lacks), so both run with -setupinterface=false and the address stays on the link:
        the loss measured is the process's own stop and start."""
        self.ns.ip("addr", "add", s.LOCAL_V4 + "/32", "dev", s.LINK)

        def ours():
            self.count += 1
            args = ["-localip", s.LOCAL_V4, "-conf", self.conf, "-upstreamsvc",
                    "kube-dns-upstream", "-pidfile", self.pidfile,
                    "-basecorefile", os.path.join(self.tmp, "none", "base"),
                    "-metrics-listen-address", METRICS, "-statedir=", "-setupinterface=false"]
            return self.start_node_cache(self.ns, args, self.tmp, name="nc%d" % self.count)
        lost, sent = self.restart_under_load(ours)
        print("restart without handover (ours, -statedir=): %d of %d queries lost" % (lost, sent))
        self.assertGreater(lost, 0, "a stop-then-start restart lost nothing?")
        if s.h.reference_node_cache() is None:
            return  # (a SKIPPED line was printed) ours was measured above

        def reference():
            self.count += 1
            args = ["-localip", s.LOCAL_V4, "-conf", self.conf, "-upstreamsvc",
                    "kube-dns-upstream", "-pidfile", self.pidfile,
                    "-basecorefile", os.path.join(self.tmp, "none", "base"),
                    "-metrics-listen-address", METRICS, "-setupinterface=false"]
            return self.start_reference(self.ns, args, self.tmp, name="ref%d" % self.count,
                                        env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": KNOT})
        lost, sent = self.restart_under_load(reference)
        print("restart of the reference k8s-dns-node-cache 1.22.18: %d of %d queries lost"
              % (lost, sent))
        self.assertGreater(lost, 0)

    def test_queued_candidates_and_stale_socket(self):
        # A stale socket file (a dead owner's) is no obstacle.
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        with open(os.path.join(self.state, "handover.sock"), "w"):
            pass
        owner = self.start(1)
        self.wait_serving(owner, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        # Two candidates at once: one takes over, the other waits its turn and then takes over
        # from the first; never two owners (each predecessor exits by itself).
        a = self.start(2)
        b = self.start(1)
        self.assertEqual(owner.wait_exit(15), 0, owner.context())
        s.h.wait_until(lambda: not (a.alive() and b.alive()), 25, interval=0.1,
                       what="one of the two candidates exited after handing over to the other\n"
                            "%s\n%s" % (a.context(), b.context()))
        survivor = a if a.alive() else b
        gone = b if survivor is a else a
        self.assertEqual(gone.proc.returncode, 0, gone.context())
        self.assertIn("Handover: drained", gone.output(), gone.context())
        self.assertEqual(self.ask(), ["192.0.2.2"])
        self.assertEqual(self.ask(proto="tcp"), ["192.0.2.2"])
        self.assert_rules_exact(self.ns, s.LOCAL_V4, msg="after queued handovers")
        self.assertEqual(survivor.stop(), 0, survivor.context())

    def test_readiness_follows_the_handover(self):
        old, new = "pod-uid-old", "pod-uid-new"
        owner = self.start(1, uid=old)
        self.wait_serving(owner, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        self.assert_ready_only(old, new, "owner alone")
        succ = self.start(2, uid=new)
        # The owner stops reading once the successor serves: from then on only the new pod's
        # process answers on the shared address, while the old one is still alive (draining).
        self.wait_log(owner, "serves now; draining", 10)
        self.assert_ready_only(new, old, "after the handover")
        self.assertEqual(owner.wait_exit(15), 0, owner.context())
        self.assert_ready_only(new, old, "after the predecessor exited")
        self.assertEqual(succ.stop(), 0, succ.context())

    def test_successor_dies_predecessor_resumes(self):
        owner = self.start(2)
        self.wait_serving(owner, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        # A successor that takes the sockets and is killed right after it said it serves: the
        # owner, idle and so drained at once, still stays 2 s (kHandoverLinger) and resumes.
        succ = self.start(1)
        self.wait_log(owner, "serves now; draining", 10)
        succ.proc.send_signal(signal.SIGKILL)
        succ.wait_exit(5)
        self.wait_log(owner, "resuming service", 5)
        self.assertNotIn("Handover: drained", owner.output(), owner.context())
        self.assertTrue(owner.alive(), owner.context())
        for _ in range(20):
            self.assertEqual(self.ask(), ["192.0.2.2"])
        self.assertEqual(self.ask(proto="tcp"), ["192.0.2.2"])
        self.assert_rules_exact(self.ns, s.LOCAL_V4, msg="after a successor died")
        self.assert_pidfile_names(owner)
        self.assertEqual(owner.stop(), 0, owner.context())


    def test_successor_terminated_predecessor_restores_the_node(self):
        owner = self.start(2)
        self.wait_serving(owner, self.ns, s.LOCAL_V4, self.pidfile, qname="n1.handover.test")
        # A successor SIGTERMed right after it said it serves (the new pod deleted mid-rollout)
        # tears the interface and the rules down as it exits; the owner resumes and puts them
        # back at once, not one -syncinterval (60 s) later.
        succ = self.start(1)
        self.wait_log(owner, "serves now; draining", 10)
        self.assertEqual(succ.stop(), 0, succ.context())
        self.assertIn("Tearing down", succ.output(), succ.context())
        self.wait_log(owner, "resuming service", 5)
        s.h.wait_until(lambda: s.LOCAL_V4 in self.ns.addresses(s.LINK), 5, interval=0.05,
                       what="the interface address back\n" + owner.context())
        self.assert_rules_exact(self.ns, s.LOCAL_V4, msg="after a successor was terminated")
        self.assert_pidfile_names(owner)
        self.assertEqual(self.ask(), ["192.0.2.2"])
        self.assertEqual(self.ask(proto="tcp"), ["192.0.2.2"])
        self.assertEqual(owner.stop(), 0, owner.context())
        self.assertEqual(self.ns.nodelocal_rules(), [], "rules after SIGTERM of the owner")

if __name__ == "__main__":
    s.run_tests()
