#!/usr/bin/python3
"""The DNS-over-TCP front end of a real node-cache under abuse (issue 11):

- 5,000 idle TCP clients (reconnecting when closed) and 100 slow ones sending a byte a second:
  memory stays bounded and comes back after they leave, the slow ones are closed by the
  per-frame deadline, and UDP and a fresh `dig +tcp` are still answered (a full connection table
  evicts the idlest instead of refusing the newcomer).
- Out of file descriptors (RLIMIT_NOFILE 1024 and 1,500 idle TCP clients): accept() failing with
  EMFILE does not turn into a busy loop (node-cache's CPU stays far below one core), and a fresh
  TCP query is answered again once the clients are gone.

Figures (RSS, CPU) are printed for the report. Everything runs on loopback and stops by itself.
With NLD_REFERENCE_NODE_CACHE set, both scenarios also run against the reference
k8s-dns-node-cache on the same Corefile (docs/reliability.md); its figures are printed, not
asserted on.
"""

import errno
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import dns.rcode  # noqa: E402

import harness as h  # noqa: E402


def log(msg):
    print("[tcp-abuse] " + msg, file=sys.stderr, flush=True)


class Clients:
    """Many non-blocking TCP clients of one address, watched for the server closing them."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = set()
        self.closed_by_server = 0

    def open(self, n, kind="idle"):
        opened = 0
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", self.port))
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                continue
            self.socks.add(s)
            self.sel.register(s, selectors.EVENT_READ, kind)
            opened += 1
        return opened

    def reap(self, timeout=0.0):
        """Closes the clients the server closed; returns {kind: count}."""
        gone = {}
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                continue
            self.sel.unregister(s)
            self.socks.discard(s)
            s.close()
            self.closed_by_server += 1
            gone[key.data] = gone.get(key.data, 0) + 1
        return gone

    def each(self, kind):
        return [k.fileobj for k in self.sel.get_map().values() if k.data == kind]

    def close_all(self):
        for s in list(self.socks):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.socks.clear()


def dig_tcp(name, port, timeout=3):
    r = subprocess.run(["dig", "+tcp", "+time=%d" % timeout, "+tries=1", "@127.0.0.1", "-p",
                        str(port), name, "A"], capture_output=True, text=True,
                       timeout=timeout + 5)
    return "status: NOERROR" in r.stdout


class TcpAbuseTest(h.NodeCacheTestCase):
    def setUp(self):
        self.resp = self.start_responder()
        self.port = h.free_port()
        self.corefile = """.:{port} {{
    bind 127.0.0.1
    cache 30
    forward . {resp}
}}
""".format(port=self.port, resp=self.resp.addr)

    def start(self, reference=False):
        """Ours with -workers 2, or the reference (the test is skipped when it is not set)."""
        probe = ("127.0.0.1", self.port, "warm.abuse.test")
        if reference:
            self.nc = self.start_reference(self.corefile, probe)
        else:
            self.nc = self.start_node_cache(self.corefile, probe, flags=("-workers", "2"))
        self.label = "reference" if reference else "ours -workers 2"
        self.clients = Clients(self.port)
        self.addCleanup(self.clients.close_all)

    def udp_ok(self, name):
        try:
            return h.ask(name, "A", "127.0.0.1", self.port, timeout=2).rcode() == dns.rcode.NOERROR
        except Exception:  # noqa: BLE001 - a timeout is a failure to report, not an error
            return False

    def idle_and_slow(self):
        """5,000 idle clients (reopened when closed) and 100 slow ones for 8 s; returns the
        figures."""
        rss_before = h.rss_kib(self.nc.pid)
        self.clients.open(5000, "idle")
        self.clients.open(100, "slow")
        slow_closed = 0
        peak = rss_before
        udp_ok = tcp_ok = 0
        checks = 0
        reopened = 0
        t0 = time.monotonic()
        deadline = t0 + 8.0
        next_tick = t0
        while time.monotonic() < deadline:
            gone = self.clients.reap(0.05)
            slow_closed += gone.get("slow", 0)
            if gone.get("idle"):
                reopened += self.clients.open(gone["idle"], "idle")  # held: reopened at once
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                for s in self.clients.each("slow"):
                    try:
                        s.send(b"\x00")  # one byte a second of a frame that never completes
                    except OSError:
                        pass
                peak = max(peak, h.rss_kib(self.nc.pid))
                if time.monotonic() - t0 > 2.0:
                    checks += 1
                    udp_ok += self.udp_ok("warm.abuse.test")
                    tcp_ok += dig_tcp("fresh%d.abuse.test" % checks, self.port)
        # (the reference has no such counter: 0)
        evicted = h.metric_sum(self.nc.metrics(), "nodelocaldns_tcp_connections_evicted_total")
        self.clients.close_all()
        udp_after = True
        try:
            h.wait_until(lambda: self.udp_ok("warm.abuse.test"), 5, what="UDP answer after load")
        except AssertionError:
            udp_after = False
        time.sleep(2.0)  # the closes reach node-cache, its timers run
        rss_after = h.rss_kib(self.nc.pid)
        log("%s: 5,000 idle + 100 slow TCP clients: RSS before %.1f MiB, peak during %.1f MiB, "
            "after %.1f MiB; %d reopened; slow closed %d/100; evicted %d; UDP %d/%d, fresh dig "
            "+tcp %d/%d; UDP after: %s; alive %s"
            % (self.label, rss_before / 1024, peak / 1024, rss_after / 1024, reopened, slow_closed,
               evicted, udp_ok, checks, tcp_ok, checks, "ok" if udp_after else "FAILED",
               self.nc.alive()))
        return dict(rss_before=rss_before, peak=peak, rss_after=rss_after, checks=checks,
                    udp_ok=udp_ok, tcp_ok=tcp_ok, evicted=evicted, slow_closed=slow_closed,
                    udp_after=udp_after)

    def test_idle_and_slow_clients_memory_bounded_and_fresh_clients_served(self):
        self.start()
        f = self.idle_and_slow()
        rss_before, peak, rss_after = f["rss_before"], f["peak"], f["rss_after"]
        udp_ok, tcp_ok, checks = f["udp_ok"], f["tcp_ok"], f["checks"]
        evicted, slow_closed = f["evicted"], f["slow_closed"]
        self.assertTrue(f["udp_after"], "UDP not answered after the clients left")
        self.assertEqual(udp_ok, checks, "UDP queries unanswered during the TCP flood")
        self.assertEqual(tcp_ok, checks, "a fresh TCP client was not served while the table was full")
        self.assertGreater(evicted, 0, "5,000 clients over a 2 x 1,024 table: evictions expected")
        self.assertEqual(slow_closed, 100, "slow clients must be closed by the per-frame deadline")
        # 64 KiB per connection up front made this 136 MiB; on demand it is a few MiB.
        self.assertLess(peak - rss_before, 24 * 1024, "RSS grew by %d KiB" % (peak - rss_before))
        self.assertLess(rss_after - rss_before, 8 * 1024,
                        "RSS kept %d KiB after the clients left" % (rss_after - rss_before))

    def test_reference_idle_and_slow_clients(self):
        self.start(reference=True)
        self.idle_and_slow()

    def out_of_descriptors(self):
        """RLIMIT_NOFILE 1024 and 1,500 idle clients; returns the figures."""
        # As if started with `ulimit -n 1024` (soft and hard, so raising to the hard limit at
        # start does not help).
        resource.prlimit(self.nc.pid, resource.RLIMIT_NOFILE, (1024, 1024))
        cpu0 = self.nc.cpu_seconds()
        self.clients.open(1500, "idle")
        time.sleep(0.3)
        t1 = time.monotonic()
        cpu1 = self.nc.cpu_seconds()
        during_ok = dig_tcp("during.abuse.test", self.port)
        time.sleep(2.0 - (time.monotonic() - t1))
        cpu2 = self.nc.cpu_seconds()
        share = (cpu2 - cpu1) / (time.monotonic() - t1)
        try:  # the reference has neither counter (0); a process out of descriptors may not
            samples = self.nc.metrics()  # even accept the scrape (-1)
            paused = h.metric_sum(samples, "nodelocaldns_tcp_accept_paused_total")
            evicted = h.metric_sum(samples, "nodelocaldns_tcp_connections_evicted_total")
        except (OSError, AssertionError):
            paused = evicted = -1
        self.clients.close_all()
        t2 = time.monotonic()
        try:
            h.wait_until(lambda: dig_tcp("after.abuse.test", self.port, timeout=1), 10,
                         interval=0.2, what="fresh TCP answered after the clients closed")
            recovered = time.monotonic() - t2
        except AssertionError:
            recovered = None
        log("%s: RLIMIT_NOFILE 1024, 1,500 idle TCP clients: CPU %.1f %% of one core "
            "(accepting %.2f s); accept pauses %d, evictions %d; fresh dig +tcp during: %s, after "
            "the clients closed: %s; alive %s"
            % (self.label, 100 * share, cpu1 - cpu0, paused, evicted,
               "ok" if during_ok else "FAILED",
               "ok in %.1f s" % recovered if recovered is not None else "FAILED for 10 s",
               self.nc.alive()))
        return dict(share=share, paused=paused, evicted=evicted, during_ok=during_ok,
                    recovered=recovered)

    def test_out_of_descriptors_no_busy_loop_then_recovers(self):
        self.start()
        f = self.out_of_descriptors()
        share, paused, evicted, during_ok = f["share"], f["paused"], f["evicted"], f["during_ok"]
        self.assertIsNotNone(f["recovered"], "fresh TCP not answered after the clients closed")
        self.assertGreater(paused + evicted, 0, "the descriptor limit was not reached")
        self.assertTrue(during_ok, "a fresh TCP client (a cache miss: it needs an upstream "
                        "socket) was not served while the clients held the descriptors")
        self.assertLess(share, 0.20, "accept() failing with EMFILE must not spin")

    def test_reference_out_of_descriptors(self):
        self.start(reference=True)
        self.out_of_descriptors()


if __name__ == "__main__":
    h.run_tests()
