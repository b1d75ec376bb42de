#!/usr/bin/python3
"""9. Coalescing: 50 concurrent identical queries for a name not yet cached → the upstream (a
python responder that delays every answer by 200 ms and counts queries) sees exactly one query, and
every client gets the answer with its own ID and its own QNAME case."""

import concurrent.futures
import random
import socket
import struct
import threading
import uuid

import dns.message
import dns.rcode

import harness as h

N = 50


class CoalescingTest(h.NodeCacheTestCase):
    FLAGS = []  # default -workers (one per CPU)

    def setUp(self):
        self.resp = self.start_responder(delay=0.2, answer_ip="192.0.2.9")
        self.port = h.free_port()
        corefile = """co.test:{port} {{
    bind 127.0.0.1
    errors
    cache 30
    forward . {resp}
}}
""".format(port=self.port, resp=self.resp.addr)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "probe.co.test"),
                                        flags=self.FLAGS)

    def concurrent(self, names, proto):
        barrier = threading.Barrier(len(names))

        def one(i):
            q = dns.message.make_query(names[i], "A")
            q.id = 1000 + i
            wire = q.to_wire()
            barrier.wait(timeout=10)
            if proto == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(5)
                try:
                    s.sendto(wire, ("127.0.0.1", self.port))
                    reply, _ = s.recvfrom(65535)
                finally:
                    s.close()
            else:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                try:
                    s.sendall(struct.pack("!H", len(wire)) + wire)
                    hdr = h.recv_exact(s, 2)
                    reply = h.recv_exact(s, struct.unpack("!H", hdr)[0])
                finally:
                    s.close()
            return wire, reply

        with concurrent.futures.ThreadPoolExecutor(len(names)) as ex:
            results = list(ex.map(one, range(len(names))))
        for i, (wire, reply) in enumerate(results):
            ctx = "client %d (%s, %s)" % (i, names[i], proto)
            m = dns.message.from_wire(reply)
            self.assertEqual(m.id, 1000 + i, ctx)
            self.assertEqual(reply[12:len(wire)], wire[12:], "%s: question not echoed" % ctx)
            self.assertRcode(m, dns.rcode.NOERROR, ctx)
            self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, {"192.0.2.9"}, ctx)

    def assert_one_upstream_query(self, name):
        seen = self.resp.queries(name)
        self.assertEqual(len(seen), 1, "%d concurrent identical queries for %s reached the "
                         "upstream %d times: %s" % (N, name, len(seen), seen))

    def test_udp(self):
        name = "%s.co.test" % uuid.uuid4().hex[:12]
        self.concurrent([name] * N, "udp")
        self.assert_one_upstream_query(name)

    def test_tcp(self):
        name = "%s.co.test" % uuid.uuid4().hex[:12]
        self.concurrent([name] * N, "tcp")
        self.assert_one_upstream_query(name)

    def test_mixed_case_0x20(self):
        name = "%s.co.test" % uuid.uuid4().hex[:12]
        rng = random.Random(42)
        names = ["".join(c.upper() if rng.random() < 0.5 else c for c in name) for _ in range(N)]
        self.concurrent(names, "udp")
        self.assert_one_upstream_query(name)

    def test_different_names_not_merged(self):
        names = ["%s.co.test" % uuid.uuid4().hex[:12] for _ in range(10)]
        self.concurrent(names * 5, "udp")
        for n in names:
            self.assert_one_upstream_query(n)


class CoalescingFourWorkersTest(CoalescingTest):
    """Same with more workers than CPUs: identical queries must still meet in one place."""
    FLAGS = ["-workers", "4"]


if __name__ == "__main__":
    h.run_tests()
