#!/usr/bin/python3
"""Issue 11: node-cache against misbehaving upstreams (python responders on loopback), each test
printing an `UPSTREAM-ABUSE <scenario>` line with its figures (answers, rcodes, RSS before / peak
(VmHWM) / after, fds, CPU):

1. The upstream answers SERVFAIL (passed on, cached for the cache's `servfail` duration, here
   2 s), REFUSED (passed on, never cached), garbage with the right ID (ignored over UDP →
   SERVFAIL when the budget runs out; a failed attempt over TCP → SERVFAIL), TC=1 over UDP
   followed by a cut or short message over TCP (SERVFAIL), and a ~60 KB TXT answer (TC=1 within
   the client's UDP size, complete over TCP, from the cache too). Every time, once the upstream
   behaves, the next query gets the good answer: nothing invalid was cached.
2. A slow upstream (answers after 2 s) with 2,000 unique queries waiting: every query answered,
   RSS bounded while they wait and back near its start level after.
3. A TCP upstream that accepts and never answers (`force_tcp`): SERVFAIL within the budget,
   node-cache's descriptors and the upstream's accepted connections bounded, no busy loop.
4. Forged answers racing the real one (RFC 5452): while the real upstream waits 0.3 s, forgeries
   for the queried name are sent as fast as possible from the right address and port with every
   wrong ID, with the right ID from 127.0.0.2 and from 127.0.0.1 on another port, and with the
   right ID but another question: the client and later cache hits only ever see the real address.

Bounded: about 40 s in all. Ports come from nldtest.free_port (claimed per process), so files run
side by side.
"""

import os
import random
import socket
import struct
import threading
import time
import uuid

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

import harness as h

GOOD_IP = "192.0.2.77"      # the upstream behaving
FORGED_IP = "203.0.113.66"  # only ever in forged answers
PEAK_RSS_KIB = 64 * 1024    # issue 11: under 64 MiB in every scenario
BIG_TXT = ["big-%03d-%s" % (i, "y" * 240) for i in range(220)]  # ~58 KB of TXT
CPU_BUDGET = 1.0            # s of CPU while queries hang on a silent TCP upstream (5 s)


def report(scenario, **figures):
    print("UPSTREAM-ABUSE %s: %s" % (scenario, " ".join("%s=%s" % kv for kv in figures.items())),
          flush=True)


def rcodes(results):
    """{'NOERROR': n, ..., 'none': unanswered} over udp_burst's results."""
    out = {}
    for v in results.values():
        k = "none" if v is None else dns.rcode.to_text(v[0].rcode())
        out[k] = out.get(k, 0) + 1
    return out


def addresses(msg):
    return {rd.address for rrset in msg.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


class Memory:
    """RSS before (at creation), peak (VmHWM: node-cache is started per test, so its lifetime
    peak is this test's) and after, of one pid."""

    def __init__(self, pid):
        self.pid = pid
        self.before = h.rss_kib(pid)

    def figures(self):
        return {"rss_before_kib": self.before, "rss_peak_kib": h.status_kib(self.pid, "VmHWM"),
                "rss_after_kib": h.rss_kib(self.pid)}


class UpstreamAbuseTest(h.NodeCacheTestCase):
    def start(self, upstream, extra_forward="", cache="cache 30 {\n        servfail 2s\n    }",
              flags=("-workers", "2")):
        """node-cache with one block, abuse.test, forwarding to `upstream` (a Responder)."""
        self.port = h.free_port()
        self.prom = h.free_port()
        corefile = """abuse.test:{port} {{
    bind 127.0.0.1
    errors
    {cache}
    forward . {up} {{
        {extra}
    }}
    prometheus 127.0.0.1:{prom}
}}
""".format(port=self.port, up=upstream.addr, cache=cache, extra=extra_forward, prom=self.prom)
        # start-up probe: a name outside every zone, REFUSED at once whatever the upstream does
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "ready.invalid"),
                                        flags=flags)
        return self.nc

    def ask(self, name, rdtype="A", proto="udp", timeout=8.0, **kw):
        t0 = time.monotonic()
        m = h.ask(name, rdtype, "127.0.0.1", self.port, proto=proto, timeout=timeout, **kw)
        return m, time.monotonic() - t0

    # ------------------------------------------------------------------------------------------
    # 1. SERVFAIL, REFUSED, garbage, TC then a short TCP message, oversized answers
    # ------------------------------------------------------------------------------------------

    def misbehaving_upstream(self):
        """A responder whose behaviour per query name is self.mode[name] (default "good")."""
        self.mode = {}

        def handler(q, transport):
            name = q.question[0].name
            key = name.to_text().lower()
            mode = self.mode.get(key, "good")
            r = dns.message.make_response(q)
            r.flags |= dns.flags.AA
            if not key.endswith("abuse.test."):
                r.set_rcode(dns.rcode.NXDOMAIN)  # health probes (". NS")
                return r
            if mode == "servfail":
                r.set_rcode(dns.rcode.SERVFAIL)
                return r
            if mode == "refused":
                r.set_rcode(dns.rcode.REFUSED)
                return r
            if mode == "garbage":
                # the right ID and QR=1, a header that announces a question and an answer, then
                # bytes that are no DNS message: unparseable, whatever the transport
                junk = bytes(random.getrandbits(8) for _ in range(48))
                return struct.pack("!HHHHHH", q.id, 0x8180, 1, 1, 0, 0) + b"\xc0\x0c" + junk
            if mode in ("tc-cut", "tc-short"):
                if transport == "udp":
                    r.flags |= dns.flags.TC
                    return r
                r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", GOOD_IP))
                full = r.to_wire()
                if mode == "tc-cut":
                    # a correct frame around a message cut inside its answer record
                    return full[:len(full) - 6]
                # the frame announces the whole message, half comes, then the peer closes
                return h.Raw(struct.pack("!H", len(full)) + full[:len(full) // 2], close=True)
            if q.question[0].rdtype == dns.rdatatype.TXT:
                r.answer.append(dns.rrset.from_text_list(name, 60, "IN", "TXT",
                                                         ['"%s"' % s for s in BIG_TXT]))
            else:
                r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", GOOD_IP))
            return r

        return self.start_responder(handler=handler)

    def fresh(self, label):
        return "%s-%s.abuse.test." % (label, uuid.uuid4().hex[:10])

    def assert_good_now(self, name, up, proto="udp"):
        """The upstream behaves again: the next query is answered with its good answer."""
        m, _ = self.ask(name, proto=proto)
        self.assertRcode(m, dns.rcode.NOERROR, "%s over %s once the upstream behaves" %
                         (name, proto))
        self.assertEqual(addresses(m), {GOOD_IP}, str(m))

    def test_servfail_refused_garbage_truncated(self):
        up = self.misbehaving_upstream()
        nc = self.start(up)
        mem = Memory(nc.pid)
        seen = {}

        # SERVFAIL: passed on, cached for `servfail 2s` (CoreDNS: ServerError → denial cache)
        for proto in ("udp", "tcp"):
            name = self.fresh("sf" + proto)
            self.mode[name] = "servfail"
            m, took = self.ask(name, proto=proto)
            t_first = time.monotonic()
            self.assertRcode(m, dns.rcode.SERVFAIL, "upstream SERVFAIL over %s" % proto)
            self.assertEqual(up.count(name), 1)
            self.mode[name] = "good"
            m, _ = self.ask(name, proto=proto)
            self.assertRcode(m, dns.rcode.SERVFAIL, "cached SERVFAIL within the servfail TTL")
            self.assertEqual(up.count(name), 1, "a cached SERVFAIL must not reach the upstream")
            h.wait_until(lambda: self.ask(name, proto=proto)[0].rcode() == dns.rcode.NOERROR, 4,
                         interval=0.2, what="the good answer after the servfail TTL (2 s)")
            cached_for = time.monotonic() - t_first
            self.assert_good_now(name, up, proto)
            seen["servfail_" + proto] = "%.2fs" % took
            seen["servfail_cached_%s" % proto] = "%.1fs" % cached_for

        # REFUSED: passed on as the upstream's answer (CoreDNS forward writes it), not cached
        for proto in ("udp", "tcp"):
            name = self.fresh("rf" + proto)
            self.mode[name] = "refused"
            for i in range(2):
                m, took = self.ask(name, proto=proto)
                self.assertRcode(m, dns.rcode.REFUSED, "upstream REFUSED over %s (#%d)"
                                 % (proto, i + 1))
            self.assertEqual(up.count(name), 2, "a REFUSED answer must not be cached")
            self.mode[name] = "good"
            self.assert_good_now(name, up, proto)
            seen["refused_" + proto] = "%.2fs" % took

        # garbage with the right ID: over UDP it is not an answer (RFC 5452: keep waiting) and
        # the budget runs out; over TCP the attempt fails at once. SERVFAIL, never cached.
        for proto in ("udp", "tcp"):
            name = self.fresh("gb" + proto)
            self.mode[name] = "garbage"
            m, took = self.ask(name, proto=proto)
            self.assertRcode(m, dns.rcode.SERVFAIL, "garbage from the upstream over %s" % proto)
            self.assertLess(took, 6.0, "SERVFAIL for garbage over %s took %.2f s" % (proto, took))
            self.mode[name] = "good"
            self.assert_good_now(name, up, proto)
            seen["garbage_" + proto] = "%.2fs" % took

        # TC=1 over UDP, then over TCP a message cut inside its answer / a frame that promises
        # more than comes before the peer closes: SERVFAIL for UDP and TCP clients
        for mode in ("tc-cut", "tc-short"):
            for proto in ("udp", "tcp"):
                name = self.fresh(mode + proto)
                self.mode[name] = mode
                m, took = self.ask(name, proto=proto)
                self.assertRcode(m, dns.rcode.SERVFAIL, "%s, client over %s" % (mode, proto))
                self.assertLess(took, 6.0)
                self.assertGreater(up.count(name, "tcp"), 0, "the TCP retry was not made")
                if proto == "udp":
                    self.assertGreater(up.count(name, "udp"), 0)
                self.mode[name] = "good"
                self.assert_good_now(name, up, "udp")
                self.assert_good_now(name, up, "tcp")
                seen["%s_%s" % (mode, proto)] = "%.2fs" % took

        self.assertTrue(nc.alive(), nc.output()[-3000:])
        figures = mem.figures()
        report("rcodes", upstream_queries=len(up.log), **seen, **figures)
        self.assertLess(figures["rss_peak_kib"], PEAK_RSS_KIB)

    def test_oversized_answer(self):
        up = self.misbehaving_upstream()
        nc = self.start(up)
        mem = Memory(nc.pid)
        name = self.fresh("big")
        want = set(BIG_TXT)

        def txt(m):
            return {s.decode() for rrset in m.answer for rd in rrset for s in rd.strings}

        # miss over UDP: the upstream's ~58 KB datagram is taken, the client gets TC=1 within
        # its EDNS size (and within 512 without EDNS)
        udp_sizes = []
        for edns, limit in ((0, 1232), (None, 512)):
            q = h.make_query(name, "TXT", edns=edns)
            wire = h.raw_udp_exchange(q.to_wire(), "127.0.0.1", self.port, timeout=5)
            self.assertIsNotNone(wire, "no UDP reply for the oversized answer")
            self.assertLessEqual(len(wire), limit)
            m = dns.message.from_wire(wire)
            self.assertRcode(m, dns.rcode.NOERROR)
            self.assertTrue(m.flags & dns.flags.TC, "TC=1 expected over UDP:\n%s" % m)
            udp_sizes.append(len(wire))
        # TCP: complete, from the cache (the upstream was asked once, over UDP)
        m, _ = self.ask(name, "TXT", proto="tcp")
        self.assertRcode(m, dns.rcode.NOERROR)
        self.assertFalse(m.flags & dns.flags.TC)
        self.assertEqual(txt(m), want)
        tcp_size = len(m.to_wire())
        self.assertEqual(up.count(name), 1, "the complete UDP answer was not cached")
        # a fresh name asked over TCP first: the upstream's ~58 KB TCP answer, complete
        name2 = self.fresh("bigtcp")
        m, _ = self.ask(name2, "TXT", proto="tcp")
        self.assertEqual(txt(m), want)
        self.assertEqual(up.count(name2, "tcp"), 1)
        m, _ = self.ask(name2, "TXT", proto="udp", edns=0)
        self.assertTrue(m.flags & dns.flags.TC)
        self.assertTrue(nc.alive(), nc.output()[-3000:])
        figures = mem.figures()
        report("oversized", udp_reply_bytes=udp_sizes, tcp_reply_bytes=tcp_size,
               upstream_queries=len(up.log), **figures)
        self.assertLess(figures["rss_peak_kib"], PEAK_RSS_KIB)

    # ------------------------------------------------------------------------------------------
    # 2. slow upstream
    # ------------------------------------------------------------------------------------------

    def test_slow_upstream_2000_waiting(self):
        up = self.start_responder(answer_ip=GOOD_IP, delay=2.0)
        nc = self.start(up, cache="cache 30")
        mem = Memory(nc.pid)
        names = ["s%d-%s.abuse.test." % (i, uuid.uuid4().hex[:8]) for i in range(2000)]
        during = []
        results = h.udp_burst(names, "127.0.0.1", self.port, timeout=12.0,
                              tick=lambda: during.append(h.rss_kib(nc.pid)))
        codes = rcodes(results)
        lat = sorted(v[1] for v in results.values() if v is not None)
        time.sleep(1.0)  # let the last exchanges end
        figures = mem.figures()
        report("slow-upstream", queries=len(names), answered=len(lat), rcodes=codes,
               upstream_queries=len(up.log),
               latency_median_s="%.2f" % lat[len(lat) // 2] if lat else "-",
               latency_max_s="%.2f" % lat[-1] if lat else "-",
               rss_during_max_kib=max(during or [0]), **figures)
        self.assertEqual(codes.get("none", 0), 0, "unanswered queries: %s" % codes)
        self.assertGreaterEqual(codes.get("NOERROR", 0), len(names) * 0.95,
                                "a 2 s upstream is within the 5 s budget: %s" % codes)
        self.assertLess(figures["rss_peak_kib"], PEAK_RSS_KIB)
        self.assertLessEqual(figures["rss_after_kib"], mem.before + 16 * 1024,
                             "memory not returned after the slow queries")
        # the answers were cached: a sample is answered at once, without the upstream
        n0 = len(up.log)
        for name in random.sample([n for n, v in results.items()
                                   if v is not None and v[0].rcode() == dns.rcode.NOERROR], 20):
            m, took = self.ask(name)
            self.assertEqual(addresses(m), {GOOD_IP})
        self.assertEqual(len(up.log), n0)

    # ------------------------------------------------------------------------------------------
    # 3. a TCP upstream that accepts and never answers
    # ------------------------------------------------------------------------------------------

    def test_tcp_upstream_accepts_never_answers(self):
        # TCP: accepted, read, never answered (the connection stays open)
        up = self.start_responder(handler=lambda q, transport: None)
        nc = self.start(up, extra_forward="force_tcp", cache="")
        mem = Memory(nc.pid)
        fds0 = h.fd_count(nc.pid)
        fds = []
        names = ["h%d-%s.abuse.test." % (i, uuid.uuid4().hex[:8]) for i in range(300)]
        cpu0, t0 = nc.cpu_seconds(), time.monotonic()
        results = h.udp_burst(names, "127.0.0.1", self.port, timeout=9.0,
                              tick=lambda: fds.append(h.fd_count(nc.pid)))
        # CPU over at least 5 s from the first query (the whole budget)
        time.sleep(max(0.0, 5.5 - (time.monotonic() - t0)))
        cpu = nc.cpu_seconds() - cpu0
        elapsed = time.monotonic() - t0
        codes = rcodes(results)
        lat = sorted(v[1] for v in results.values() if v is not None)
        time.sleep(0.5)
        fds_after = h.fd_count(nc.pid)
        figures = mem.figures()
        report("tcp-never-answers", queries=len(names), rcodes=codes,
               latency_max_s="%.2f" % lat[-1] if lat else "-", fds_before=fds0,
               fds_max=max(fds or [0]), fds_after=fds_after, upstream_connections=up.tcp_accepted,
               upstream_queries=up.count(transport="tcp"), cpu_s="%.2f" % cpu,
               over_s="%.1f" % elapsed, **figures)
        self.assertEqual(codes, {"SERVFAIL": len(names)})
        self.assertLess(lat[-1], 6.0, "SERVFAIL after the 5 s budget")
        # tcp_pool: at most 8 connections per upstream and worker (2 workers); an attempt that
        # timed out retires its connection, so the second attempt opens at most as many again;
        # plus one health probe at a time
        self.assertLessEqual(max(fds) - fds0, 2 * 8 + 2, "node-cache descriptors: %s" % fds)
        self.assertLessEqual(up.tcp_accepted, 2 * 2 * 8 + 10, "connections to the upstream")
        self.assertLessEqual(fds_after, fds0 + 2, "connections left open after the budget")
        self.assertLess(cpu, CPU_BUDGET, "node-cache used %.2f s CPU in %.1f s" % (cpu, elapsed))
        self.assertLess(figures["rss_peak_kib"], PEAK_RSS_KIB)

    # ------------------------------------------------------------------------------------------
    # 4. forged answers racing the real one
    # ------------------------------------------------------------------------------------------

    def test_spoofed_answers_racing_real_ones(self):
        stats = {"wrong_id": 0, "other_address": 0, "other_port": 0, "other_question": 0}
        before_real = {k: 0 for k in stats}
        lock = threading.Lock()
        other_addr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other_addr.bind(("127.0.0.2", 0))
        other_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other_port.bind(("127.0.0.1", 0))
        for sock in (other_addr, other_port):
            self.addCleanup(sock.close)
        answered = {}  # query id -> time the real answer left

        def forged(q, qid, qname=None):
            # built from scratch: make_response shares the query's question objects
            name = q.question[0].name if qname is None else dns.name.from_text(qname)
            r = dns.message.make_query(name, "A", use_edns=0, payload=1232)
            r.id = qid
            r.flags = dns.flags.QR | dns.flags.AA | dns.flags.RD | dns.flags.RA
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", FORGED_IP))
            return r.to_wire()

        def flood(q, peer, real_sock):
            # an attacker who sees the query (port and ID) and races the real upstream's answer
            right = forged(q, q.id)
            other_q = forged(q, q.id, "evil-%s.abuse.test." % uuid.uuid4().hex[:6])
            base = bytearray(right)
            counts = {k: 0 for k in stats}
            early = None
            wrong = (q.id + 1) & 0xffff
            end = time.monotonic() + 0.6  # the real answer leaves at ~0.3 s
            while time.monotonic() < end:
                for _ in range(64):
                    struct.pack_into("!H", base, 0, wrong)
                    real_sock.sendto(base, peer)
                    counts["wrong_id"] += 1
                    wrong = (wrong + 1) & 0xffff
                    if wrong == q.id:
                        wrong = (wrong + 1) & 0xffff
                other_addr.sendto(right, peer)
                counts["other_address"] += 1
                other_port.sendto(right, peer)
                counts["other_port"] += 1
                real_sock.sendto(other_q, peer)
                counts["other_question"] += 1
                if early is None and q.id in answered:
                    early = dict(counts)
            with lock:
                for k in stats:
                    stats[k] += counts[k]
                    before_real[k] += (early or counts)[k]

        def observer(q, transport, peer):
            if transport == "udp" and q.question[0].name.to_text().startswith("control"):
                # control: the same forgery from the upstream's own address, port and the right
                # ID is indistinguishable from an answer, and must be taken (so the check above
                # can see a forgery when one gets through)
                up.udp_sock.sendto(forged(q, q.id), peer)
            elif transport == "udp" and q.question[0].name.to_text().startswith("race"):
                threading.Thread(target=flood, args=(q, peer, up.udp_sock), daemon=True).start()

        def handler(q, transport):
            r = up._default_handler(q, transport)
            answered[q.id] = time.monotonic()
            return r

        up = self.start_responder(answer_ip=GOOD_IP, ttl=300, delay=0.3, observer=observer,
                                  handler=handler)
        nc = self.start(up, cache="cache 300")
        mem = Memory(nc.pid)
        names = ["race%d-%s.abuse.test." % (i, uuid.uuid4().hex[:8]) for i in range(24)]
        seen = set()
        # 8 at a time: several flights share node-cache's pooled upstream sockets, so a wrong ID
        # can also be another flight's ID (caught by the question check)
        for i in range(0, len(names), 8):
            results = h.udp_burst(names[i:i + 8], "127.0.0.1", self.port, timeout=8.0)
            for name, v in results.items():
                self.assertIsNotNone(v, "no answer for %s" % name)
                self.assertRcode(v[0], dns.rcode.NOERROR, name)
                seen |= addresses(v[0])
                self.assertEqual(addresses(v[0]), {GOOD_IP}, "forged answer accepted:\n%s" % v[0])
        time.sleep(0.4)  # the floods end
        # a retry (an attempt whose real answer came after the attempt timeout, e.g. when the
        # flood starved the responder) is fine; the cache hits below must not reach it
        asked = sum(up.count(n) for n in names)
        hits = h.udp_burst(names, "127.0.0.1", self.port, timeout=5.0)
        for name, v in hits.items():
            self.assertIsNotNone(v, name)
            seen |= addresses(v[0])
            self.assertEqual(addresses(v[0]), {GOOD_IP}, "forged answer in the cache:\n%s" % v[0])
        self.assertEqual(sum(up.count(n) for n in names), asked, "cache hits went upstream")
        control = "control-%s.abuse.test." % uuid.uuid4().hex[:8]
        m, _ = self.ask(control)
        self.assertEqual(addresses(m), {FORGED_IP}, "control forgery not taken:\n%s" % m)
        figures = mem.figures()
        report("spoofing", names=len(names), upstream_queries=asked,
               forged_sent=stats, forged_before_real=before_real,
               addresses_seen=sorted(seen), **figures)
        for k, v in before_real.items():
            self.assertGreater(v, 0, "no %s forgery was sent before the real answer" % k)
        self.assertLess(figures["rss_peak_kib"], PEAK_RSS_KIB)


if __name__ == "__main__":
    h.run_tests()
