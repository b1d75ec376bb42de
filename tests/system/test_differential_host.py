#!/usr/bin/python3
"""Differential suite, host side (issue 12 item 1, part 2): ours and the real k8s-dns-node-cache
1.22.18 ($NLD_REFERENCE_NODE_CACHE; skipped visibly when unset), each inside its own throwaway
network namespace, on the same flags and the same template. Part 1 (answers, /metrics, /health,
flags) is tests/integration/test_differential.py.

- Corefile templating: the upstream nodelocaldns ConfigMap Corefile with the placeholders
  node-cache fills (__PILLAR__LOCAL__DNS__ with two local IPs, __PILLAR__DNS__SERVER__,
  __PILLAR__CLUSTER__DNS__, __PILLAR__UPSTREAM__SERVERS__) as -basecorefile, plus a kube-dns
  ConfigMap directory (-kubednscm: stubDomains, upstreamNameservers): the rendered -conf files are
  compared block by block (whitespace normalised); the block order separately.
- Host setup (-setupinterface -setupiptables, iptables mode, -localip 169.254.20.10,10.96.0.10):
  `iptables-save` (raw and filter, rules in order, comments; counters and comment lines dropped)
  line by line, and the link (`ip -d link show`: flags, state; addresses). This kernel has no
  dummy links (../shared/testbed/NOTES.md): the test makes `nodelocaldns` a veth end in both
  namespaces, as the other system tests do, so "kind dummy" is not compared here; without any
  link, both must fail the dummy create, say so and exit non-zero with no rule left.
- The same with -localip fd00::10 (the reference takes one family per process): ip6tables-save,
  the link, SIGTERM teardown (DAD off on the veth, as on a NOARP dummy link).
- Reload (`reload 2s` — both accept it): a block on a new port appended to -conf is served by
  both within the reload period; then an unparsable Corefile: both keep serving.
- SIGTERM teardown (rules and addresses gone) and -skipteardown (both left).
- The log lines operators grep for, recorded side by side; the lines the operator guide promises
  for ours are asserted.

Every difference is an entry of ALLOWLIST naming a row of docs/operator-guide.md's "Data path:
where we differ from CoreDNS on purpose" table (test_guide_has_every_row checks it is there) or a
"BUG:" reason (a node-cache behaviour the guide does not document, reported, not fixed here),
and is asserted exactly: another difference, or an allowlisted one that does not occur, fails.
The table (area | case | reference | ours | verdict) is printed, and appended to
$NLD_DIFF_HOST_TABLE when set (docs/drop-in-comparison.md, section "Host side").
"""

import json
import os
import re

import sys_support as s

h = s.h

LOCALS = [s.LOCAL_V4, s.CLUSTER_DNS]  # iptables mode: the link-local IP and the kube-dns IP
ENV = {"KUBE_DNS_SERVICE_HOST": s.CLUSTER_DNS, "KUBE_DNS_UPSTREAM_SERVICE_HOST": s.UPSTREAM_SVC_IP}
RELOAD_PORT = 5300  # the port of the block added at reload: nothing listens there before
SIDES = ("reference", "ours")

# The upstream ConfigMap (kubernetes/dns cluster/addons/dns/nodelocaldns/nodelocaldns.yaml) as
# it reaches node-cache: the deployer substituted __PILLAR__DNS__DOMAIN__ only (IPVS-mode
# instructions), node-cache fills the rest. The one copy of that Corefile is the integration
# tests' data file.
with open(os.path.join(s.h.HERE, "data", "nodelocaldns.Corefile")) as _f:
    UPSTREAM_TEMPLATE = _f.read().replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
STUB_DOMAINS = {"zeta.test": ["192.0.2.53:5353", "192.0.2.54"], "acme.local": ["192.0.2.1"],
                "beta.example": ["192.0.2.2"]}
UPSTREAM_NAMESERVERS = ["192.0.2.8", "192.0.2.9:5353"]

# The same template as the iptables-mode deployer leaves it (__PILLAR__LOCAL__DNS__ and
# __PILLAR__DNS__SERVER__ substituted, health on the first IP), with `reload 2s`: what the host
# scenarios run (both binaries start on it).
HOST_TEMPLATE = UPSTREAM_TEMPLATE.replace(
    "__PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__", " ".join(LOCALS)).replace(
    "__PILLAR__LOCAL__DNS__:8080", s.LOCAL_V4 + ":8080").replace("    reload\n", "    reload 2s\n")
HOST_TEMPLATE_V6 = HOST_TEMPLATE.replace(" ".join(LOCALS), s.LOCAL_V6).replace(
    s.LOCAL_V4 + ":8080", "[%s]:8080" % s.LOCAL_V6)
ADDED_BLOCK = "added.test:%d {\n    errors\n    bind %s\n    forward . %s\n}\n" % (
    RELOAD_PORT, s.LOCAL_V4, s.UPSTREAM_SVC_IP)
BROKEN_BLOCK = "broken.test:53 {\n    nosuchplugin\n}\n"

# Rows of docs/operator-guide.md, "Data path: where we differ from CoreDNS on purpose".
ROW_STUB_ORDER = "Stub-domain blocks in the rendered Corefile"
ROW_HEALTH = "`health __PILLAR__LOCAL__DNS__:8080` with several `-localip`"
ROW_LINK = "Teardown of a `nodelocaldns` link node-cache did not create"
ROW_LOGS = "Wording of the reload and SIGTERM log lines"
ROW_COMMENTS = "iptables rule comments"

# (area, case) -> (guide row or "BUG: ...", (reference cell, our cell)): the differences expected,
# asserted exactly. None as a cell: filled at run time (see the test).
ALLOWLIST = {
    ("Corefile", "block order"): (ROW_STUB_ORDER, None),
    ("Corefile", "block `cluster.local:53`"): (ROW_HEALTH, (
        "health 169.254.20.10 10.96.0.10:8080", "health 169.254.20.10:8080")),
    ("Corefile", "the reference's CoreDNS on its own rendering"): (ROW_HEALTH, None),
    ("teardown", "SIGTERM: link"): (ROW_LINK, ("link deleted", "link kept, addresses removed")),
    ("logs", "reload done"): (ROW_LOGS, None),
    ("logs", "reload: Corefile does not parse"): (ROW_LOGS, None),
    ("logs", "SIGTERM"): (ROW_LOGS, None),
}

# The log lines operators grep for: (case, regex on a line without the timestamp). The ones the
# operator guide promises for ours ("Logs" section) are asserted present on our side.
LOG_LINES = [
    ("Corefile rendered", r"Updated Corefile with \d+ custom stubdomains", True),
    ("config dump", r"Using config file:", True),
    ("reload starts", r"^\[INFO\] Reloading$", True),
    ("reload done", r"Reloading complete", True),
    ("reload: Corefile does not parse", r"reload failed.*nosuchplugin", True),
    ("SIGTERM", r"SIGTERM", True),
    ("teardown", r"Tearing down", True),
    ("check loop exit", r"Exiting iptables/interface check goroutine", True),
]
COMMENTS = {"NOTRACK": s.COMMENT_SKIP, "ACCEPT": s.COMMENT_ALLOW}
TMP_DIR = re.compile(r"/tmp/nld-diffhost-\w+/\w+/")  # a side's files: the same in both cells
TIMESTAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")


# ----------------------------------------------------------------------------------------------
# Normalisers
# ----------------------------------------------------------------------------------------------

def corefile_blocks(text):
    """[(key, [line, ...])]: the top-level server blocks in file order, each line with its
    whitespace collapsed, blank lines and the block's own closing brace dropped."""
    out, depth = [], 0
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        if depth == 0:
            if line.endswith("{"):
                out.append((line[:-1].strip(), []))
                depth = 1
            continue
        depth += line.count("{") - line.count("}")
        if depth > 0:
            out[-1][1].append(line)
    return out


def iptables_lines(text):
    """The raw and filter tables of iptables-save output: `*table`, the chain policies without
    counters, and the rules in order (comments kept), one string each."""
    out, table = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        if table not in ("raw", "filter") or not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            line = re.sub(r"\s*\[\d+:\d+\]$", "", line)
        out.append(line)
    return out


def link_view(ns):
    """`ip -d link show nodelocaldns` reduced to what node-cache controls: flags, state and the
    link kind; plus its addresses other than the link-local one. 'absent' if the link is
    gone."""
    if not ns.link_exists(s.LINK):
        return "absent"
    text = ns.ip("-d", "link", "show", "dev", s.LINK)
    flags = re.search(r"<([^>]*)>", text).group(1)
    state = re.search(r"state (\S+)", text).group(1)
    kind = "dummy" if "\n    dummy " in text else "veth" if "\n    veth " in text else "?"
    addrs = [a for a in ns.addresses(s.LINK) if not a.startswith("fe80:")]
    return "%s <%s> state %s; %s" % (kind, flags, state, " ".join(sorted(addrs)) or "no address")


def log_line(output, pattern):
    """The first line of `output` matching `pattern`, without its timestamp; None if none."""
    rx = re.compile(pattern)
    for line in output.splitlines():
        line = TIMESTAMP.sub("", line.strip())
        if rx.search(line):
            return line
    return None


class DifferentialHostTest(s.SystemTestCase):
    rows = []

    @classmethod
    def tearDownClass(cls):
        if cls.rows:
            s.h.emit_diff_table(cls.rows, "NLD_DIFF_HOST_TABLE")
        super().tearDownClass()

    def setUp(self):
        if self._testMethodName == "test_guide_has_every_row":
            return  # a check of the docs: no binary needed
        self.ref_bin = h.reference_node_cache()
        if self.ref_bin is None:
            self.skipTest("reference k8s-dns-node-cache: NLD_REFERENCE_NODE_CACHE unset")
        self.tmp = self.make_tmp("nld-diffhost-")
        self.failures = []
        self.seen = set()

    def row(self, area, case, ref, ours, assert_same=True, allow=None):
        """Records a row; its verdict is `same`, or the ALLOWLIST entry's (or `allow`'s, a
        (why, want) made at run time), which must match exactly (None cells: any difference)."""
        key = (area, case)
        self.seen.add(key)
        ref, ours = (TMP_DIR.sub("DIR/", str(x)) for x in (ref, ours))
        if key in ALLOWLIST or allow:
            why, want = allow or ALLOWLIST[key]
            if ref == ours:
                verdict = "FAIL: the allowlisted difference (%s) did not occur" % why
            elif want is not None and (ref, ours) != want:
                verdict = "FAIL: want exactly %r, got %r (%s)" % (want, (ref, ours), why)
            elif why.startswith("BUG"):
                verdict = "differs, not in the guide (%s)" % why
            else:
                verdict = "differs on purpose (%s)" % why
        elif ref == ours or not assert_same:
            verdict = "same" if ref == ours else "recorded (not compared)"
        else:
            verdict = "FAIL: differs"
        DifferentialHostTest.rows.append((area, case, ref, ours, verdict))
        if verdict.startswith("FAIL"):
            self.failures.append("%s / %s: reference %r, ours %r: %s"
                                 % (area, case, ref, ours, verdict))

    def check(self, areas):
        """Every ALLOWLIST entry of these areas was seen; no failure recorded."""
        unseen = [k for k in ALLOWLIST if k[0] in areas and k not in self.seen]
        self.assertEqual(unseen, [], "allowlisted cases the test did not reach")
        self.assertEqual(self.failures, [], "differences not in the allowlist:\n" +
                         "\n".join(self.failures))

    def start(self, side, args, ns, name, extra_ours=(), extra_ref=()):
        """One binary in its namespace; ours gets -statedir= (no handover, no snapshot)."""
        if side == "ours":
            return self.start_node_cache(ns, list(args) + ["-statedir="] + list(extra_ours),
                                         self.tmp, ENV, name=name + "-ours")
        return self.start_reference(ns, list(args) + list(extra_ref), self.tmp, ENV,
                                    name=name + "-ref")

    def write(self, path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    # ------------------------------------------------------------------------------------------

    def test_corefile_templating(self):
        cm = os.path.join(self.tmp, "kube-dns")
        self.write(os.path.join(cm, "stubDomains"), json.dumps(STUB_DOMAINS))
        self.write(os.path.join(cm, "upstreamNameservers"), json.dumps(UPSTREAM_NAMESERVERS))
        rendered, procs = {}, {}
        for side in SIDES:
            ns = self.start_ns(addresses=LOCALS, veth=False)
            base = os.path.join(self.tmp, side, "base", "Corefile.base")  # a directory of its own
            self.write(base, UPSTREAM_TEMPLATE)
            conf = os.path.join(self.tmp, side, "Corefile")
            args = ["-localip", ",".join(LOCALS), "-conf", conf, "-basecorefile", base,
                    "-kubednscm", cm, "-upstreamsvc", "kube-dns-upstream",
                    "-setupinterface=false", "-setupiptables=false",
                    "-metrics-listen-address", "127.0.0.1:9353"]
            procs[side] = self.start(side, args, ns, "tmpl")

            def with_stubs(conf=conf):  # the reference renders once without the ConfigMap first
                with open(conf) as f:
                    text = f.read()
                return text if all(d in text for d in STUB_DOMAINS) else None
            rendered[side] = h.wait_until(with_stubs, 15, "%s's Corefile with the stub domains"
                                          % side)
        ref, ours = corefile_blocks(rendered["reference"]), corefile_blocks(rendered["ours"])
        ref_keys, our_keys = [k for k, _ in ref], [k for k, _ in ours]
        stubs = ["%s:53" % d for d in STUB_DOMAINS]
        self.assertEqual([k for k in our_keys if k in stubs], sorted(stubs),
                         "ours writes the stub-domain blocks in sorted order")
        case = "block order"
        if ref_keys == our_keys:  # Go map order happened to be sorted (1 run in 3 or so)
            self.seen.add(("Corefile", case))
            case += " (the reference's map order happened to be sorted)"
        self.row("Corefile", case, ", ".join(ref_keys), ", ".join(our_keys))
        self.assertEqual(sorted(ref_keys), sorted(our_keys), "the same blocks")
        self.compare_blocks("Corefile", ref, ours)
        # The line that says what was rendered (the reference's last: its first render has no
        # ConfigMap yet).
        last = {side: [ln for ln in (TIMESTAMP.sub("", x) for x in procs[side].output()
                                     .splitlines()) if "Updated Corefile with" in ln]
                for side in SIDES}
        self.row("Corefile", "log: the last `Updated Corefile with` line",
                 (last["reference"] or ["absent"])[-1], (last["ours"] or ["absent"])[-1])
        # The reference's CoreDNS refuses the health line it rendered itself and exits; ours
        # serves (its listeners need the addresses on lo, which the namespace has).
        h.wait_until(lambda: not procs["reference"].alive() or
                     "Error during parsing" in procs["reference"].output(), 15,
                     "the reference's verdict on its own Corefile")
        ref_verdict = log_line(procs["reference"].output(), r"Error during parsing") or \
            "serves"
        ours_verdict = "serves" if procs["ours"].alive() else "exited"
        self.row("Corefile", "the reference's CoreDNS on its own rendering", ref_verdict,
                 ours_verdict)
        self.check({"Corefile"})

    def compare_blocks(self, area, ref, ours):
        """A row per server block (by key, the reference's blocks first in its order): its
        lines, or only the lines that differ."""
        ref_d, our_d = dict(ref), dict(ours)
        for key in [k for k, _ in ref] + [k for k, _ in ours if k not in ref_d]:
            a, b = ref_d.get(key, ["(no such block)"]), our_d.get(key, ["(no such block)"])
            only_ref = [x for x in a if x not in b]
            only_ours = [x for x in b if x not in a]
            self.row(area, "block `%s`" % key,
                     "; ".join(only_ref) if (only_ref or only_ours) else "; ".join(a),
                     "; ".join(only_ours) if (only_ref or only_ours) else "; ".join(b))

    # ------------------------------------------------------------------------------------------

    def host_pair(self, name, extra=(), v6=False):
        """Both binaries, each in its own namespace with a veth `nodelocaldns`, with
        -setupinterface -setupiptables (iptables mode) on HOST_TEMPLATE (v6: HOST_TEMPLATE_V6,
        -localip fd00::10, ip6tables); returns {side: (ns, proc, conf)} once both have their 12
        rules per local IP. The reference's -syncinterval is a Go duration multiplied by a
        second (1ns is 1 s); ours takes 1s."""
        pair = {}
        local_ips = [s.LOCAL_V6] if v6 else LOCALS
        for side in SIDES:
            ns = self.start_ns(veth=True, resolv_conf="nameserver %s\n" % s.UPSTREAM_SVC_IP)
            if v6:
                # A dummy link is NOARP, so the kernel runs no DAD on its addresses; a veth does,
                # and the reference (which adds them without `nodad`) could not bind a tentative
                # address. Turning DAD off on the veth makes it behave like the dummy.
                # An address added before IPv6 is ready on the veth (carrier comes on
                # asynchronously, through the kernel's link watch) stays tentative until then:
                # wait for the link-local address, which the kernel adds at that moment.
                ns.run(["sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % s.LINK], check=True)

                def ipv6_ready(ns=ns):
                    out = ns.ip("-6", "addr", "show", "dev", s.LINK)
                    return "fe80:" in out and "tentative" not in out
                h.wait_until(ipv6_ready, 5, "IPv6 ready on the veth")
            base = os.path.join(self.tmp, side + name, "base", "Corefile.base")
            self.write(base, HOST_TEMPLATE_V6 if v6 else HOST_TEMPLATE)
            conf = os.path.join(self.tmp, side + name, "Corefile")
            args = ["-localip", ",".join(local_ips), "-conf", conf, "-basecorefile", base,
                    "-upstreamsvc", "kube-dns-upstream", "-setupinterface", "-setupiptables",
                    "-pidfile", os.path.join(self.tmp, side + name, "pid"),
                    "-metrics-listen-address", "127.0.0.1:9353"] + list(extra)
            proc = self.start(side, args, ns, name, extra_ours=["-syncinterval", "1s"],
                              extra_ref=["-syncinterval", "1ns"])
            pair[side] = (ns, proc, conf)
        for side, (ns, proc, _) in pair.items():
            def ready(ns=ns, proc=proc):
                if not proc.alive():
                    raise AssertionError("exited\n" + proc.context())
                rules = [ln for ln in iptables_lines(ns.iptables_save(v6))
                         if ln.startswith("-A")]
                return len(rules) == 12 * len(local_ips)
            try:
                h.wait_until(ready, 15, "%s: the rules" % side, interval=0.2)
            except AssertionError as e:
                raise AssertionError("%s\n%s" % (e, proc.context()))
        return pair

    def compare_setup(self, pair, v6=False):
        texts = {}
        for side, (_, _, conf) in pair.items():
            with open(conf) as f:
                texts[side] = corefile_blocks(f.read())
        self.compare_blocks("Corefile (host template%s, no ConfigMap)" % (", v6" if v6 else ""),
                            texts["reference"], texts["ours"])
        area = "ip6tables-save" if v6 else "iptables-save"
        saves = {side: iptables_lines(ns.iptables_save(v6)) for side, (ns, _, _) in pair.items()}
        for i in range(max(len(v) for v in saves.values())):
            ref = saves["reference"][i] if i < len(saves["reference"]) else "-"
            ours = saves["ours"][i] if i < len(saves["ours"]) else "-"
            # 1.22.18 writes no comment; ours the two of later releases (spec 3.2): the only
            # difference allowed on a rule is that comment, the right one for its target.
            comment = COMMENTS.get(ours.rsplit(" -j ", 1)[-1])
            allow = None
            if comment and ' -m comment --comment "%s"' % comment in ours:
                allow = (ROW_COMMENTS, ("`%s`" % ours.replace(
                    ' -m comment --comment "%s"' % comment, ""), "`%s`" % ours))
            self.row(area, "line %d" % (i + 1), "`%s`" % ref, "`%s`" % ours, allow=allow)
        links = {side: link_view(ns) for side, (ns, _, _) in pair.items()}
        self.row("interface", "`ip -d link show nodelocaldns` + addresses%s"
                 % (" (-localip fd00::10)" if v6 else ""), links["reference"], links["ours"])

    def serves_port(self, ns, port):
        r = ns.run(["kdig", "+time=1", "+retry=0", "-p", str(port), "@" + s.LOCAL_V4,
                    "x.added.test", "A"], timeout=5)
        return "->>HEADER<<-" in r.stdout

    def test_setup_reload_teardown(self):
        pair = self.host_pair("host")
        self.compare_setup(pair)
        # Reload: a block on a new port, served within the reload period (2 s, plus CoreDNS's
        # jitter of up to half of it).
        for side, (ns, _, conf) in pair.items():
            self.assertFalse(self.serves_port(ns, RELOAD_PORT), side + ": port free before")
            with open(conf, "a") as f:
                f.write(ADDED_BLOCK)
        for side, (ns, proc, _) in pair.items():
            h.wait_until(lambda: self.serves_port(ns, RELOAD_PORT), 10,
                         "%s serves the added block" % side, interval=0.2)
        self.row("reload", "added block served within `reload 2s`", "yes", "yes")
        # A Corefile that does not parse: both log it and keep serving the last good one.
        for side, (ns, _, conf) in pair.items():
            with open(conf, "a") as f:
                f.write(BROKEN_BLOCK)
        for side, (ns, proc, _) in pair.items():
            h.wait_until(lambda: "nosuchplugin" in proc.output(), 10,
                         "%s logs the parse error" % side, interval=0.2)
        kept = {side: "still served" if self.serves_port(ns, RELOAD_PORT) and proc.alive()
                else "lost" for side, (ns, proc, _) in pair.items()}
        self.row("reload", "unparsable Corefile: last good one kept", kept["reference"],
                 kept["ours"])
        self.assertEqual(kept["ours"], "still served")
        # SIGTERM teardown.
        for side, (ns, proc, _) in pair.items():
            self.assertEqual(proc.stop(), 0, proc.context())
        left = {side: ("%d rules" % len([ln for ln in iptables_lines(ns.iptables_save())
                                          if ln.startswith("-A")]))
                for side, (ns, _, _) in pair.items()}
        self.row("teardown", "SIGTERM: rules left", left["reference"], left["ours"])
        self.assertEqual(left["ours"], "0 rules")
        links = {}
        for side, (ns, _, _) in pair.items():
            view = link_view(ns)
            links[side] = "link deleted" if view == "absent" else \
                "link kept, addresses removed" if view.endswith("no address") else view
        self.row("teardown", "SIGTERM: link", links["reference"], links["ours"])
        self.compare_logs({side: proc.output() for side, (_, proc, _) in pair.items()})
        self.check({"iptables-save", "interface", "reload", "teardown", "logs"})

    def compare_logs(self, outputs):
        for case, pattern, promised in LOG_LINES:
            got = {side: log_line(outputs[side], pattern) for side in SIDES}
            cell = {side: "`%s`" % got[side] if got[side] else "absent" for side in SIDES}
            self.row("logs", case, cell["reference"], cell["ours"])
            if promised:
                self.assertIsNotNone(got["ours"], "ours logs no line like %r\n%s"
                                     % (pattern, outputs["ours"][-4000:]))

    def test_setup_teardown_ipv6(self):
        """-localip fd00::10 (the reference takes one family per process): ip6tables-save and
        the link, then SIGTERM removes rules and the address on both."""
        pair = self.host_pair("v6", v6=True)
        self.compare_setup(pair, v6=True)
        for side, (ns, proc, _) in pair.items():
            self.assertEqual(proc.stop(), 0, proc.context())
        left = {}
        for side, (ns, _, _) in pair.items():
            rules = [ln for ln in iptables_lines(ns.iptables_save(True)) if ln.startswith("-A")]
            left[side] = "%d rules; %s" % (len(rules), "fd00::10 left"
                                           if s.LOCAL_V6 in ns.addresses(s.LINK) else
                                           "fd00::10 removed")
        self.row("teardown", "SIGTERM (-localip fd00::10): rules and address", left["reference"],
                 left["ours"])
        self.assertEqual(left["ours"], "0 rules; fd00::10 removed")
        self.check(set())

    def test_skipteardown(self):
        pair = self.host_pair("skip", extra=["-skipteardown"])
        for side, (ns, proc, _) in pair.items():
            self.assertEqual(proc.stop(), 0, proc.context())
        state = {}
        for side, (ns, _, _) in pair.items():
            rules = [ln for ln in iptables_lines(ns.iptables_save()) if ln.startswith("-A")]
            state[side] = "%d rules; %s" % (len(rules), link_view(ns))
        self.row("teardown", "-skipteardown, SIGTERM: rules and link left", state["reference"],
                 state["ours"])
        self.assertTrue(state["ours"].startswith("24 rules"), state["ours"])
        self.check(set())

    def test_no_link_dummy_refused(self):
        """No `nodelocaldns` link and a kernel without dummy links (this test bed): both must
        report the failed create and exit non-zero (nothing can bind the local IPs), leaving no
        rule behind. Messages are recorded, not compared."""
        got = {}
        for side in SIDES:
            ns = self.start_ns(veth=False)
            base = os.path.join(self.tmp, side + "nolink", "base", "Corefile.base")
            self.write(base, HOST_TEMPLATE)
            args = ["-localip", ",".join(LOCALS), "-conf",
                    os.path.join(self.tmp, side + "nolink", "Corefile"), "-basecorefile", base,
                    "-upstreamsvc", "kube-dns-upstream", "-setupinterface", "-setupiptables",
                    "-metrics-listen-address", "127.0.0.1:9353"]
            proc = self.start(side, args, ns, "nolink", extra_ours=["-syncinterval", "1s"],
                              extra_ref=["-syncinterval", "1ns"])
            rc = proc.wait_exit(15)
            rules = [ln for ln in iptables_lines(ns.iptables_save()) if ln.startswith("-A")]
            line = log_line(proc.output(), r"(?i)interface.*(not supported|dummy)") or "-"
            got[side] = ("exit %s, %d rules" % (rc, len(rules)), "`%s`" % line)
        self.row("interface", "no link, kernel without dummy links: exit, rules left",
                 got["reference"][0], got["ours"][0])
        self.row("interface", "no link, kernel without dummy links: the error line",
                 got["reference"][1], got["ours"][1], assert_same=False)
        for side, (state, line) in got.items():
            self.assertRegex(state, r"^exit [1-9]\d*, 0 rules$", side)
            self.assertRegex(line, r"(?i)not supported|dummy", side)
        self.check(set())

    def test_guide_has_every_row(self):
        first_cells = s.h.guide_table_rows()
        named = {v for k, v in globals().items() if k.startswith("ROW_")}
        used = {row for row, _ in ALLOWLIST.values()} | {ROW_COMMENTS}  # (compare_setup)
        self.assertEqual(sorted(named - used), [], "ROW_ constants unused")
        self.assertEqual(sorted(r for r in named if r not in first_cells), [],
                         "rows named by the allowlist but not in the guide")



if __name__ == "__main__":
    s.run_tests()
