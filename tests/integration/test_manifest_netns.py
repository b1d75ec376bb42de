#!/usr/bin/python3
"""8. The upstream nodelocaldns.yaml Corefile (four blocks, all :53) inside a network
namespace: 169.254.20.10 (node-local IP) and 10.96.0.10 (kube-dns ClusterIP, iptables mode) on the
namespace's lo; knot plays kube-dns on 127.0.0.1:5300 (__PILLAR__CLUSTER__DNS__) and the node's
upstream resolver on 127.0.0.1:53 (a resolv.conf for __PILLAR__UPSTREAM__SERVERS__). Cluster,
reverse and external names over UDP and TCP on both bound addresses; force_tcp towards kube-dns;
/health on :8080; Prometheus on :9253 and node-cache's own :9353. A second case lets node-cache's
wrapper render the template itself (-localip, $KUBE_DNS_UPSTREAM_SERVICE_HOST, the
kube-dns ConfigMap's upstreamNameservers)."""

import os
import time

import dns.flags
import dns.rcode

import harness as h

LOCAL_DNS = "169.254.20.10"
DNS_SERVER = "10.96.0.10"
KUBE_DNS_PORT = 5300

with open(os.path.join(h.HERE, "data", "nodelocaldns.Corefile")) as _f:
    TEMPLATE = _f.read()

WANT_METRICS = ("coredns_dns_requests_total", "coredns_cache_hits_total",
                "coredns_proxy_request_duration_seconds_count",
                "coredns_dns_responses_total", "coredns_cache_requests_total")


class ManifestNetnsTest(h.NodeCacheTestCase):
    def setUp(self):
        self.ns = self.start_netns(addresses=(LOCAL_DNS, DNS_SERVER, "127.0.0.2"))
        self.knot = self.start_knot(listen=[("127.0.0.1", 53), ("127.0.0.1", KUBE_DNS_PORT),
                                            ("127.0.0.2", 53)], netns=self.ns)
        self.tmp = h.make_tmpdir("nld-it-manifest-")
        self.addCleanup(h.remove_tmpdir, self.tmp)
        self.resolv = os.path.join(self.tmp, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("# the node's upstream resolver (knot in the test namespace)\n"
                    "nameserver 127.0.0.1\noptions ndots:5\n")

    def start_rendered(self):
        corefile = (TEMPLATE.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
                    .replace("__PILLAR__LOCAL__DNS__", LOCAL_DNS)
                    .replace("__PILLAR__DNS__SERVER__", DNS_SERVER)
                    .replace("__PILLAR__CLUSTER__DNS__", "127.0.0.1:%d" % KUBE_DNS_PORT)
                    .replace("__PILLAR__UPSTREAM__SERVERS__", self.resolv))
        self.assertNotIn("__PILLAR__", corefile)
        return self.start_node_cache(
            corefile, (LOCAL_DNS, 53, "kubernetes.default.svc.cluster.local"), netns=self.ns,
            localip="%s,%s" % (LOCAL_DNS, DNS_SERVER),
            flags=["-upstreamsvc", "kube-dns-upstream"])

    def q(self, name, rdtype, server=LOCAL_DNS, proto="udp"):
        return self.ns.dns(name, rdtype, server, 53, proto)

    def check_names(self, servers=(LOCAL_DNS, DNS_SERVER)):
        cases = [("kubernetes.default.svc.cluster.local", "A", {"10.96.0.1"}),
                 ("svc-200.ns-0.svc.cluster.local", "A", {"10.96.1.201"}),
                 ("1.0.96.10.in-addr.arpa", "PTR", {"kubernetes.default.svc.cluster.local."}),
                 ("www.example.test", "A", {"192.0.2.10", "192.0.2.11"})]
        for server in servers:
            for proto in ("udp", "tcp"):
                for name, rdtype, want in cases:
                    m = self.q(name, rdtype, server, proto)
                    ctx = "%s %s @%s over %s" % (name, rdtype, server, proto)
                    self.assertRcode(m, dns.rcode.NOERROR, ctx)
                    self.assertEqual({rd.to_text() for rs in m.answer for rd in rs}, want,
                                     "%s:\n%s" % (ctx, m))

    def check_http(self):
        status, body = self.ns.http_get("http://%s:8080/health" % LOCAL_DNS)
        self.assertEqual((status, body.strip()), (200, "OK"), "GET /health")
        for port in (9253, 9353):
            status, body = self.ns.http_get("http://%s:%d/metrics" % (LOCAL_DNS, port))
            self.assertEqual(status, 200, "GET :%d/metrics" % port)
            samples = h.parse_metrics(body)
            names = h.metric_names(samples)
            for want in WANT_METRICS:
                self.assertIn(want, names, ":%d/metrics lacks %s" % (port, want))
            self.assertGreater(h.metric_sum(samples, "coredns_cache_hits_total"), 0,
                               ":%d cache hits" % port)
            reqs = h.metric_sum(samples, "coredns_dns_requests_total",
                                server="dns://%s:53" % LOCAL_DNS, zone="cluster.local.")
            self.assertGreater(reqs, 0, ":%d coredns_dns_requests_total for "
                               "server=dns://%s:53 zone=cluster.local." % (port, LOCAL_DNS))
            to = h.metric_sum(samples, "coredns_proxy_request_duration_seconds_count",
                              to="127.0.0.1:%d" % KUBE_DNS_PORT)
            self.assertGreater(to, 0, ":%d proxy duration for to=127.0.0.1:%d"
                               % (port, KUBE_DNS_PORT))
        status, body = self.ns.http_get("http://127.0.0.1:9353/metrics")
        self.assertEqual(status, 200, "node-cache -metrics-listen-address default 0.0.0.0:9353")
        self.assertIn("coredns_nodecache_setup_errors_total", body)

    def test_manifest_corefile(self):
        self.start_rendered()
        self.check_names()
        self.check_names()  # second round: cache hits
        self.check_http()

    def test_cluster_dns_forced_to_tcp(self):
        self.start_rendered()
        time.sleep(1.0)  # let the loop plugin's start-up HINFO probes settle
        before = self.knot.proto_counts()
        m = self.q("svc-201.ns-1.svc.cluster.local", "A", proto="udp")
        self.assertRcode(m, dns.rcode.NOERROR)
        mid = self.knot.proto_counts()
        self.assertEqual((mid["udp"] - before["udp"], mid["tcp"] - before["tcp"]), (0, 1),
                         "cluster.local (force_tcp) client UDP query: knot saw udp/tcp deltas %s"
                         % ({k: mid[k] - before[k] for k in mid},))
        m = self.q("abc.uniq.example.test", "A", proto="udp")
        self.assertRcode(m, dns.rcode.NOERROR)
        after = self.knot.proto_counts()
        self.assertEqual((after["udp"] - mid["udp"], after["tcp"] - mid["tcp"]), (1, 0),
                         "'.' block (no force_tcp) client UDP query: knot saw deltas %s"
                         % ({k: after[k] - mid[k] for k in after},))

    def test_wrapper_renders_template(self):
        # Deployer substitutes only the domain; node-cache fills the rest (configmap.go).
        base = TEMPLATE.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
        nc = self.start_node_cache(
            None, (LOCAL_DNS, 53, "kubernetes.default.svc.cluster.local"), netns=self.ns,
            base_corefile=base, localip=LOCAL_DNS,
            kubedns_files={"upstreamNameservers": '["127.0.0.1:%d"]' % KUBE_DNS_PORT},
            env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": "127.0.0.2"},
            flags=["-upstreamsvc", "kube-dns-upstream"])
        with open(nc.conf_path) as f:
            rendered = f.read()
        self.assertNotIn("__PILLAR__", rendered)
        self.assertIn("bind %s" % LOCAL_DNS, rendered)
        self.assertIn("forward . 127.0.0.2 {", rendered)
        self.assertIn("forward . 127.0.0.1:%d" % KUBE_DNS_PORT, rendered)
        self.check_names(servers=(LOCAL_DNS,))
        status, body = self.ns.http_get("http://%s:8080/health" % LOCAL_DNS)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    h.run_tests()
