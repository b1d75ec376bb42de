"""Shared set-up of the DaemonSet-style system tests: the Kube-OVN overlay's Corefile as
-basecorefile and the DaemonSet's exact args (paths moved into a temp dir) plus -basecorefile,
-syncinterval 2 and -metrics-listen-address 127.0.0.1:9353, in a namespace with a veth
`nodelocaldns`, knotd as kube-dns (10.96.0.10), kube-dns-upstream (10.96.0.11, through
$KUBE_DNS_UPSTREAM_SERVICE_HOST) and the node's resolver (127.0.0.1 via resolv.conf)."""

import os

import sys_support as s

SYNC = 2


class DaemonSetBase(s.SystemTestCase):
    EXTRA_ARGS = ()
    V6 = False
    LOCAL = s.LOCAL_V4
    HEALTH = "169.254.20.10:8080"
    # Addresses on the namespace's lo and where knotd (kube-dns, kube-dns-upstream, the node's
    # resolver) listens; LOCALIP, when set, replaces the DaemonSet's -localip value.
    NS_ADDRESSES = (s.CLUSTER_DNS, s.UPSTREAM_SVC_IP)
    KNOT_LISTEN = ((s.CLUSTER_DNS, 53), (s.UPSTREAM_SVC_IP, 53), ("127.0.0.1", 53))
    LOCALIP = None

    def before_start(self):
        """Called after the namespace and knotd are up, right before node-cache starts."""

    def base_corefile(self, text):
        return text.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")

    def setUp(self):
        self.tmp = self.make_tmp()
        self.ns = self.start_ns(addresses=self.NS_ADDRESSES,
                                resolv_conf="nameserver 127.0.0.1\n")
        self.knot = self.start_knot(listen=list(self.KNOT_LISTEN), netns=self.ns)
        corefile, args, self.source = s.kube_ovn_overlay()
        self.base = self.base_corefile(corefile)
        self.base_path = os.path.join(self.tmp, "Corefile.base")
        with open(self.base_path, "w") as f:
            f.write(self.base)
        self.conf = os.path.join(self.tmp, "Corefile")
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")
        self.ds_args = s.daemonset_argv(args, self.conf, self.pidfile)
        if self.V6 or self.LOCALIP:
            self.ds_args[self.ds_args.index("-localip") + 1] = self.LOCALIP or self.LOCAL
        self.metrics = "127.0.0.1:9353"
        self.args = self.ds_args + ["-basecorefile", self.base_path, "-syncinterval", str(SYNC),
                                    "-metrics-listen-address", self.metrics]
        self.args += list(self.EXTRA_ARGS)
        self.before_start()
        self.nc = self.start_node_cache(
            self.ns, self.args, self.tmp,
            env={"KUBE_DNS_UPSTREAM_SERVICE_HOST": s.UPSTREAM_SVC_IP})
        self.wait_serving(self.nc, self.ns, self.LOCAL, self.pidfile)

    def q(self, name, rdtype, proto):
        return self.ns.dns(name, rdtype, self.LOCAL, 53, proto)
