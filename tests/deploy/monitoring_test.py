#!/usr/bin/python3
"""deploy/monitoring: `promtool check rules` and `promtool test rules` on the alerting rules; the
Grafana dashboard's structure; and every metric name that the dashboard's queries and the rules'
expressions use exists in a real scrape: node-cache (this build) on loopback with knot as its
upstream and a dead upstream for the error paths, both of its metrics listeners (the Corefile's
`prometheus` and -metrics-listen-address), and ovn-localdns-controller `run` (its metrics are
served while it retries an unreachable NB). Bounded: each process is stopped at the end."""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402  (tests/integration: node-cache, knot, scrape helpers)
import yaml  # noqa: E402

SRC = os.environ.get("NLD_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("NLD_BUILD_DIR") or os.path.join(SRC, "build")
MON = os.path.join(SRC, "deploy", "monitoring")
RULES = os.path.join(MON, "nodelocaldns-rules.yaml")
DASHBOARD = os.path.join(MON, "nodelocaldns-dashboard.json")
CONTROLLER = os.path.join(BUILD, "src", "cmd", "ovn-localdns-controller", "ovn-localdns-controller")
# Series Prometheus makes itself for every target, not exported by any process.
SYNTHETIC = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "le", "inf", "nan"}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def metric_names_in(expr):
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (in {...} or by/without/on(...)), strings, durations or Grafana variables."""
    e = re.sub(r"label_values\(([^,]+),\s*\w+\)", r"\1", expr)  # Grafana: (metric, label)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)
    e = re.sub(r"\{[^}]*\}", "{}", e)
    e = re.sub(r"\[[^\]]*\]", "[]", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        after = e[m.end():].lstrip()
        if after.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def promtool(*args):
    try:
        r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=MON)
    except FileNotFoundError:
        sys.exit("FAIL: promtool not found (scripts/setup.sh installs Debian's prometheus)")
    return r.returncode, r.stdout + r.stderr


# --- rules: promtool ------------------------------------------------------------------------------
rc, out = promtool("check", "rules", RULES)
check(rc == 0, "promtool check rules: " + out)
rc, out = promtool("test", "rules", os.path.join(MON, "nodelocaldns-rules.test.yaml"))
check(rc == 0, "promtool test rules: " + out)
with open(RULES) as f:
    rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
# Every alert is exercised by the unit tests.
with open(os.path.join(MON, "nodelocaldns-rules.test.yaml")) as f:
    tested = {t["alertname"] for case in yaml.safe_load(f)["tests"] for t in case.get("alert_rule_test", [])}
check({r["alert"] for r in rules} == tested,
      "alerts without a promtool unit test: %s" % sorted({r["alert"] for r in rules} - tested))

# --- dashboard: structure -------------------------------------------------------------------------
with open(DASHBOARD) as f:
    dash = json.load(f)
check(dash.get("uid") and dash.get("title") and isinstance(dash.get("schemaVersion"), int),
      "dashboard: uid/title/schemaVersion")
variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
check({"datasource", "instance"} <= variables, "dashboard variables %s" % variables)
panels = dash.get("panels", [])
ids = [p.get("id") for p in panels]
check(len(ids) == len(set(ids)) and None not in ids, "dashboard: panel ids %s" % ids)
queries = []
for p in panels:
    check(p.get("type") in {"row", "timeseries", "stat", "heatmap", "table", "gauge"},
          "panel %s: type %s" % (p.get("title"), p.get("type")))
    g = p.get("gridPos", {})
    check(all(isinstance(g.get(k), int) for k in "xywh") and g["x"] + g["w"] <= 24,
          "panel %s: gridPos %s" % (p.get("title"), g))
    if p.get("type") == "row":
        continue
    targets = p.get("targets", [])
    check(targets and len({t["refId"] for t in targets}) == len(targets),
          "panel %s: targets/refIds" % p.get("title"))
    for t in targets:
        queries.append((p["title"], t["expr"]))
        for var in re.findall(r"\$\{?(\w+)\}?", t["expr"]):
            check(var in variables or var.startswith("__"), "panel %s: undefined variable $%s" % (p["title"], var))
# The views the issue asks for.
titles = " | ".join(p.get("title", "") for p in panels).lower()
for want in ("queries per zone", "hit ratio", "latency histogram", "upstream", "memory", "cache up"):
    check(want in titles, "dashboard has no %r panel" % want)
for v in dash["templating"]["list"]:
    if v.get("type") == "query":
        queries.append(("variable " + v["name"], v["definition"]))

# --- a real scrape --------------------------------------------------------------------------------
knot = h.Knot()
dport, pport, hport = h.free_port(), h.free_port(), h.free_port()
dead = h.free_port()  # nothing listens there: health checks fail, queries SERVFAIL
corefile = f"""cluster.local:{dport} {{
    errors
    cache {{
            success 9984 30
            denial 9984 5
    }}
    reload
    loop
    bind 127.0.0.1
    forward . {knot.host}:{knot.port} {{
            force_tcp
    }}
    prometheus 127.0.0.1:{pport}
    health 127.0.0.1:{hport}
    }}
.:{dport} {{
    errors
    cache 30
    reload
    loop
    bind 127.0.0.1
    forward . 127.0.0.1:{dead}
    prometheus 127.0.0.1:{pport}
    }}
"""
names = set()
nc = None
ctl = None
ctl_log = None
try:
    nc = h.NodeCache(corefile, ("127.0.0.1", dport, "kubernetes.default.svc.cluster.local"))
    for _ in range(3):
        h.ask("kubernetes.default.svc.cluster.local", "A", "127.0.0.1", dport)
        h.ask("missing.cluster.local", "A", "127.0.0.1", dport)
        try:
            h.ask("example.org", "A", "127.0.0.1", dport, timeout=3)
        except Exception:  # the dead upstream: SERVFAIL or no answer, either is fine here
            pass
    for url in ("http://127.0.0.1:%d/metrics" % pport, "http://%s/metrics" % nc.metrics_addr):
        status, text = h.http_get(url)
        check(status == 200, "%s: HTTP %s" % (url, status))
        names |= h.metric_names(h.parse_metrics(text))
    # ovn-localdns-controller serves its metrics while it retries an NB that is not there.
    if not os.access(CONTROLLER, os.X_OK):
        sys.exit("FAIL: controller binary not built: %s" % CONTROLLER)
    tmp = h.make_tmpdir("nld-deploy-mon-")
    ctl_log = os.path.join(tmp, "ctl.log")
    mport = h.free_port()
    with open(ctl_log, "w") as log:
        ctl = subprocess.Popen([CONTROLLER, "run", "--ovn-nb-addr=unix:%s/absent.sock" % tmp,
                                "--metrics-addr=127.0.0.1:%d" % mport], stdout=log, stderr=subprocess.STDOUT)

    def scrape_controller():
        try:
            return h.http_get("http://127.0.0.1:%d/metrics" % mport, timeout=2)
        except OSError:
            return None

    status, text = h.wait_until(scrape_controller, 10, what="controller metrics")
    names |= h.metric_names(h.parse_metrics(text))
finally:
    if ctl is not None:
        ctl.terminate()
        try:
            ctl.wait(10)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.wait(10)
    if nc is not None:
        nc.stop()
        nc.cleanup()
    knot.close()

# Histogram series come as _bucket/_sum/_count; the scrape lists those names themselves.
print("scraped %d metric names" % len(names))
# The check below can fail: a misspelt name is found in an expression and is not in the scrape.
check(metric_names_in('sum by (zone) (rate(coredns_dns_request_total{job="x"}[5m]))') ==
      {"coredns_dns_request_total"} and "coredns_dns_request_total" not in names,
      "metric name extraction self-check")
for where, expr in queries + [("alert " + r["alert"], r["expr"]) for r in rules]:
    used = metric_names_in(expr)
    check(used, "%s: no metric name found in %r" % (where, expr))
    missing = used - names - SYNTHETIC
    check(not missing, "%s: metric(s) %s not in a real scrape" % (where, sorted(missing)))

if failures:
    sys.exit("%d check(s) failed" % len(failures))
print("OK: rules pass promtool check/test; dashboard (%d panels, %d queries) and rules use only "
      "scraped metric names" % (len(panels), len(queries)))
