#!/usr/bin/python3
"""Issue 11: a flood of unique names towards a dead upstream must not grow node-cache without
bound, and cached names keep being answered.

The upstream manifest's Corefile (four blocks, the manifest's cache sizes) runs in a network
namespace with knot as kube-dns (127.0.0.1:5300, force_tcp) and, as the node's resolver of the
`.` block, either a blackhole (192.0.2.53 on lo, its UDP/TCP port 53 dropped by iptables: every
query waits for its timeouts) or a closed port (127.0.0.3:53: ICMP port unreachable, every query
fails at once). flood_sender.py sends unique names under `flood.example.` at RATE queries a second
for SECONDS (fire and forget) while asking 30 cluster.local names again and again. With
-workers 1 and 2 the test reads node-cache's VmHWM (peak RSS) and VmRSS before, during and after
the flood from /proc, counts its log lines, and asserts: peak RSS under 64 MiB, the RSS back near
its pre-flood level once the flood has passed, the cached names answered, the default
concurrency bound counted (blackhole). The figures are printed (FLOOD ... lines) for the report.

With NLD_REFERENCE_NODE_CACHE set, the same two floods (one run each: it has no -workers) also
hit the reference k8s-dns-node-cache on the same Corefile, for docs/reliability.md; its figures
are printed as FLOOD ... reference lines and not asserted on.
"""

import json
import os
import re
import threading
import time

import dns.rcode

import harness as h

LOCAL_DNS = "169.254.20.10"
KUBE_DNS_PORT = 5300
BLACKHOLE = "192.0.2.53"
CLOSED = "127.0.0.3"
RATE = int(os.environ.get("NLD_FLOOD_RATE", "20000"))
SECONDS = float(os.environ.get("NLD_FLOOD_SECONDS", "12"))
PEAK_LIMIT_KIB = 64 * 1024
# Back near the pre-flood level: what stays is allocator slack and the pools' caps.
AFTER_SLACK_KIB = 12 * 1024
CACHED = ["svc-%d.ns-%d.svc.cluster.local" % (i, i % 10) for i in range(30)]
SENDER = os.path.join(h.HERE, "flood_sender.py")

with open(os.path.join(h.HERE, "data", "nodelocaldns.Corefile")) as _f:
    TEMPLATE = _f.read()


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


class FloodTest(h.NodeCacheTestCase):
    def setUp(self):
        self.ns = self.start_netns(addresses=(LOCAL_DNS, BLACKHOLE))
        for proto in ("udp", "tcp"):
            self.ns.run(["iptables", "-A", "INPUT", "-d", BLACKHOLE, "-p", proto, "--dport", "53",
                         "-j", "DROP"], check=True)
        self.knot = self.start_knot(listen=[("127.0.0.1", KUBE_DNS_PORT)], netns=self.ns)
        self.tmp = h.make_tmpdir("nld-it-flood-")
        self.addCleanup(h.remove_tmpdir, self.tmp)

    def start(self, resolver, workers):
        """Ours with -workers `workers`, or the reference when workers is None."""
        resolv = os.path.join(self.tmp, "resolv-%s.conf" % resolver)
        with open(resolv, "w") as f:
            f.write("nameserver %s\n" % resolver)
        corefile = (TEMPLATE.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
                    .replace("__PILLAR__LOCAL__DNS__", LOCAL_DNS)
                    .replace("__PILLAR__DNS__SERVER__", "")
                    .replace("__PILLAR__CLUSTER__DNS__", "127.0.0.1:%d" % KUBE_DNS_PORT)
                    .replace("__PILLAR__UPSTREAM__SERVERS__", resolv))
        probe = (LOCAL_DNS, 53, "kubernetes.default.svc.cluster.local")
        if workers is None:
            return self.start_reference(corefile, probe, netns=self.ns, localip=LOCAL_DNS)
        return self.start_node_cache(corefile, probe, netns=self.ns, localip=LOCAL_DNS,
                                     flags=["-workers", str(workers)])

    def metrics(self):
        status, body = self.ns.http_get("http://%s:9253/metrics" % LOCAL_DNS)
        self.assertEqual(status, 200)
        return h.parse_metrics(body)

    def run_flood(self, resolver, workers, what):
        """The flood against ours (-workers `workers`) or the reference (workers None)."""
        nc = self.start(resolver, workers)
        for name in CACHED:  # warm the cache
            self.assertRcode(self.ns.dns(name, "A", LOCAL_DNS), dns.rcode.NOERROR, name)
        time.sleep(0.5)
        rss_before = status_kib(nc.pid, "VmRSS")
        lines_before = nc.output().count("\n")
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(status_kib(nc.pid, "VmRSS"))
                except (OSError, AssertionError):
                    return
                stop.wait(0.2)

        sampler = threading.Thread(target=sample)
        cpu0 = nc.cpu_seconds()
        sampler.start()
        try:
            r = self.ns.run(["/usr/bin/python3", SENDER, LOCAL_DNS, str(RATE), str(SECONDS),
                             "flood.example"] + CACHED, timeout=SECONDS + 60)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            lines_flood = nc.output().count("\n") - lines_before
            cpu = nc.cpu_seconds() - cpu0
            # Every query has an answer within the 5 s forward budget; the pools shrink and the
            # heap is trimmed once the worker has been quiet for a second or two.
            time.sleep(8.0)
        finally:
            stop.set()
            sampler.join()
        self.assertTrue(nc.alive(), nc.output()[-3000:])
        peak = status_kib(nc.pid, "VmHWM")
        after = status_kib(nc.pid, "VmRSS")
        m = self.metrics()
        rejects = h.metric_sum(m, "coredns_forward_max_concurrent_rejects_total")
        servfail = h.metric_sum(m, "coredns_dns_responses_total", rcode="SERVFAIL")
        refused = h.metric_sum(m, "coredns_dns_responses_total", rcode="REFUSED")
        suppressed = h.metric_sum(m, "nodelocaldns_log_lines_suppressed_total")
        lat = res["cached_lat_us"]
        pct = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else -1)
        rate = res["sent"] / res["elapsed"]
        label = "reference" if workers is None else "workers=%d" % workers
        print("FLOOD %s %s: sent %d in %.1f s (%.0f q/s); RSS before %.1f MiB, peak %.1f "
              "MiB (sampled max %.1f), after %.1f MiB; SERVFAIL %d REFUSED %d (limit rejects %d); "
              "cached %d/%d answered, latency p50 %d us p99 %d us max %d us; log lines during "
              "flood %d, suppressed %d; CPU %.1f s"
              % (what, label, res["sent"], res["elapsed"], rate, rss_before / 1024, peak / 1024,
                 max(samples or [0]) / 1024, after / 1024, servfail, refused, rejects,
                 res["cached_ok"], res["cached_asked"], pct(0.5), pct(0.99), pct(1.0) if lat else -1,
                 lines_flood, suppressed, cpu), flush=True)
        if workers is None:
            return  # the reference is measured, not judged
        self.assertGreater(rate, 0.75 * RATE, "the sender fell short of the flood rate")
        self.assertLess(peak, PEAK_LIMIT_KIB, "peak RSS %d KiB" % peak)
        self.assertLess(after, rss_before + AFTER_SLACK_KIB,
                        "RSS %d KiB after the flood, %d KiB before" % (after, rss_before))
        # Blackhole: the flood is refused at once (the stanza's concurrency bound), the worker has
        # CPU to spare and every cached name is answered. ICMP: every flood query is a full
        # forward cycle (two attempts, each failed by the kernel); on this shared 2-core machine
        # the worker can fall behind its socket queue, so cached answers wait in that queue
        # (reported; asserted loosely).
        want = 0.98 if what == "blackhole" else 0.5
        self.assertGreaterEqual(res["cached_ok"], want * res["cached_asked"],
                                "cached names not answered during the flood")
        # Bounded logging: per worker at most the burst plus 100 lines a second, plus one summary
        # line a second.
        self.assertLess(lines_flood, workers * (100 + 101 * (SECONDS + 8)) + 50)
        if what == "blackhole":
            self.assertGreater(rejects, 0, "the default concurrency bound never refused")
        # Still serving after the flood.
        self.assertRcode(self.ns.dns(CACHED[0], "A", LOCAL_DNS), dns.rcode.NOERROR)
        self.assertTrue(re.search(r"plugin/errors: \d+ error lines suppressed", nc.output()),
                        "no suppression summary line")

    def test_blackhole_w1(self):
        self.run_flood(BLACKHOLE, 1, "blackhole")

    def test_blackhole_w2(self):
        self.run_flood(BLACKHOLE, 2, "blackhole")

    def test_icmp_w1(self):
        self.run_flood(CLOSED, 1, "icmp")

    def test_icmp_w2(self):
        self.run_flood(CLOSED, 2, "icmp")

    def test_reference_blackhole(self):
        self.run_flood(BLACKHOLE, None, "blackhole")

    def test_reference_icmp(self):
        self.run_flood(CLOSED, None, "icmp")


if __name__ == "__main__":
    h.run_tests()
