#!/usr/bin/python3
"""The `rewrite` Corefile plugin (CoreDNS 1.10 semantics), knotd as the upstream. Every scenario
runs on ours and, when NLD_REFERENCE_NODE_CACHE is set, on the real k8s-dns-node-cache with the
same Corefile and the same assertions (differential): both must answer alike.

Each scenario asks its queries twice (the miss, then the cache hit) and checks rcode, the
question section and the answer records (owner, type, data; TTLs aside):
- name suffix: the question is restored, answer owners stay the rewritten names;
- name suffix + `answer auto`: owners are mapped back too;
- name regex with groups + `answer name`: owners rewritten by the answer rule;
- name exact: CoreDNS reverts owners matching TO by itself; the cache sits BEFORE rewrite in
  CoreDNS's plugin order, so the rewritten target asked directly is a separate cache entry;
- type AAAA→A and class CH→IN: the records of the rewritten question, the client's question;
- `continue` chains into the next rule; `stop` (the default) ends the list.
"""

import time

import dns.rcode

import harness as h


def view(msg):
    """What the client sees: rcode, question and answer records, TTLs aside."""
    q = [(r.name.to_text().lower(), dns.rdataclass.to_text(r.rdclass),
          dns.rdatatype.to_text(r.rdtype)) for r in msg.question]
    return dns.rcode.to_text(msg.rcode()), q, sorted(h.rrsets_text(msg.answer))


WWW = ["192.0.2.10", "192.0.2.11"]


class RewriteTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()

    def start(self, rules, reference):
        port = h.free_port()
        cf = """example.test:{port} svc:{port} {{
    bind 127.0.0.1
    errors
    {rules}
    cache 300
    forward . 127.0.0.1:{knot}
}}
""".format(port=port, rules="\n    ".join(rules), knot=self.knot.port)
        probe = ("127.0.0.1", port, "ns.example.test")
        self.start_side(cf, probe, reference)
        return port

    def expect(self, port, name, rdtype, rcode, question, answers, rdclass="IN"):
        for round_ in ("miss", "hit"):
            q = h.make_query(name, rdtype)
            q.question[0].rdclass = dns.rdataclass.from_text(rdclass)
            m = h.udp(q, "127.0.0.1", port)
            self.assertEqual(view(m), (rcode, [question], sorted(answers)),
                             "%s %s %s (%s):\n%s" % (name, rdclass, rdtype, round_, m))

    def check_suffix(self, reference):
        port = self.start(["rewrite name suffix .svc. .example.test."], reference)
        self.expect(port, "www.svc", "A", "NOERROR", ("www.svc.", "IN", "A"),
                    [("www.example.test.", "A", a) for a in WWW])

    def check_suffix_auto(self, reference):
        port = self.start(["rewrite name suffix .svc. .example.test. answer auto"], reference)
        self.expect(port, "www.svc", "A", "NOERROR", ("www.svc.", "IN", "A"),
                    [("www.svc.", "A", a) for a in WWW])

    def check_regex(self, reference):
        port = self.start([r"rewrite stop name regex ^(.+)\.(svc)\.$ {1}.example.test. "
                           r"answer name ^(.+)\.example\.test\.$ {1}.answered.svc."], reference)
        self.expect(port, "WWW.svc", "A", "NOERROR", ("www.svc.", "IN", "A"),
                    [("www.answered.svc.", "A", a) for a in WWW])
        # No match: the name goes upstream as it is (knot refuses svc.).
        self.expect(port, "svc", "A", "REFUSED", ("svc.", "IN", "A"), [])

    def check_exact_and_cache_order(self, reference):
        port = self.start(["rewrite name exact a.svc. www.example.test."], reference)
        self.expect(port, "a.svc", "A", "NOERROR", ("a.svc.", "IN", "A"),
                    [("a.svc.", "A", a) for a in WWW])
        time.sleep(1.5)
        # The rewritten name asked directly is not the cached entry of a.svc.: fresh TTL.
        m = h.ask("www.example.test", "A", "127.0.0.1", port)
        self.assertEqual(h.min_ttl(m), 300, m)
        self.assertLess(h.min_ttl(h.ask("a.svc", "A", "127.0.0.1", port)), 300)

    def check_type_class(self, reference):
        port = self.start(["rewrite type AAAA A", "rewrite class CH IN"], reference)
        self.expect(port, "www.example.test", "AAAA", "NOERROR",
                    ("www.example.test.", "IN", "AAAA"),
                    [("www.example.test.", "A", a) for a in WWW])
        self.expect(port, "www.example.test", "A", "NOERROR", ("www.example.test.", "CH", "A"),
                    [("www.example.test.", "A", a) for a in WWW], rdclass="CH")

    def check_continue_stop(self, reference):
        port = self.start(["rewrite continue name suffix .svc. .tmp.",
                           "rewrite name suffix .tmp. .example.test. answer auto",
                           "rewrite name exact www.example.test. pool.example.test."], reference)
        # continue: both suffix rules apply; the second stops before the exact one. answer auto
        # maps back its own step only (www.example.test. → www.tmp.).
        self.expect(port, "www.svc", "A", "NOERROR", ("www.svc.", "IN", "A"),
                    [("www.tmp.", "A", a) for a in WWW])

    def test_suffix(self):
        self.check_suffix(False)

    def test_suffix_auto(self):
        self.check_suffix_auto(False)

    def test_regex(self):
        self.check_regex(False)

    def test_exact_and_cache_order(self):
        self.check_exact_and_cache_order(False)

    def test_type_class(self):
        self.check_type_class(False)

    def test_continue_stop(self):
        self.check_continue_stop(False)

    def test_reference_suffix(self):
        self.check_suffix(True)

    def test_reference_suffix_auto(self):
        self.check_suffix_auto(True)

    def test_reference_regex(self):
        self.check_regex(True)

    def test_reference_exact_and_cache_order(self):
        self.check_exact_and_cache_order(True)

    def test_reference_type_class(self):
        self.check_type_class(True)

    def test_reference_continue_stop(self):
        self.check_continue_stop(True)


if __name__ == "__main__":
    h.run_tests()
