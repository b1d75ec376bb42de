#!/usr/bin/python3
"""The readiness probe's two halves (issue 13): node-cache answers the RFC 4892 identity query
`id.server. CH TXT` (and `hostname.bind.`) itself with its identity, POD_UID; and
`node-cache -probe-ready ADDR` exits 0 only when the node-cache on ADDR answers with the
prober's own POD_UID. knotd is the upstream.

- ours, POD_UID=uid-A: dnspython gets TXT "uid-A" over UDP and TCP for both names (never
  knot's identity, which a forward would return); version.bind CH TXT still goes to knot.
- -probe-ready: POD_UID=uid-A → 0; POD_UID=uid-B → 1 naming both identities (the pod that took
  the sockets over is not the one answering); a port where nobody listens → 1. It starts
  nothing: no pidfile, no state directory, no listener of its own.
- the reference k8s-dns-node-cache (NLD_REFERENCE_NODE_CACHE), same Corefile and POD_UID: it
  forwards CH queries, so the answer is knot's identity, and -probe-ready against it fails —
  the difference documented in docs/operator-guide.md.
"""

import os
import subprocess

import dns.message
import dns.rcode

import harness as h

UID_A = "0d1c1d3e-aaaa-4b5e-9f00-00000000000a"
UID_B = "0d1c1d3e-bbbb-4b5e-9f00-00000000000b"


def chaos_txt(name, port, proto="udp"):
    q = dns.message.make_query(name, "TXT", "CH")
    m = h.udp(q, "127.0.0.1", port) if proto == "udp" else h.tcp(q, "127.0.0.1", port)
    return m, ["".join(s.decode() for s in rr.strings) for rrset in m.answer for rr in rrset]


class IdentityTest(h.NodeCacheTestCase):
    def setUp(self):
        self.knot = self.start_knot()
        self.port = h.free_port()
        self.corefile = """.:{port} {{
    bind 127.0.0.1
    errors
    cache 30
    forward . 127.0.0.1:{knot}
}}
""".format(port=self.port, knot=self.knot.port)
        self.probe_q = ("127.0.0.1", self.port, "ns.example.test")
        # What knot itself answers (its default identity: the host name), i.e. what a forward of
        # the identity query returns.
        q = dns.message.make_query("id.server.", "TXT", "CH")
        m = h.udp(q, self.knot.host, self.knot.port)
        self.knot_identity = ["".join(s.decode() for s in rr.strings)
                              for rrset in m.answer for rr in rrset]

    def probe_ready(self, uid, addr=None):
        env = dict(os.environ, POD_UID=uid)
        cwd = h.make_tmpdir("nld-it-probe-")
        self.addCleanup(h.remove_tmpdir, cwd)
        r = subprocess.run([h.node_cache_binary(), "-probe-ready",
                            addr or "127.0.0.1:%d" % self.port],
                           env=env, cwd=cwd, capture_output=True, text=True, timeout=10)
        self.assertEqual(os.listdir(cwd), [], "the probe must not create anything")
        return r

    def test_ours_answers_its_pod_uid(self):
        self.start_node_cache(self.corefile, self.probe_q, env={"POD_UID": UID_A})
        for name in ("id.server.", "hostname.bind.", "ID.SERVER."):
            for proto in ("udp", "tcp"):
                m, txt = chaos_txt(name, self.port, proto)
                self.assertRcode(m, dns.rcode.NOERROR, "%s %s" % (name, proto))
                self.assertEqual(txt, [UID_A], "%s over %s:\n%s" % (name, proto, m))
                self.assertEqual(m.answer[0].ttl, 0)
        self.assertNotEqual(self.knot_identity, [UID_A])
        # Any other CH query is handled as before: forwarded (knot answers version.bind).
        m, _ = chaos_txt("version.bind.", self.port)
        direct = h.udp(dns.message.make_query("version.bind.", "TXT", "CH"),
                       self.knot.host, self.knot.port)
        self.assertEqual(m.rcode(), direct.rcode())
        self.assertEqual(h.rrsets_text(m.answer), h.rrsets_text(direct.answer))

    def test_probe_ready(self):
        nc = self.start_node_cache(self.corefile, self.probe_q, env={"POD_UID": UID_A})
        r = self.probe_ready(UID_A)
        self.assertEqual(r.returncode, 0, "stdout %s stderr %s\n%s"
                         % (r.stdout, r.stderr, self.nc_output()))
        self.assertIn(UID_A, r.stdout)
        r = self.probe_ready(UID_B)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(UID_A, r.stderr)
        self.assertIn(UID_B, r.stderr)
        self.assertIn("another node-cache", r.stderr)
        r = self.probe_ready(UID_A, "127.0.0.1:%d" % h.free_port())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not ready", r.stderr)
        r = self.probe_ready(UID_A, "not-an-address")
        self.assertEqual(r.returncode, 1)
        self.assertIn("invalid address", r.stderr)
        self.assertTrue(nc.alive())

    def test_reference_forwards_the_identity_query(self):
        self.start_reference(self.corefile, self.probe_q, env={"POD_UID": UID_A})
        m, txt = chaos_txt("id.server.", self.port)
        print("reference: id.server CH TXT -> %s %s (knot's own: %s)"
              % (dns.rcode.to_text(m.rcode()), txt, self.knot_identity), flush=True)
        self.assertEqual(txt, self.knot_identity, "the reference forwards CH queries upstream")
        r = self.probe_ready(UID_A)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)


if __name__ == "__main__":
    h.run_tests()
