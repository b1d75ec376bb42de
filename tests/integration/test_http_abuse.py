#!/usr/bin/python3
"""11. Slow, half-open, oversized and too many clients on the HTTP ports (issue 11): node-cache
with `health` and `prometheus` in the Corefile and its own -metrics-listen-address. While 50
clients per port send one byte a second of a request that never ends, `/health` and both
`/metrics` answer 20 of 20 within 1 s (the kubelet's liveness probe); the trickling clients are
cut off at the 5 s request deadline and counted; connections beyond the per-listener cap evict
the oldest unfinished one so a fresh probe still gets in; an oversized head gets 431. Figures
(answered, max latency, RSS before/after) are printed. With NLD_REFERENCE_NODE_CACHE set, both
scenarios also run against the reference k8s-dns-node-cache on the same Corefile
(docs/reliability.md); its figures are printed, not asserted on."""

import selectors
import socket
import threading
import time

import harness as h

TRICKLERS = 50        # slow clients per port
PROBES = 20           # one GET per second per port
PROBE_TIMEOUT = 1.0   # the kubelet's default probe timeout


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def still_open(socks, timeout):
    """The sockets of `socks` the server has not closed (EOF or reset) within timeout (one
    deadline for all); data meanwhile is discarded."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    open_ = set(socks)
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            try:
                data = key.fileobj.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # reset
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                open_.discard(key.fileobj)
    sel.close()
    return [s for s in socks if s in open_]


class Trickler:
    """`n` connections to each port that send one byte a second of an endless request head."""

    HEAD = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 64

    def __init__(self, ports, n):
        self.socks = [connect(p) for p in ports for _ in range(n)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stop.is_set():
            for s in self.socks:
                try:
                    s.send(self.HEAD[i % len(self.HEAD):][:1])
                except OSError:
                    pass  # cut off by the server: expected after 5 s
            i += 1
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()


class HttpAbuseTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        self.health = h.free_port()
        self.prom = h.free_port()
        self.corefile = """example.test:{port} {{
    bind 127.0.0.1
    cache 30
    forward . 127.0.0.1:{knot}
    health 127.0.0.1:{health}
    prometheus 127.0.0.1:{prom}
}}
""".format(port=self.port, knot=self.knot.port, health=self.health, prom=self.prom)

    def start(self, reference=False):
        """Ours, or the reference (the test is skipped when it is not set)."""
        probe = ("127.0.0.1", self.port, "www.example.test")
        if reference:
            self.nc = self.start_reference(self.corefile, probe)
        else:
            self.nc = self.start_node_cache(self.corefile, probe)
        self.label = "reference" if reference else "ours"
        self.node_metrics = int(self.nc.metrics_addr.rsplit(":", 1)[1])
        self.urls = {
            "health": "http://127.0.0.1:%d/health" % self.health,
            "prometheus": "http://127.0.0.1:%d/metrics" % self.prom,
            "node-metrics": "http://127.0.0.1:%d/metrics" % self.node_metrics,
        }

    def probe_all(self, rounds):
        """GET each URL once a second; returns {name: [(status, seconds), ...]}."""
        results = {name: [] for name in self.urls}
        for _ in range(rounds):
            t_round = time.monotonic()
            for name, url in self.urls.items():
                t0 = time.monotonic()
                try:
                    status, _ = h.http_get(url, timeout=PROBE_TIMEOUT)
                except OSError:  # timeout or refused
                    status = None
                results[name].append((status, time.monotonic() - t0))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t_round)))
        return results

    def trickle(self):
        """TRICKLERS slow clients per port while each URL is probed PROBES times; prints and
        returns ({name: answered within PROBE_TIMEOUT}, trickling clients still connected)."""
        rss0 = h.rss_kib(self.nc.pid)
        cpu0 = self.nc.cpu_seconds()
        trickler = Trickler([self.health, self.prom, self.node_metrics], TRICKLERS)
        self.addCleanup(trickler.close)
        results = self.probe_all(PROBES)
        rss_during = h.rss_kib(self.nc.pid)
        answered = {}
        for name, res in results.items():
            ok = [t for status, t in res if status == 200 and t < PROBE_TIMEOUT]
            answered[name] = len(ok)
            print("[ figures ] %s %s: %d/%d answered within %.0f s with %d trickling clients per "
                  "port, max %.1f ms" % (self.label, name, len(ok), PROBES, PROBE_TIMEOUT,
                                         TRICKLERS, 1000 * max(t for _, t in res)), flush=True)
        trickler.stop.set()
        trickler.thread.join(timeout=5)
        left = still_open(trickler.socks, 2.0)
        trickler.close()
        rss1 = h.rss_kib(self.nc.pid)
        print("[ figures ] %s: RSS %d KiB before, %d KiB with %d trickling clients, %d KiB after; "
              "CPU %.2f s over %d s; %d of %d trickling clients still connected after %d s"
              % (self.label, rss0, rss_during, 3 * TRICKLERS, rss1, self.nc.cpu_seconds() - cpu0,
                 PROBES, len(left), len(trickler.socks), PROBES + 2), flush=True)
        return answered, left

    def test_trickling_clients_do_not_block_health_or_metrics(self):
        self.start()
        answered, left = self.trickle()
        for name, n in answered.items():
            self.assertEqual(n, PROBES, "%s\n%s" % (name, self.nc.output()[-2000:]))
        # The tricklers were cut off at their 5 s request deadline (long before the 20 s here)
        # and counted; the Corefile listeners count into the served registry.
        self.assertEqual(left, [], "%d trickling clients still connected" % len(left))
        samples = self.nc.metrics("127.0.0.1:%d" % self.prom)
        dropped = h.metric_sum(samples, "nodelocaldns_http_connections_dropped_total",
                               reason="request_timeout")
        # health and prometheus listeners at least (node-cache's own listener counts only if the
        # application registers it)
        self.assertGreaterEqual(dropped, 2 * TRICKLERS, samples)

    def test_reference_trickling_clients(self):
        self.start(reference=True)
        self.trickle()

    def crowd(self):
        """200 silent connections on the health port, one oversized request head, then 10
        probes; prints and returns (the oversized request's status line, probes answered)."""
        # More silent connections than the per-listener cap (64): the oldest unfinished ones are
        # evicted, so the fresh probes below still get in at once.
        silent = [connect(self.health) for _ in range(200)]
        self.addCleanup(lambda: [s.close() for s in silent])
        big = socket.create_connection(("127.0.0.1", self.health), timeout=5)
        self.addCleanup(big.close)
        big.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
        try:
            reply = big.recv(4096).split(b"\r\n", 1)[0]
        except OSError as e:
            reply = repr(e).encode()
        worst = 0.0
        ok = 0
        for _ in range(10):
            t0 = time.monotonic()
            try:
                ok += h.http_get(self.urls["health"], timeout=PROBE_TIMEOUT) == (200, "OK")
            except OSError:
                pass
            worst = max(worst, time.monotonic() - t0)
        print("[ figures ] %s: /health %d/10 with 200 silent connections on the port, max %.1f "
              "ms; a 100 kB request head got %r" % (self.label, ok, 1000 * worst, reply),
              flush=True)
        return reply, ok

    def test_half_open_crowd_oversize_and_cap(self):
        self.start()
        reply, ok = self.crowd()
        self.assertTrue(reply.startswith(b"HTTP/1.1 431 "), reply)
        self.assertEqual(ok, 10, "/health with 200 silent connections on the port (cap 64)")
        samples = self.nc.metrics("127.0.0.1:%d" % self.prom)
        evicted = h.metric_sum(samples, "nodelocaldns_http_connections_dropped_total",
                               address="127.0.0.1:%d" % self.health, reason="evicted")
        self.assertGreaterEqual(evicted, 200 - 64)
        self.assertEqual(h.metric_sum(samples, "nodelocaldns_http_connections_dropped_total",
                                      address="127.0.0.1:%d" % self.health,
                                      reason="too_large"), 1)

    def test_reference_half_open_crowd_oversize(self):
        self.start(reference=True)
        self.crowd()


if __name__ == "__main__":
    h.run_tests()
