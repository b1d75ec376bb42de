#!/usr/bin/python3
"""The `timeouts` Corefile plugin (CoreDNS plugin/timeouts, 1.10 syntax) on the TCP front end,
knotd as the upstream. The reference k8s-dns-node-cache 1.22.18 does not compile `timeouts` in
(`Unknown directive 'timeouts'`, checked when NLD_REFERENCE_NODE_CACHE is set), so these are
tests of ours alone; its default first-read deadline is also shorter (closed before 2.5 s).

- `read 1s`: a TCP connection that sends nothing is closed after about a second (our default is
  3 s: still open at 2.5 s without the plugin);
- `idle 1s`: after one answered query a silent connection is closed after about a second;
- `read 6s`: a silent connection is still open after 4 s (the setting lengthens the deadline
  too, so it is not just a shorter default).
"""

import socket
import struct
import time

import dns.message

import harness as h
from common import recv_exact


class TimeoutsTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()

    def start(self, timeouts, reference):
        port = h.free_port()
        cf = """example.test:{port} {{
    bind 127.0.0.1
    {timeouts}
    forward . 127.0.0.1:{knot}
}}
""".format(port=port, timeouts=timeouts, knot=self.knot.port)
        probe = ("127.0.0.1", port, "ns.example.test")
        self.start_side(cf, probe, reference)
        return port

    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(s.close)
        return s

    def closed_after(self, s, wait):
        """True if the server closes `s` within `wait` seconds."""
        s.settimeout(wait)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def check_read(self, reference):
        port = self.start("timeouts {\n        read 1s\n    }", reference)
        s = self.connect(port)
        start = time.monotonic()
        self.assertTrue(self.closed_after(s, 2.5), "silent connection open after 2.5 s")
        self.assertGreater(time.monotonic() - start, 0.5)

    def check_default_read(self, reference):
        port = self.start("", reference)
        self.assertFalse(self.closed_after(self.connect(port), 2.5),
                         "default first-read deadline shorter than 2.5 s")

    def check_long_read(self, reference):
        port = self.start("timeouts {\n        read 6s\n        idle 6s\n    }", reference)
        self.assertFalse(self.closed_after(self.connect(port), 4.0),
                         "read 6s closed a silent connection within 4 s")

    def check_idle(self, reference):
        port = self.start("timeouts {\n        read 5s\n        idle 1\n    }", reference)
        s = self.connect(port)
        wire = h.make_query("www.example.test", "A").to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        (n,) = struct.unpack("!H", recv_exact(s, 2))
        self.assertEqual(len(dns.message.from_wire(recv_exact(s, n)).answer), 1)
        self.assertTrue(self.closed_after(s, 2.5), "idle 1 (seconds) did not close by 2.5 s")

    def test_read(self):
        self.check_read(False)

    def test_default_read(self):
        self.check_default_read(False)

    def test_long_read(self):
        self.check_long_read(False)

    def test_idle(self):
        self.check_idle(False)

    def test_reference_refuses_timeouts(self):
        # The upstream image does not compile `timeouts` in (its own directive list): a Corefile
        # with it does not start there. Ours accepts it (docs/operator-guide.md).
        with self.assertRaises(AssertionError) as ctx:
            self.start("timeouts {\n        read 1s\n    }", True)
        self.assertIn("Unknown directive 'timeouts'", str(ctx.exception))


if __name__ == "__main__":
    h.run_tests()
