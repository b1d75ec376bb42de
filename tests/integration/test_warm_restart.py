#!/usr/bin/python3
"""Warm cache across restarts (issue 10 item 2): node-cache keeps a cache snapshot in -statedir.

- SIGKILL: 1,000 names primed with -workers 1, the periodic snapshot (-snapshotinterval 1s)
  written, node-cache killed, started again with -workers 2 and the same -statedir: of the first
  1,000 queries for the primed names >= 90 % are cache hits (coredns_cache_hits_total /
  misses_total, and knot's query counter agrees), and no answered TTL is higher than it would have
  been without the restart (600 minus the whole seconds since the priming answer came back).
- SIGTERM writes a final snapshot (the periodic one is too far away to matter) and says so.
- A corrupt snapshot is refused with one WARNING line naming the file, and node-cache serves cold.
"""

import os
import signal
import time

import harness as h

N = 1000
TTL = 600


def warm_zone():
    lines = ["$ORIGIN warm.test.", "$TTL %d" % TTL,
             "@ %d IN SOA ns.warm.test. hostmaster.warm.test. 1 7200 1800 86400 60" % TTL,
             "@ %d IN NS ns" % TTL, "ns %d IN A 192.0.2.53" % TTL]
    for i in range(N):
        lines.append("w%d %d IN A 10.%d.%d.%d" % (i, TTL, i // 65536, (i // 256) % 256, i % 256))
    return "\n".join(lines) + "\n"


class WarmRestartTest(h.NodeCacheTestCase):

    def setUp(self):
        self.knot = self.start_knot(zones={"warm.test": warm_zone})
        tmp = h.make_tmpdir("nld-it-warm-")
        self.addCleanup(h.remove_tmpdir, tmp)
        self.state = os.path.join(tmp, "state")  # node-cache creates it
        self.snapshot = os.path.join(self.state, "cache.snapshot")
        self.port = h.free_port()
        self.prom = h.free_port()
        self.corefile = """warm.test {{
    bind 127.0.0.1
    cache {ttl}
    forward . 127.0.0.1:{knot}
    prometheus 127.0.0.1:{prom}
}}
""".format(ttl=TTL, knot=self.knot.port, prom=self.prom)

    def start(self, workers, interval="60s"):
        return self.start_node_cache(
            self.corefile, ("127.0.0.1", self.port, "ns.warm.test"),
            flags=["-dns.port", str(self.port), "-workers", str(workers),
                   "-statedir", self.state, "-snapshotinterval", interval])

    def q(self, name):
        return h.ask(name, "A", "127.0.0.1", self.port, timeout=2.0)

    def cache_counts(self, nc):
        samples = nc.metrics("127.0.0.1:%d" % self.prom)
        return (h.metric_sum(samples, "coredns_cache_hits_total"),
                h.metric_sum(samples, "coredns_cache_misses_total"))

    def prime(self, names):
        """Queries every name once; returns {name: time the answer came back}."""
        answered = {}
        for name in names:
            r = self.q(name)
            answered[name] = time.monotonic()
            self.assertEqual(len(r.answer), 1, name)
            self.assertLessEqual(r.answer[0].ttl, TTL)
        return answered

    def test_sigkill_restart_is_warm_and_never_extends_ttls(self):
        names = ["w%d.warm.test" % i for i in range(N)]
        nc = self.start(workers=1, interval="1s")
        answered = self.prime(names)
        primed = time.time()
        # Wait for a periodic snapshot that began after the last priming answer: with a 1 s
        # interval, one renamed into place 1.2 s later was exported after it (an export of 1,000
        # entries takes milliseconds).
        h.wait_until(lambda: os.path.exists(self.snapshot) and
                     os.stat(self.snapshot).st_mtime > primed + 1.2, 10.0, interval=0.1,
                     what="a periodic snapshot after priming")
        os.kill(nc.pid, signal.SIGKILL)
        nc.proc.wait(5)
        nc.stopped = True  # killed on purpose
        nc.kill()

        upstream_before = self.knot.query_count()
        nc2 = self.start(workers=2, interval="60s")
        loaded = [l for l in nc2.output().splitlines() if "Cache snapshot: loaded" in l]
        self.assertEqual(len(loaded), 1, nc2.output())
        hits0, misses0 = self.cache_counts(nc2)
        too_high = []
        for name in names:
            sent = time.monotonic()
            r = self.q(name)
            ttl = r.answer[0].ttl
            # Without the restart the entry, inserted no later than `answered[name]`, would show
            # at most TTL - whole seconds elapsed between then and this query's sending.
            bound = TTL - int(sent - answered[name])
            if ttl > bound:
                too_high.append((name, ttl, bound))
        hits, misses = self.cache_counts(nc2)
        hits -= hits0
        misses -= misses0
        upstream = self.knot.query_count() - upstream_before
        ratio = hits / float(N)
        print("warm restart: %s; %d/%d hits (%.1f %%), %d misses, %d upstream queries"
              % (loaded[0].strip(), hits, N, 100 * ratio, misses, upstream))
        self.assertEqual(hits + misses, N, nc2.output()[-2000:])
        self.assertGreaterEqual(ratio, 0.90, "hit ratio after a warm restart\n" + nc2.output())
        self.assertLessEqual(upstream, N - 0.9 * N + 5, "knot saw the misses")
        self.assertEqual(too_high, [], "TTLs higher than without the restart")

    def test_sigterm_writes_a_final_snapshot(self):
        names = ["w%d.warm.test" % i for i in range(50)]
        nc = self.start(workers=2)
        self.prime(names)
        nc.proc.send_signal(signal.SIGTERM)
        self.assertEqual(nc.proc.wait(15), 0)
        nc.stopped = True
        out = nc.output()
        nc.stop()
        wrote = [l for l in out.splitlines() if "Cache snapshot: wrote" in l]
        self.assertEqual(len(wrote), 1, out)
        self.assertTrue(os.path.exists(self.snapshot))
        self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o700)

        nc2 = self.start(workers=1)
        line = [l for l in nc2.output().splitlines() if "Cache snapshot: loaded" in l]
        self.assertEqual(len(line), 1, nc2.output())
        n = int(line[0].split("loaded ")[1].split()[0])
        self.assertGreaterEqual(n, 50, line[0])  # the 50 names, plus the readiness probe's
        before = self.knot.query_count()
        for name in names:
            self.q(name)
        self.assertEqual(self.knot.query_count(), before, "every primed name was a cache hit")

    def test_corrupt_snapshot_is_refused_and_serving_starts_cold(self):
        nc = self.start(workers=1)
        self.prime(["w%d.warm.test" % i for i in range(20)])
        nc.stop()
        with open(self.snapshot, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xFF]))
        nc2 = self.start(workers=1)
        out = nc2.output()
        refused = [l for l in out.splitlines() if "Cache snapshot" in l]
        self.assertEqual(len(refused), 1, out)
        self.assertIn("[WARNING]", refused[0])
        self.assertIn(self.snapshot, refused[0])
        self.assertIn("checksum", refused[0])
        before = self.knot.query_count()
        self.q("w1.warm.test")
        self.assertEqual(self.knot.query_count(), before + 1, "cold cache asks upstream")

    def test_unwritable_statedir_warns_once_and_serves(self):
        os.makedirs(self.state)
        blocker = os.path.join(self.state, "file")
        with open(blocker, "w") as f:
            f.write("not a directory")
        nc = self.start_node_cache(
            self.corefile, ("127.0.0.1", self.port, "ns.warm.test"),
            flags=["-dns.port", str(self.port), "-statedir", os.path.join(blocker, "sub"),
                   "-snapshotinterval", "200ms"])
        time.sleep(1.0)  # several snapshot periods
        self.assertEqual(len(self.q("w2.warm.test").answer), 1)
        warnings = [l for l in nc.output().splitlines()
                     if "[WARNING]" in l and "snapshot" in l.lower()]
        self.assertEqual(len(warnings), 1, nc.output())
        self.assertIn(blocker, warnings[0])


if __name__ == "__main__":
    h.run_tests()
