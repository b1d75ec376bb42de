#!/usr/bin/python3
"""The `template` plugin (CoreDNS 1.10; records from the Go-template subset node-cache
implements), differential: the same Corefile and queries against ours and, when
NLD_REFERENCE_NODE_CACHE is set, the real k8s-dns-node-cache; rcode, flags and every section must
be equal. knotd serves example.test behind `forward` for the queries the templates pass on.

The two recipes operators use: AAAA filtering (`template IN AAAA { rcode NOERROR }` → NODATA,
AA) and NXDOMAIN for search-path junk (a zone form and a `match` regex form with
`fallthrough`); plus a regex that does not match without fallthrough (→ bare SERVFAIL, as the reference) and a
SERVFAIL template (→ bare SERVFAIL); answer/authority/additional records from templates with
named groups, index .Match, .Zone/.Class/.Type, and a record that does not parse (→ SERVFAIL).
"""

import dns.flags
import dns.rcode

import harness as h

QUERIES = [
    ("www.example.test", "AAAA"), ("www.example.test", "A"), ("pool.example.test", "AAAA"),
    ("a.svc.cluster.local.svc.cluster.local", "A"), ("x.y.svc.cluster.local.example.test", "A"),
    ("x.y.svc.cluster.local.example.test", "TXT"), ("junk.example.test", "MX"),
    ("ok.example.test", "MX"), ("ns.example.test", "SRV"), ("fail.example.test", "CAA"),
    ("Web-7.Tpl.example.test", "A"), ("web-7.tpl.example.test", "TXT"),
    ("web-7.tpl.example.test", "NS"), ("bad.tpl.example.test", "A"),
]


def summary(m):
    sections = [sorted(r.to_text() for r in sec) for sec in (m.answer, m.authority, m.additional)]
    return (dns.rcode.to_text(m.rcode()), dns.flags.to_text(m.flags), sections)


class TemplateTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()

    def start(self, reference):
        port = h.free_port()
        cf = """example.test:{port} cluster.local:{port} {{
    bind 127.0.0.1
    errors
    template IN AAAA example.test {{
        rcode NOERROR
    }}
    template ANY ANY svc.cluster.local.svc.cluster.local {{
        rcode NXDOMAIN
    }}
    template ANY A example.test {{
        match "^[^.]+\\.[^.]+\\.svc\\.cluster\\.local\\.example\\.test\\.$"
        rcode NXDOMAIN
        fallthrough
    }}
    template IN MX example.test {{
        match ^ok\\.
        rcode NOERROR
    }}
    template ANY CAA {{
        rcode SERVFAIL
    }}
    template IN ANY tpl.example.test {{
        match "^(?P<host>[a-z]+)-(?P<num>[0-9]+)\.tpl\.example\.test\.$"
        match "^bad\."
        answer "{{{{ .Name }}}} 60 IN A 10.1.2.{{{{ .Group.num }}}}"
        answer "{{{{ .Name }}}} 60 IN TXT \\"{{{{ index .Match 1 }}}} {{{{ .Zone }}}} {{{{ .Class }}}} {{{{ .Type }}}} {{{{ index .Group \\"host\\" }}}}\\""
        answer "{{{{ .Name }}}} 60 CNAME {{{{ .Group.host }}}}.example.test."
        authority "{{{{ .Zone }}}} 60 IN NS ns1.{{{{ .Zone }}}}"
        additional "ns1.{{{{ .Zone }}}} 60 IN AAAA 2001:db8::{{{{ .Group.num }}}}"
    }}
    cache 30
    forward . 127.0.0.1:{knot}
}}
""".format(port=port, knot=self.knot.port)
        probe = ("127.0.0.1", port, "ns.example.test")
        self.start_side(cf, probe, reference)
        return port

    def answers(self, port):
        return {(n, t): summary(h.ask(n, t, "127.0.0.1", port)) for n, t in QUERIES}

    def test_template(self):
        got = self.answers(self.start(False))
        self.assertEqual(got[("www.example.test", "AAAA")], ("NOERROR", "QR AA RD", [[], [], []]))
        self.assertEqual(got[("pool.example.test", "AAAA")], ("NOERROR", "QR AA RD", [[], [], []]))
        self.assertEqual(got[("www.example.test", "A")][0], "NOERROR")  # knot's answer
        self.assertEqual(len(got[("www.example.test", "A")][2][0]), 1)
        self.assertEqual(got[("a.svc.cluster.local.svc.cluster.local", "A")],
                         ("NXDOMAIN", "QR AA RD", [[], [], []]))
        self.assertEqual(got[("x.y.svc.cluster.local.example.test", "A")],
                         ("NXDOMAIN", "QR AA RD", [[], [], []]))
        # Not the template's type: knot (its NXDOMAIN carries knot's SOA).
        self.assertEqual(len(got[("x.y.svc.cluster.local.example.test", "TXT")][2][1]), 1)
        # MX template: regex misses and no fallthrough → bare SERVFAIL (as the reference); hits →
        # NODATA.
        self.assertEqual(got[("junk.example.test", "MX")], ("SERVFAIL", "QR RD", [[], [], []]))
        self.assertEqual(got[("ok.example.test", "MX")], ("NOERROR", "QR AA RD", [[], [], []]))
        self.assertEqual(got[("fail.example.test", "CAA")], ("SERVFAIL", "QR RD", [[], [], []]))
        # Records from Go templates (named groups, index .Match, .Zone/.Class/.Type), cached
        # like any answer (TTL 30 from `cache 30`).
        self.assertEqual(got[("Web-7.Tpl.example.test", "A")], (
            "NOERROR", "QR AA RD",
            [["web-7.tpl.example.test. 30 IN A 10.1.2.7",
              "web-7.tpl.example.test. 30 IN CNAME web.example.test.",
              'web-7.tpl.example.test. 30 IN TXT "web tpl.example.test. IN A web"'],
             ["tpl.example.test. 30 IN NS ns1.tpl.example.test."],
             ["ns1.tpl.example.test. 30 IN AAAA 2001:db8::7"]]))
        # `bad.` matches the second regex, which has no groups: .Group.num renders "<no value>",
        # not an address → the record does not parse → bare SERVFAIL.
        self.assertEqual(got[("bad.tpl.example.test", "A")], ("SERVFAIL", "QR RD", [[], [], []]))

    def test_reference_differential(self):
        ours = self.answers(self.start(False))
        theirs = self.answers(self.start(True))
        for key in QUERIES:
            self.assertEqual(ours[key], theirs[key], "%s %s differs from the reference" % key)


if __name__ == "__main__":
    h.run_tests()
