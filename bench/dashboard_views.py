#!/usr/bin/python3
"""The Grafana dashboard's main panels computed from a file of /metrics scrapes.

Input: the raw file bench/dashboard_views.sh writes (each scrape preceded by
"# scrape <unix time>"), its events file (phase boundaries) and facts file (commit, machine).
Output: one TSV of series per panel, a summary TSV per phase, and two PNGs drawn by gnuplot.

The panels' PromQL (deploy/monitoring/nodelocaldns-dashboard.json) is approximated the way
Prometheus evaluates it, per scrape t:
  rate(x[4s])           (x(t) - x(t')) / (t - t') per series, t' the oldest scrape within 4 s
                        (Grafana's $__rate_interval for a 1 s scrape interval); a counter that
                        went down restarted from 0. No extrapolation to the window's edges.
  sum by (l) (...)      summed over the series with the same values of l
  histogram_quantile    Prometheus's linear interpolation inside the bucket that holds the
                        rank; a rank in the +Inf bucket gives the highest finite bound.
A counter series that first appears inside a window counts from 0 there (see increase()).
The per-phase summary uses the increase over the whole phase instead of a 4 s rate.
"""

import argparse
import collections
import math
import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

RATE_WINDOW = 4.0


def parse_scrapes(path):
    """[(unix_time, {(sample_name, frozenset(labels.items())): value})], failed scrapes skipped."""
    scrapes = []
    t, lines = None, []

    def flush():
        if t is None:
            return
        body = "".join(line for line in lines if not line.startswith("# scrape failed"))
        if not body.strip():
            return
        samples = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        scrapes.append((t, samples))

    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# scrape ") and not line.startswith("# scrape failed"):
                flush()
                t, lines = float(line.split()[2]), []
            else:
                lines.append(line)
    flush()
    if len(scrapes) < 2:
        sys.exit(f"dashboard_views: fewer than 2 scrapes in {path}")
    return scrapes


def select(samples, name, where=None):
    for (n, labels), v in samples.items():
        if n == name:
            d = dict(labels)
            if where is None or where(d):
                yield d, v


def increase(old, new):
    """Counter increase between two samples dicts, per series (a drop is a restart from 0).

    A series absent from the older scrape counts from 0: node-cache creates a label set (an
    rcode, an upstream) on its first event, and all scrapes come from one process. Prometheus
    would skip such a series until it has two samples in the window."""
    out = {}
    for key, v in new.items():
        o = old.get(key, 0.0)
        out[key] = v - o if v >= o else v
    return out


def sum_by(items, by):
    acc = collections.defaultdict(float)
    for labels, v in items:
        acc[tuple(labels.get(b, "") for b in by)] += v
    return acc


class Series:
    def __init__(self, scrapes):
        self.scrapes = scrapes
        self.t0 = scrapes[0][0]

    def windows(self):
        """(t, old samples, new samples, seconds) for each scrape with one ≥ 1 s older within 4 s."""
        j = 0
        for i, (t, new) in enumerate(self.scrapes):
            while t - self.scrapes[j][0] > RATE_WINDOW + 0.2:
                j += 1
            if j < i and t - self.scrapes[j][0] >= 1.0:
                yield t, self.scrapes[j][1], new, t - self.scrapes[j][0]

    def rate_by(self, name, by, where=None):
        """[(t, {group: per-second rate})] of sum by (by) (rate(name[4s]))."""
        out = []
        for t, old, new, dt in self.windows():
            inc = increase(old, new)
            items = ((dict(k[1]), v / dt) for k, v in inc.items() if k[0] == name
                     and (where is None or where(dict(k[1]))))
            out.append((t, sum_by(items, by)))
        return out

    def gauge_by(self, name, by):
        return [(t, sum_by(select(s, name), by)) for t, s in self.scrapes]


def histogram_quantile(q, buckets):
    """Prometheus's histogram_quantile over {le string: cumulative count}; None when empty."""
    bs = sorted(((math.inf if le == "+Inf" else float(le)), c) for le, c in buckets.items())
    if not bs or bs[-1][0] != math.inf or bs[-1][1] <= 0:
        return None
    # Counts are cumulative; a lower count in a higher bucket (non-monotonic after rate) is
    # clamped as Prometheus does.
    for i in range(1, len(bs)):
        if bs[i][1] < bs[i - 1][1]:
            bs[i] = (bs[i][0], bs[i - 1][1])
    rank = q * bs[-1][1]
    for i, (le, c) in enumerate(bs):
        if c >= rank:
            if le == math.inf:
                return bs[-2][0] if len(bs) > 1 else None
            lo, clo = (0.0, 0.0) if i == 0 else bs[i - 1]
            if i == 0 and le <= 0:
                return le
            return lo + (le - lo) * (rank - clo) / (c - clo) if c > clo else le
    return None


def write_tsv(path, t0, rows, columns):
    with open(path, "w", encoding="utf-8") as f:
        f.write("t_s\t" + "\t".join(columns) + "\n")
        for t, values in rows:
            f.write(f"{t - t0:.1f}\t" + "\t".join(
                "nan" if values.get(c) is None else f"{values[c]:.6g}" for c in columns) + "\n")


def label(group):
    return " ".join(". (root)" if g == "." else g if g else "-" for g in group)


def flatten(rows):
    """rows of {tuple group: v} -> (rows of {label: v}, sorted labels)."""
    out, cols = [], set()
    for t, d in rows:
        m = {label(k): v for k, v in d.items()}
        cols.update(m)
        out.append((t, m))
    return out, sorted(cols)


def read_events(path):
    ev = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            name, t = line.rstrip("\n").split("\t")
            ev[name] = float(t)
    return ev


def nearest(scrapes, t):
    return min(scrapes, key=lambda s: abs(s[0] - t))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--series-dir", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--img-dir", required=True)
    a = ap.parse_args()

    scrapes = parse_scrapes(a.raw)
    s = Series(scrapes)
    t0 = s.t0
    ev = read_events(a.events)
    sd = a.series_dir
    panels = {}

    # 2 Queries per zone
    rows, cols = flatten(s.rate_by("coredns_dns_requests_total", ["zone"]))
    panels["qps"] = ("Queries per zone (q/s)", cols)
    write_tsv(f"{sd}/panel-qps.tsv", t0, rows, cols)
    # 3 Answers by rcode
    rows, cols = flatten(s.rate_by("coredns_dns_responses_total", ["rcode"]))
    panels["rcode"] = ("Answers by rcode (answers/s)", cols)
    write_tsv(f"{sd}/panel-rcode.tsv", t0, rows, cols)
    # 4 Cache hit ratio: sum by (zones) (rate(hits)) / sum by (zones) (rate(requests))
    hits = s.rate_by("coredns_cache_hits_total", ["zones"])
    reqs = s.rate_by("coredns_cache_requests_total", ["zones"])
    rows = [(t, {z: h.get(z, 0.0) / r[z] for z in r if r[z] > 0}) for (t, h), (_, r) in zip(hits, reqs)]
    rows, cols = flatten(rows)
    panels["hit"] = ("Cache hit ratio", cols)
    write_tsv(f"{sd}/panel-hit.tsv", t0, rows, cols)
    # 5 Cache entries by type
    rows, cols = flatten(s.gauge_by("coredns_cache_entries", ["type"]))
    panels["entries"] = ("Cache entries", cols)
    write_tsv(f"{sd}/panel-entries.tsv", t0, rows, cols)
    # 7 Answer latency quantiles
    lat = s.rate_by("coredns_dns_request_duration_seconds_bucket", ["le"])
    rows = [(t, {"p50": histogram_quantile(0.5, {k[0]: v for k, v in b.items()}),
                 "p99": histogram_quantile(0.99, {k[0]: v for k, v in b.items()})}) for t, b in lat]
    rows = [(t, {k: (v * 1000 if v is not None else None) for k, v in d.items()}) for t, d in rows]
    panels["lat"] = ("Answer latency quantiles (ms)", ["p50", "p99"])
    write_tsv(f"{sd}/panel-lat.tsv", t0, rows, ["p50", "p99"])
    # 10 Upstream health-check failures
    rows, cols = flatten(s.rate_by("coredns_proxy_healthcheck_failures_total", ["to"]))
    panels["hc"] = ("Upstream health-check failures (/s)", cols)
    write_tsv(f"{sd}/panel-hc.tsv", t0, rows, cols)
    # 11 Upstream latency p99 by to
    up = s.rate_by("coredns_proxy_request_duration_seconds_bucket", ["to", "le"])
    rows = []
    for t, b in up:
        per_to = collections.defaultdict(dict)
        for (to, le), v in b.items():
            per_to[to][le] = v
        q = {to: histogram_quantile(0.99, bk) for to, bk in per_to.items()}
        rows.append((t, {(to,): (v * 1000 if v is not None else None) for to, v in q.items()}))
    rows, cols = flatten(rows)
    panels["uplat"] = ("Upstream latency p99 (ms)", cols)
    write_tsv(f"{sd}/panel-uplat.tsv", t0, rows, cols)
    # 12 Upstream answers by rcode + refused (max_concurrent) + all upstreams broken
    rc = s.rate_by("coredns_proxy_request_duration_seconds_count", ["to", "rcode"])
    rej = s.rate_by("coredns_forward_max_concurrent_rejects_total", [])
    brk = s.rate_by("coredns_forward_healthcheck_broken_total", [])
    rows = []
    for (t, d), (_, r), (_, b) in zip(rc, rej, brk):
        m = {label(k): v for k, v in d.items()}
        m["refused: max_concurrent"] = sum(r.values())
        m["all upstreams broken"] = sum(b.values())
        rows.append((t, m))
    cols = sorted({c for _, m in rows for c in m})
    panels["uprc"] = ("Upstream answers by rcode (/s)", cols)
    write_tsv(f"{sd}/panel-uprc.tsv", t0, rows, cols)

    phases = [p[:-6] for p in ev if p.endswith("_start")]
    write_summary(a.summary, a.facts, scrapes, ev, phases)
    plot(a.img_dir, sd, panels, ev, t0, phases)


def phase_increase(scrapes, ev, phase):
    a, b = nearest(scrapes, ev[phase + "_start"]), nearest(scrapes, ev[phase + "_end"])
    return increase(a[1], b[1]), b[0] - a[0], b[1]


def write_summary(path, facts_path, scrapes, ev, phases):
    with open(path, "w", encoding="utf-8") as out:
        with open(facts_path, encoding="utf-8") as f:
            next(f)
            for line in f:
                out.write("# " + line.replace("\t", ": ", 1))
        out.write("phase\tmetric\tvalue\n")
        for p in phases:
            inc, dt, end = phase_increase(scrapes, ev, p)

            def by(name, labels):
                return sum_by(((dict(k[1]), v) for k, v in inc.items() if k[0] == name), labels)

            def put(metric, value):
                out.write(f"{p}\t{metric}\t{value}\n")

            put("seconds", f"{dt:.1f}")
            for (zone,), v in sorted(by("coredns_dns_requests_total", ["zone"]).items()):
                put(f"queries_per_s{{zone={zone}}}", f"{v / dt:.0f}")
            resp = by("coredns_dns_responses_total", ["rcode"])
            total = sum(resp.values())
            for (rcode,), v in sorted(resp.items()):
                put(f"answers_share{{rcode={rcode}}}", f"{v / total:.4f}" if total else "nan")
            hits = by("coredns_cache_hits_total", ["zones"])
            reqs = by("coredns_cache_requests_total", ["zones"])
            for z, r in sorted(reqs.items()):
                put(f"cache_hit_ratio{{zones={z[0]}}}", f"{hits.get(z, 0.0) / r:.4f}" if r else "nan")
            b = {k[0]: v for k, v in by("coredns_dns_request_duration_seconds_bucket", ["le"]).items()}
            for q in (0.5, 0.9, 0.99):
                v = histogram_quantile(q, b)
                put(f"answer_latency_ms{{quantile={q}}}", f"{v * 1000:.3f}" if v is not None else "nan")
            for (to,), v in sorted(by("coredns_proxy_healthcheck_failures_total", ["to"]).items()):
                put(f"upstream_healthcheck_failures{{to={to}}}", f"{v:.0f}")
            for (to, rcode), v in sorted(by("coredns_proxy_request_duration_seconds_count", ["to", "rcode"]).items()):
                put(f"upstream_answers{{to={to},rcode={rcode}}}", f"{v:.0f}")
            for name in ("coredns_forward_max_concurrent_rejects_total", "coredns_forward_healthcheck_broken_total"):
                put(name, f"{sum(by(name, []).values()):.0f}")
            rss = [v for _, v in select(end, "process_resident_memory_bytes")]
            if rss:
                put("rss_mib_at_end", f"{rss[0] / 2**20:.1f}")


def plot(img_dir, sd, panels, ev, t0, phases):
    os.makedirs(img_dir, exist_ok=True)
    marks = []
    for p in phases:
        x = ev[p + "_start"] - t0
        marks.append(f"set arrow from {x:.1f}, graph 0 to {x:.1f}, graph 1 nohead dt 2 lc rgb '#888888'")
        marks.append(f"set label '{p}' at {x + 0.5:.1f}, graph 0.96 left font ',8' tc rgb '#555555'")
    if "dead_start" in ev and "dead_end" in ev:
        marks.append(f"set object 1 rect from {ev['dead_start'] - t0:.1f}, graph 0 to "
                     f"{ev['dead_end'] - t0:.1f}, graph 1 fc rgb '#f4dede' fs solid 0.5 noborder behind")
    figures = {
        "dashboard-traffic.png": ["qps", "rcode", "hit", "entries"],
        "dashboard-latency-upstreams.png": ["lat", "uplat", "hc", "uprc"],
    }
    for png, keys in figures.items():
        g = [f"set terminal pngcairo size 1400,900 font ',10'",
             f"set output '{img_dir}/{png}'",
             "set termoption noenhanced", "set datafile separator '\\t'",
             "set key top right font ',8' opaque", "set grid", "set xlabel 'seconds into the run'",
             "set multiplot layout 2,2"]
        for k in keys:
            title, cols = panels[k]
            g.append("unset logscale y")
            g.append("set yrange [0:1.05]" if k == "hit" else "set yrange [0:*]")
            if k in ("lat", "uplat"):
                g.append("set logscale y")
                g.append("set yrange [*:*]")
            g += marks
            g.append(f"set title '{title}'")
            if not cols:
                g.append("set label 99 'no series in the scrape' at graph 0.4, graph 0.5")
                g.append("plot 1/0 notitle")
                g.append("unset label 99")
                continue
            plots = [f"'{sd}/panel-{k}.tsv' using 1:{i + 2} with lines lw 1.5 title '{c}'"
                     for i, c in enumerate(cols)]
            g.append("plot " + ", ".join(plots))
            g.append("unset arrow")
            g.append("unset label")
            g.append("unset object 1")
        g.append("unset multiplot")
        subprocess.run(["gnuplot"], input="\n".join(g) + "\n", text=True, check=True)
        print(f"wrote {img_dir}/{png}")


if __name__ == "__main__":
    main()
