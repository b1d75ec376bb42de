#!/usr/bin/python3
"""TCP front end (RFC 7766): pipelined queries on one connection are processed concurrently and
answered as they complete (a slow upstream answer does not hold back a fast one; upstream
queries use UDP here so the test responder, which serves TCP connections one at a time, does not
serialise them itself), the length
prefix frames every answer, a connection that sends nothing is closed after the first-read
timeout, and a half-closed connection still gets its in-flight answers."""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import harness as h  # noqa: E402
from common import recv_exact  # noqa: E402


def slow_handler(delay_names, delay):
    def handler(q, transport):
        name = q.question[0].name.to_text().lower()
        if name in delay_names:
            time.sleep(delay)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.7"))
        return r
    return handler


class TcpFrontendTest(h.NodeCacheTestCase):
    def setUp(self):
        self.resp = self.start_responder(handler=slow_handler({"slow.pipe.test."}, 0.8))
        self.port = h.free_port()
        corefile = """pipe.test:{port} {{
    bind 127.0.0.1
    forward . {resp} {{
        prefer_udp
    }}
}}
""".format(port=self.port, resp=self.resp.addr)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "fast0.pipe.test"))

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def read_answer(self, s):
        (n,) = struct.unpack("!H", recv_exact(s, 2))
        return dns.message.from_wire(recv_exact(s, n))

    def test_pipelined_answers_out_of_order(self):
        s = self.connect()
        names = ["slow.pipe.test."] + ["fast%d.pipe.test." % i for i in range(1, 10)]
        wire = b""
        ids = {}
        for i, name in enumerate(names):
            q = dns.message.make_query(name, "A")
            q.id = 1000 + i
            ids[q.id] = name
            w = q.to_wire()
            wire += struct.pack("!H", len(w)) + w
        s.sendall(wire)  # all ten in one segment
        order = []
        for _ in names:
            a = self.read_answer(s)
            self.assertEqual(a.rcode(), dns.rcode.NOERROR, str(a))
            self.assertIn(a.id, ids)
            self.assertEqual(a.question[0].name.to_text().lower(), ids[a.id])
            order.append(ids[a.id])
        self.assertEqual(sorted(order), sorted(names), "every query answered exactly once")
        self.assertEqual(order[-1], "slow.pipe.test.",
                         "the slow upstream answer held back the fast ones: %s" % order)

    def test_idle_connection_closed_after_first_read_timeout(self):
        s = self.connect()
        t0 = time.monotonic()
        s.settimeout(8)
        data = s.recv(1)  # blocks until the server closes
        took = time.monotonic() - t0
        self.assertEqual(data, b"")
        self.assertGreater(took, 2.0)
        self.assertLess(took, 6.0, "idle connection not closed by the first-read timeout")

    def test_half_closed_connection_gets_its_answer(self):
        s = self.connect()
        q = dns.message.make_query("slow.pipe.test.", "A")
        w = q.to_wire()
        s.sendall(struct.pack("!H", len(w)) + w)
        s.shutdown(socket.SHUT_WR)
        a = self.read_answer(s)
        self.assertEqual(a.id, q.id)
        self.assertEqual(s.recv(1), b"", "server should close after answering a half-closed conn")

    def test_garbage_frame_then_valid_query_on_new_connection(self):
        s = self.connect()
        s.sendall(struct.pack("!H", 5) + b"\x01\x02\x03\x04\x05")  # shorter than a header
        s.settimeout(5)
        self.assertEqual(s.recv(1), b"", "a frame that cannot be answered closes the connection")
        s2 = self.connect()
        q = dns.message.make_query("fast1.pipe.test.", "A")
        w = q.to_wire()
        s2.sendall(struct.pack("!H", len(w)) + w)
        self.assertEqual(self.read_answer(s2).rcode(), dns.rcode.NOERROR)


if __name__ == "__main__":
    h.run_tests()
