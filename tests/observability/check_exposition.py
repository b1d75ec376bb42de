#!/usr/bin/python3
"""Fetches a /metrics URL and validates it with the official Prometheus Python client's parser.

Usage: check_exposition.py URL
Prints one line "<family> <type> <samples>" per family (the parser drops a counter's "_total"
suffix from the family name) and exits 0; exits 1 with a message on any problem.
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    print("check_exposition: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: check_exposition.py URL")
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = resp.read().decode("utf-8")
    except Exception as e:  # noqa: BLE001 - report any fetch problem
        fail("fetch failed: %r" % (e,))
    if not ctype.startswith("text/plain; version=0.0.4"):
        fail("unexpected content type %r" % ctype)
    if not body.endswith("\n"):
        fail("body does not end with a newline")
    try:
        families = list(text_string_to_metric_families(body))
    except Exception as e:  # noqa: BLE001 - the parser raises ValueError and friends
        fail("parse error: %r" % (e,))
    names = [f.name for f in families]
    if names != sorted(names):
        fail("families are not sorted by name")
    for fam in families:
        if fam.type == "histogram":
            check_histogram(fam)
        print("%s %s %d" % (fam.name, fam.type, len(fam.samples)))


def check_histogram(fam):
    series = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if s.name.endswith("_bucket"):
            entry["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            entry["count"] = s.value
        elif s.name.endswith("_sum"):
            entry["sum"] = s.value
    for key, e in series.items():
        bounds = [b for b, _ in e["buckets"]]
        counts = [c for _, c in e["buckets"]]
        if not bounds or bounds[-1] != float("inf"):
            fail("%s%s: no +Inf bucket" % (fam.name, key))
        if bounds != sorted(bounds) or counts != sorted(counts):
            fail("%s%s: buckets not cumulative" % (fam.name, key))
        if e["count"] != counts[-1] or e["sum"] is None:
            fail("%s%s: _count/_sum inconsistent" % (fam.name, key))


if __name__ == "__main__":
    main()
