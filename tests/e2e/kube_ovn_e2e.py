#!/usr/bin/python3
"""End-to-end test on real OVS/OVN (issue 5): a pod's `nslookup` answered by 169.254.20.10, with
the query and the reply visible on the node's `ovn0`, using our node-cache and
ovn-localdns-controller binaries.

Usage (as root): kube_ovn_e2e.py [--capture-out FILE] [--logs-dir DIR] [--chassis 1|2] [--dual-stack]
`--dual-stack` (ctest `e2e_kube_ovn_dualstack`, issue 12 item 3): the cluster with IPv6 subnets
and pods too, node-cache and the controller on 169.254.20.10,fd00::10 (dual_stack_checks).
Env: NLD_BUILD_DIR (binaries), NLD_SOURCE_DIR (deploy/kube-ovn/Corefile), optional overrides
NLD_E2E_NODE_CACHE and NLD_E2E_CONTROLLER (paths of the two binaries). Run by ctest as
`e2e_kube_ovn` (labels e2e root). See sandbox.py for the topology and the cleanup guarantees.

Every step is bounded; independent assertions are collected so that one failure does not hide the
others; the sandbox is always torn down (finally + a ledger that the next run reaps if this one is
killed), and the teardown itself is verified.
"""
import argparse
import csv
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nldtest import WaitTimeout, wait_until  # noqa: E402
from sandbox import E2EError, Sandbox, parse_prometheus, reap_stale_runs, run  # noqa: E402

SOURCE = os.environ.get("NLD_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.environ.get("NLD_BUILD_DIR", os.path.join(SOURCE, "build"))
# NLD_E2E_NODE_CACHE / NLD_E2E_CONTROLLER override the binaries (e.g. a sanitizer build).
NODE_CACHE = os.environ.get("NLD_E2E_NODE_CACHE", os.path.join(BUILD, "src/cmd/node-cache/node-cache"))
CONTROLLER = os.environ.get("NLD_E2E_CONTROLLER",
                            os.path.join(BUILD, "src/cmd/ovn-localdns-controller/ovn-localdns-controller"))
COREFILE = os.path.join(SOURCE, "deploy/kube-ovn/Corefile")

DNS_IP = "169.254.20.10"
DNS_IP6 = "fd00::10"  # the dual-stack run's second node-local DNS IP (--dual-stack)
KUBE_DNS_VIP = "10.96.0.10"
KUBELET_RESOLV = ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                  f"nameserver {DNS_IP}\noptions ndots:5\n")

NODES = [
    {"name": "node1", "role": "node1", "ip": "100.64.0.2", "mac": "0a:00:00:40:00:02",
     "ext_ip": "172.31.1.1", "stub_ip": "172.31.1.2", "ext_dev": "to-node1"},
    {"name": "node2", "role": "node2", "ip": "100.64.0.3", "mac": "0a:00:00:40:00:03", "peer_dev": "node2-ovn0",
     "ext_ip": "172.31.2.1", "stub_ip": "172.31.2.2", "ext_dev": "to-node2"},
]
PODS = [
    {"role": "coredns", "lsp": "coredns.kube-system", "ip": "10.16.0.10", "mac": "0a:00:00:10:00:0a",
     "node": "node1", "host_dev": "h-coredns"},
    {"role": "pod1", "lsp": "pod1.default", "ip": "10.16.0.11", "mac": "0a:00:00:10:00:0b", "node": "node1",
     "host_dev": "h-pod1", "resolv": KUBELET_RESOLV},
    {"role": "pod2", "lsp": "pod2.default", "ip": "10.16.0.12", "mac": "0a:00:00:10:00:0c", "node": "node1",
     "host_dev": "h-pod2", "resolv": KUBELET_RESOLV},
    {"role": "pod3", "lsp": "pod3.default", "ip": "10.16.0.13", "mac": "0a:00:00:10:00:0d", "node": "node2",
     "host_dev": "h-pod3", "resolv": KUBELET_RESOLV},
]
for _p in PODS:
    _p.update(switch="ovn-default", gw="10.16.0.1")
POD = {p["role"]: p for p in PODS}
# The IPv6 addresses of the dual-stack run (Kube-OVN's fd00:100:64::/112 join and fd00:10:16::/112
# pod subnets, sandbox.SUBNET6); the IPv4 run does not use them.
NODE_IP6 = {"node1": "fd00:100:64::2", "node2": "fd00:100:64::3"}
POD_IP6 = {"coredns": "fd00:10:16::a", "pod1": "fd00:10:16::b", "pod2": "fd00:10:16::c", "pod3": "fd00:10:16::d"}

CLUSTER_ZONE = """$ORIGIN cluster.local.
$TTL 30
@ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
@ 30 IN NS ns.dns
ns.dns 30 IN A 10.96.0.10
kubernetes.default.svc 30 IN A 10.96.0.1
kube-dns.kube-system.svc 30 IN A 10.96.0.10
web.default.svc 30 IN A 10.96.100.1
"""
REVERSE_ZONE = """$ORIGIN 96.10.in-addr.arpa.
$TTL 30
@ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
@ 30 IN NS ns.dns.cluster.local.
1.0 30 IN PTR kubernetes.default.svc.cluster.local.
10.0 30 IN PTR kube-dns.kube-system.svc.cluster.local.
"""
EXTERNAL_ZONE = """$ORIGIN example.net.
$TTL 300
@ 300 IN SOA ns.example.net. hostmaster.example.net. 1 7200 1800 86400 60
@ 300 IN NS ns
ns 300 IN A 198.51.100.53
www 300 IN A 198.51.100.7
"""


# Interfaces the sandbox creates inside its namespaces; none may ever show up in the root namespace.
OUR_LINK_NAMES = {"br-int", "br-phy", "ul0", "ovs-netdev", "ovn0", "node2-ovn0", "nodelocaldns", "nodelocaldns-p",
                  "ext0", "to-node1", "to-node2"}


def root_links():
    r = run(["ip", "-o", "link", "show"], check=False)
    return {ln.split(":")[1].strip().split("@")[0] for ln in r.stdout.splitlines() if ":" in ln}


def root_nodelocal_rules():
    """node-cache's rules (by their comments) in the root namespace's iptables and ip6tables: must
    never change."""
    lines = set()
    for tool in ("iptables-save", "ip6tables-save"):
        r = run([tool], check=False)
        lines |= {f"{tool}: {ln}" for ln in r.stdout.splitlines()
                  if "NodeLocal DNS Cache" in ln or DNS_IP in ln or DNS_IP6 in ln}
    return lines


def cache_identity(node_name):
    """The id.server CH TXT identity of node `node_name`'s node-cache (its POD_UID here)."""
    return f"node-cache-{node_name}"


def log(msg):
    print(msg, flush=True)


class Results:
    """Named assertions; `check` records and logs, `require` aborts the run on failure."""

    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            log(f"[e2e] PASS {what}")
        else:
            self.failures.append(what)
            log(f"[e2e] FAIL {what}" + (f"\n{detail}" if detail else ""))
        return cond

    def require(self, cond, what, detail=""):
        if not self.check(cond, what, detail):
            raise E2EError(f"required step failed: {what}")


class Cluster:
    """The sandbox plus our two binaries running in it. `chassis=1`: node2 shares node1's chassis
    (its ovn0 a veth on node1's br-int); `chassis=2`: each node is a chassis of its own, joined by
    Geneve over a veth underlay (see sandbox.py). `dual_stack`: the switches, router, nodes and pods
    get their IPv6 addresses too (NODE_IP6, POD_IP6), and node-cache and the controller serve both
    DNS_IP and DNS_IP6."""

    def __init__(self, sb, chassis=1, dual_stack=False):
        self.sb = sb
        self.chassis = ("node1", "node2")[:chassis]
        self.dual_stack = dual_stack
        self.dns_ips = [DNS_IP, DNS_IP6] if dual_stack else [DNS_IP]
        self.nodes = [dict(n, ip6=NODE_IP6[n["name"]]) for n in NODES] if dual_stack else NODES
        self.pods = [dict(p, ip6=POD_IP6[p["role"]]) for p in PODS] if dual_stack else PODS
        self.caches = {}      # node name -> Popen
        self.controller = None

    # -- build -----------------------------------------------------------------------------------
    def build(self):
        sb = self.sb
        t0 = time.monotonic()
        sb.start_ovs_ovn(self.chassis)
        for n in NODES:
            sb.node_chassis[n["name"]] = n["role"] if n["role"] in self.chassis else self.chassis[0]
        sb.build_logical_topology(self.pods, self.nodes, dual_stack=self.dual_stack)
        sb.add_kube_dns_service(KUBE_DNS_VIP, POD["coredns"]["ip"])
        for n in self.nodes:
            sb.add_node_port(n)
        for p in self.pods:
            sb.add_pod(p)
        sb.wait_ports_up([p["lsp"] for p in PODS] + [f"node-{n['name']}" for n in NODES])
        sb.add_netns("ext")
        for n in NODES:
            sb.add_ext_link(n["role"], "ext", n["ext_ip"], n["stub_ip"], n["ext_dev"])
            # What node-cache's `forward . /etc/resolv.conf` sees inside the node namespace: the
            # stub external server, never the machine's real resolver.
            sb.write_resolv_conf(n["role"], f"nameserver {n['stub_ip']}\n")
            sb.add_local_dns_link(n["role"], DNS_IP, DNS_IP6 if self.dual_stack else None)
        sb.start_knotd("knotd-kube-dns", "coredns", [(POD["coredns"]["ip"], 53)],
                       {"cluster.local": CLUSTER_ZONE, "96.10.in-addr.arpa": REVERSE_ZONE})
        sb.start_knotd("knotd-external", "ext", [(n["stub_ip"], 53) for n in NODES],
                       {"example.net": EXTERNAL_ZONE})
        if len(self.chassis) > 1:
            # node2 -> kube-dns VIP -> coredns pod on node1's chassis: the Geneve path works (the
            # first packets also resolve the underlay ARP and install the datapath flows).
            wait_until(lambda: "status: NOERROR" in sb.sh(
                "node2", ["dig", "+time=1", "+tries=1", f"@{KUBE_DNS_VIP}", "kubernetes.default.svc.cluster.local"],
                check=False, timeout=10).stdout, 20, "node2 to reach the kube-dns VIP over the Geneve tunnel",
                interval=0.2)
        log(f"[e2e] sandbox up with {len(self.chassis)} chassis in {time.monotonic() - t0:.1f}s (run dir {sb.dir})")

    # -- node-cache ------------------------------------------------------------------------------
    def start_cache(self, node, binary=None):
        """Starts a node-cache on `node` as the DaemonSet does and waits until it answers there.
        `binary`: another node-cache build to run instead of ours, e.g. the upstream
        k8s-dns-node-cache (then without our -statedir flag, and with the KUBE_DNS_SERVICE_HOST it
        needs)."""
        sb = self.sb
        d = sb.path(node["name"])
        os.makedirs(d, exist_ok=True)
        base = os.path.join(d, "Corefile.base")
        with open(COREFILE) as f:
            corefile = f.read()
        if self.dual_stack:
            # deploy/kube-ovn/Corefile binds the one IPv4 address; a dual-stack node lists both, as
            # docs/kube-ovn.md tells the operator (node-cache binds only what `bind` names).
            bind4 = f"bind {DNS_IP}\n"
            if bind4 not in corefile:
                raise E2EError(f"{COREFILE} has no '{bind4.strip()}' line to extend with {DNS_IP6}")
            corefile = corefile.replace(bind4, f"bind {DNS_IP} {DNS_IP6}\n")
        with open(base, "w") as f:
            f.write(corefile)
        pidfile = os.path.join(d, "node-cache.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        # POD_UID: what node-cache answers to id.server CH TXT (the downward API's pod UID on a
        # cluster); one per node here, so a pod's answer says which node's cache gave it.
        env = dict(sb.env, KUBE_DNS_UPSTREAM_SERVICE_HOST=KUBE_DNS_VIP, KUBE_DNS_UPSTREAM_SERVICE_PORT="53",
                   KUBE_DNS_SERVICE_HOST=KUBE_DNS_VIP, KUBE_DNS_SERVICE_PORT="53",
                   POD_UID=cache_identity(node["name"]))
        # The DaemonSet's args (deploy/kube-ovn/kustomization.yaml) plus the base Corefile path the
        # ConfigMap mount provides and the interface flags; the node namespace is the node's host.
        argv = [binary or NODE_CACHE, "-localip", ",".join(self.dns_ips), "-conf", os.path.join(d, "Corefile"),
                "-basecorefile", base,
                "-upstreamsvc", "kube-dns-upstream", "-pidfile", pidfile, "-setupinterface=true",
                "-interfacename", "nodelocaldns", "-setupiptables=true",
                "-metrics-listen-address", "127.0.0.1:9353"]
        if binary is None:
            # each node has its own state dir (handover socket, cache snapshot), as on a node
            argv += ["-statedir", os.path.join(d, "state")]
        name = f"node-cache-{node['name']}"
        proc = sb.spawn(name, argv, role=node["role"], env=env)
        self.caches[node["name"]] = proc

        def ready():
            if proc.poll() is not None:
                raise E2EError(f"{name} exited ({proc.returncode}):\n{sb.read_log(name)}")
            if not os.path.exists(pidfile):
                return None
            r = sb.sh(node["role"], ["dig", "+time=1", "+tries=1", f"@{DNS_IP}", "kubernetes.default.svc.cluster.local"],
                      check=False, timeout=10)
            return "status: NOERROR" in r.stdout
        # Polled often: the fail-over test measures from the moment this returns.
        wait_until(ready, 30, f"{name} to answer on {DNS_IP} in {node['name']}", interval=0.05)
        return proc

    def stop_cache(self, node_name):
        proc = self.caches.pop(node_name)
        self.sb.stop(proc, f"node-cache-{node_name}", grace=15)

    def cache_metrics(self, node):
        r = self.sb.sh(node["role"], ["curl", "-sf", "--max-time", "5", "http://127.0.0.1:9253/metrics"],
                       check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    # -- controller ------------------------------------------------------------------------------
    def controller_args(self, command, dns_ips=None):
        """`dns_ips`: the --node-local-dns-ip list (default: the IPs node-cache serves)."""
        return [CONTROLLER, command, f"--ovn-nb-addr={self.sb.nb_db}",
                f"--node-local-dns-ip={','.join(dns_ips or self.dns_ips)}"]

    def start_controller(self, dns_ips=None):
        self.controller = self.sb.spawn("ovn-localdns-controller",
                                        self.controller_args("run", dns_ips) + ["--metrics-addr=127.0.0.1:0"])
        return self.controller

    def stop_controller(self):
        self.sb.stop(self.controller, "ovn-localdns-controller")
        self.controller = None

    def check_cmd(self):
        """`check` run the way an operator runs it on a node: inside node1's host namespace (NB over
        its unix socket), so a check that probes the local cache can reach 169.254.20.10."""
        return self.sb.sh("node1", self.controller_args("check"), check=False, timeout=30)

    def policies(self, node_name=None, family=None):
        """The controller's policies (external_ids:isLocalDnsCache=true), optionally of one node
        and/or one address family (4 or 6, external_ids:address-family)."""
        out = self.sb.nbctl("--format=csv", "--data=bare", "--no-headings",
                            "--columns=_uuid,priority,match,action,nexthops,external_ids",
                            "find", "Logical_Router_Policy", 'external_ids:isLocalDnsCache="true"')
        rows = []
        for line in out.splitlines():
            parts = next(csv.reader([line]))
            if len(parts) < 6:
                continue
            ext = dict(kv.split("=", 1) for kv in parts[5].split() if "=" in kv)
            if node_name and ext.get("node") != node_name:
                continue
            if family and ext.get("address-family") != str(family):
                continue
            rows.append({"uuid": parts[0], "priority": int(parts[1]), "match": parts[2], "action": parts[3],
                         "nexthops": parts[4].split(), "external_ids": ext})
        return rows


# -- DNS clients in pods ------------------------------------------------------------------------
def nslookup(sb, role, name, tcp=False):
    argv = ["nslookup", "-timeout=3", "-retry=1"] + (["-vc"] if tcp else []) + [name]
    return sb.sh(role, argv, check=False, timeout=20)


def dig(sb, role, name, tcp=False, search=True, timeout=3, tries=1):
    argv = ["dig", f"+time={timeout}", f"+tries={tries}"] + (["+search"] if search else []) + \
        (["+tcp"] if tcp else []) + [name]
    return sb.sh(role, argv, check=False, timeout=30)


def nslookup_ok(r, fqdn, addr):
    out = r.stdout
    return (r.returncode == 0 and re.search(rf"^Server:\s+{re.escape(DNS_IP)}$", out, re.M) is not None
            and re.search(rf"^Address:\s+{re.escape(DNS_IP)}#53$", out, re.M) is not None
            and re.search(rf"^Name:\s+{re.escape(fqdn)}\s*\nAddress: {re.escape(addr)}$", out, re.M) is not None)


def dig_ok(r, fqdn, addr, tcp=False):
    out = r.stdout
    proto = "TCP" if tcp else "UDP"
    return (r.returncode == 0 and "status: NOERROR" in out
            and re.search(rf"^;; SERVER: {re.escape(DNS_IP)}#53\({re.escape(DNS_IP)}\) \({proto}\)$", out, re.M)
            is not None
            and re.search(rf"^{re.escape(fqdn)}\.\s+\d+\s+IN\s+A\s+{re.escape(addr)}$", out, re.M) is not None)


def show(r):
    return f"    exit {r.returncode}\n    stdout: {r.stdout.strip()}\n    stderr: {r.stderr.strip()}"


class Capture:
    """tcpdump on `ovn0` of a node namespace (--immediate-mode, or SIGINT loses buffered packets).
    `ip6`: IPv6 packets only (the dual-stack run); the default captures and returns IPv4 ones."""

    def __init__(self, sb, role, name, ip6=False):
        self.sb, self.name = sb, name
        self.marker = " IP6 " if ip6 else " IP "
        self.proc = sb.spawn(name, ["tcpdump", "-i", "ovn0", "--immediate-mode", "-nn", "-l"] +
                             (["ip6", "and"] if ip6 else []) + ["port", "53"], role=role)
        wait_until(lambda: "listening on ovn0" in sb.read_log(name) or self.proc.poll() is not None, 10,
                   f"{name} to start")
        if self.proc.poll() is not None:
            raise E2EError(f"{name} exited:\n{sb.read_log(name)}")

    def stop(self):
        time.sleep(0.5)
        self.sb.stop(self.proc, self.name, sig=signal.SIGINT)
        return [ln for ln in self.sb.read_log(self.name).splitlines() if self.marker in ln]


def ipv4_checks(sb, cl, res, args):
    """The issue-5 assertions on the IPv4 cluster (the default run)."""
    node1, node2 = NODES
    # The Service path node-cache uses upstream: node1 -> ovn0 -> join LB -> coredns pod.
    r = sb.sh("node1", ["dig", "+tcp", "+time=3", "+tries=2", f"@{KUBE_DNS_VIP}", "kubernetes.default.svc.cluster.local"],
              check=False)
    res.require("10.96.0.1" in r.stdout, "kube-dns VIP 10.96.0.10 (OVN LB on join) answers from node1 over TCP",
                show(r))

    for n in NODES:
        cl.start_cache(n)
    raw = sb.sh("node1", "iptables -t raw -S", check=False).stdout
    res.check(re.search(rf"-A PREROUTING -d {re.escape(DNS_IP)}/32 -p udp -m udp --dport 53 .*-j NOTRACK", raw)
              is not None, "node-cache installed its NOTRACK rules in node1's namespace", raw)

    # No policy yet: the pods' DNS has nowhere to go.
    r = dig(sb, "pod1", "kubernetes.default", timeout=1)
    res.check(r.returncode == 9, "before the controller runs, pod1's query times out", show(r))

    cl.start_controller()
    wait_until(lambda: len(cl.policies()) == 2, 20, "ovn-localdns-controller to create both node policies")
    for n in NODES:
        ps = cl.policies(n["name"])
        ok = (len(ps) == 1 and ps[0]["priority"] == 30000 and ps[0]["action"] == "reroute"
              and ps[0]["nexthops"] == [n["ip"]]
              and ps[0]["match"] == f"ip4.src == $node.{n['name']}_ip4 && ip4.dst == {DNS_IP}")
        res.check(ok, f"policy for {n['name']}: 30000 reroute {n['ip']} on $node.{n['name']}_ip4", repr(ps))
    opt = sb.nbctl("--if-exists", "get", "NB_Global", ".", "options:node_local_dns_ip").strip().strip('"')
    res.check(opt == DNS_IP, f"NB_Global options:node_local_dns_ip = {DNS_IP} (got {opt!r})")
    # ovn-controller needs a moment to install the flows.
    wait_until(lambda: dig(sb, "pod1", "kubernetes.default", timeout=1).returncode == 0, 20,
               "pod1's first answer through the policy", interval=0.5)

    # -- pod1 on node1, with both captures running -------------------------------------------
    cap1 = Capture(sb, "node1", "tcpdump-node1-ovn0")
    cap2 = Capture(sb, "node2", "tcpdump-node2-ovn0")
    r = nslookup(sb, "pod1", "kubernetes.default")
    res.check(nslookup_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              "pod1: nslookup kubernetes.default (search path) answered by 169.254.20.10", show(r))
    pod1_nslookup_out = r.stdout
    r = nslookup(sb, "pod1", "kubernetes.default", tcp=True)
    res.check(nslookup_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              "pod1: nslookup -vc kubernetes.default (TCP) answered by 169.254.20.10", show(r))
    for tcp in (False, True):
        t = "TCP" if tcp else "UDP"
        r = dig(sb, "pod1", "kubernetes.default", tcp=tcp)
        res.check(dig_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1", tcp),
                  f"pod1: dig +search kubernetes.default over {t}, SERVER 169.254.20.10", show(r))
        r = dig(sb, "pod1", "web", tcp=tcp)
        res.check(dig_ok(r, "web.default.svc.cluster.local", "10.96.100.1", tcp),
                  f"pod1: dig +search web (service) over {t}, SERVER 169.254.20.10", show(r))
        r = dig(sb, "pod1", "www.example.net", tcp=tcp)
        res.check(dig_ok(r, "www.example.net", "198.51.100.7", tcp),
                  f"pod1: dig www.example.net (external, stub upstream) over {t}, SERVER 169.254.20.10", show(r))
    r = nslookup(sb, "pod1", "web")
    res.check(nslookup_ok(r, "web.default.svc.cluster.local", "10.96.100.1"),
              "pod1: nslookup web (service) answered by 169.254.20.10", show(r))
    r = nslookup(sb, "pod1", "www.example.net")
    res.check(nslookup_ok(r, "www.example.net", "198.51.100.7"),
              "pod1: nslookup www.example.net (external) answered by 169.254.20.10", show(r))
    r = nslookup(sb, "pod2", "kubernetes.default")
    res.check(nslookup_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              "pod2 (node1): nslookup kubernetes.default answered by 169.254.20.10", show(r))

    # -- pod3 on node2 ------------------------------------------------------------------------
    m2_before = parse_prometheus(cl.cache_metrics(node2) or "", "coredns_dns_requests_total") or 0
    r = nslookup(sb, "pod3", "kubernetes.default")
    res.check(nslookup_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              "pod3 (node2): nslookup kubernetes.default answered by 169.254.20.10", show(r))
    r = dig(sb, "pod3", "www.example.net", tcp=True)
    res.check(dig_ok(r, "www.example.net", "198.51.100.7", True),
              "pod3 (node2): dig +tcp www.example.net answered by 169.254.20.10", show(r))
    m2_after = parse_prometheus(cl.cache_metrics(node2) or "", "coredns_dns_requests_total") or 0
    res.check(m2_after > m2_before, "node2's node-cache counted pod3's queries (coredns_dns_requests_total "
              f"{m2_before:g} -> {m2_after:g})")

    lines1 = cap1.stop()
    lines2 = cap2.stop()
    p1, p3 = POD["pod1"]["ip"], POD["pod3"]["ip"]
    q_re = re.compile(rf"IP {re.escape(p1)}\.(\d+) > {re.escape(DNS_IP)}\.53: (\d+)\+ A\? "
                      r"kubernetes\.default\.svc\.cluster\.local\. ")
    queries = [(m.group(1), m.group(2)) for m in (q_re.search(ln) for ln in lines1) if m]
    replies = [ln for ln in lines1 for (port, qid) in queries
               if re.search(rf"IP {re.escape(DNS_IP)}\.53 > {re.escape(p1)}\.{port}: {qid}\S* .*A 10\.96\.0\.1", ln)]
    res.check(bool(queries), "node1 ovn0 capture: pod1's query 10.16.0.11 > 169.254.20.10.53 entering",
              "\n".join(lines1))
    res.check(bool(replies), "node1 ovn0 capture: the reply 169.254.20.10.53 > 10.16.0.11 leaving",
              "\n".join(lines1))
    res.check(not any(p3 in ln for ln in lines1), "pod3's (node2) packets never cross node1's ovn0",
              "\n".join(ln for ln in lines1 if p3 in ln))
    res.check(any(f"IP {p3}." in ln and f"> {DNS_IP}.53" in ln for ln in lines2),
              "node2 ovn0 capture: pod3's query enters node2's own ovn0", "\n".join(lines2))
    log("[e2e] node1 ovn0 capture:\n" + "\n".join("    " + ln for ln in lines1))
    log("[e2e] node2 ovn0 capture:\n" + "\n".join("    " + ln for ln in lines2))
    if args.capture_out:
        with open(args.capture_out, "w") as f:
            f.write("# pod1: nslookup kubernetes.default\n" + pod1_nslookup_out + "\n# node1 ovn0\n" +
                    "\n".join(lines1) + "\n# node2 ovn0\n" + "\n".join(lines2) + "\n")

    # -- cache hits ---------------------------------------------------------------------------
    hits0 = parse_prometheus(cl.cache_metrics(node1) or "", "coredns_cache_hits_total") or 0
    for _ in range(3):
        dig(sb, "pod2", "web.default.svc.cluster.local", search=False)
    text = cl.cache_metrics(node1) or ""
    hits1 = parse_prometheus(text, "coredns_cache_hits_total")
    res.check(hits1 is not None and hits1 >= hits0 + 2,
              f"node1's metrics show the cache hits (coredns_cache_hits_total {hits0:g} -> {hits1})",
              "\n".join(ln for ln in text.splitlines() if "cache" in ln))

    r = sb.sh("node1", ["curl", "-sf", "--max-time", "5", "http://127.0.0.1:9353/metrics"], check=False, timeout=10)
    errs = parse_prometheus(r.stdout, "coredns_nodecache_setup_errors_total") if r.returncode == 0 else None
    res.check(errs == 0, f"node1's node-cache reports no setup errors on :9353 "
              f"(coredns_nodecache_setup_errors_total = {errs})", show(r) if errs is None else "")

    # -- check on the healthy sandbox -----------------------------------------------------------
    r = cl.check_cmd()
    res.check(r.returncode == 0, "ovn-localdns-controller check exits 0 on the healthy sandbox", show(r))

    # -- controller stopped + policy deleted -> timeout; restarted -> restored -------------------
    cl.stop_controller()
    for p in cl.policies("node1"):
        sb.nbctl("lr-policy-del", "ovn-cluster", p["uuid"])
    res.check(cl.policies("node1") == [], "node1's policy deleted by hand (controller stopped)")
    r = cl.check_cmd()
    res.check(r.returncode != 0, "ovn-localdns-controller check fails when node1's policy is missing", show(r))
    timed_out = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        timed_out = dig(sb, "pod1", "kubernetes.default", timeout=2)
        if timed_out.returncode == 9:
            break
        time.sleep(0.5)
    res.check(timed_out.returncode == 9 and "timed out" in timed_out.stdout,
              "without the policy, pod1's query times out", show(timed_out))
    r = dig(sb, "pod3", "kubernetes.default")
    res.check(dig_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              "meanwhile pod3 on node2 is still answered (steering is per node)", show(r))
    t_restart = time.monotonic()
    cl.start_controller()
    try:
        wait_until(lambda: len(cl.policies("node1")) == 1, 20, "the controller to restore node1's policy")
        wait_until(lambda: dig(sb, "pod1", "kubernetes.default", timeout=1).returncode == 0, 20,
                   "pod1 answered again", interval=0.5)
        r = dig(sb, "pod1", "kubernetes.default")
        res.check(dig_ok(r, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
                  f"controller restarted: pod1 answered again with no hand step "
                  f"({time.monotonic() - t_restart:.1f}s)", show(r))
    except (E2EError, WaitTimeout) as e:
        res.check(False, "controller restarted: node1's policy and pod1's DNS restored", str(e))
    r = cl.check_cmd()
    res.check(r.returncode == 0, "ovn-localdns-controller check exits 0 again after the restore", show(r))

    # -- cache missing --------------------------------------------------------------------------
    cl.stop_cache("node1")
    r = dig(sb, "pod1", "kubernetes.default", timeout=1)
    res.check(r.returncode != 0, "node1's node-cache stopped: pod1 gets no answer", show(r))
    raw = sb.sh("node1", "iptables -t raw -S", check=False).stdout
    res.check(DNS_IP not in raw, "node1's node-cache removed its iptables rules on SIGTERM", raw)
    r = cl.check_cmd()
    res.check(r.returncode != 0, "ovn-localdns-controller check fails when node1's cache is missing",
              show(r) + f"\n    command: {' '.join(cl.controller_args('check'))}")


def dig_at(sb, role, server, name, rtype="A", tcp=False, qclass=None, timeout=3):
    """dig @server (no search list) from namespace `role`."""
    argv = ["dig", f"+time={timeout}", "+tries=1"] + (["+tcp"] if tcp else []) + [f"@{server}", name] + \
        ([qclass] if qclass else []) + [rtype]
    return sb.sh(role, argv, check=False, timeout=30)


def dig_at_ok(r, server, fqdn, addr, tcp=False):
    """`dig @server fqdn A` answered `addr` by `server` over the given transport."""
    proto = "TCP" if tcp else "UDP"
    return (r.returncode == 0 and "status: NOERROR" in r.stdout
            and re.search(rf"^;; SERVER: {re.escape(server)}#53\({re.escape(server)}\) \({proto}\)$", r.stdout, re.M)
            is not None
            and re.search(rf"^{re.escape(fqdn)}\.\s+\d+\s+IN\s+A\s+{re.escape(addr)}$", r.stdout, re.M) is not None)


def identity_of(r):
    """The TXT of an id.server CH TXT answer in dig's output, or None."""
    m = re.search(r'^id\.server\.\s+\d+\s+CH\s+TXT\s+"([^"]*)"', r.stdout, re.M)
    return m.group(1) if m else None


def family_requests(text, family):
    """Sum of coredns_dns_requests_total samples labelled family="<1|2>" (1 IPv4, 2 IPv6 client)."""
    total = 0.0
    for line in (text or "").splitlines():
        if line.startswith("coredns_dns_requests_total{") and f'family="{family}"' in line:
            total += float(line.rsplit(None, 1)[1])
    return total


def dual_stack_checks(sb, cl, res, args):
    """Issue 12 item 3 on the dual-stack cluster: pods on both nodes resolve over IPv6 (fd00::10)
    and IPv4 (169.254.20.10), UDP and TCP, each answered by its own node's node-cache (id.server
    identity, family-labelled metrics); the controller keeps one policy per family per node and
    dropping one family's DNS IP from its flag removes only that family's policies."""
    node1, node2 = cl.nodes
    for n in NODES:
        cl.start_cache(n)
    raw6 = sb.sh("node1", "ip6tables -t raw -S", check=False).stdout
    res.check(re.search(rf"-A PREROUTING -d {re.escape(DNS_IP6)}/128 -p udp -m udp --dport 53 .*-j NOTRACK", raw6)
              is not None, f"node-cache installed its IPv6 NOTRACK rules for {DNS_IP6} in node1's namespace", raw6)
    r = sb.sh("node1", ["dig", "+time=2", "+tries=1", f"@{DNS_IP6}", "kubernetes.default.svc.cluster.local"],
              check=False)
    res.check(dig_at_ok(r, DNS_IP6, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
              f"node1's node-cache answers on {DNS_IP6} inside the node", show(r))

    cl.start_controller()
    wait_until(lambda: len(cl.policies()) == 4, 20, "ovn-localdns-controller to create 2 policies per node")
    for n in cl.nodes:
        for fam, join_ip, dns in ((4, n["ip"], DNS_IP), (6, n["ip6"], DNS_IP6)):
            ps = cl.policies(n["name"], fam)
            match = f"ip{fam}.src == $node.{n['name']}_ip{fam} && ip{fam}.dst == {dns}"
            ok = (len(ps) == 1 and ps[0]["priority"] == 30000 and ps[0]["action"] == "reroute"
                  and ps[0]["nexthops"] == [join_ip] and ps[0]["match"] == match)
            res.check(ok, f"IPv{fam} policy for {n['name']}: 30000 reroute {join_ip} on {match}", repr(ps))
    both = ",".join(cl.dns_ips)
    opt = sb.nbctl("--if-exists", "get", "NB_Global", ".", "options:node_local_dns_ip").strip().strip('"')
    res.check(opt == both, f"NB_Global options:node_local_dns_ip = {both} (got {opt!r})")
    # ovn-controller needs a moment to install the flows (and the first IPv6 packets resolve the
    # router's and the node's neighbours).
    for server in (DNS_IP6, DNS_IP):
        wait_until(lambda: dig_at(sb, "pod1", server, "kubernetes.default.svc.cluster.local",
                                  timeout=1).returncode == 0, 20, f"pod1's first answer from {server}", interval=0.5)

    # -- each pod answered by its own node's cache, both families, both transports ----------------
    metrics0 = {n["name"]: family_requests(cl.cache_metrics(n), 2) for n in cl.nodes}
    cap1 = Capture(sb, "node1", "tcpdump6-node1-ovn0", ip6=True)
    cap2 = Capture(sb, "node2", "tcpdump6-node2-ovn0", ip6=True)
    for role, node in (("pod1", node1), ("pod2", node1), ("pod3", node2)):
        for server in (DNS_IP6, DNS_IP):
            for tcp in (False, True):
                t = "TCP" if tcp else "UDP"
                r = dig_at(sb, role, server, "kubernetes.default.svc.cluster.local", tcp=tcp)
                res.check(dig_at_ok(r, server, "kubernetes.default.svc.cluster.local", "10.96.0.1", tcp),
                          f"{role} ({node['name']}, {POD_IP6[role] if ':' in server else POD[role]['ip']}): "
                          f"dig @{server} kubernetes.default.svc.cluster.local over {t}", show(r))
                r = dig_at(sb, role, server, "id.server", "TXT", tcp=tcp, qclass="CH")
                got = identity_of(r)
                res.check(got == cache_identity(node["name"]),
                          f"{role}: id.server CH TXT @{server} over {t} = {cache_identity(node['name'])} "
                          f"(its own node's cache; got {got!r})", show(r))
    r = dig_at(sb, "pod1", DNS_IP6, "www.example.net")
    res.check(dig_at_ok(r, DNS_IP6, "www.example.net", "198.51.100.7"),
              f"pod1: dig @{DNS_IP6} www.example.net (external, stub upstream)", show(r))
    lines1, lines2 = cap1.stop(), cap2.stop()
    p1, p3 = POD_IP6["pod1"], POD_IP6["pod3"]
    q_re = re.compile(rf"IP6 {re.escape(p1)}\.(\d+) > {re.escape(DNS_IP6)}\.53: (\d+)\+ .*A\? "
                      r"kubernetes\.default\.svc\.cluster\.local\. ")
    queries = [(m.group(1), m.group(2)) for m in (q_re.search(ln) for ln in lines1) if m]
    replies = [ln for ln in lines1 for (port, qid) in queries
               if re.search(rf"IP6 {re.escape(DNS_IP6)}\.53 > {re.escape(p1)}\.{port}: {qid}\S* .*A 10\.96\.0\.1", ln)]
    res.check(bool(queries), f"node1 ovn0 capture: pod1's query {p1} > {DNS_IP6}.53 entering", "\n".join(lines1))
    res.check(bool(replies), f"node1 ovn0 capture: the reply {DNS_IP6}.53 > {p1} leaving", "\n".join(lines1))
    res.check(not any(p3 in ln for ln in lines1), "pod3's (node2) IPv6 packets never cross node1's ovn0",
              "\n".join(ln for ln in lines1 if p3 in ln))
    res.check(any(f"IP6 {p3}." in ln and f"> {DNS_IP6}.53" in ln for ln in lines2),
              "node2 ovn0 capture: pod3's IPv6 query enters node2's own ovn0", "\n".join(lines2))
    if args.capture_out:
        with open(args.capture_out, "w") as f:
            f.write(f"# dual-stack: pods' queries to {DNS_IP6}\n# node1 ovn0\n" + "\n".join(lines1) +
                    "\n# node2 ovn0\n" + "\n".join(lines2) + "\n")
    for n in cl.nodes:
        after = family_requests(cl.cache_metrics(n), 2)
        res.check(after > metrics0[n["name"]], f"{n['name']}'s node-cache counted its pods' IPv6 queries "
                  f"(coredns_dns_requests_total{{family=\"2\"}} {metrics0[n['name']]:g} -> {after:g})")
    r = cl.check_cmd()
    res.check(r.returncode == 0, "ovn-localdns-controller check (both DNS IPs) exits 0 on the healthy sandbox",
              show(r))

    # -- one family's DNS IP dropped from the flag: only that family's policies go ---------------
    def answered(server):
        return dig_at(sb, "pod1", server, "kubernetes.default.svc.cluster.local", timeout=1).returncode == 0

    def times_out(server):
        r = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = dig_at(sb, "pod1", server, "kubernetes.default.svc.cluster.local", timeout=2)
            if r.returncode == 9:
                break
            time.sleep(0.5)
        return r

    def restart_controller(dns_ips, kept_family, gone_family, kept_uuids):
        flag = f"--node-local-dns-ip={','.join(dns_ips)}"
        cl.stop_controller()
        cl.start_controller(dns_ips)
        try:
            wait_until(lambda: not cl.policies(family=gone_family) and
                       len(cl.policies(family=kept_family)) == 2, 20,
                       f"the controller with {flag} to drop the IPv{gone_family} policies")
        except WaitTimeout as e:
            res.check(False, f"{flag}: IPv{gone_family} policies removed", str(e))
            return
        kept = {p["uuid"] for p in cl.policies(family=kept_family)}
        res.check(kept == kept_uuids, f"{flag}: the IPv{gone_family} policies removed, "
                  f"the IPv{kept_family} ones untouched (same rows)", f"before {kept_uuids}\nafter {kept}")
        gone_ip, kept_ip = (DNS_IP6, DNS_IP) if gone_family == 6 else (DNS_IP, DNS_IP6)
        r = times_out(gone_ip)
        res.check(r is not None and r.returncode == 9, f"then pod1's query to {gone_ip} times out", show(r))
        r = dig_at(sb, "pod1", kept_ip, "kubernetes.default.svc.cluster.local")
        res.check(dig_at_ok(r, kept_ip, "kubernetes.default.svc.cluster.local", "10.96.0.1"),
                  f"while pod1's query to {kept_ip} is still answered", show(r))

    restart_controller([DNS_IP], 4, 6, {p["uuid"] for p in cl.policies(family=4)})
    cl.stop_controller()
    cl.start_controller()
    wait_until(lambda: len(cl.policies()) == 4, 20, "the controller to restore the IPv6 policies")
    restart_controller([DNS_IP6], 6, 4, {p["uuid"] for p in cl.policies(family=6)})
    cl.stop_controller()
    cl.start_controller()
    wait_until(lambda: len(cl.policies()) == 4, 20, "the controller to restore the IPv4 policies")
    for server in (DNS_IP6, DNS_IP):
        ok = True
        try:
            wait_until(lambda: answered(server), 20, f"pod1 answered again by {server}", interval=0.5)
        except WaitTimeout:
            ok = False
        res.check(ok, f"both DNS IPs back in the flag: pod1 answered again by {server}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs-dir", help="copy the daemons' logs and configs here before the teardown")
    ap.add_argument("--capture-out", help="write the ovn0 capture lines of pod1's nslookup to this file")
    ap.add_argument("--chassis", type=int, choices=(1, 2), default=1,
                    help="1 (default): both nodes on one chassis; 2: each node its own, Geneve between them")
    ap.add_argument("--dual-stack", action="store_true",
                    help=f"IPv4+IPv6 cluster, node-local DNS IPs {DNS_IP},{DNS_IP6}: the dual-stack assertions "
                         "(issue 12 item 3) instead of the IPv4 ones")
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("[e2e] FAIL: must run as root (network namespaces, OVS, iptables)")
        return 1
    for path, what in ((NODE_CACHE, "node-cache"), (CONTROLLER, "ovn-localdns-controller"), (COREFILE, "Kube-OVN Corefile")):
        if not os.path.exists(path):
            log(f"[e2e] FAIL: {what} not found at {path} (build it: cmake --build <dir> --target "
                f"node-cache ovn-localdns-controller)")
            return 1
    for tool in ("ovsdb-server", "ovs-vswitchd", "ovn-northd", "ovn-controller", "knotd", "tcpdump", "dig",
                 "nslookup", "curl", "ethtool"):
        if shutil.which(tool) is None:
            log(f"[e2e] FAIL: {tool} not installed (scripts/setup.sh installs it)")
            return 1
    reap_stale_runs(log)

    def on_signal(signum, _frame):
        raise E2EError(f"interrupted by signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if args.logs_dir:
        shutil.rmtree(args.logs_dir, ignore_errors=True)
    links_before = root_links()
    rules_before = root_nodelocal_rules()
    res = Results()
    t_start = time.monotonic()
    sb = Sandbox(log)
    created_ns = []
    cl = None
    try:
        cl = Cluster(sb, chassis=args.chassis, dual_stack=args.dual_stack)
        cl.build()
        created_ns = list(sb.ns.values())
        (dual_stack_checks if args.dual_stack else ipv4_checks)(sb, cl, res, args)
    except (E2EError, WaitTimeout) as e:
        res.failures.append(str(e))
        log(f"[e2e] ERROR {e}")
        for name in ("node-cache-node1", "node-cache-node2", "ovn-localdns-controller"):
            text = sb.read_log(name)
            if text:
                log(f"[e2e] --- {name} log (tail) ---\n" + "\n".join(text.splitlines()[-30:]))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the teardown finish
        if cl is not None:
            # Stop our binaries first (SIGTERM, their normal exit path) and look for sanitizer
            # reports: with NLD_E2E_* pointing at an NLD_SANITIZE build this is the ASan/UBSan run.
            for n in list(cl.caches):
                cl.stop_cache(n)
            if cl.controller is not None:
                cl.stop_controller()
            for name in ("node-cache-node1", "node-cache-node2", "ovn-localdns-controller"):
                text = sb.read_log(name)
                if not text:
                    continue
                bad = [ln for ln in text.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
                res.check(not bad, f"{name}: no sanitizer report in its output", "\n".join(bad[:20]))
        problems = sb.close(keep_logs_in=args.logs_dir)
        # Verify the teardown: our namespaces, /etc/netns entries and run directory are gone.
        left = [ns for ns in created_ns if os.path.exists(f"/run/netns/{ns}")]
        left += [f"/etc/netns/{ns}" for ns in created_ns if os.path.exists(f"/etc/netns/{ns}")]
        if os.path.exists(sb.dir):
            left.append(sb.dir)
        left += [f"interface {d} in the root namespace" for d in root_links() - links_before
                 if d in OUR_LINK_NAMES or d.startswith(("h-", "genev_sys"))]
        left += [f"root-namespace iptables rule {ln}" for ln in root_nodelocal_rules() - rules_before]
        res.check(not problems and not left, "teardown left nothing behind",
                  "\n".join(problems + [f"left: {x}" for x in left]))
    log(f"[e2e] {res.passed} passed, {len(res.failures)} failed in {time.monotonic() - t_start:.1f}s")
    for f in res.failures:
        log(f"[e2e]   failed: {f}")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
