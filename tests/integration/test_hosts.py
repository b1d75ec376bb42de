#!/usr/bin/python3
"""The `hosts` plugin (CoreDNS 1.10 semantics), differential: the same Corefile, hosts file and
queries against ours and, when NLD_REFERENCE_NODE_CACHE is set, the real k8s-dns-node-cache; the
answers (rcode, flags, every section with TTLs) must be equal. knotd serves example.test behind
`forward` for what the plugin passes on.

Block example.test (+ the reverse zone 0.0.10.in-addr.arpa), hosts file + inline entries,
`ttl 60`, `fallthrough`, `cache 30`: A/AAAA from file then inline, AA, TTL capped by the cache;
NODATA (AA, no SOA) for another type of a known name; case-insensitive names; PTR synthesised;
unknown names fall through to knot (its NXDOMAIN / its record); an unknown address's PTR goes on.
Block hosts.test, no fallthrough, no forward, `reload 300ms`, `no_reverse`: unknown name →
SERVFAIL; rewriting the file is picked up (the new name answers, the removed one is gone).
Every file the test uses is its own temp file (never /etc/hosts).
"""

import os
import time

import dns.flags
import dns.rcode

import harness as h

HOSTS = """# a comment line
10.0.0.1 foo.example.test foo-alias.example.test   # trailing comment
fd00::1 foo.example.test
10.0.0.3 Mixed.Example.Test
10.0.0.4 outside.other.zone
not-an-ip bogus.example.test
10.0.0.5
10.0.0.6%eth0 zoned.example.test
::ffff:10.0.0.7 mapped.example.test
"""

HOSTS2 = """10.9.0.1 a.hosts.test
10.9.0.2 b.hosts.test
"""
HOSTS2_NEW = """10.9.0.1 a.hosts.test
10.9.0.3 c.hosts.test
"""

QUERIES = [
    ("foo.example.test", "A"), ("foo.example.test", "AAAA"), ("foo.example.test", "MX"),
    ("FOO-alias.Example.test", "A"), ("mixed.example.test", "A"), ("zoned.example.test", "A"),
    ("mapped.example.test", "A"), ("mapped.example.test", "AAAA"), ("inline.example.test", "A"),
    ("inline.example.test", "AAAA"), ("bogus.example.test", "A"), ("www.example.test", "A"),
    ("nope.example.test", "A"), ("1.0.0.10.in-addr.arpa", "PTR"),
    ("9.0.0.10.in-addr.arpa", "PTR"), ("8.0.0.10.in-addr.arpa", "PTR"),
    ("a.hosts.test", "A"), ("a.hosts.test", "TXT"), ("nope.hosts.test", "A"),
    ("1.0.9.10.in-addr.arpa", "PTR"),
]


def summary(m):
    """What must agree: rcode, header flags, every section with TTLs (OPT aside)."""
    sections = []
    for sec in (m.answer, m.authority, m.additional):
        sections.append(sorted(r.to_text() for rrset in sec for r in [rrset]))
    return (dns.rcode.to_text(m.rcode()), dns.flags.to_text(m.flags), sections)


class HostsTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.tmp = h.make_tmpdir("nld-it-hosts-")
        self.addCleanup(h.remove_tmpdir, self.tmp)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path + ".new", "w") as f:
            f.write(text)
        os.replace(path + ".new", path)
        return path

    def start(self, reference):
        port = h.free_port()
        self.prom = "127.0.0.1:%d" % h.free_port()
        hosts = self.write("hosts", HOSTS)
        hosts2 = self.write("hosts2", HOSTS2)
        cf = """example.test:{port} 0.0.10.in-addr.arpa:{port} {{
    bind 127.0.0.1
    errors
    prometheus {prom}
    hosts {hosts} {{
        10.0.0.9 inline.example.test foo.example.test
        fd00::9 inline.example.test
        ttl 60
        fallthrough
    }}
    cache 30
    forward . 127.0.0.1:{knot}
}}
hosts.test:{port} 9.10.in-addr.arpa:{port} {{
    bind 127.0.0.1
    hosts {hosts2} hosts.test {{
        reload 300ms
        no_reverse
    }}
}}
""".format(port=port, hosts=hosts, hosts2=hosts2, knot=self.knot.port, prom=self.prom)
        probe = ("127.0.0.1", port, "ns.example.test")
        self.start_side(cf, probe, reference)
        return port, hosts2

    def answers(self, port):
        return {(n, t): summary(h.ask(n, t, "127.0.0.1", port)) for n, t in QUERIES}

    def check_reload(self, port, hosts2):
        def rcode(name):
            return h.ask(name, "A", "127.0.0.1", port).rcode()
        self.assertEqual(rcode("c.hosts.test"), dns.rcode.SERVFAIL)
        self.write("hosts2", HOSTS2_NEW + "# grown so that the size changes too\n")
        h.wait_until(lambda: rcode("c.hosts.test") == dns.rcode.NOERROR, 10,
                     "the rewritten hosts file is read again")
        m = h.ask("c.hosts.test", "A", "127.0.0.1", port)
        self.assertEqual([r.to_text() for r in m.answer], ["c.hosts.test. 3600 IN A 10.9.0.3"])
        self.assertEqual(rcode("b.hosts.test"), dns.rcode.SERVFAIL, "removed entry still there")
        os.unlink(hosts2)
        time.sleep(1)
        self.assertEqual(rcode("c.hosts.test"), dns.rcode.NOERROR,
                         "a vanished file keeps the entries last read (CoreDNS)")

    def test_hosts(self):
        port, hosts2 = self.start(False)
        got = self.answers(port)

        def ans(n, t):
            return got[(n, t)]
        # Explicit expectations (the differential test below compares with the reference).
        rc, flags, (an, au, ad) = ans("foo.example.test", "A")
        self.assertEqual((rc, au, ad), ("NOERROR", [], []))
        self.assertIn("AA", flags.split())
        self.assertEqual(an, ["foo.example.test. 30 IN A 10.0.0.1\nfoo.example.test. 30 IN A "
                              "10.0.0.9"])
        self.assertEqual(ans("foo.example.test", "AAAA")[2][0],
                         ["foo.example.test. 30 IN AAAA fd00::1"])
        rc, flags, (an, au, ad) = ans("foo.example.test", "MX")
        self.assertEqual((rc, an, au), ("NOERROR", [], []))
        self.assertIn("AA", flags.split())
        self.assertEqual(ans("FOO-alias.Example.test", "A")[2][0],
                         ["foo-alias.example.test. 30 IN A 10.0.0.1"])
        self.assertEqual(ans("mixed.example.test", "A")[2][0],
                         ["mixed.example.test. 30 IN A 10.0.0.3"])
        self.assertEqual(ans("zoned.example.test", "A")[2][0],
                         ["zoned.example.test. 30 IN A 10.0.0.6"])
        self.assertEqual(ans("mapped.example.test", "A")[2][0],
                         ["mapped.example.test. 30 IN A 10.0.0.7"])
        self.assertEqual(ans("inline.example.test", "AAAA")[2][0],
                         ["inline.example.test. 30 IN AAAA fd00::9"])
        # Unknown names fall through to knot.
        self.assertEqual(ans("bogus.example.test", "A")[0], "NXDOMAIN")
        self.assertEqual(ans("nope.example.test", "A")[0], "NXDOMAIN")
        self.assertEqual(ans("www.example.test", "A")[0], "NOERROR")
        self.assertEqual(ans("1.0.0.10.in-addr.arpa", "PTR")[2][0],
                         ["1.0.0.10.in-addr.arpa. 30 IN PTR foo.example.test.\n"
                          "1.0.0.10.in-addr.arpa. 30 IN PTR foo-alias.example.test."])
        self.assertEqual(ans("9.0.0.10.in-addr.arpa", "PTR")[2][0],
                         ["9.0.0.10.in-addr.arpa. 30 IN PTR inline.example.test.\n"
                          "9.0.0.10.in-addr.arpa. 30 IN PTR foo.example.test."])
        # hosts.test: no fallthrough, no forward.
        self.assertEqual(ans("a.hosts.test", "A")[2][0], ["a.hosts.test. 3600 IN A 10.9.0.1"])
        self.assertEqual(ans("a.hosts.test", "TXT")[:1], ("NOERROR",))
        self.assertEqual(ans("nope.hosts.test", "A")[0], "SERVFAIL")
        self.assertEqual(ans("nope.hosts.test", "A")[1], "QR RD")  # no AA, no RA
        self.assertEqual(ans("1.0.9.10.in-addr.arpa", "PTR")[0], "SERVFAIL")  # no_reverse
        # coredns_dns_responses_total names the plugin that wrote the answer, as CoreDNS.
        status, body = h.http_get("http://%s/metrics" % self.prom)
        self.assertEqual(status, 200)
        samples = h.parse_metrics(body)
        for plugin in ("hosts", "forward"):
            self.assertGreater(h.metric_sum(samples, "coredns_dns_responses_total", plugin=plugin,
                                            zone="example.test."), 0, plugin)
        self.check_reload(port, hosts2)

    def test_reference_differential(self):
        port, hosts2 = self.start(False)
        ours = self.answers(port)
        rport, rhosts2 = self.start(True)
        theirs = self.answers(rport)
        for key in QUERIES:
            self.assertEqual(ours[key], theirs[key], "%s %s differs from the reference" % key)
        self.check_reload(rport, rhosts2)


if __name__ == "__main__":
    h.run_tests()
