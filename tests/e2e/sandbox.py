"""A Kube-OVN-shaped OVS/OVN cluster in network namespaces, for the end-to-end tests.

Everything here is started by the harness itself (no system services) and recorded in a ledger
(`Ledger`) as it is created, so that `Sandbox.close()` -- and, if the harness itself was killed,
the next run's `reap_stale_runs()` -- can stop exactly what was started (by pid) and delete exactly
what was created (namespaces, /etc/netns entries, run directory).

Layout (see docs/kube-ovn-e2e-capture.md for the one-chassis diagram):
  * root namespace: the OVN NB/SB ovsdb-servers and ovn-northd (unix sockets only);
  * one namespace per chassis, named after the node whose host namespace it is (`node1`, and in
    the two-chassis layout `node2`): the chassis' own OVS ovsdb-server, ovs-vswitchd (userspace
    datapath, br-int datapath_type=netdev) and ovn-controller, each chassis with its own OVS/OVN
    run, db and log directory (<run dir>/<chassis>/: the `br-int.mgmt` socket ovn-controller
    talks OpenFlow over lives there, so two chassis must not share it); the OVS internal port
    `ovn0` of that node; the host ends of its pods' veths; node-cache;
  * two chassis: an "underlay" veth `ul0` between the two chassis namespaces, each end a port of
    the chassis' `br-phy` (netdev bridge holding the chassis' tunnel IP, 192.168.77.<n>/24, which
    is its ovn-encap-ip): ovn-controller builds Geneve tunnels between the chassis over it. The
    userspace datapath's native tunnelling routes and ARPs through an OVS bridge, hence br-phy;
  * one chassis: node2 has no chassis of its own; its `ovn0` is a veth whose peer is on node1's
    br-int (100.64.0.3/16);
  * each node routes 10.16.0.0/16 and 10.96.0.0/12 via 100.64.0.1 dev ovn0;
  * pod namespaces with eth0 (a veth to its node's br-int), default route via 10.16.0.1 and the
    resolv.conf kubelet writes (/etc/netns/<ns>/resolv.conf);
  * `ext` namespace: the stub "external" DNS server, one point-to-point veth to each node.
  * dual-stack (build_logical_topology(dual_stack=True), nodes/pods with `ip6`): the IPv6
    subnets of SUBNET6 on the router ports, a `::/0` route, pods with an IPv6 address and default
    route, each node's ovn0 with its IPv6 join IP and a route to the IPv6 pod subnet.
Traffic only flows inside these namespaces (and over unix sockets).
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nldtest import wait_until  # noqa: E402

LEDGER_DIR = "/run/nld-e2e"
VSWITCH_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
SB_SCHEMA = "/usr/share/ovn/ovn-sb.ovsschema"

# Kube-OVN's IPv6 subnets of a dual-stack cluster (the IPv4 ones are 10.16.0.0/16 and
# 100.64.0.0/16): the pod switch and the join switch, the router port holding `gw`.
SUBNET6 = {
    "ovn-default": {"cidr": "fd00:10:16::/112", "gw": "fd00:10:16::1", "plen": 112,
                    "gw_cidr": "fd00:10:16::1/112"},
    "join": {"cidr": "fd00:100:64::/112", "gw": "fd00:100:64::1", "plen": 112, "gw_cidr": "fd00:100:64::1/112"},
}


class E2EError(Exception):
    """A step of the harness failed; the message says which and why."""


def run(argv, check=True, timeout=30, env=None, input_text=None):
    """Runs a command to completion (bounded); raises E2EError with its output on failure."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                           input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise E2EError(f"command timed out after {timeout}s: {' '.join(argv)}") from e
    if check and r.returncode != 0:
        raise E2EError(f"command failed (exit {r.returncode}): {' '.join(argv)}\n"
                       f"stdout: {r.stdout.strip()}\nstderr: {r.stderr.strip()}")
    return r


def _proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()[19]


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()[0]


def pid_alive(pid):
    """True while `pid` exists and is not a zombie (PID 1 reaps orphans only every ~2 s here)."""
    state = _proc_state(pid)
    return state is not None and state != "Z"


def stop_pid(pid, start_time=None, grace=5.0, sig=signal.SIGTERM):
    """Sends `sig` to `pid` (only if it is still the process we started: same start time), waits
    up to `grace` s, then SIGKILLs. Treats a zombie as gone."""
    if start_time is not None and _proc_start_time(pid) != start_time:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pid):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)


class Ledger:
    """What this run created, persisted as JSON in LEDGER_DIR/<run id>.json after every change,
    so that a later run can clean up after a harness that was killed (e.g. by a ctest timeout)."""

    def __init__(self, run_id, run_dir):
        os.makedirs(LEDGER_DIR, exist_ok=True)
        self.path = os.path.join(LEDGER_DIR, run_id + ".json")
        self.data = {"owner_pid": os.getpid(), "owner_start": _proc_start_time(os.getpid()),
                     "run_dir": run_dir, "procs": [], "netns": [], "etc_netns": []}
        self._save()

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def add_proc(self, name, pid, stop_cmd=None):
        self.data["procs"].append({"name": name, "pid": pid, "start": _proc_start_time(pid),
                                   "stop_cmd": stop_cmd})
        self._save()

    def forget_proc(self, pid):
        self.data["procs"] = [p for p in self.data["procs"] if p["pid"] != pid]
        self._save()

    def add(self, kind, value):
        self.data[kind].append(value)
        self._save()

    def remove_file(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(LEDGER_DIR)  # only when no other run's ledger is left in it
        except OSError:
            pass


def cleanup_ledger(data, log=print):
    """Stops the recorded processes (newest first, by pid, optional graceful stop command first),
    deletes the recorded namespaces (which destroys their interfaces, taps and iptables rules),
    the /etc/netns entries and the run directory. Returns a list of problems (empty = clean)."""
    problems = []
    for p in reversed(data.get("procs", [])):
        if _proc_start_time(p["pid"]) != p["start"]:
            continue
        if p.get("stop_cmd"):
            try:
                subprocess.run(p["stop_cmd"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            except (subprocess.TimeoutExpired, OSError) as e:
                problems.append(f"{p['name']}: graceful stop failed: {e}")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and pid_alive(p["pid"]):
                try:
                    os.waitpid(p["pid"], os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
        stop_pid(p["pid"], p["start"])
        if pid_alive(p["pid"]) and _proc_start_time(p["pid"]) == p["start"]:
            problems.append(f"{p['name']} (pid {p['pid']}) did not exit")
    for ns in reversed(data.get("netns", [])):
        if os.path.exists(f"/run/netns/{ns}"):
            r = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                problems.append(f"ip netns delete {ns}: {r.stderr.strip()}")
    for d in reversed(data.get("etc_netns", [])):
        if d == "/etc/netns":
            try:
                os.rmdir(d)
            except OSError:
                pass  # not empty: someone else uses it now
        elif d.startswith("/etc/netns/nld-"):
            shutil.rmtree(d, ignore_errors=True)
    rd = data.get("run_dir")
    if rd and os.path.isdir(rd) and os.path.basename(rd).startswith("nld-e2e-"):
        shutil.rmtree(rd, ignore_errors=True)
    return problems


def reap_stale_runs(log=print):
    """Cleans up after earlier runs whose harness process is gone (killed before its finally)."""
    if not os.path.isdir(LEDGER_DIR):
        return
    for name in sorted(os.listdir(LEDGER_DIR)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(LEDGER_DIR, name)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if _proc_start_time(data.get("owner_pid", -1)) == data.get("owner_start"):
            continue  # that run is still going
        log(f"[e2e] cleaning up after a killed earlier run: {name}")
        for p in cleanup_ledger(data, log):
            log(f"[e2e]   {p}")
        os.unlink(path)


class Sandbox:
    """Builds and owns the cluster. Use as a context manager; `close()` is idempotent."""

    def __init__(self, log=print):
        self.log = log
        self.run_id = "e" + secrets.token_hex(3)
        self.dir = tempfile.mkdtemp(prefix="nld-e2e-")
        os.chmod(self.dir, 0o755)
        self.ledger = Ledger(self.run_id, self.dir)
        self.ns = {}  # role -> netns name
        # Every OVS/OVN tool defaults to files under our private run directory, never the system's.
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir, OVS_DBDIR=self.dir,
                        OVS_SYSCONFDIR=self.dir, OVS_PKGDATADIR="/usr/share/openvswitch",
                        OVN_RUNDIR=self.dir, OVN_LOGDIR=self.dir, OVN_DBDIR=self.dir,
                        OVN_SYSCONFDIR=self.dir)
        self.chassis = {}       # chassis name -> {"role", "dir", "env", "db"} (see add_chassis)
        self.node_chassis = {}  # node name -> the chassis its ovn0 and pods are plugged into
        self.nb_db = f"unix:{self.dir}/nb.sock"
        self.sb_db = f"unix:{self.dir}/sb.sock"
        self._closed = False

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self, keep_logs_in=None):
        """Tears everything down; with `keep_logs_in`, first copies the daemons' logs there."""
        if self._closed:
            return []
        self._closed = True
        if keep_logs_in:
            self.save_logs(keep_logs_in)
        problems = cleanup_ledger(self.ledger.data, self.log)
        self.ledger.remove_file()
        return problems

    def save_logs(self, dest):
        os.makedirs(dest, exist_ok=True)
        for root, _dirs, files in os.walk(self.dir):
            for f in files:
                if f.endswith((".log", ".ovslog", ".conf", "Corefile", "Corefile.base")):
                    rel = os.path.relpath(os.path.join(root, f), self.dir).replace(os.sep, "_")
                    shutil.copyfile(os.path.join(root, f), os.path.join(dest, rel))

    # -- primitives ---------------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def add_netns(self, role):
        name = f"nld-{self.run_id}-{role}"
        self.ledger.add("netns", name)  # recorded first: a kill right after `add` leaks nothing
        run(["ip", "netns", "add", name])
        self.ns[role] = name
        self.sh(role, "ip link set lo up")
        return name

    def netns_prefix(self, role):
        return ["ip", "netns", "exec", self.ns[role]]

    def sh(self, role, cmd, check=True, timeout=30):
        """Runs a command line (split on spaces) in namespace `role` (None = root namespace)."""
        argv = cmd.split() if isinstance(cmd, str) else list(cmd)
        if role is not None:
            argv = self.netns_prefix(role) + argv
        return run(argv, check=check, timeout=timeout, env=self.env)

    def write_resolv_conf(self, role, text):
        """/etc/netns/<ns>/resolv.conf: `ip netns exec` bind-mounts it over /etc/resolv.conf."""
        d = f"/etc/netns/{self.ns[role]}"
        if not os.path.isdir("/etc/netns"):
            self.ledger.add("etc_netns", "/etc/netns")  # created by us: removed last, if empty
            os.makedirs("/etc/netns", exist_ok=True)
        self.ledger.add("etc_netns", d)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(text)

    def spawn(self, name, argv, role=None, stop_cmd=None, env=None):
        """Starts a long-running process (in namespace `role`), output to <run dir>/<name>.log."""
        if role is not None:
            argv = self.netns_prefix(role) + argv
        logf = open(self.path(name + ".log"), "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or self.env, start_new_session=True)
        logf.close()
        # `ip netns exec` execs the command, so this pid is the daemon's own pid.
        self.ledger.add_proc(name, proc.pid, stop_cmd(proc.pid) if callable(stop_cmd) else stop_cmd)
        return proc

    def stop(self, proc, name, grace=5.0, sig=signal.SIGTERM):
        stop_pid(proc.pid, None, grace, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.ledger.forget_proc(proc.pid)

    def read_log(self, name):
        try:
            with open(self.path(name + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def nbctl(self, *args, check=True):
        return run(["ovn-nbctl", f"--db={self.nb_db}", "--timeout=20"] + list(args), check=check,
                   env=self.env).stdout

    def vsctl(self, *args, check=True, chassis="node1"):
        """ovs-vsctl against one chassis' own OVS database (default: node1's)."""
        ch = self.chassis[chassis]
        return run(["ovs-vsctl", f"--db={ch['db']}", "--timeout=20"] + list(args), check=check,
                   env=ch["env"]).stdout

    def sbctl(self, *args, check=True):
        return run(["ovn-sbctl", f"--db={self.sb_db}", "--timeout=20"] + list(args), check=check,
                   env=self.env).stdout

    def _ovsdb_server(self, name, db, schema, sock, d=None, env=None):
        d = d or self.dir
        run(["ovsdb-tool", "create", db, schema], env=self.env)
        p = self.spawn(name, ["ovsdb-server", db, f"--remote=punix:{sock}", f"--unixctl={os.path.join(d, name + '.ctl')}",
                              f"--pidfile={os.path.join(d, name + '.pid')}", "--no-chdir",
                              f"--log-file={os.path.join(d, name + '.ovslog')}"], env=env)
        wait_until(lambda: os.path.exists(sock) or p.poll() is not None, 10, f"{name} socket")
        if p.poll() is not None:
            raise E2EError(f"{name} exited ({p.returncode}):\n{self.read_log(name)}")
        return p

    # -- the cluster --------------------------------------------------------------------------
    def start_ovs_ovn(self, chassis=("node1",)):
        """OVN central, then one chassis per name in `chassis` (each in the namespace of the node of
        that name). With two or more, the chassis are joined by Geneve over a veth underlay."""
        self.start_ovn_central()
        underlay = len(chassis) > 1
        for name in chassis:
            self.add_netns(name)
        if underlay:
            if len(chassis) != 2:
                raise E2EError("the underlay is one veth: at most two chassis")
            a, b = chassis
            self.sh(a, ["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", self.ns[b]])
        for i, name in enumerate(chassis):
            self.add_chassis(name, tunnel_ip=f"192.168.77.{i + 1}" if underlay else None)
        expected = {f"chassis-{name}" for name in chassis}

        def registered():
            have = set(self.sbctl("--bare", "--columns=name", "list", "Chassis", check=False).split())
            return expected <= have
        wait_until(registered, 20, f"ovn-controller to register {', '.join(sorted(expected))} in the SB")
        if underlay:
            # Each chassis must have its Geneve tunnel port to the other before traffic crosses.
            for name in chassis:
                wait_until(lambda: "geneve" in self.vsctl("--bare", "--columns=type", "list", "Interface",
                                                          chassis=name, check=False),
                           20, f"ovn-controller to create {name}'s Geneve tunnel port")

    def start_ovn_central(self):
        """NB and SB ovsdb-servers and ovn-northd in the root namespace (unix sockets only)."""
        self._ovsdb_server("ovsdb-nb", self.path("nb.db"), NB_SCHEMA, self.path("nb.sock"))
        self._ovsdb_server("ovsdb-sb", self.path("sb.db"), SB_SCHEMA, self.path("sb.sock"))
        self.nbctl("init")
        self.sbctl("init")
        self.spawn("ovn-northd", ["ovn-northd", f"--ovnnb-db={self.nb_db}", f"--ovnsb-db={self.sb_db}",
                                  f"--unixctl={self.path('northd.ctl')}", f"--pidfile={self.path('northd.pid')}",
                                  "--no-chdir", f"--log-file={self.path('northd.ovslog')}"])

    def add_chassis(self, name, tunnel_ip=None):
        """One chassis in namespace `name` (created by the caller): its OVS ovsdb-server,
        ovs-vswitchd and ovn-controller, br-int (netdev), and with `tunnel_ip` br-phy holding the
        underlay port `ul0` (already in the namespace) and that IP, used as ovn-encap-ip.

        Every OVS/OVN tool of this chassis runs with OVS_RUNDIR/OVN_RUNDIR/... = <run dir>/<name>:
        ovs-vswitchd puts `br-int.mgmt` there and ovn-controller connects to it from there, so each
        chassis' pair finds its own. ovs-vswitchd lives in the node's namespace, so its taps
        (br-int, br-phy, ovs-netdev, ovn0) and the pods' host veth ends are there and vanish with
        it; it is stopped with `exit --cleanup`, which removes the userspace datapath's persistent
        taps."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        env = dict(self.env, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d, OVS_SYSCONFDIR=d,
                   OVN_RUNDIR=d, OVN_LOGDIR=d, OVN_DBDIR=d, OVN_SYSCONFDIR=d)
        self.chassis[name] = {"role": name, "dir": d, "env": env, "db": f"unix:{d}/db.sock"}
        self._ovsdb_server(f"ovsdb-server-{name}", os.path.join(d, "conf.db"), VSWITCH_SCHEMA,
                           os.path.join(d, "db.sock"), d, env)
        self.vsctl("--no-wait", "init", chassis=name)
        ctl = os.path.join(d, "ovs-vswitchd.ctl")
        self.spawn(f"ovs-vswitchd-{name}", ["ovs-vswitchd", self.chassis[name]["db"], f"--unixctl={ctl}",
                                            f"--pidfile={os.path.join(d, 'ovs-vswitchd.pid')}", "--no-chdir",
                                            f"--log-file={os.path.join(d, 'ovs-vswitchd.ovslog')}"],
                   role=name, env=env, stop_cmd=["ovs-appctl", "-t", ctl, "exit", "--cleanup"])
        wait_until(lambda: os.path.exists(ctl), 10, f"{name}'s ovs-vswitchd control socket")
        self.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
                   "fail-mode=secure", "other-config:disable-in-band=true", chassis=name)
        encap_ip = "127.0.0.1"
        if tunnel_ip:
            self.vsctl("add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
                       "fail-mode=standalone", "other-config:disable-in-band=true", "--",
                       "add-port", "br-phy", "ul0", chassis=name)
            wait_until(lambda: self.sh(name, "ip link show br-phy", check=False).returncode == 0, 10,
                       f"br-phy tap in {name}")
            self._veth_offload_off(name, "ul0")
            self.sh(name, "ip link set ul0 up")
            self.sh(name, f"ip addr add {tunnel_ip}/24 dev br-phy")
            self.sh(name, "ip link set br-phy up")
            encap_ip = tunnel_ip
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:system-id=chassis-{name}",
                   f"external_ids:ovn-remote={self.sb_db}", "external_ids:ovn-encap-type=geneve",
                   f"external_ids:ovn-encap-ip={encap_ip}", "external_ids:ovn-bridge=br-int",
                   "external_ids:ovn-bridge-datapath-type=netdev", chassis=name)
        # ovn-controller 23.03 has no --unixctl: its socket is $OVN_RUNDIR/ovn-controller.<pid>.ctl.
        self.spawn(f"ovn-controller-{name}", ["ovn-controller", self.chassis[name]["db"],
                                              f"--pidfile={os.path.join(d, 'ovn-controller.pid')}", "--no-chdir",
                                              f"--log-file={os.path.join(d, 'ovn-controller.ovslog')}"],
                   role=name, env=env,
                   stop_cmd=lambda pid: ["ovs-appctl", "-t", os.path.join(d, f"ovn-controller.{pid}.ctl"), "exit"])

    def build_logical_topology(self, pods, nodes, dual_stack=False):
        """Router ovn-cluster, switches ovn-default/join, node LSPs, pod LSPs, port groups.
        `dual_stack`: the router ports also get Kube-OVN's IPv6 subnets (SUBNET6), the router a
        `::/0` route, and each node/pod LSP its `ip6` next to its IPv4 address, as Kube-OVN writes
        a dual-stack LSP ("MAC 10.16.0.11 fd00:10:16::b"); northd then fills the port groups'
        `_ip6` address sets the IPv6 policies match on."""
        nb = self.nbctl
        nb("lr-add", "ovn-cluster")
        for sw, lrp, mac, cidr in (("ovn-default", "ovn-cluster-ovn-default", "0a:00:00:10:00:01", "10.16.0.1/16"),
                                   ("join", "ovn-cluster-join", "0a:00:00:40:00:01", "100.64.0.1/16")):
            nb("ls-add", sw)
            nb("lrp-add", "ovn-cluster", lrp, mac, cidr, *([SUBNET6[sw]["gw_cidr"]] if dual_stack else []))
            peer = f"{sw}-ovn-cluster"
            nb("lsp-add", sw, peer, "--", "lsp-set-type", peer, "router", "--", "lsp-set-addresses", peer,
               "router", "--", "lsp-set-options", peer, f"router-port={lrp}")
        nb("lr-route-add", "ovn-cluster", "0.0.0.0/0", "100.64.0.1")
        if dual_stack:
            nb("lr-route-add", "ovn-cluster", "::/0", SUBNET6["join"]["gw"])

        def addrs(x):
            return f"{x['mac']} {x['ip']}" + (f" {x['ip6']}" if dual_stack else "")
        for n in nodes:
            lsp = f"node-{n['name']}"
            nb("lsp-add", "join", lsp, "--", "lsp-set-addresses", lsp, addrs(n))
        for p in pods:
            nb("lsp-add", p["switch"], p["lsp"], "--", "lsp-set-addresses", p["lsp"], addrs(p))
        for n in nodes:
            members = [p["lsp"] for p in pods if p["node"] == n["name"]]
            nb("pg-add", "node." + n["name"].replace("-", "."), *members)

    def add_kube_dns_service(self, vip, backend):
        """kube-dns as a Service: OVN load balancers (UDP and TCP) on ovn-default and join."""
        for proto in ("udp", "tcp"):
            lb = f"cluster-{proto}-loadbalancer"
            self.nbctl("lb-add", lb, f"{vip}:53", f"{backend}:53", proto)
            self.nbctl("ls-lb-add", "ovn-default", lb)
            self.nbctl("ls-lb-add", "join", lb)

    def _veth_offload_off(self, role, dev):
        # With tx checksum offload the userspace conntrack drops every flow (conntrack_l4csum_err).
        self.sh(role, f"ethtool -K {dev} tx off")

    def add_pod(self, pod):
        """A pod namespace: eth0 (veth to its node's br-int, iface-id=<pod>.<namespace>), kubelet's
        resolv.conf."""
        role = pod["role"]
        ch = self.node_chassis[pod["node"]]
        self.add_netns(role)
        host = pod["host_dev"]
        self.sh(ch, ["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", self.ns[role]])
        self.sh(role, f"ip link set eth0 address {pod['mac']}")
        self.sh(role, f"ip addr add {pod['ip']}/16 dev eth0")
        self.sh(role, "ip link set eth0 up")
        self.sh(ch, f"ip link set {host} up")
        self.sh(role, f"ip route add default via {pod['gw']}")
        if pod.get("ip6"):
            # nodad: the address is usable at once (no ~1 s tentative state); OVN owns uniqueness.
            self.sh(role, f"ip -6 addr add {pod['ip6']}/{SUBNET6[pod['switch']]['plen']} dev eth0 nodad")
            self.sh(role, f"ip -6 route add default via {SUBNET6[pod['switch']]['gw']}")
        self._veth_offload_off(role, "eth0")
        self._veth_offload_off(ch, host)
        self.vsctl("add-port", "br-int", host, "--", "set", "Interface", host, f"external_ids:iface-id={pod['lsp']}",
                   chassis=ch)
        if pod.get("resolv"):
            self.write_resolv_conf(role, pod["resolv"])

    def add_node_port(self, node):
        """The node's join port: a node with a chassis of its own (its namespace is the chassis')
        gets the OVS internal port ovn0, as Kube-OVN creates it; a node sharing another node's
        chassis gets a veth named ovn0 in its namespace whose peer is on that chassis' br-int."""
        name = node["name"]
        lsp = f"node-{name}"
        ch = self.node_chassis[name]
        if ch == node["role"]:
            self.vsctl("add-port", "br-int", "ovn0", "--", "set", "Interface", "ovn0", "type=internal",
                       f"mac=\"{node['mac']}\"", f"external_ids:iface-id={lsp}", chassis=ch)
            wait_until(lambda: self.sh(ch, "ip link show ovn0", check=False).returncode == 0, 10,
                       f"ovn0 tap in {ch}")
        else:
            self.add_netns(node["role"])
            peer = node["peer_dev"]
            self.sh(ch, ["ip", "link", "add", peer, "type", "veth", "peer", "name", "ovn0", "netns",
                         self.ns[node["role"]]])
            self.sh(ch, f"ip link set {peer} up")
            self._veth_offload_off(ch, peer)
            self._veth_offload_off(node["role"], "ovn0")
            self.vsctl("add-port", "br-int", peer, "--", "set", "Interface", peer, f"external_ids:iface-id={lsp}",
                       chassis=ch)
        r = node["role"]
        self.sh(r, f"ip link set ovn0 address {node['mac']}")
        self.sh(r, f"ip addr add {node['ip']}/16 dev ovn0")
        self.sh(r, "ip link set ovn0 up")
        self.sh(r, "ip route add 10.16.0.0/16 via 100.64.0.1 dev ovn0")
        self.sh(r, "ip route add 10.96.0.0/12 via 100.64.0.1 dev ovn0")
        if node.get("ip6"):
            join6, pods6 = SUBNET6["join"], SUBNET6["ovn-default"]
            self.sh(r, f"ip -6 addr add {node['ip6']}/{join6['plen']} dev ovn0 nodad")
            self.sh(r, f"ip -6 route add {pods6['cidr']} via {join6['gw']} dev ovn0")

    def add_local_dns_link(self, role, ip, ip6=None):
        """What node-cache would create as a dummy link `nodelocaldns` (this kernel has no dummy
        driver): a veth end of that name holding ip/32 (and ip6/128) in the node namespace."""
        self.sh(role, "ip link add nodelocaldns type veth peer name nodelocaldns-p")
        self.sh(role, f"ip addr add {ip}/32 dev nodelocaldns")
        if ip6:
            self.sh(role, f"ip -6 addr add {ip6}/128 dev nodelocaldns nodad")
        self.sh(role, "ip link set nodelocaldns up")
        self.sh(role, "ip link set nodelocaldns-p up")

    def add_ext_link(self, node_role, ext_role, node_ip, ext_ip, dev):
        """Point-to-point veth node <-> ext (the stub external DNS's network)."""
        self.sh(node_role, ["ip", "link", "add", "ext0", "type", "veth", "peer", "name", dev, "netns",
                            self.ns[ext_role]])
        self.sh(node_role, f"ip addr add {node_ip}/30 dev ext0")
        self.sh(node_role, "ip link set ext0 up")
        self.sh(ext_role, f"ip addr add {ext_ip}/30 dev {dev}")
        self.sh(ext_role, f"ip link set {dev} up")

    def wait_ports_up(self, lsps, timeout=20):
        """Waits until ovn-controller has bound every LSP in `lsps` (Logical_Switch_Port.up)."""
        def all_up():
            out = self.nbctl("--format=csv", "--data=bare", "--no-headings", "--columns=name,up",
                             "list", "Logical_Switch_Port")
            up = dict(line.split(",", 1) for line in out.splitlines() if "," in line)
            missing = [l for l in lsps if up.get(l) != "true"]
            return True if not missing else None
        wait_until(all_up, timeout, f"logical switch ports up: {', '.join(lsps)}")

    # -- DNS servers ----------------------------------------------------------------------------
    def start_knotd(self, name, role, listen, zones):
        """knotd (authoritative) in namespace `role`, listening on [(ip, port)], zones {name: text}."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        zone_cfg = ""
        for z, text in zones.items():
            zf = os.path.join(d, z + ".zone")
            with open(zf, "w") as f:
                f.write(text)
            zone_cfg += f"  - domain: {z}\n    file: \"{zf}\"\n"
        conf = (f"server:\n    rundir: \"{d}\"\n    user: root:root\n"
                f"    listen: [ {', '.join(f'{ip}@{port}' for ip, port in listen)} ]\n"
                f"    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"
                f"control:\n    listen: \"{d}/knot.sock\"\n"
                f"database:\n    storage: \"{d}\"\n"
                f"log:\n  - target: stderr\n    any: info\n"
                f"template:\n  - id: default\n    storage: \"{d}\"\n    journal-content: none\n"
                f"    zonefile-sync: -1\n    zonefile-load: whole\n    semantic-checks: off\n"
                f"zone:\n{zone_cfg}")
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(conf)
        p = self.spawn(name, ["knotd", "-c", os.path.join(d, "knot.conf")], role=role)
        ip, port = listen[0]
        first_zone = next(iter(zones))

        def ready():
            if p.poll() is not None:
                raise E2EError(f"{name} exited ({p.returncode}):\n{self.read_log(name)}")
            r = self.sh(role, ["dig", "+time=1", "+tries=1", f"@{ip}", "-p", str(port), first_zone, "SOA"],
                        check=False, timeout=10)
            return "status: NOERROR" in r.stdout
        wait_until(ready, 15, f"{name} to answer")
        return p


def parse_prometheus(text, metric):
    """Sum of all samples of `metric` (any labels) in a Prometheus text exposition."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(rf"^{re.escape(metric)}(\{{[^}}]*\}})?\s+(\S+)", line)
        if m:
            total += float(m.group(2))
            found = True
    return total if found else None
