"""Integration-test helpers shared by the harness modules: ports, DNS client, raw packets,
HTTP/Prometheus parsing. Waiting, namespaces, process bookkeeping and temporary directories come
from the test-support package tests/support/nldtest (harness.py re-exports them).

Debian's /usr/bin/python3 (dnspython 2.3), stdlib otherwise. See harness.py for the environment.
"""

import glob
import os
import re
import socket
import sys
import time
import urllib.request

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nldtest.ports import free_port  # noqa: E402,F401 - re-exported (harness, upstreams)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("NLD_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))

# ----------------------------------------------------------------------------------------------
# Generic helpers
# ----------------------------------------------------------------------------------------------

def node_cache_binary():
    """Path of the node-cache binary; raises a clear error if it is missing."""
    explicit = os.environ.get("NLD_NODE_CACHE")
    if explicit:
        candidates = [explicit]
    else:
        build = os.environ.get("NLD_BUILD_DIR")
        if build:
            candidates = [os.path.join(build, "src", "cmd", "node-cache", "node-cache")]
        else:
            candidates = sorted(glob.glob(os.path.join(SOURCE_DIR, "build*", "src", "cmd",
                                                       "node-cache", "node-cache")))
            candidates += sorted(glob.glob(os.path.join(SOURCE_DIR, "build", "*", "src", "cmd",
                                                        "node-cache", "node-cache")))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RuntimeError("node-cache binary not found (looked at: %s); build the `node-cache` "
                       "target or set NLD_NODE_CACHE" % (", ".join(candidates) or "nothing"))


def reference_node_cache():
    """Path of the real k8s-dns-node-cache ($NLD_REFERENCE_NODE_CACHE; scripts/test.sh unpacks
    ../shared/reference into build/reference), which the abuse scenarios run a second time for
    docs/reliability.md: it is measured, never judged (no assertion depends on its figures).
    None, after a visible SKIPPED line, when it is not set or not executable."""
    ref = os.environ.get("NLD_REFERENCE_NODE_CACHE")
    if ref and os.path.isfile(ref) and os.access(ref, os.X_OK):
        return ref
    print("SKIPPED the reference binary: NLD_REFERENCE_NODE_CACHE %s"
          % ("is not executable: " + ref if ref else "not set"), flush=True)
    return None


def cpu_seconds(pid):
    """utime+stime of pid in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    rest = data[data.rindex(")") + 2:].split()
    # fields after ")": state(3) ... utime is field 14, stime 15 (1-based in proc(5))
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def status_kib(pid, field):
    """A KiB field of /proc/PID/status, e.g. "VmRSS" (resident now) or "VmHWM" (peak resident)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def rss_kib(pid):
    """Resident set size (VmRSS) of pid in KiB, from /proc/PID/status."""
    return status_kib(pid, "VmRSS")


def fd_count(pid):
    """Open file descriptors of pid (entries of /proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


# ----------------------------------------------------------------------------------------------
# DNS client helpers (dnspython)
# ----------------------------------------------------------------------------------------------

def make_query(name, rdtype="A", edns=None, payload=1232, want_dnssec=False, qid=None):
    q = dns.message.make_query(name, rdtype, use_edns=edns, payload=payload,
                               want_dnssec=want_dnssec)
    if qid is not None:
        q.id = qid
    return q


def udp(q, host, port, timeout=5.0):
    return dns.query.udp(q, host, port=port, timeout=timeout, ignore_trailing=True)


def tcp(q, host, port, timeout=5.0):
    return dns.query.tcp(q, host, port=port, timeout=timeout)


def ask(name, rdtype, host, port, proto="udp", timeout=5.0, **kw):
    q = make_query(name, rdtype, **kw)
    return udp(q, host, port, timeout) if proto == "udp" else tcp(q, host, port, timeout)


def rrsets_text(sections):
    """Set of (owner lower-case, type, rdata text) over the given rrsets (TTL ignored)."""
    out = set()
    for rrset in sections:
        for rd in rrset:
            out.add((rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
                     rd.to_text()))
    return out


def min_ttl(msg, sections=("answer", "authority")):
    ttls = [rr.ttl for s in sections for rr in getattr(msg, s)]
    return min(ttls) if ttls else None


def raw_udp_exchange(packet, host, port, timeout=1.0, expect_reply=True):
    """Sends raw bytes over UDP; returns the reply bytes or None if nothing came within timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            data, _ = s.recvfrom(65535)
            return data
        except socket.timeout:
            return None
    finally:
        s.close()


def raw_tcp_exchange(payload, host, port, timeout=2.0):
    """Sends raw bytes over TCP (caller adds length prefix); returns everything read until the
    peer closes or the timeout passes (b"" if nothing)."""
    s = socket.create_connection((host, port), timeout=timeout)
    chunks = []
    try:
        s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(65535)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks)


def set_rcvbuf(sock, size=4 << 20):
    """A receive buffer of `size` bytes, beyond net.core.rmem_max as root (SO_RCVBUFFORCE), so
    a burst of a few thousand datagrams is not dropped before a python reader gets to it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUFFORCE, size)
    except (OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def udp_burst(names, host, port, rdtype="A", timeout=10.0, batch=200, pause=0.01, tick=None):
    """Sends one query per name (distinct IDs, EDNS 1232) from one UDP socket in batches of
    `batch` every `pause` s, then collects replies until each name has one or `timeout` s passed
    since the first send. Returns {name: (reply Message, seconds from its send) or None}.
    `tick()`, if given, runs about every 0.1 s while waiting (e.g. to sample /proc)."""
    if len(names) > 65536:
        raise ValueError("at most 65536 names (one ID each)")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    set_rcvbuf(s)
    s.settimeout(0.1)
    pending = {}  # id -> (name, sent at)
    out = {n: None for n in names}
    try:
        t0 = time.monotonic()
        for i, name in enumerate(names):
            q = make_query(name, rdtype, edns=0, qid=i)
            s.sendto(q.to_wire(), (host, port))
            pending[i] = (name, time.monotonic())
            if (i + 1) % batch == 0:
                time.sleep(pause)
        last_tick = 0.0
        while pending and time.monotonic() - t0 < timeout:
            if tick is not None and time.monotonic() - last_tick >= 0.1:
                tick()
                last_tick = time.monotonic()
            try:
                wire = s.recv(65535)
            except socket.timeout:
                continue
            try:
                m = dns.message.from_wire(wire, ignore_trailing=True)
            except Exception:  # noqa: BLE001 - an unparseable reply stays unanswered
                continue
            entry = pending.get(m.id)
            if entry is None or not m.question or \
                    m.question[0].name != dns.name.from_text(entry[0]):
                continue
            del pending[m.id]
            out[entry[0]] = (m, time.monotonic() - entry[1])
    finally:
        s.close()
    return out


def recv_exact(conn, n):
    """Exactly n bytes from a stream socket, or None if the peer closed first."""
    buf = b""
    while len(buf) < n:
        b = conn.recv(n - len(buf))
        if not b:
            return None
        buf += b
    return buf


# ----------------------------------------------------------------------------------------------
# HTTP / Prometheus helpers
# ----------------------------------------------------------------------------------------------

def http_get(url, timeout=5.0):
    """(status, body text)."""
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format → list of (name, {labels}, float). Raises on malformed sample lines."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line)
        if not m:
            raise ValueError("malformed metrics line: %r" % line)
        labels = dict(_LABEL_RE.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric_sum(samples, name, **labels):
    """Sum of samples named `name` whose labels include all of `labels`."""
    total = 0.0
    for n, l, v in samples:
        if n == name and all(l.get(k) == val for k, val in labels.items()):
            total += v
    return total


def metric_names(samples):
    return {n for n, _, _ in samples}


# ---- the differential suites (test_differential.py, tests/system/test_differential_host.py)

def guide_table_rows():
    """First cells of every table row of docs/operator-guide.md (where the differential suites
    check that each allowlisted difference names a row of the "differ on purpose" table)."""
    with open(os.path.join(SOURCE_DIR, "docs", "operator-guide.md"), encoding="utf-8") as f:
        return {line.split("|")[1].strip() for line in f
                if line.startswith("| ") and line.count("|") >= 3}


def emit_diff_table(rows, env_var):
    """The comparison table (markdown): printed, and appended to the file named by $env_var when
    that is set (docs/drop-in-comparison.md is made from it)."""
    lines = ["| Area | Case | Reference (1.22.18) | Ours | Verdict |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [str(x).replace("|", "\\|").replace("\n", " ") for x in row]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    path = os.environ.get(env_var)
    if path:
        with open(path, "a") as f:
            f.write(text)

