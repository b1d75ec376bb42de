"""Support for the node-cache system tests (tests/system): node-cache started exactly as the
DaemonSet runs it (host networking on, real netlink and iptables) inside a network namespace the
test creates.

Builds on the integration harness (tests/integration/harness.py: Knot, Responder, NetNs, bounded
waits, DNS/HTTP/Prometheus helpers), which is imported, not copied. What is added here:
  * SysNs: a NetNs plus an optional veth pair (`nodelocaldns` / `nld-peer`) standing in for the
    node's link (this kernel has no dummy links), and /etc/netns/<ns>/resolv.conf so that
    `ip netns exec` shows node-cache a resolv.conf pointing at a test upstream;
  * NodeCacheProc: node-cache with an explicit argv (nothing added behind the test's back but a
    private -statedir, see NodeCacheProc);
  * upstream node-cache's 12 iptables rules and a parser of `iptables-save` output.

Run with Debian's /usr/bin/python3 as root. Environment: NLD_BUILD_DIR / NLD_NODE_CACHE as for the
harness; NLD_IT_KEEP=1 keeps the temp dirs.
"""

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness as h  # noqa: E402  (path set above)

SOURCE_DIR = os.environ.get("NLD_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))

LOCAL_V4 = "169.254.20.10"
LOCAL_V6 = "fd00::10"
CLUSTER_DNS = "10.96.0.10"         # kube-dns ClusterIP of the Kube-OVN overlay
UPSTREAM_SVC_IP = "10.96.0.11"     # kube-dns-upstream ClusterIP ($KUBE_DNS_UPSTREAM_SERVICE_HOST)
LINK = "nodelocaldns"
PEER = "nld-peer"

COMMENT_SKIP = "NodeLocal DNS Cache: skip conntrack"
COMMENT_ALLOW = "NodeLocal DNS Cache: allow DNS traffic"

# The upstream nodelocaldns.yaml Corefile as the Kube-OVN overlay ships it (domain cluster.local,
# only the link-local IP bound). Used only when deploy/kube-ovn has no Corefile.
EMBEDDED_KUBE_OVN_COREFILE = """cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health __PILLAR__LOCAL__DNS__:8080
    }
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
"""

DEFAULT_DAEMONSET_ARGS = ["-localip", LOCAL_V4, "-conf", "/etc/Corefile", "-upstreamsvc",
                          "kube-dns-upstream", "-pidfile", "/tmp/node-cache.pid"]


def kustomize(directory):
    """The objects `kubectl kustomize <directory>` renders (what an operator would apply), parsed
    with python3-yaml; None when kubectl or python3-yaml is missing or rendering fails."""
    if not os.path.isdir(directory) or not shutil.which("kubectl"):
        return None
    try:
        import yaml
        r = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True,
                           timeout=60)
    except (ImportError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return [doc for doc in yaml.safe_load_all(r.stdout) if doc]


def kube_ovn_overlay():
    """(Corefile text, DaemonSet container args, source description) of the Kube-OVN overlay.

    Prefers `kubectl kustomize deploy/kube-ovn` (the ConfigMap and DaemonSet an operator would
    apply, parsed with python3-yaml); falls back to deploy/kube-ovn/Corefile, then to the embedded
    copy of the same text."""
    overlay = os.path.join(SOURCE_DIR, "deploy", "kube-ovn")
    docs = kustomize(overlay)
    if docs is not None:
        corefile, args = None, None
        for doc in docs:
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "node-local-dns":
                corefile = doc["data"]["Corefile"]
            if doc.get("kind") == "DaemonSet":
                args = doc["spec"]["template"]["spec"]["containers"][0].get("args")
        if corefile:
            return corefile, args or DEFAULT_DAEMONSET_ARGS, "kubectl kustomize " + overlay
    path = os.path.join(overlay, "Corefile")
    if os.path.isfile(path):
        with open(path) as f:
            return f.read(), DEFAULT_DAEMONSET_ARGS, path
    return EMBEDDED_KUBE_OVN_COREFILE, DEFAULT_DAEMONSET_ARGS, "embedded copy"


def daemonset_argv(args, conf, pidfile):
    """The DaemonSet's args with its in-container paths replaced by the test's files."""
    out = []
    for a in args:
        if a == "/etc/Corefile":
            a = conf
        elif a == "/tmp/node-cache.pid":
            a = pidfile
        out.append(a)
    return out


# ----------------------------------------------------------------------------------------------
# iptables rules (as kubernetes/dns cmd/node-cache/app/cache_app.go initIptables)
# ----------------------------------------------------------------------------------------------

def expected_rules(ip, dns_port=53, health_port=8080):
    """The 12 rules of upstream initIptables in list order, as normalised tuples
    (table, chain, proto, src, dst, sport, dport, comment, target)."""
    p, hp = str(dns_port), str(health_port)
    s, a = COMMENT_SKIP, COMMENT_ALLOW
    return [
        ("raw", "PREROUTING", "tcp", None, ip, None, p, s, "NOTRACK"),
        ("raw", "PREROUTING", "udp", None, ip, None, p, s, "NOTRACK"),
        ("filter", "INPUT", "tcp", None, ip, None, p, a, "ACCEPT"),
        ("filter", "INPUT", "udp", None, ip, None, p, a, "ACCEPT"),
        ("raw", "OUTPUT", "tcp", ip, None, p, None, s, "NOTRACK"),
        ("raw", "OUTPUT", "udp", ip, None, p, None, s, "NOTRACK"),
        ("filter", "OUTPUT", "tcp", ip, None, p, None, a, "ACCEPT"),
        ("filter", "OUTPUT", "udp", ip, None, p, None, a, "ACCEPT"),
        ("raw", "OUTPUT", "tcp", None, ip, None, p, s, "NOTRACK"),
        ("raw", "OUTPUT", "udp", None, ip, None, p, s, "NOTRACK"),
        ("raw", "OUTPUT", "tcp", None, ip, None, hp, s, "NOTRACK"),
        ("raw", "OUTPUT", "tcp", ip, None, hp, None, s, "NOTRACK"),
    ]


def expected_chains(ip, **kw):
    """{(table, chain): [rule, ...]} in in-chain order: each rule was inserted at position 1, so a
    chain lists its rules in the reverse of the upstream's list order. `ip` is one address or a
    list of them (the 12 rules of each, in -localip order)."""
    chains = {}
    for one in ([ip] if isinstance(ip, str) else ip):
        for r in expected_rules(one, **kw):
            chains.setdefault((r[0], r[1]), []).insert(0, r)
    return chains


def rule_args(rule):
    """iptables arguments (after `-t <table> -X <chain>`) matching a normalised rule."""
    _, _, proto, src, dst, sport, dport, comment, target = rule
    args = ["-p", proto]
    if dst:
        args += ["-d", dst]
    if src:
        args += ["-s", src]
    if dport:
        args += ["--dport", dport]
    if sport:
        args += ["--sport", sport]
    return args + ["-m", "comment", "--comment", comment, "-j", target]


def _strip_prefix(addr):
    return re.sub(r"/(32|128)$", "", addr) if addr else addr


def parse_iptables_save(text):
    """{(table, chain): [normalised rule or ('unparsed', line)]} from iptables-save output."""
    chains = {}
    table = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if not line.startswith("-A "):
            continue
        tok = shlex.split(line)
        chain = tok[1]
        d = {}
        i = 2
        extra = []
        while i < len(tok):
            t = tok[i]
            if t in ("-p", "-s", "-d", "--dport", "--sport", "--comment", "-j") and \
                    i + 1 < len(tok):
                d[t] = tok[i + 1]
                i += 2
            elif t == "-m" and i + 1 < len(tok) and tok[i + 1] in ("tcp", "udp", "comment"):
                i += 2
            else:
                extra.append(t)
                i += 1
        if extra:
            rule = ("unparsed", line)
        else:
            rule = (table, chain, d.get("-p"), _strip_prefix(d.get("-s")),
                    _strip_prefix(d.get("-d")), d.get("--sport"), d.get("--dport"),
                    d.get("--comment"), d.get("-j"))
        chains.setdefault((table, chain), []).append(rule)
    return chains


# ----------------------------------------------------------------------------------------------
# Network namespace with the node's link
# ----------------------------------------------------------------------------------------------

_live_etc_dirs = []  # /etc/netns/<ns> dirs, removed at interpreter exit if a test leaked one


def _remove_etc_dirs():
    for d in list(_live_etc_dirs):
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_etc_dirs)

class SysNs(h.NetNs):
    """A NetNs (lo up, `addresses` as /32 on lo) with an optional veth pair LINK/PEER (both up)
    standing in for an existing nodelocaldns link, and an optional resolv.conf for `ip netns
    exec` (written to /etc/netns/<name>/resolv.conf, removed by close())."""

    def __init__(self, addresses=(), veth=True, resolv_conf=None, lo_v6=()):
        self.etc_dir = None
        super().__init__(addresses=addresses)
        try:
            if veth:
                self.ip("link", "add", LINK, "type", "veth", "peer", "name", PEER)
                self.ip("link", "set", PEER, "up")
                self.ip("link", "set", LINK, "up")
            for a in lo_v6:
                self.ip("-6", "addr", "add", a + "/128", "dev", "lo", "nodad")
            if resolv_conf is not None:
                self.etc_dir = os.path.join("/etc/netns", self.name)
                os.makedirs(self.etc_dir, exist_ok=True)
                _live_etc_dirs.append(self.etc_dir)
                with open(os.path.join(self.etc_dir, "resolv.conf"), "w") as f:
                    f.write(resolv_conf)
        except Exception:
            self.close()
            raise

    def ip(self, *args):
        r = subprocess.run(["ip", "-n", self.name] + list(args), capture_output=True, text=True,
                           timeout=20)
        if r.returncode != 0:
            raise RuntimeError("ip -n %s %s failed: %s" % (self.name, " ".join(args), r.stderr))
        return r.stdout

    def link_exists(self, name):
        r = subprocess.run(["ip", "-n", self.name, "link", "show", "dev", name],
                           capture_output=True, text=True, timeout=20)
        return r.returncode == 0

    def addresses(self, dev):
        """Addresses (without prefix length) on dev; [] if dev does not exist."""
        r = subprocess.run(["ip", "-n", self.name, "-o", "addr", "show", "dev", dev],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            return []
        return [m.group(1) for m in re.finditer(r"inet6? (\S+?)/\d+", r.stdout)]

    def iptables_save(self, v6=False):
        r = self.run(["ip6tables-save" if v6 else "iptables-save"], check=False)
        if r.returncode != 0:
            raise AssertionError("iptables-save in %s failed: %s" % (self.name, r.stderr))
        return r.stdout

    def rules(self, v6=False):
        return parse_iptables_save(self.iptables_save(v6))

    def nodelocal_rules(self, v6=False):
        """Every rule carrying one of node-cache's comments, as (table, chain, rule)."""
        out = []
        for key, rules in self.rules(v6).items():
            for r in rules:
                if r[0] == "unparsed":
                    if "NodeLocal DNS Cache" in r[1]:
                        out.append(r)
                elif r[7] in (COMMENT_SKIP, COMMENT_ALLOW):
                    out.append(r)
        return out

    def iptables(self, v6, *args):
        r = self.run(["ip6tables" if v6 else "iptables", "-w", "5"] + list(args))
        return r.returncode, r.stdout + r.stderr

    def nft(self, *args, check=True):
        """`nft ARGS` in the namespace; stdout (raises on failure when check)."""
        r = self.run(["nft"] + list(args))
        if check and r.returncode != 0:
            raise AssertionError("nft %s in %s failed: %s" % (" ".join(args), self.name, r.stderr))
        return r.stdout

    def nft_rules(self, family, table):
        """[(chain, rule text)] of `nft -j list table FAMILY TABLE` (rule text as `nft list`
        prints it, without handles); None if the table does not exist."""
        r = self.run(["nft", "-j", "list", "table", family, table])
        if r.returncode != 0:
            return None
        out = []
        for item in json.loads(r.stdout)["nftables"]:
            if "rule" in item:
                out.append((item["rule"]["chain"], item["rule"]))
        return out

    def conntrack(self, *args):
        """Lines of `conntrack -L ARGS` in the namespace (flow entries only)."""
        r = self.run(["conntrack", "-L"] + list(args))
        if r.returncode != 0:
            raise AssertionError("conntrack -L in %s failed: %s" % (self.name, r.stderr))
        return [line for line in r.stdout.splitlines() if line.strip()]

    def flush_rules(self):
        for tool in ("iptables", "ip6tables"):
            for table in ("raw", "filter"):
                self.run([tool, "-w", "5", "-t", table, "-F"])

    def close(self):
        if self.etc_dir:
            shutil.rmtree(self.etc_dir, ignore_errors=True)
            if self.etc_dir in _live_etc_dirs:
                _live_etc_dirs.remove(self.etc_dir)
            self.etc_dir = None
        super().close()


# ----------------------------------------------------------------------------------------------
# node-cache with an explicit argv
# ----------------------------------------------------------------------------------------------

class NodeCacheProc:
    """node-cache run inside `ns` with exactly `args` (after the binary), env additions `env`;
    output to <tmp>/<name>.out. Nothing is added to the argv except, unless `args` name one,
    -statedir <tmp>/state: the default (/var/run/node-local-dns) is the host's, shared by every
    test; tests run side by side must not hand over to each other, and a snapshot left there by
    one test must not warm another's cache. `binary` runs another program with the same
    interface (the reference k8s-dns-node-cache; then nothing is added)."""

    def __init__(self, ns, args, tmp, env=None, name="node-cache", binary=None):
        self.binary = binary or h.node_cache_binary()
        self.ns = ns
        args = list(args)
        if binary is None and \
                not any(a == "-statedir" or a.startswith("-statedir=") for a in args):
            args += ["-statedir", os.path.join(tmp, "state")]
        self.argv = ns.prefix() + [self.binary] + args
        self.out_path = os.path.join(tmp, name + ".out")
        self._out = open(self.out_path, "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(self.argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env)
        h.track(self.proc, "node-cache")
        self.pid = self.proc.pid

    def output(self):
        try:
            self._out.flush()
            with open(self.out_path, errors="replace") as f:
                return f.read()
        except (OSError, ValueError):
            return ""

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Exit code, or None if still running after timeout."""
        return h.wait_proc(self.proc, timeout)

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = h.wait_proc(self.proc, timeout)
            if rc is None:
                h.kill_proc(self.proc)
            return rc
        return self.proc.returncode

    def close(self):
        h.kill_proc(self.proc)
        h.forget(self.proc)
        if not self._out.closed:
            self._out.close()

    def context(self):
        return "argv: %s\noutput:\n%s" % (" ".join(self.argv), self.output()[-6000:])


class SystemTestCase(unittest.TestCase):
    """Base class: everything started is cleaned up through addCleanup, in reverse order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0:
            raise unittest.SkipTest("system tests need root (ip netns, iptables)")
        h.node_cache_binary()  # fail the whole class at once with a clear message

    def make_tmp(self, prefix="nld-sys-"):
        d = h.make_tmpdir(prefix)
        self.addCleanup(h.remove_tmpdir, d)
        return d

    def start_ns(self, **kw):
        ns = SysNs(**kw)
        self.addCleanup(ns.close)
        return ns

    def start_knot(self, **kw):
        k = h.Knot(**kw)
        self.addCleanup(k.close)
        return k

    def start_dnsperf(self, ns, args, out_path):
        """dnsperf `args` (after the program name) in `ns`, output to out_path; killed at
        cleanup. Returns the Popen."""
        with open(out_path, "w") as out:
            perf = subprocess.Popen(ns.prefix() + ["dnsperf"] + list(args), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        h.track(perf, "dnsperf")
        self.addCleanup(h.kill_proc, perf)
        return perf

    def start_node_cache(self, ns, args, tmp, env=None, name="node-cache"):
        nc = NodeCacheProc(ns, args, tmp, env, name)
        self.addCleanup(nc.close)
        return nc

    def start_reference(self, ns, args, tmp, env=None, name="reference"):
        """The reference k8s-dns-node-cache with exactly `args` (none of ours-only flags), or the
        test is skipped after a visible SKIPPED line when NLD_REFERENCE_NODE_CACHE is unset. It is
        measured, not judged."""
        ref = h.reference_node_cache()
        if ref is None:
            raise unittest.SkipTest("reference k8s-dns-node-cache: NLD_REFERENCE_NODE_CACHE unset")
        nc = NodeCacheProc(ns, args, tmp, env, name, binary=ref)
        self.addCleanup(nc.close)
        return nc

    def wait_serving(self, nc, ns, server, pidfile, qname="kubernetes.default.svc.cluster.local",
                     timeout=15.0):
        """Waits until the pidfile holds nc's pid and `server` answers qname over UDP."""
        def ready():
            if not nc.alive():
                raise AssertionError("node-cache exited with %s during start-up\n%s"
                                     % (nc.proc.returncode, nc.context()))
            if not os.path.exists(pidfile):
                return False
            r = ns.run(["kdig", "+time=1", "+retry=0", "@" + server, qname, "A"], timeout=5)
            return "->>HEADER<<-" in r.stdout
        try:
            h.wait_until(ready, timeout, interval=0.1, what="pidfile + first answer")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, nc.context()))
        with open(pidfile) as f:
            self.assertEqual(f.read().strip(), str(nc.pid), "pidfile content")

    def assert_rules_exact(self, ns, ip, v6=False, msg=""):
        """The namespace's tables hold exactly the 12 rules for ip (or for each of a list of
        addresses), in inserted order."""
        got = {k: v for k, v in ns.rules(v6).items() if v}
        want = expected_chains(ip)
        if got != want:
            raise AssertionError("%s\n%s rules differ from upstream's:\nwant %s\ngot  %s\n"
                                 "save output:\n%s" % (msg, "ip6tables" if v6 else "iptables",
                                                       want, got, ns.iptables_save(v6)))

    def wait_rules_exact(self, ns, ip, v6, timeout, msg=""):
        def exact():
            self.assert_rules_exact(ns, ip, v6, msg)  # raises (with the diff) until they are
            return True
        h.wait_until(exact, timeout, "exactly the 12 rules for %s" % (ip,), interval=0.1)


def node_metric(ns, addr, name, **labels):
    """Sum of a metric from http://<addr>/metrics fetched inside ns."""
    status, body = ns.http_get("http://%s/metrics" % addr)
    if status != 200:
        raise AssertionError("GET http://%s/metrics in %s -> %d" % (addr, ns.name, status))
    return h.metric_sum(h.parse_metrics(body), name, **labels)


def run_tests():
    unittest.main(verbosity=2)
