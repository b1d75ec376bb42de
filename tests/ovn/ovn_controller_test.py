#!/usr/bin/python3
"""System tests of ovn-localdns-controller against a real ovsdb-server with the OVN NB schema.

Usage: ovn_controller_test.py SCENARIO   (see SCENARIOS at the bottom)

Each scenario starts its own ovsdb-server (a child process, unix socket in a temp dir), builds a
Kube-OVN-shaped NB with ovn-nbctl, runs the controller binary and asserts on ovn-nbctl output.
Every process started here is killed by pid in `finally`; every wait is bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nldtest import WaitTimeout, free_port, wait_until  # noqa: E402

BUILD = os.environ.get("NLD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
BINARY = os.path.join(BUILD, "src/cmd/ovn-localdns-controller/ovn-localdns-controller")
SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
DNS4 = "169.254.20.10"
DNS6 = "fd00::a"


class TestFailure(Exception):
    pass


BAD_EXITS = []  # controllers that did not exit cleanly (checked after every scenario)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


class Nb:
    """A standalone OVN NB ovsdb-server on a unix socket in `tmp`."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.db = os.path.join(tmp, "nb.db")
        self.sock = os.path.join(tmp, "nb.sock")
        self.proc = None
        subprocess.run(["ovsdb-tool", "create", self.db, SCHEMA], check=True)

    def start(self):
        self.proc = subprocess.Popen(
            ["ovsdb-server", f"--remote=punix:{self.sock}", f"--unixctl={self.tmp}/nb.ctl", "--no-chdir",
             f"--log-file={self.tmp}/ovsdb-server.log", self.db],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(self.sock), 10, "ovsdb-server socket")
        wait_until(lambda: subprocess.run(self.nbctl_cmd("show"), capture_output=True).returncode == 0, 10,
                   "ovsdb-server answering")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    @property
    def remote(self):
        return f"unix:{self.sock}"

    def nbctl_cmd(self, *args):
        return ["ovn-nbctl", f"--db={self.remote}", "--timeout=10"] + list(args)

    def nbctl(self, *args):
        r = subprocess.run(self.nbctl_cmd(*args), capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise TestFailure(f"ovn-nbctl {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def add_node(self, name, ip4=None, ip6=None, port_group=True):
        addrs = " ".join(x for x in ["00:00:00:%02x:00:01" % (len(name) % 256), ip4, ip6] if x)
        self.nbctl("lsp-add", "join", f"node-{name}", "--", "lsp-set-addresses", f"node-{name}", addrs)
        if port_group:
            self.nbctl("pg-add", "node." + name.replace("-", "."))

    def kube_ovn_base(self):
        self.nbctl("init")
        self.nbctl("lr-add", "ovn-cluster")
        self.nbctl("ls-add", "join")
        self.nbctl("lrp-add", "ovn-cluster", "ovn-cluster-join", "00:00:00:00:00:01", "100.64.0.1/16")
        self.nbctl("lsp-add", "join", "join-ovn-cluster", "--", "lsp-set-type", "join-ovn-cluster", "router",
                   "--", "lsp-set-options", "join-ovn-cluster", "router-port=ovn-cluster-join")

    def policies(self):
        """All Logical_Router_Policy rows as dicts (uuid, priority, match, action, nexthops, external_ids)."""
        out = self.nbctl("--format=json", "--columns=_uuid,priority,match,action,nexthops,external_ids",
                         "list", "Logical_Router_Policy")
        data = json.loads(out)
        rows = []
        for r in data["data"]:
            nh = r[4]
            nexthops = [nh] if isinstance(nh, str) else nh[1] if nh[0] == "set" else [nh]
            rows.append({"uuid": r[0][1], "priority": r[1], "match": r[2], "action": r[3], "nexthops": nexthops,
                         "external_ids": dict(r[5][1])})
        return rows

    def local_dns_policies(self):
        return [p for p in self.policies() if p["external_ids"].get("isLocalDnsCache") == "true"]

    def router_policy_count(self):
        out = self.nbctl("--bare", "--columns=policies", "find", "Logical_Router", "name=ovn-cluster")
        return len(out.split())

    def option(self):
        out = self.nbctl("--if-exists", "get", "NB_Global", ".", "options:node_local_dns_ip").strip()
        return out.strip('"') if out else None

    def db_size(self):
        return os.path.getsize(self.db)


class Controller:
    def __init__(self, tmp, nb, *extra, name="ctl"):
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "w")
        args = [BINARY, "run", f"--ovn-nb-addr={nb.remote}", "--metrics-addr=127.0.0.1:0",
                "--resync-interval=1s"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def metrics_port(self):
        for line in self.output().splitlines():
            if "metrics on" in line and "(port " in line:
                return int(line.split("(port ")[1].rstrip(")"))
        return None

    def exposition(self):
        port = wait_until(self.metrics_port, 10, "metrics port in log")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    def healthz(self):
        """(status, body) of GET /healthz."""
        port = wait_until(self.metrics_port, 10, "metrics port in log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        text = self.exposition()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.split()
                values[k] = float(v)
        return values

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                BAD_EXITS.append(f"{self.log_path}: did not stop on SIGTERM")
        self.log.close()
        if self.proc.returncode != 0:
            # A clean SIGTERM exit is 0; anything else (crash, sanitizer report) fails the scenario.
            BAD_EXITS.append(f"{self.log_path}: exit code {self.proc.returncode}")


def run_tool(nb, *args, timeout=30):
    # `check` would also query the DNS IPs from this host (--probe-dns): these tests have no cache
    # and must not send traffic to 169.254.20.10 outside a namespace they made, so skip it here
    # (the e2e test covers the probe inside its node namespace).
    extra = ["--probe-dns=false"] if args and args[0] == "check" else []
    return subprocess.run([BINARY] + list(args) + extra + [f"--ovn-nb-addr={nb.remote}"], capture_output=True,
                          text=True, timeout=timeout)


def expected_policy(node, fam, dns, join):
    ip = "ip4" if fam == 4 else "ip6"
    pg = "node." + node.replace("-", ".")
    return {"priority": 30000, "match": f"{ip}.src == ${pg}_{ip} && {ip}.dst == {dns}", "action": "reroute",
            "nexthops": [join],
            "external_ids": {"vendor": "kube-ovn", "node": node, "address-family": str(fam),
                             "isLocalDnsCache": "true"}}


def policy_set(policies):
    return sorted(json.dumps({k: v for k, v in p.items() if k != "uuid"}, sort_keys=True) for p in policies)


def converged(nb, expected):
    return policy_set(nb.local_dns_policies()) == policy_set(expected)


# ---------------------------------------------------------------------------------------------
# Scenarios


# The controller's families: the monitoring contract (deploy/monitoring rules and dashboard).
CONTROLLER_FAMILIES = {
    "nld_ovn_reconciliations": "counter",
    "nld_ovn_transactions": "counter",
    "nld_ovn_changes_applied": "counter",
    "nld_ovn_conflicts": "counter",
    "nld_ovn_errors": "counter",
    "nld_ovn_connects": "counter",
    "nld_ovn_connected": "gauge",
    "nld_ovn_nodes": "gauge",
    "nld_ovn_desired_policies": "gauge",
    "nld_ovn_missing_port_groups": "gauge",
    "nld_ovn_unconnected_underlay_switches": "gauge",
    "nld_ovn_shadowing_policies": "gauge",
    "nld_ovn_failed_over_policies": "gauge",
    "nld_ovn_last_success_timestamp_seconds": "gauge",
}


def check_exposition(ctl):
    """/metrics parses with the official Prometheus client and has every family, typed and helped."""
    families = {f.name: f for f in text_string_to_metric_families(ctl.exposition())}
    for name, kind in CONTROLLER_FAMILIES.items():
        check(name in families, f"family {name} missing from /metrics ({sorted(families)})")
        check(families[name].type == kind, f"{name} is a {families[name].type}, not a {kind}")
        check(families[name].documentation, f"{name} has no HELP")
        check(len(families[name].samples) == 1, f"{name}: one unlabelled series")


def scenario_basic(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("kube-ovn-worker", "100.64.0.2")
    nb.add_node("kube-ovn-control-plane", "100.64.0.3")
    # A foreign policy at the same priority (kube-ovn's node reroute) must survive.
    nb.nbctl("--", "--id=@p", "create", "Logical_Router_Policy", "priority=30000",
             'match="ip4.dst == 172.18.0.2"', "action=reroute", 'nexthops="100.64.0.2"',
             "external_ids:vendor=kube-ovn", "external_ids:node=kube-ovn-worker",
             "--", "add", "Logical_Router", "ovn-cluster", "policies", "@p")
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}")
    try:
        expected = [expected_policy("kube-ovn-worker", 4, DNS4, "100.64.0.2"),
                    expected_policy("kube-ovn-control-plane", 4, DNS4, "100.64.0.3")]
        wait_until(lambda: converged(nb, expected), 15, "policies for both nodes")
        check(nb.option() == DNS4, f"NB_Global option is {nb.option()!r}")
        check(nb.router_policy_count() == 3, "foreign policy kept, 2 local-dns policies")
        # No transaction when nothing changed: the standalone db file only grows on commits.
        time.sleep(1.5)
        size = nb.db_size()
        m0 = ctl.metrics()
        time.sleep(3.5)  # several resync passes (--resync-interval=1s)
        m1 = ctl.metrics()
        check(nb.db_size() == size, "db file grew although nothing changed (a transaction was sent)")
        check(m1["nld_ovn_reconciliations_total"] > m0["nld_ovn_reconciliations_total"], "resync passes ran")
        check(m1["nld_ovn_transactions_total"] == m0["nld_ovn_transactions_total"], "no new transactions")
        check(m1["nld_ovn_connected"] == 1, "connected gauge")
        check(abs(m1["nld_ovn_last_success_timestamp_seconds"] - time.time()) < 60, "last success is now")
        check(m1["nld_ovn_nodes"] == 2 and m1["nld_ovn_desired_policies"] == 2, f"gauges: {m1}")
        check_exposition(ctl)
        check(ctl.healthz() == (200, "ok\n"), f"/healthz while connected: {ctl.healthz()}")
        # Node removal removes its policies (and only those).
        nb.nbctl("lsp-del", "node-kube-ovn-control-plane")
        wait_until(lambda: converged(nb, expected[:1]), 15, "policies of the removed node deleted")
        check(nb.router_policy_count() == 2, "foreign policy still there after node removal")
        # Join IP change → nexthop follows.
        nb.nbctl("lsp-set-addresses", "node-kube-ovn-worker", "00:00:00:00:00:09 100.64.0.9")
        wait_until(lambda: converged(nb, [expected_policy("kube-ovn-worker", 4, DNS4, "100.64.0.9")]), 15,
                   "nexthop follows the join IP")
        # A new node appears.
        nb.add_node("new-node", "100.64.0.4")
        wait_until(lambda: converged(nb, [expected_policy("kube-ovn-worker", 4, DNS4, "100.64.0.9"),
                                          expected_policy("new-node", 4, DNS4, "100.64.0.4")]), 15, "new node")
    finally:
        ctl.stop()
    # Controller restarted without DNS IPs: the option and all its policies go, the foreign stays.
    ctl = Controller(tmp, nb, name="ctl2")
    try:
        wait_until(lambda: not nb.local_dns_policies() and nb.option() is None, 15, "feature turned off")
        check(nb.router_policy_count() == 1, "foreign policy untouched")
    finally:
        ctl.stop()


def scenario_dualstack(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("node-a", "100.64.0.2", "fd00:100:64::2")
    nb.add_node("node-b", "100.64.0.3", "fd00:100:64::3")
    nb.add_node("node-v6only", None, "fd00:100:64::4")
    full = [expected_policy("node-a", 4, DNS4, "100.64.0.2"), expected_policy("node-a", 6, DNS6, "fd00:100:64::2"),
            expected_policy("node-b", 4, DNS4, "100.64.0.3"), expected_policy("node-b", 6, DNS6, "fd00:100:64::3"),
            expected_policy("node-v6only", 6, DNS6, "fd00:100:64::4")]
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4},{DNS6}")
    try:
        wait_until(lambda: converged(nb, full), 15, "dual-stack policies")
        check(nb.option() == f"{DNS4},{DNS6}", f"option {nb.option()!r}")
        uuids = {p["uuid"] for p in nb.local_dns_policies()}
        time.sleep(2.5)
        check({p["uuid"] for p in nb.local_dns_policies()} == uuids, "policies were rewritten without change")
    finally:
        ctl.stop()
    # Restart with the same flags: nothing is deleted or recreated in either family.
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4},{DNS6}", name="ctl2")
    try:
        time.sleep(2.5)
        check({p["uuid"] for p in nb.local_dns_policies()} == uuids, "restart rewrote policies (cross-family)")
    finally:
        ctl.stop()
    # Only v4 DNS IP: v6 policies go, v4 policies stay untouched (same uuids).
    v4 = {p["uuid"] for p in nb.local_dns_policies() if p["external_ids"]["address-family"] == "4"}
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}", name="ctl3")
    try:
        wait_until(lambda: {p["uuid"] for p in nb.local_dns_policies()} == v4, 15, "only v4 policies left, unchanged")
    finally:
        ctl.stop()
    # Only v6: the v4 ones go, v6 ones are created.
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS6}", name="ctl4")
    try:
        wait_until(lambda: converged(nb, [p for p in full if p["external_ids"]["address-family"] == "6"]), 15,
                   "only v6 policies")
    finally:
        ctl.stop()


def scenario_handedit(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("w1", "100.64.0.2")
    nb.add_node("w2", "100.64.0.3")
    expected = [expected_policy("w1", 4, DNS4, "100.64.0.2"), expected_policy("w2", 4, DNS4, "100.64.0.3")]
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}")
    try:
        wait_until(lambda: converged(nb, expected), 15, "initial policies")
        w1 = [p for p in nb.local_dns_policies() if p["external_ids"]["node"] == "w1"][0]
        nb.nbctl("lr-policy-del", "ovn-cluster", w1["uuid"])
        wait_until(lambda: converged(nb, expected), 15, "deleted policy restored")
        w2 = [p for p in nb.local_dns_policies() if p["external_ids"]["node"] == "w2"][0]
        nb.nbctl("set", "Logical_Router_Policy", w2["uuid"], 'nexthops="100.64.0.99"')
        wait_until(lambda: converged(nb, expected), 15, "edited nexthop restored")
        w2 = [p for p in nb.local_dns_policies() if p["external_ids"]["node"] == "w2"][0]
        nb.nbctl("set", "Logical_Router_Policy", w2["uuid"], "priority=31000")
        wait_until(lambda: converged(nb, expected), 15, "edited priority restored")
        nb.nbctl("set", "NB_Global", ".", "options:node_local_dns_ip=1.2.3.4")
        wait_until(lambda: nb.option() == DNS4, 15, "NB_Global option restored")
        # A duplicate owned policy is removed.
        nb.nbctl("--", "--id=@p", "create", "Logical_Router_Policy", "priority=30000",
                 f'match="ip4.src == $node.w1_ip4 && ip4.dst == {DNS4}"', "action=reroute",
                 'nexthops="100.64.0.2"', "external_ids:vendor=kube-ovn", "external_ids:node=w1",
                 "external_ids:address-family=4", "external_ids:isLocalDnsCache=true",
                 "--", "add", "Logical_Router", "ovn-cluster", "policies", "@p")
        wait_until(lambda: converged(nb, expected), 15, "duplicate removed")
        # A stale owned policy of a node that no longer exists is garbage-collected.
        nb.nbctl("--", "--id=@p", "create", "Logical_Router_Policy", "priority=30000",
                 f'match="ip4.src == $node.gone_ip4 && ip4.dst == {DNS4}"', "action=reroute",
                 'nexthops="100.64.0.50"', "external_ids:vendor=kube-ovn", "external_ids:node=gone",
                 "external_ids:address-family=4", "external_ids:isLocalDnsCache=true",
                 "--", "add", "Logical_Router", "ovn-cluster", "policies", "@p")
        wait_until(lambda: converged(nb, expected), 15, "stale node policy removed")
    finally:
        ctl.stop()
    # A wrong --node-switch must not look like "all nodes gone": nothing is deleted, check fails.
    uuids = sorted(p["uuid"] for p in nb.local_dns_policies())
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}", "--node-switch=typo", name="ctl-typo")
    try:
        time.sleep(2.5)
        check(sorted(p["uuid"] for p in nb.local_dns_policies()) == uuids, "wrong --node-switch deleted policies")
    finally:
        ctl.stop()
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}", "--node-switch=typo")
    check(r.returncode == 1 and "node_switch_missing" in r.stdout, f"check with a wrong switch: {r.stdout}")


def scenario_restart(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("w1", "100.64.0.2")
    expected = [expected_policy("w1", 4, DNS4, "100.64.0.2")]
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}", "--inactivity-probe=1s")
    try:
        wait_until(lambda: converged(nb, expected), 15, "initial policies")
        nb.stop()
        wait_until(lambda: ctl.metrics()["nld_ovn_connected"] == 0, 10, "controller notices the lost connection")
        check(ctl.healthz() == (503, "not connected to OVN NB\n"), f"/healthz while disconnected: {ctl.healthz()}")
        time.sleep(1)
        nb.start()
        # While the controller was disconnected, the NB changed (a node added, a policy deleted).
        nb.add_node("w2", "100.64.0.3")
        nb.nbctl("lr-policy-del", "ovn-cluster", nb.local_dns_policies()[0]["uuid"])
        expected.append(expected_policy("w2", 4, DNS4, "100.64.0.3"))
        wait_until(lambda: converged(nb, expected), 30, "converged after NB restart")
        m = ctl.metrics()
        check(m["nld_ovn_connects_total"] >= 2, f"reconnected ({m['nld_ovn_connects_total']})")
        check(m["nld_ovn_connected"] == 1, "connected again")
        check(ctl.healthz()[0] == 200, f"/healthz after reconnecting: {ctl.healthz()}")
        check(ctl.proc.poll() is None, "controller still running")
        # A hung server (SIGSTOP: socket open, nothing answers) is detected by the echo probe.
        nb.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: ctl.metrics()["nld_ovn_connected"] == 0, 10, "inactivity probe drops a hung NB")
            check("inactivity probe" in ctl.output(), "probe timeout logged")
        finally:
            nb.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: ctl.metrics()["nld_ovn_connected"] == 1, 20, "reconnected after the NB resumed")
        nb.nbctl("lr-policy-del", "ovn-cluster", nb.local_dns_policies()[0]["uuid"])
        wait_until(lambda: converged(nb, expected), 20, "converged after the hang")
    finally:
        ctl.stop()


def scenario_race(tmp, nb):
    nb.kube_ovn_base()
    nodes = [(f"n{i}", f"100.64.0.{i + 2}", f"fd00:100:64::{i + 2}") for i in range(8)]
    for n, ip4, ip6 in nodes:
        nb.add_node(n, ip4, ip6)
    expected = []
    for n, ip4, ip6 in nodes:
        expected += [expected_policy(n, 4, DNS4, ip4), expected_policy(n, 6, DNS6, ip6)]
    ctls = [Controller(tmp, nb, f"--node-local-dns-ip={DNS4},{DNS6}", name=f"ctl{i}") for i in range(3)]
    try:
        wait_until(lambda: converged(nb, expected), 20, "converged with racing controllers")
        time.sleep(3)
        check(converged(nb, expected), "still exactly one policy each after the race")
        check(nb.router_policy_count() == len(expected), "router references no duplicates")
        # No controller inserted a duplicate that was cleaned up later: the changes applied by all
        # of them add up to exactly the policies plus the NB_Global option.
        ms = [c.metrics() for c in ctls]
        applied = sum(m["nld_ovn_changes_applied_total"] for m in ms)
        conflicts = sum(m["nld_ovn_conflicts_total"] for m in ms)
        check(applied == len(expected) + 1, f"changes applied {applied} != {len(expected) + 1}")
        print(f"race: {conflicts:.0f} conflicting transaction(s) retried")
        # Churn while all run: add and remove nodes.
        nb.add_node("late", "100.64.1.1")
        nb.nbctl("lsp-del", "node-n0")
        expected = [e for e in expected if e["external_ids"]["node"] != "n0"]
        expected.append(expected_policy("late", 4, DNS4, "100.64.1.1"))
        wait_until(lambda: converged(nb, expected), 20, "converged after churn")
        time.sleep(2)
        check(converged(nb, expected), "no duplicates after churn")
        for c in ctls:
            check(c.proc.poll() is None, "controller alive")
    finally:
        for c in ctls:
            c.stop()


def scenario_check(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("w1", "100.64.0.2")
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 1 and "policy_missing" in r.stdout, f"check before reconcile: {r.returncode} {r.stdout}")
    ctl = Controller(tmp, nb, f"--node-local-dns-ip={DNS4}")
    try:
        wait_until(lambda: converged(nb, [expected_policy("w1", 4, DNS4, "100.64.0.2")]), 15, "converged")
    finally:
        ctl.stop()
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 0, f"healthy NB must pass: rc={r.returncode}\n{r.stdout}{r.stderr}")
    check("node w1 join 100.64.0.2" in r.stdout and "OK: no problems found" in r.stdout, r.stdout)
    check("priority 30000" in r.stdout, "check lists the node's policies:\n" + r.stdout)
    # An underlay switch (localnet port) without a router port on ovn-cluster.
    nb.nbctl("ls-add", "underlay1")
    nb.nbctl("lsp-add", "underlay1", "localnet.underlay1", "--", "lsp-set-type", "localnet.underlay1", "localnet",
             "--", "lsp-set-addresses", "localnet.underlay1", "unknown",
             "--", "lsp-set-options", "localnet.underlay1", "network_name=provider")
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 1 and "underlay_unconnected" in r.stdout and "underlay1" in r.stdout,
          f"unconnected underlay must fail: rc={r.returncode}\n{r.stdout}")
    # U2O interconnection on: router port peer on ovn-cluster → healthy again.
    nb.nbctl("lrp-add", "ovn-cluster", "ovn-cluster-underlay1", "00:00:00:00:01:01", "10.10.0.254/24")
    nb.nbctl("lsp-add", "underlay1", "underlay1-ovn-cluster", "--", "lsp-set-type", "underlay1-ovn-cluster",
             "router", "--", "lsp-set-options", "underlay1-ovn-cluster", "router-port=ovn-cluster-underlay1")
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 0, f"connected underlay must pass: rc={r.returncode}\n{r.stdout}")
    # A higher-priority policy catching the node's pods (EIP/SNAT style), via an address set.
    nb.nbctl("lsp-add", "underlay1", "pod1", "--", "lsp-set-addresses", "pod1", "00:00:00:00:02:01 10.10.0.5")
    nb.nbctl("pg-set-ports", "node.w1", "pod1")
    nb.nbctl("create", "Address_Set", "name=eip_pods", 'addresses="10.10.0.0/28"')
    nb.nbctl("lr-policy-add", "ovn-cluster", "31500", "ip4.src == $eip_pods", "reroute", "10.10.0.1")
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 1 and "shadowing_policy" in r.stdout, f"shadowing policy must fail: {r.stdout}")
    # One whose destination excludes the DNS IP is harmless.
    nb.nbctl("lr-policy-del", "ovn-cluster", "31500", "ip4.src == $eip_pods")
    nb.nbctl("lr-policy-add", "ovn-cluster", "31000", "ip4.src == 10.10.0.0/24 && ip4.dst == 172.18.0.0/16",
             "reroute", "10.10.0.1")
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 0, f"non-DNS higher policy must pass: {r.stdout}")
    # Missing port group is reported, not created.
    nb.add_node("w2", "100.64.0.3", port_group=False)
    r = run_tool(nb, "check", f"--node-local-dns-ip={DNS4}")
    check(r.returncode == 1 and "port_group_missing" in r.stdout and "node.w2" in r.stdout, r.stdout)
    # Unreachable NB → exit 1 with a message.
    r = subprocess.run([BINARY, "check", "--probe-dns=false", f"--ovn-nb-addr=unix:{tmp}/nonexistent.sock"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 1 and "cannot connect" in r.stdout, f"unreachable NB: {r.returncode} {r.stdout}")


def scenario_dryrun(tmp, nb):
    nb.kube_ovn_base()
    nb.add_node("w1", "100.64.0.2", "fd00:100:64::2")
    before = nb.nbctl("show") + json.dumps(nb.policies()) + str(nb.option())
    size = nb.db_size()
    r = run_tool(nb, "run", "--dry-run", f"--node-local-dns-ip={DNS4},{DNS6}")
    check(r.returncode == 0, f"dry run rc={r.returncode} {r.stderr}")
    txn = [l for l in r.stdout.splitlines() if l.startswith('["OVN_Northbound"')]
    check(len(txn) == 1, f"one transaction printed: {r.stdout}")
    ops = json.loads(txn[0])[1:]
    inserts = [o for o in ops if o["op"] == "insert" and o["table"] == "Logical_Router_Policy"]
    check(len(inserts) == 2, f"two policy inserts in {ops}")
    check(any(o["op"] == "wait" for o in ops), "transaction is guarded by a wait")
    check(nb.db_size() == size, "dry run changed the database")
    check(nb.nbctl("show") + json.dumps(nb.policies()) + str(nb.option()) == before, "dry run changed the NB")
    # Apply through ovsdb-client to prove the printed transaction is valid and complete.
    subprocess.run(["ovsdb-client", "transact", nb.remote, txn[0]], check=True, capture_output=True, timeout=20)
    expected = [expected_policy("w1", 4, DNS4, "100.64.0.2"), expected_policy("w1", 6, DNS6, "fd00:100:64::2")]
    check(converged(nb, expected), "printed transaction converges")
    # The race guard: the same transaction sent again (a second controller that computed its plan
    # from the same state) must fail on its "wait" and insert nothing.
    r2 = subprocess.run(["ovsdb-client", "transact", nb.remote, txn[0]], capture_output=True, text=True, timeout=20)
    check("timed out" in r2.stdout + r2.stderr, f"second identical transaction must fail its wait: {r2.stdout}")
    check(converged(nb, expected), "no duplicate policies after the replayed transaction")
    r = run_tool(nb, "--dry-run", "run", f"--node-local-dns-ip={DNS4},{DNS6}")
    check(r.returncode == 0 and not [l for l in r.stdout.splitlines() if l.startswith('["OVN')],
          f"converged NB: nothing printed: {r.stdout}")


def scenario_flags(tmp, nb):
    for bad in ["169.254.20.10,notanip", "300.1.1.1", "fd00::a,"]:
        r = subprocess.run([BINARY, "check", "--probe-dns=false", f"--node-local-dns-ip={bad}", f"--ovn-nb-addr={nb.remote}"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 1, f"{bad}: rc={r.returncode}")
        check(len(r.stderr.strip().splitlines()) == 1 and "node-local-dns-ip" in r.stderr, f"{bad}: {r.stderr!r}")
    r = subprocess.run([BINARY, "check", "--ovn-nb-addr=tcp:nohost"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "ovn-nb-addr" in r.stderr, r.stderr)
    r = subprocess.run([BINARY, "frobnicate"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "unknown command" in r.stderr, r.stderr)


def scenario_ssl(tmp, nb):
    """ssl: remote with mutual TLS (certificates made here with the openssl CLI)."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp, timeout=60)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-subj", "/CN=nld-test-ca", "-days", "2")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN={who}")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.crt", "-days", "2")
    port = free_port()
    nb.stop()
    nb.proc = subprocess.Popen(
        ["ovsdb-server", f"--remote=punix:{nb.sock}", f"--remote=pssl:{port}:127.0.0.1",
         f"--private-key={tmp}/server.key", f"--certificate={tmp}/server.crt", f"--ca-cert={tmp}/ca.crt",
         f"--unixctl={tmp}/nb.ctl", "--no-chdir", f"--log-file={tmp}/ovsdb-server.log", nb.db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: os.path.exists(nb.sock), 10, "ovsdb-server socket")
    nb.kube_ovn_base()
    nb.add_node("w1", "100.64.0.2")
    remote = f"ssl:127.0.0.1:{port}"
    # Missing certificate flags: a clear error, exit 1.
    r = subprocess.run([BINARY, "check", f"--ovn-nb-addr={remote}"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "--ovn-nb-ssl-key" in r.stdout, f"ssl without certs: {r.stdout}{r.stderr}")
    ssl_flags = [f"--ovn-nb-ssl-key={tmp}/client.key", f"--ovn-nb-ssl-cert={tmp}/client.crt",
                 f"--ovn-nb-ssl-ca={tmp}/ca.crt"]
    log = open(os.path.join(tmp, "ctl.log"), "w")
    proc = subprocess.Popen([BINARY, "run", f"--ovn-nb-addr={remote}", "--metrics-addr=", f"--node-local-dns-ip={DNS4}"]
                            + ssl_flags, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: converged(nb, [expected_policy("w1", 4, DNS4, "100.64.0.2")]), 20, "converged over TLS")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        if proc.returncode != 0:
            BAD_EXITS.append(f"run over {'TLS' if 'ssl' in str(proc.args) else 'cluster'}: exit code {proc.returncode}")
    # A CA that did not sign the server certificate is refused.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt",
            "-subj", "/CN=other-ca", "-days", "2")
    bad = ssl_flags[:2] + [f"--ovn-nb-ssl-ca={tmp}/other.crt"]
    r = subprocess.run([BINARY, "check", f"--ovn-nb-addr={remote}"] + bad, capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 1 and "cannot connect" in r.stdout, f"untrusted server accepted: {r.stdout}")


def scenario_cluster(tmp, nb):
    """A 2-member clustered NB: the controller skips the follower and writes through the leader."""
    nb.stop()
    p1, p2 = free_port(), free_port()
    db1, db2 = os.path.join(tmp, "c1.db"), os.path.join(tmp, "c2.db")
    s1, s2 = os.path.join(tmp, "c1.sock"), os.path.join(tmp, "c2.sock")
    subprocess.run(["ovsdb-tool", "create-cluster", db1, SCHEMA, f"tcp:127.0.0.1:{p1}"], check=True)
    procs = []

    def start(db, sock, name):
        procs.append(subprocess.Popen(
            ["ovsdb-server", f"--remote=punix:{sock}", f"--unixctl={tmp}/{name}.ctl", "--no-chdir",
             f"--log-file={tmp}/{name}-server.log", db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    try:
        start(db1, s1, "c1")
        wait_until(lambda: os.path.exists(s1), 10, "leader socket")
        subprocess.run(["ovsdb-tool", "join-cluster", db2, "OVN_Northbound", f"tcp:127.0.0.1:{p2}",
                        f"tcp:127.0.0.1:{p1}"], check=True)
        start(db2, s2, "c2")

        def joined():
            r = subprocess.run(["ovs-appctl", "-t", f"{tmp}/c2.ctl", "cluster/status", "OVN_Northbound"],
                               capture_output=True, text=True, timeout=10)
            return "Status: cluster member" in r.stdout and "Role: follower" in r.stdout
        wait_until(joined, 30, "second server joined as follower")
        nb.sock = s1  # ovn-nbctl through the leader
        nb.kube_ovn_base()
        nb.add_node("w1", "100.64.0.2")
        log = open(os.path.join(tmp, "cluster-ctl.log"), "w")
        proc = subprocess.Popen([BINARY, "run", f"--ovn-nb-addr=unix:{s2},unix:{s1}", "--metrics-addr=",
                                 f"--node-local-dns-ip={DNS4}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: converged(nb, [expected_policy("w1", 4, DNS4, "100.64.0.2")]), 20,
                       "converged through the leader")
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
            if proc.returncode != 0:
                BAD_EXITS.append(f"run over {'TLS' if 'ssl' in str(proc.args) else 'cluster'}: exit code {proc.returncode}")
        out = open(os.path.join(tmp, "cluster-ctl.log")).read()
        check(f"connected to unix:{s1}" in out, f"must connect to the leader:\n{out}")
        check("not leader" in out, f"the follower must be reported as skipped:\n{out}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


SCENARIOS = {
    "basic": scenario_basic,
    "dualstack": scenario_dualstack,
    "handedit": scenario_handedit,
    "restart": scenario_restart,
    "race": scenario_race,
    "check": scenario_check,
    "dryrun": scenario_dryrun,
    "flags": scenario_flags,
    "ssl": scenario_ssl,
    "cluster": scenario_cluster,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {{{'|'.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    if not os.access(BINARY, os.X_OK):
        print(f"FAIL: controller binary not built: {BINARY}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="nld-ovn-")
    nb = Nb(tmp)
    try:
        nb.start()
        SCENARIOS[sys.argv[1]](tmp, nb)
        check(not BAD_EXITS, "controller(s) exited uncleanly: " + "; ".join(BAD_EXITS))
        print(f"PASS {sys.argv[1]}")
        return 0
    except (TestFailure, WaitTimeout) as e:
        print(f"FAIL {sys.argv[1]}: {e}", file=sys.stderr)
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".log"):
                with open(os.path.join(tmp, f)) as fh:
                    print(f"--- {f} ---\n{fh.read()[-4000:]}", file=sys.stderr)
        return 1
    finally:
        nb.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
