#!/usr/bin/python3
"""Fail-over end to end on real OVS/OVN (issue 10 §3 and §5): the Kube-OVN-shaped sandbox of
kube_ovn_e2e.py with TWO chassis (each node its own ovs-vswitchd with the userspace datapath and
ovn-controller, joined by Geneve over a veth underlay; see sandbox.py), node1 and node2 each with
its own ovn0, node-cache and `ovn-localdns-controller agent`; `run` writes the policies. pod1 (on
node1) sends a query every 50 ms; node1's node-cache is SIGKILLed, later started again. Which
node answered each query is read from tcpdump on each node's ovn0 (the reply's DNS ID).

Run 1, ours (agents running). Asserts: the longest gap without an answer is <= 2 s and the
answers during the outage come from node2 (seen on node2's ovn0, i.e. across the tunnel); after
the restart pod1 is answered on node1 again within 2 s of the cache answering; no NB transaction
in a steady window (--steady, default 10 s).

Run 2, the upstream behaviour, for comparison (--upstream-run, default on): the agents stopped (no
fail-over), the same kill and restart of node1's cache. With NLD_REFERENCE_NODE_CACHE naming the
upstream k8s-dns-node-cache binary, node1's cache in that run IS the upstream binary; without it
the run says so and uses our node-cache (the difference measured is the fail-over, not the
binary). Asserts: no answer between the kill and the restart, none from node2, answers on node1
again once its cache is back, no NB transaction.

Each run's timeline (answers per 100 ms, by node) goes to a TSV (--timeline, --timeline-upstream);
docs/plots/plot-failover.sh draws them (docs/availability.md).

--fault hang: instead of SIGKILL and a restart, node1's cache is SIGSTOPped (a hung cache: its
sockets still accept, nothing answers) and SIGCONTed at the same times; the same asserts.
"""
import argparse
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nldtest import WaitTimeout, wait_until  # noqa: E402
from sandbox import E2EError, Sandbox, reap_stale_runs  # noqa: E402
from kube_ovn_e2e import (CONTROLLER, DNS_IP, NODES, OUR_LINK_NAMES, POD, Capture, Cluster, Results,  # noqa: E402
                          log, root_links)

LIMIT_S = 2.0
KILL_AT, RESTART_AT, DURATION = 4.0, 12.0, 20.0
REFERENCE = os.environ.get("NLD_REFERENCE_NODE_CACHE", "")

# Runs in pod1's namespace: one UDP socket, a query every 50 ms (ID = sequence number), replies
# collected asynchronously; prints one JSON object {id: [t_sent, t_recv or null]} at the end.
QUERIER = r"""
import json, select, socket, sys, time
import dns.message
dur, server = float(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent, got = {}, {}
start = time.monotonic()
print(json.dumps({"start": start}), flush=True)
seq = 0
next_t = start
while True:
    now = time.monotonic()
    if now >= start + dur + 1.0:
        break
    if now >= next_t and now < start + dur:
        seq += 1
        q = dns.message.make_query("kubernetes.default.svc.cluster.local.", "A")
        q.id = seq
        s.sendto(q.to_wire(), (server, 53))
        sent[seq] = now
        next_t += 0.05
    r, _, _ = select.select([s], [], [], max(0.0, min(next_t - time.monotonic(), 0.05)))
    if r:
        try:
            data, _ = s.recvfrom(4096)
        except ConnectionRefusedError:  # an ICMP port unreachable from a node without listener
            continue
        t = time.monotonic()
        if len(data) >= 2:
            i = int.from_bytes(data[:2], "big")
            if i in sent and i not in got:
                got[i] = t
print(json.dumps({"queries": {i: [sent[i], got.get(i)] for i in sent}}), flush=True)
"""


def nb_commits(sb):
    with open(sb.path("nb.db"), "rb") as f:
        return sum(1 for line in f if line.startswith(b"OVSDB JSON "))


def reply_ids(lines, pod_ip):
    """DNS IDs of the replies from 169.254.20.10 to the pod seen in a capture."""
    ids = set()
    for ln in lines:
        m = re.search(rf"{re.escape(DNS_IP)}\.53 > {re.escape(pod_ip)}\.\d+: (\d+)", ln)
        if m:
            ids.add(int(m.group(1)))
    return ids


class Timeline:
    """One run: pod1 queries every 50 ms for DURATION s; `fault()` stops node1's cache answering
    at KILL_AT (SIGKILL or SIGSTOP), `recover()` (returns once it answers in node1) at RESTART_AT."""

    def __init__(self, sb, cl, label, fault, recover):
        self.sb, self.label = sb, label
        caps = {n["name"]: Capture(sb, n["role"], f"tcpdump-{label}-{n['name']}") for n in NODES}
        c0 = nb_commits(sb)
        querier = sb.spawn(f"querier-{label}", ["/usr/bin/python3", "-c", QUERIER, str(DURATION), DNS_IP],
                           role="pod1")
        first = wait_until(lambda: sb.read_log(f"querier-{label}").splitlines()[:1], 10, "querier start")
        self.start = start = json.loads(first[0])["start"]
        time.sleep(max(0.0, start + KILL_AT - time.monotonic()))
        self.t_kill = time.monotonic()
        fault()
        time.sleep(max(0.0, start + RESTART_AT - time.monotonic()))
        self.t_restart = time.monotonic()
        recover()
        self.t_ready = time.monotonic()
        wait_until(lambda: querier.poll() is not None, DURATION + 15, "querier to finish")
        self.nb_writes = nb_commits(sb) - c0
        lines = {k: c.stop() for k, c in caps.items()}
        # tcpdump's own summary ("N packets dropped by kernel"): the by-node counts are only as
        # complete as the captures.
        self.capture_drops = {k: " ".join(re.findall(r"(\d+) packets? dropped by kernel", sb.read_log(c.name)))
                              for k, c in caps.items()}
        out = [ln for ln in sb.read_log(f"querier-{label}").splitlines() if ln.startswith("{")]
        self.queries = {int(k): v for k, v in json.loads(out[-1])["queries"].items()}
        self.by = {k: reply_ids(v, POD["pod1"]["ip"]) for k, v in lines.items()}
        self.answered = sorted((v[1], i) for i, v in self.queries.items() if v[1] is not None)
        times = [start] + [t for t, _ in self.answered] + [start + DURATION]
        self.longest, self.gap_at = max((b - a, a) for a, b in zip(times, times[1:]))
        self.lost = sum(1 for v in self.queries.values() if v[1] is None)
        # Answered, but more than 1 s after the query: a hung cache answering its backlog on
        # SIGCONT (a stub resolver has given up on those long before).
        self.late = sum(1 for v in self.queries.values() if v[1] is not None and v[1] - v[0] > 1.0)

    def rel(self, t):
        return t - self.start

    def first_on_node1_after_ready(self):
        back = [t for t, i in self.answered if t > self.t_ready and i in self.by["node1"]]
        return (back[0] - self.t_ready) if back else None

    def first_on_node2_after_kill(self):
        moved = [t for t, i in self.answered if t > self.t_kill and i in self.by["node2"]]
        return (moved[0] - self.t_kill) if moved else None

    def figures(self):
        p = f"[e2e] FIGURE {self.label}"
        log(f"{p} queries {len(self.queries)} answered {len(self.answered)} unanswered {self.lost} "
            f"answered_after_more_than_1s {self.late}")
        log(f"{p} tcpdump_dropped_by_kernel node1 {self.capture_drops['node1'] or '?'} "
            f"node2 {self.capture_drops['node2'] or '?'}")
        log(f"{p} answered_by node1 {sum(1 for _, i in self.answered if i in self.by['node1'])} "
            f"node2 {sum(1 for _, i in self.answered if i in self.by['node2'])}")
        log(f"{p} kill_s {self.rel(self.t_kill):.2f} restart_s {self.rel(self.t_restart):.2f} "
            f"ready_s {self.rel(self.t_ready):.2f}")
        log(f"{p} longest_gap_s {self.longest:.3f} (from {self.rel(self.gap_at):.2f} s)")
        moved = self.first_on_node2_after_kill()
        log(f"{p} first_answer_from_node2_after_kill_s {'none' if moved is None else f'{moved:.3f}'}")
        back = self.first_on_node1_after_ready()
        log(f"{p} back_on_node1_after_ready_s {'none' if back is None else f'{back:.3f}'}")
        log(f"{p} nb_transactions_during_run {self.nb_writes}")

    def write_tsv(self, path, what):
        with open(path, "w") as f:
            f.write(f"# {what}\n")
            f.write(f"# events\tkill={self.rel(self.t_kill):.2f}\trestart={self.rel(self.t_restart):.2f}\t"
                    f"ready={self.rel(self.t_ready):.2f}\n")
            f.write(f"# queries {len(self.queries)}, unanswered {self.lost}, answered after > 1 s {self.late}, "
                    f"longest gap {self.longest:.3f} s, "
                    f"NB transactions {self.nb_writes}\n")
            f.write("t_s\tanswers\tnode1\tnode2\tsent\n")
            for b in range(int(DURATION * 10)):
                lo, hi = self.start + b / 10, self.start + (b + 1) / 10
                ids = [i for t, i in self.answered if lo <= t < hi]
                sent = sum(1 for v in self.queries.values() if lo <= v[0] < hi)
                f.write(f"{b / 10:.1f}\t{len(ids)}\t{sum(1 for i in ids if i in self.by['node1'])}\t"
                        f"{sum(1 for i in ids if i in self.by['node2'])}\t{sent}\n")


def cache_answers(sb, role):
    r = sb.sh(role, ["dig", "+time=1", "+tries=1", f"@{DNS_IP}", "kubernetes.default.svc.cluster.local"],
              check=False, timeout=10)
    return "status: NOERROR" in r.stdout


def node1_fault(sb, cl, mode, binary):
    """(fault, recover) for node1's cache: `kill` = SIGKILL, then start it again (`binary`);
    `hang` = SIGSTOP, then SIGCONT. `recover` returns once the cache answers in node1."""
    if mode == "kill":
        return (lambda: sb.stop(cl.caches.pop("node1"), "node-cache-node1", sig=signal.SIGKILL),
                lambda: cl.start_cache(NODES[0], binary=binary))

    def resume():
        os.kill(cl.caches["node1"].pid, signal.SIGCONT)
        wait_until(lambda: cache_answers(sb, "node1"), 10, "node1's cache to answer after SIGCONT", interval=0.05)
    return lambda: os.kill(cl.caches["node1"].pid, signal.SIGSTOP), resume


FAULT_TEXT = {"kill": "node1's cache SIGKILLed, then started again",
              "hang": "node1's cache SIGSTOPped (hung), then SIGCONTed"}


def node_row_healthy(cl, node):
    rows = cl.policies(node["name"])
    return (len(rows) == 1 and rows[0]["nexthops"] == [node["ip"]]
            and "localDnsCacheState" not in rows[0]["external_ids"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeline", help="write run 1's (ours, with fail-over) timeline TSV here")
    ap.add_argument("--timeline-upstream", help="write run 2's (upstream behaviour) timeline TSV here")
    ap.add_argument("--upstream-run", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the upstream behaviour (agents stopped) in the same sandbox")
    ap.add_argument("--chassis", type=int, choices=(1, 2), default=2,
                    help="2 (default): each node its own chassis, Geneve between them; 1: both on one")
    ap.add_argument("--fault", choices=("kill", "hang"), default="kill",
                    help="kill: SIGKILL and restart node1's cache (default); hang: SIGSTOP and SIGCONT")
    ap.add_argument("--steady", type=float, default=10.0)
    ap.add_argument("--logs-dir")
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("[e2e] FAIL: must run as root")
        return 1
    reap_stale_runs(log)
    t_begin = time.monotonic()
    links_before = root_links()
    res = Results()
    sb = Sandbox(log)
    cl = None
    agents = {}

    def stop_agents():
        for name in list(agents):
            p = agents.pop(name)
            sb.stop(p, f"agent-{name}")
            res.check(p.returncode == 0, f"agent {name} exits 0 on SIGTERM ({p.returncode})")

    try:
        cl = Cluster(sb, chassis=args.chassis)
        cl.build()
        for n in NODES:
            cl.start_cache(n)
        cl.start_controller()
        wait_until(lambda: len(cl.policies()) == 2, 20, "run to create both node policies")
        for n in NODES:
            name = f"agent-{n['name']}"
            agents[n["name"]] = sb.spawn(name, [CONTROLLER, "agent", f"--node={n['name']}",
                                                f"--ovn-nb-addr={sb.nb_db}", f"--node-local-dns-ip={DNS_IP}"],
                                         role=n["role"])
        for n in NODES:
            wait_until(lambda: "is healthy" in sb.read_log(f"agent-{n['name']}"), 15, f"agent {n['name']} healthy")
        # Warm the path (first packet of a flow takes ~100 ms through the userspace datapath).
        sb.sh("pod1", ["dig", "+time=2", "+tries=2", "kubernetes.default.svc.cluster.local"], check=False)

        # -- run 1: ours, the agents fail pod1 over to node2 and back -------------------------------
        log(f"[e2e] run 1 (ours, agents running): {FAULT_TEXT[args.fault]}")
        ours = Timeline(sb, cl, "ours", *node1_fault(sb, cl, args.fault, None))
        ours.figures()
        res.check(ours.longest <= LIMIT_S, f"longest gap without an answer {ours.longest:.3f} s <= {LIMIT_S} s "
                  f"(at {ours.rel(ours.gap_at):.2f} s; kill at {ours.rel(ours.t_kill):.2f} s)")
        during = [i for t, i in ours.answered if ours.t_kill + LIMIT_S < t < ours.t_restart]
        res.check(during and all(i in ours.by["node2"] for i in during),
                  f"during the outage pod1's answers come from node2 ({len(during)} answers, "
                  f"{sum(1 for i in during if i in ours.by['node2'])} seen on node2's ovn0)")
        back = ours.first_on_node1_after_ready()
        res.check(back is not None and back <= LIMIT_S,
                  f"after the restart pod1 is answered on node1 again {back if back is None else round(back, 3)} s "
                  f"after node1's cache answered (restart command to ready "
                  f"{ours.t_ready - ours.t_restart:.2f} s)")
        tail = [i for t, i in ours.answered if t > ours.t_ready + LIMIT_S]
        res.check(tail and all(i in ours.by["node1"] for i in tail), "and stays on node1")
        if args.timeline:
            ours.write_tsv(args.timeline, f"ours: node-cache + agent fail-over, {args.chassis} chassis, "
                           f"{FAULT_TEXT[args.fault]}; "
                           "answers per 100 ms by the node that answered (seen on its ovn0)")

        time.sleep(1)
        c1 = nb_commits(sb)
        time.sleep(args.steady)
        steady = nb_commits(sb) - c1
        log(f"[e2e] FIGURE steady_nb_transactions_in_{args.steady:g}s {steady}")
        res.check(steady == 0, f"no NB transaction in a steady {args.steady:g} s window ({steady})")

        # -- run 2: the upstream behaviour -- no agent, no fail-over -----------------------------
        if args.upstream_run:
            res.require(all(node_row_healthy(cl, n) for n in NODES), "both rows healthy before the upstream run",
                        repr(cl.policies()))
            stop_agents()
            binary, what = None, "our node-cache without agent"
            if REFERENCE and os.access(REFERENCE, os.X_OK):
                binary, what = REFERENCE, f"upstream k8s-dns-node-cache ({os.path.basename(REFERENCE)})"
                # SIGKILL (no teardown: interface and rules stay) and start the upstream binary.
                sb.stop(cl.caches.pop("node1"), "node-cache-node1", sig=signal.SIGKILL)
                cl.start_cache(NODES[0], binary=binary)
            else:
                log("[e2e] SKIP upstream binary: NLD_REFERENCE_NODE_CACHE "
                    f"{'is not set' if not REFERENCE else f'{REFERENCE!r} is not executable'}; "
                    "the upstream-behaviour run uses our node-cache without agent")
            log(f"[e2e] upstream-behaviour run: node1's cache is {what}, agents stopped")
            up = Timeline(sb, cl, "upstream", *node1_fault(sb, cl, args.fault, binary))
            up.figures()
            early = [t for t, _ in up.answered if up.t_kill + 0.1 < t < up.t_restart]
            res.check(not early, f"upstream behaviour: no answer between the kill and the restart "
                      f"(longest gap {up.longest:.3f} s, kill to ready {up.t_ready - up.t_kill:.2f} s)")
            res.check(not up.by["node2"], f"upstream behaviour: node2 never answers pod1 ({len(up.by['node2'])})")
            back = up.first_on_node1_after_ready()
            res.check(back is not None and back <= LIMIT_S,
                      f"upstream behaviour: pod1 answered on node1 again once its cache is back ({back})")
            res.check(up.nb_writes == 0, f"upstream behaviour: no NB transaction ({up.nb_writes})")
            if args.timeline_upstream:
                up.write_tsv(args.timeline_upstream, f"upstream behaviour: {what}, no fail-over, "
                             f"{args.chassis} chassis, {FAULT_TEXT[args.fault]}; "
                             "answers per 100 ms by the node that answered")
    except (E2EError, WaitTimeout) as e:
        res.failures.append(str(e))
        log(f"[e2e] ERROR {e}")
        for name in ("agent-node1", "agent-node2", "node-cache-node1", "ovn-localdns-controller",
                     "querier-ours", "querier-upstream"):
            log(f"[e2e] --- {name} ---\n" + "\n".join(sb.read_log(name).splitlines()[-20:]))
    finally:
        stop_agents()
        if cl is not None:
            for p in cl.caches.values():  # a cache left SIGSTOPped by a failed hang run
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            for n in list(cl.caches):
                cl.stop_cache(n)
            if cl.controller is not None:
                cl.stop_controller()
        problems = sb.close(keep_logs_in=args.logs_dir)
        # Nothing of ours may appear in (or be left in) the root namespace: the chassis' taps
        # (br-int, br-phy, ovs-netdev, ovn0) and the underlay live and die in the node namespaces.
        problems += [f"interface {d} in the root namespace" for d in root_links() - links_before
                     if d in OUR_LINK_NAMES or d.startswith(("h-", "genev_sys"))]
        res.check(not problems, "teardown left nothing behind", "\n".join(problems))
    log(f"[e2e] {res.passed} passed, {len(res.failures)} failed in {time.monotonic() - t_begin:.1f}s")
    for f in res.failures:
        log(f"[e2e]   failed: {f}")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
