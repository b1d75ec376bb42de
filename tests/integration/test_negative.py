#!/usr/bin/python3
"""2. End to end: an NXDOMAIN is cached for the denial TTL (`cache { denial 9984 5 }` → 5 s; after
expiry the upstream is asked again), and the negative TTL respects RFC 2308 min(SOA TTL, SOA
MINIMUM) even when the upstream sends an SOA whose TTL is larger than its MINIMUM. NODATA and the
denial cap are covered on fake time by the scenario runner (tests/scenario/cases)."""

import time
import uuid

import dns.message
import dns.rcode
import dns.rdatatype

import harness as h


def rfc2308_violator(q, transport):
    """Upstream that puts the zone's raw SOA (TTL 3600, MINIMUM 7) into negative answers, unlike
    knot, which already sends min(TTL, MINIMUM)."""
    r = dns.message.make_response(q)
    qname = q.question[0].name
    label0 = qname.labels[0].decode().lower()
    if label0.startswith("nx"):
        r.set_rcode(dns.rcode.NXDOMAIN)
    elif q.question[0].rdtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(qname, 3600, "IN", "A", "192.0.2.77"))
        return r
    r.authority.append(h.soa_rrset("neg.test.", ttl=3600, minimum=7))
    return r


class NegativeTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.resp = self.start_responder(handler=rfc2308_violator)
        self.port = h.free_port()
        corefile = """cluster.local:{port} example.test:{port} {{
    bind 127.0.0.1
    errors
    cache {{
        denial 9984 5
    }}
    forward . 127.0.0.1:{knot}
}}
neg.test:{port} {{
    bind 127.0.0.1
    errors
    cache {{
        success 9984 3600 0
        denial 9984 3600 0
    }}
    forward . {resp}
}}
""".format(port=self.port, knot=self.knot.port, resp=self.resp.addr)
        self.nc = self.start_node_cache(corefile, ("127.0.0.1", self.port, "ns.dns.cluster.local"))

    def q(self, name, rdtype="A", proto="udp"):
        return h.ask(name, rdtype, "127.0.0.1", self.port, proto=proto)

    def _check_negative(self, name, rdtype, rcode, denial_ttl, upstream_count, soa_zone):
        """Query at 0 s (miss), ~1.2 s and ~(denial_ttl-1.3) s (hits, UDP and TCP), and once the
        denial TTL has surely passed (miss again). upstream_count() counts queries for `name` at
        the upstream. Times are taken around the queries so that a loaded machine cannot make
        the bounds wrong."""
        first = self.q(name, rdtype)
        t1 = time.monotonic()  # the entry was stored before this
        ctx = "%s %s" % (name, rdtype)
        self.assertRcode(first, rcode, ctx)
        self.assertEqual(len(first.answer), 0, ctx)
        soas = [rs for rs in first.authority if rs.rdtype == dns.rdatatype.SOA]
        self.assertEqual(len(soas), 1, "%s: no SOA in the authority section:\n%s" % (ctx, first))
        self.assertEqual(soas[0].name.to_text(), soa_zone, ctx)
        self.assertGreater(soas[0].ttl, 0, ctx)
        self.assertLessEqual(soas[0].ttl, denial_ttl,
                             "%s: negative TTL %d exceeds %d\n%s" % (ctx, soas[0].ttl, denial_ttl,
                                                                     first))
        n0 = upstream_count()
        self.assertGreaterEqual(n0, 1, ctx)
        for at in (1.2, denial_ttl - 1.3):
            time.sleep(max(0.0, at - (time.monotonic() - t1)))
            for proto in ("udp", "tcp"):
                elapsed = time.monotonic() - t1  # at least this much time since the insert
                hit = self.q(name, rdtype, proto)
                self.assertRcode(hit, rcode, "%s at %.1fs (%s)" % (ctx, elapsed, proto))
                self.assertTrue(any(rs.rdtype == dns.rdatatype.SOA for rs in hit.authority),
                                "%s cached answer lost its SOA:\n%s" % (ctx, hit))
                ttl = min(rs.ttl for rs in hit.authority)
                self.assertGreater(ttl, 0, "%s at %.1fs: TTL %d" % (ctx, elapsed, ttl))
                self.assertLessEqual(ttl, denial_ttl - int(elapsed),
                                     "%s at %.1fs: TTL %d does not count down from %d"
                                     % (ctx, elapsed, ttl, denial_ttl))
            self.assertEqual(upstream_count(), n0,
                             "%s at %.1fs: negative answer not served from cache (upstream "
                             "queried again)" % (ctx, at))
        time.sleep(max(0.0, denial_ttl + 0.7 - (time.monotonic() - t1)))
        again = self.q(name, rdtype)
        self.assertRcode(again, rcode, ctx)
        self.assertEqual(upstream_count(), n0 + 1,
                         "%s: after the %d s denial TTL the upstream should be asked exactly once "
                         "more" % (ctx, denial_ttl))

    def _knot_counter(self, rcode_key):
        return lambda: self.knot.stats().get("response-code[%s]" % rcode_key, 0)

    # End to end through the real binary, real knot and real sleeps: one NXDOMAIN case and the
    # RFC 2308 TTL choice. NODATA, the denial cap and the TTL countdown are in the scenario runner
    # on fake time (tests/scenario/cases/negative.scn, denial_cap.scn), exact and without sleeps.
    def test_nxdomain_cached_for_denial_ttl(self):
        name = "nx-%s.svc.cluster.local" % uuid.uuid4().hex[:12]
        self._check_negative(name, "A", dns.rcode.NXDOMAIN, 5, self._knot_counter("NXDOMAIN"),
                             "cluster.local.")

    def test_nxdomain_ttl_is_min_of_soa_ttl_and_minimum(self):
        # Upstream SOA TTL 3600, MINIMUM 7; denial max 3600, min 0 → RFC 2308 TTL is 7
        name = "nx-%s.neg.test" % uuid.uuid4().hex[:12]
        self._check_negative(name, "A", dns.rcode.NXDOMAIN, 7,
                             lambda: self.resp.count(name), "neg.test.")

    def test_positive_answer_not_affected(self):
        # the same block caches its positive answer for the record TTL (3600 s), min(…) untouched
        name = "ok-%s.neg.test" % uuid.uuid4().hex[:12]
        m = self.q(name)
        self.assertEqual(m.answer[0].ttl, 3600, str(m))
        self.q(name)
        self.assertEqual(self.resp.count(name), 1)


if __name__ == "__main__":
    h.run_tests()
