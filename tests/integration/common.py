"""Integration-test helpers shared by the harness modules: process bookkeeping, ports, DNS client,
raw packets, HTTP/Prometheus parsing, network namespaces.

Debian's /usr/bin/python3 (dnspython 2.3), stdlib otherwise. See harness.py for the environment.
"""

import atexit
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
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

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("NLD_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))

_live_procs = []  # (Popen, description): killed at interpreter exit if a test leaked one
_live_netns = []


def _atexit_cleanup():
    for proc, _ in list(_live_procs):
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except Exception:
                pass
    for ns in list(_live_netns):
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


atexit.register(_atexit_cleanup)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so that cleanups and the atexit hook run


signal.signal(signal.SIGTERM, _exit_on_sigterm)

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn for children: SIGKILL them if the test process dies without cleaning up (e.g.
    killed by ctest's timeout). Survives exec, including through `ip netns exec`."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


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


def free_port(host="127.0.0.1"):
    """A port that is currently free for both UDP and TCP on host (bind port 0, then check)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((host, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
        except OSError:
            t.close()
            u.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("could not find a free port")


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until truthy or timeout (seconds); returns the value or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled predicate may fail until ready
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s%s" %
                         (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    return d


def remove_tmpdir(d):
    if os.environ.get("NLD_IT_KEEP"):
        return
    shutil.rmtree(d, ignore_errors=True)


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


def _wait_proc(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _kill_proc(proc):
    if proc.poll() is None:
        proc.kill()
        _wait_proc(proc, 10)


def _forget(proc):
    for i, (p, _) in enumerate(_live_procs):
        if p is proc:
            del _live_procs[i]
            return


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


# ----------------------------------------------------------------------------------------------
# Network namespace
# ----------------------------------------------------------------------------------------------

class NetNs:
    """A network namespace `nld-it-<pid>-<n>` with lo up and extra /32 addresses on lo. Deleted by
    close() (also at exit). Requires root."""

    _counter = 0

    def __init__(self, addresses=("169.254.20.10",)):
        NetNs._counter += 1
        self.name = "nld-it-%d-%d" % (os.getpid(), NetNs._counter)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        _live_netns.append(self.name)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
            for a in addresses:
                subprocess.run(["ip", "-n", self.name, "addr", "add", a + "/32", "dev", "lo"],
                               check=True)
        except Exception:
            self.close()
            raise

    def prefix(self):
        """argv prefix to run a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def run(self, argv, timeout=20, check=False):
        return subprocess.run(self.prefix() + list(argv), capture_output=True, text=True,
                              timeout=timeout, check=check)

    def dns(self, name, rdtype, server, port=53, proto="udp", timeout=5.0, edns=None):
        """A dnspython query run inside the namespace; returns the parsed reply."""
        script = ("import sys, dns.message, dns.query\n"
                  "q = dns.message.make_query(sys.argv[1], sys.argv[2], use_edns=%r)\n"
                  "f = dns.query.udp if sys.argv[5] == 'udp' else dns.query.tcp\n"
                  "r = f(q, sys.argv[3], port=int(sys.argv[4]), timeout=%r)\n"
                  "print(r.to_wire().hex())\n" % (edns, timeout))
        r = self.run(["/usr/bin/python3", "-c", script, name, rdtype, server, str(port), proto],
                     timeout=timeout + 10)
        if r.returncode != 0:
            raise AssertionError("query %s %s @%s:%d/%s in %s failed: %s"
                                 % (name, rdtype, server, port, proto, self.name, r.stderr))
        return dns.message.from_wire(bytes.fromhex(r.stdout.strip()))

    def http_get(self, url, timeout=5):
        """(status, body) of a GET run with curl inside the namespace."""
        r = self.run(["curl", "-s", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", url],
                     timeout=timeout + 10)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def close(self):
        if self.name in _live_netns:
            subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
            _live_netns.remove(self.name)
