#!/usr/bin/python3
"""Issue 11: bounds on the miss path and on error logging, against the node-cache binary.

- `forward ... { max_concurrent 5 }` towards a blackhole (a loopback UDP socket that never reads):
  of 20 concurrent unique queries, 15 get REFUSED at once, counted in
  coredns_forward_max_concurrent_rejects_total and logged by `errors` as CoreDNS does
  ("5 <name> A: concurrent queries exceeded maximum"); the 5 admitted get SERVFAIL when the
  forward budget runs out.
- `errors { consolidate 2s REGEXP warning }`: failures matching REGEXP leave one line
  "<n> errors like '<REGEXP>' occurred in last 2s" instead of one line each.
- Without consolidate, error lines are rate limited per worker (100 a second after a burst of
  100) and the rest summed up in a "... error lines suppressed ..." line and counted in
  nodelocaldns_log_lines_suppressed_total.

With NLD_REFERENCE_NODE_CACHE set, test_reference_bounds sends the same three bursts to the
reference k8s-dns-node-cache (CoreDNS 1.10: max_concurrent and consolidate, no rate limit) and
prints its figures (BOUNDS ... reference), for docs/reliability.md; nothing is asserted on them.
"""

import re
import select
import socket
import time
import uuid

import dns.message
import dns.rcode

import harness as h


class BoundsTest(h.NodeCacheTestCase):
    def setUp(self):
        # Blackhole: bound, never read (the kernel drops what does not fit its buffer, silently).
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.addCleanup(self.sink.close)
        self.closed = h.free_port()  # nothing listens: ICMP port unreachable, fails at once
        self.port = h.free_port()
        self.prom = h.free_port()
        self.corefile = """limited.test:{port} {{
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:{sink} {{
        max_concurrent 5
    }}
    prometheus 127.0.0.1:{prom}
}}
consolidated.test:{port} {{
    bind 127.0.0.1
    errors {{
        consolidate 2s "failed or timed out$" warning
    }}
    forward . 127.0.0.1:{closed}
}}
flooded.test:{port} {{
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:{closed}
}}
""".format(port=self.port, sink=self.sink.getsockname()[1], closed=self.closed, prom=self.prom)
        probe = ("127.0.0.1", self.port, "probe.flooded.test")
        if self._testMethodName.startswith("test_reference_"):
            self.nc = self.start_reference(self.corefile, probe)
        else:
            self.nc = self.start_node_cache(self.corefile, probe, flags=["-workers", "1"])

    def burst(self, zone, n, collect_for):
        """Sends n unique queries at once on one socket; returns ({qname: (rcode, seconds)},
        elapsed seconds of sending)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.addCleanup(s.close)
        sent = {}
        t0 = time.monotonic()
        for i in range(n):
            name = "%s-%d.%s" % (uuid.uuid4().hex[:8], i, zone)
            q = dns.message.make_query(name, "A")
            s.sendto(q.to_wire(), ("127.0.0.1", self.port))
            sent[name.lower() + "."] = time.monotonic()
        send_time = time.monotonic() - t0
        got = {}
        deadline = time.monotonic() + collect_for
        while len(got) < n and time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            m = dns.message.from_wire(s.recv(65535))
            qname = m.question[0].name.to_text().lower()
            got[qname] = (m.rcode(), time.monotonic() - sent[qname])
        return got, send_time

    def test_max_concurrent_refuses_at_once(self):
        before = h.metric_sum(self.nc.metrics("127.0.0.1:%d" % self.prom),
                              "coredns_forward_max_concurrent_rejects_total")
        got, _ = self.burst("limited.test", 20, collect_for=8.0)
        self.assertEqual(len(got), 20, "answers: %s" % got)
        refused = [t for rc, t in got.values() if rc == dns.rcode.REFUSED]
        servfail = [t for rc, t in got.values() if rc == dns.rcode.SERVFAIL]
        self.assertEqual((len(refused), len(servfail)), (15, 5), got)
        # Refused without waiting for anything; the admitted ones ran into the 5 s budget.
        self.assertLess(max(refused), 1.0, refused)
        self.assertGreater(min(servfail), 2.0, servfail)
        after = h.metric_sum(self.nc.metrics("127.0.0.1:%d" % self.prom),
                             "coredns_forward_max_concurrent_rejects_total")
        self.assertEqual(after - before, 15)
        h.wait_until(lambda: len(re.findall(
            r"\[ERROR\] plugin/errors: 5 \S+\.limited\.test\. A: concurrent queries exceeded "
            r"maximum\n", self.nc.output())) == 15, 3, what="15 REFUSED error lines; output:\n"
            + self.nc.output()[-2000:])

    def test_consolidate_one_line_per_period(self):
        got, _ = self.burst("consolidated.test", 10, collect_for=6.0)
        self.assertEqual(sorted(rc for rc, _ in got.values()), [dns.rcode.SERVFAIL] * 10, got)
        want = ("[WARNING] plugin/errors: 10 errors like 'failed or timed out$' occurred in last "
                "2s\n")
        h.wait_until(lambda: want in self.nc.output(), 5,
                     what="%r; output:\n%s" % (want, self.nc.output()[-2000:]))
        self.assertNotIn("consolidated.test. A:", self.nc.output())

    def test_error_lines_rate_limited(self):
        n = 1500
        got, send_time = self.burst("flooded.test", n, collect_for=6.0)
        self.assertGreater(len(got), n * 0.9, "answers to the burst")
        h.wait_until(lambda: "error lines suppressed" in self.nc.output(), 5,
                     what="suppression summary; output:\n" + self.nc.output()[-2000:])
        out = self.nc.output()
        lines = len(re.findall(r"\[ERROR\] plugin/errors: 2 \S+\.flooded\.test\. A:", out))
        # A burst of 100 lines, then 100 a second (the answers take well under the 6 s).
        self.assertLessEqual(lines, 100 + 100 * (send_time + 6.0), "error lines printed")
        self.assertLess(lines, len(got))
        m = re.search(r"\[WARNING\] plugin/errors: (\d+) error lines suppressed", out)
        self.assertIsNotNone(m, out[-2000:])
        h.wait_until(lambda: h.metric_sum(self.nc.metrics(),
                                          "nodelocaldns_log_lines_suppressed_total") > 0, 3,
                     what="nodelocaldns_log_lines_suppressed_total > 0")
        print("BOUNDS error lines: %d answers, %d lines printed, %s in the first summary line"
              % (len(got), lines, m.group(1)), flush=True)

    def test_reference_bounds(self):
        got, _ = self.burst("limited.test", 20, collect_for=8.0)
        rcodes = sorted(dns.rcode.to_text(rc) for rc, _ in got.values())
        refused = [t for rc, t in got.values() if rc == dns.rcode.REFUSED]
        time.sleep(0.5)
        exceeded = len(re.findall(r"concurrent queries exceeded maximum", self.nc.output()))
        print("BOUNDS reference max_concurrent 5, 20 concurrent queries: %d answers %s, REFUSED "
              "within %.2f s; %d 'exceeded' log lines"
              % (len(got), {k: rcodes.count(k) for k in set(rcodes)},
                 max(refused) if refused else -1, exceeded), flush=True)
        mark = len(self.nc.output())
        got, _ = self.burst("consolidated.test", 10, collect_for=6.0)
        time.sleep(4.0)  # a consolidate period after the last failure, and a bit
        out = self.nc.output()[mark:]
        single = re.findall(r".*consolidated\.test\. A:.*", out)
        print("BOUNDS reference consolidate 2s, 10 failures: %d answers %s; %d single error lines "
              "(first: %r), summary lines %s"
              % (len(got), sorted(dns.rcode.to_text(rc) for rc, _ in got.values()), len(single),
                 single[0] if single else None,
                 re.findall(r"\d+ errors like '[^']*' occurred in last 2s", out)), flush=True)
        n = 1500
        before = out.count("\n")
        got, send_time = self.burst("flooded.test", n, collect_for=6.0)
        time.sleep(1.0)
        out = self.nc.output()
        lines = len(re.findall(r"\[ERROR\] plugin/errors: 2 \S+\.flooded\.test\. A:", out))
        print("BOUNDS reference error lines: %d answers, %d lines printed (%d log lines in all)"
              % (len(got), lines, out.count("\n") - before), flush=True)


if __name__ == "__main__":
    h.run_tests()
