"""Real upstreams for the node-cache integration tests: knotd serving generated zones (with
mod-stats counters read through knotc) and a recording python UDP/TCP responder."""

import heapq
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nldtest import (die_with_parent, forget, kill_proc, make_tmpdir, remove_tmpdir,  # noqa: E402
                     track, wait_proc, wait_until)
from common import ask, free_port, recv_exact, set_rcvbuf  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Knot DNS upstream
# ----------------------------------------------------------------------------------------------

N_SERVICES = 300  # generated services in cluster.local


def _svc_ip(i):
    return "10.96.%d.%d" % (1 + i // 250, 1 + i % 250)


def cluster_zone():
    """cluster.local like CoreDNS's kubernetes plugin answers it: SOA TTL 5 / MINIMUM 5, TTL 5."""
    lines = [
        "$ORIGIN cluster.local.",
        "$TTL 5",
        "@ 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5",
        "@ 5 IN NS ns.dns",
        "ns.dns 5 IN A 10.96.0.10",
        "kubernetes.default.svc 5 IN A 10.96.0.1",
        "kube-dns.kube-system.svc 5 IN A 10.96.0.10",
        "*.wild 5 IN A 10.96.255.254",
    ]
    for i in range(N_SERVICES):
        lines.append("svc-%d.ns-%d.svc 5 IN A %s" % (i, i % 10, _svc_ip(i)))
    return "\n".join(lines) + "\n"


def reverse_zone():
    """96.10.in-addr.arpa: PTR for 10.96.0.1, 10.96.0.10 and the generated services."""
    lines = [
        "$ORIGIN 96.10.in-addr.arpa.",
        "$TTL 5",
        "@ 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5",
        "@ 5 IN NS ns.dns.cluster.local.",
        "1.0 5 IN PTR kubernetes.default.svc.cluster.local.",
        "10.0 5 IN PTR kube-dns.kube-system.svc.cluster.local.",
    ]
    for i in range(N_SERVICES):
        a, b, c, d = _svc_ip(i).split(".")
        lines.append("%s.%s 5 IN PTR svc-%d.ns-%d.svc.cluster.local." % (d, c, i, i % 10))
    return "\n".join(lines) + "\n"


def _txt_strings(count, length, tag):
    return ["%s-%03d-%s" % (tag, i, "x" * (length - len(tag) - 5)) for i in range(count)]


# TXT RRsets: ~900 bytes (> 512, < 1232) and ~2400 bytes (> 1232)
BIG_TXT = _txt_strings(8, 100, "big")
HUGE_TXT = _txt_strings(20, 110, "huge")


def external_zone():
    """example.test: normal TTLs (300), big RRsets, a wildcard for unique names, and NX/NODATA
    whose SOA MINIMUM (7) is smaller than the SOA TTL (300)."""
    lines = [
        "$ORIGIN example.test.",
        "$TTL 300",
        "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 7",
        "@ 300 IN NS ns",
        "ns 300 IN A 192.0.2.53",
        "www 300 IN A 192.0.2.10",
        "www 300 IN A 192.0.2.11",
        "mutable 300 IN A 192.0.2.20",
        "pool 300 IN A 192.0.2.31",
        "pool 300 IN A 192.0.2.32",
        "pool 300 IN A 192.0.2.33",
        "pool 300 IN A 192.0.2.34",
        "pool 300 IN AAAA 2001:db8::31",
        "pool 300 IN AAAA 2001:db8::32",
        "pool 300 IN AAAA 2001:db8::33",
        "*.uniq 300 IN A 192.0.2.99",
    ]
    for s in BIG_TXT:
        lines.append('big 300 IN TXT "%s"' % s)
    for s in HUGE_TXT:
        lines.append('huge 300 IN TXT "%s"' % s)
    return "\n".join(lines) + "\n"


DEFAULT_ZONES = {
    "cluster.local": cluster_zone,
    "96.10.in-addr.arpa": reverse_zone,
    "example.test": external_zone,
}


class Knot:
    """knotd serving the test zones on `listen` (list of (ip, port)) UDP+TCP, in the foreground as
    a child, optionally inside a NetNs. Query counters come from mod-stats via knotc."""

    def __init__(self, listen=None, zones=None, netns=None, start_timeout=10.0):
        self.tmp = make_tmpdir("nld-it-knot-")
        self.netns = netns
        if listen is None:
            listen = [("127.0.0.1", free_port())]
        self.listen = listen
        self.host, self.port = listen[0]
        self.zones = dict(DEFAULT_ZONES if zones is None else zones)
        self.proc = None
        self.sock = os.path.join(self.tmp, "knot.sock")
        self.log_path = os.path.join(self.tmp, "knotd.log")
        self._serials = {}
        try:
            self._write_config()
            self._start(start_timeout)
        except Exception:
            self.close()
            raise

    def zone_file(self, zone):
        return os.path.join(self.tmp, zone + ".zone")

    def _write_config(self):
        listen = ", ".join("%s@%d" % (h, p) for h, p in self.listen)
        zone_cfg = []
        for z, content in self.zones.items():
            text = content() if callable(content) else content
            with open(self.zone_file(z), "w") as f:
                f.write(text)
            self._serials[z] = 1
            zone_cfg.append("  - domain: %s\n    file: \"%s\"\n" % (z, self.zone_file(z)))
        conf = """server:
    rundir: "{tmp}"
    user: root:root
    listen: [ {listen} ]
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1
    tcp-idle-timeout: 20
    udp-max-payload: 4096
control:
    listen: "{sock}"
database:
    storage: "{tmp}"
log:
  - target: stderr
    any: info
mod-stats:
  - id: default
    request-protocol: on
    server-operation: on
    request-bytes: off
    response-bytes: off
    response-code: on
    query-type: on
template:
  - id: default
    storage: "{tmp}"
    global-module: mod-stats/default
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: off
zone:
{zones}""".format(tmp=self.tmp, listen=listen, sock=self.sock, zones="".join(zone_cfg))
        with open(os.path.join(self.tmp, "knot.conf"), "w") as f:
            f.write(conf)

    def _start(self, timeout):
        argv = ["knotd", "-c", os.path.join(self.tmp, "knot.conf")]
        if self.netns:
            argv = self.netns.prefix() + argv
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        track(self.proc, "knotd")
        probe_zone = next(iter(self.zones))

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("knotd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if self.netns:
                r = self.netns.run(["kdig", "+time=1", "+retry=0", "@" + self.host, "-p",
                                    str(self.port), probe_zone, "SOA"], timeout=5)
                return "status: NOERROR" in r.stdout
            m = ask(probe_zone, "SOA", self.host, self.port, timeout=0.5)
            return m.rcode() == dns.rcode.NOERROR and len(m.answer) == 1

        wait_until(ready, timeout, interval=0.1, what="knotd to answer")

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def knotc(self, *args, timeout=10):
        argv = ["knotc", "-s", self.sock, "-t", "5"] + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("knotc %s failed: %s %s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def stats(self):
        """dict of mod-stats counters, e.g. {'request-protocol[udp4]': 3, 'server-operation[query]':
        5}. Missing counters read as 0 via .get()."""
        out = {}
        for line in self.knotc("stats").splitlines():
            m = re.match(r"^mod-stats\.(\S+)\s*=\s*(\d+)$", line.strip())
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def query_count(self):
        return self.stats().get("server-operation[query]", 0)

    def proto_counts(self):
        s = self.stats()
        return {"udp": s.get("request-protocol[udp4]", 0) + s.get("request-protocol[udp6]", 0),
                "tcp": s.get("request-protocol[tcp4]", 0) + s.get("request-protocol[tcp6]", 0)}

    def set_zone(self, zone, text):
        """Replace a zone's content (serial is bumped automatically) and reload it; returns once
        knot serves the new serial."""
        self._serials[zone] += 1
        serial = self._serials[zone]
        text = re.sub(r"(IN SOA \S+ \S+ )(\d+)", lambda m: m.group(1) + str(serial), text, count=1)
        with open(self.zone_file(zone), "w") as f:
            f.write(text)
        self.knotc("zone-reload", zone)

        def loaded():
            m = ask(zone, "SOA", self.host, self.port, timeout=0.5)
            return m.answer and m.answer[0][0].serial == serial
        wait_until(loaded, 10, interval=0.1, what="knot to load serial %d of %s" % (serial, zone))

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                if wait_proc(self.proc, 10) is None:
                    kill_proc(self.proc)
            forget(self.proc)
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
        remove_tmpdir(self.tmp)


# ----------------------------------------------------------------------------------------------
# Recording python upstream
# ----------------------------------------------------------------------------------------------

class Raw:
    """A handler's reply sent byte for byte: over TCP without the 2-byte length prefix the
    responder adds to a Message or bytes (so a test can send a prefix that lies), then the
    connection is closed if `close`. Over UDP the bytes are the datagram."""

    def __init__(self, data, close=False):
        self.data = bytes(data)
        self.close = close


class Responder:
    """A tiny authoritative-ish DNS responder on UDP+TCP that records every query it receives as
    (transport, qname lower-case, qtype text, time). The reply is produced by `handler(query,
    transport) -> dns.message.Message | bytes | Raw | None` (None → no reply; over TCP the
    connection stays open and keeps being read); the default answers every A query with
    `answer_ip` (TTL `ttl`) and NXDOMAIN+SOA for names starting with "nx".
    Each request is handled on its own thread; with a `delay`, UDP replies are instead produced
    by one scheduler thread when due (thousands of sleeping threads would fight over the GIL and
    stall everything else in the test process), TCP ones after a sleep on the connection's
    thread. `observer(query, transport, peer)`, if given, runs as soon as the query is parsed,
    before the delay (e.g. to race the reply with forged ones). `tcp_accepted` counts accepted
    TCP connections."""

    def __init__(self, host="127.0.0.1", port=None, answer_ip="192.0.2.1", ttl=60, delay=0.0,
                 handler=None, tc_over_udp_names=(), observer=None):
        self.host = host
        self.port = port or free_port(host)
        self.answer_ip = answer_ip
        self.ttl = ttl
        self.delay = delay
        self.handler = handler or self._default_handler
        self.observer = observer
        self.tcp_accepted = 0
        self.tc_over_udp_names = {n.lower().rstrip(".") + "." for n in tc_over_udp_names}
        self.lock = threading.Lock()
        self.log = []
        self._stop = threading.Event()
        self.udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_sock.bind((host, self.port))
        self.udp_sock.settimeout(0.2)
        set_rcvbuf(self.udp_sock)
        self.tcp_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp_sock.bind((host, self.port))
        self.tcp_sock.listen(64)
        self.tcp_sock.settimeout(0.2)
        self._due = []  # heap of (time, seq, query, peer): delayed UDP replies
        self._due_cv = threading.Condition()
        self._seq = 0
        self._threads = [threading.Thread(target=self._udp_loop, daemon=True),
                         threading.Thread(target=self._tcp_loop, daemon=True),
                         threading.Thread(target=self._udp_scheduler, daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def _default_handler(self, q, transport):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        qname = q.question[0].name
        qtype = q.question[0].rdtype
        label0 = qname.labels[0].decode("ascii", "replace").lower() if qname.labels else ""
        zone = qname if qname == dns.name.root else qname.parent()  # a health probe asks ". NS"
        if transport == "udp" and qname.to_text().lower() in self.tc_over_udp_names:
            r.flags |= dns.flags.TC
            return r
        if label0.startswith("nx"):
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(soa_rrset(zone, ttl=self.ttl))
        elif qtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "A", self.answer_ip))
        else:
            r.authority.append(soa_rrset(zone, ttl=self.ttl))
        return r

    def _record(self, q, transport):
        with self.lock:
            self.log.append((transport, q.question[0].name.to_text().lower(),
                             dns.rdatatype.to_text(q.question[0].rdtype), time.monotonic()))

    def _accept_query(self, wire, transport, peer):
        """The parsed, recorded and observed query, or None for junk."""
        try:
            q = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - junk from the peer is ignored
            return None
        if not q.question:
            return None
        self._record(q, transport)
        if self.observer is not None:
            self.observer(q, transport, peer)
        return q

    def _answer(self, q, transport):
        r = self.handler(q, transport)
        if r is None or isinstance(r, Raw):
            return r
        if isinstance(r, (bytes, bytearray)):
            return bytes(r)
        return r.to_wire(max_size=65535)

    def _reply(self, wire, transport, peer):
        q = self._accept_query(wire, transport, peer)
        if q is None:
            return None
        if self.delay:
            time.sleep(self.delay)
        return self._answer(q, transport)

    def _udp_loop(self):
        while not self._stop.is_set():
            try:
                wire, peer = self.udp_sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.delay:
                q = self._accept_query(wire, "udp", peer)
                if q is not None:
                    with self._due_cv:
                        self._seq += 1
                        heapq.heappush(self._due, (time.monotonic() + self.delay, self._seq, q,
                                                   peer))
                        self._due_cv.notify()
                continue
            threading.Thread(target=self._udp_one, args=(wire, peer), daemon=True).start()

    def _udp_scheduler(self):
        while not self._stop.is_set():
            with self._due_cv:
                if not self._due:
                    self._due_cv.wait(0.2)
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._due_cv.wait(min(wait, 0.2))
                    continue
                _, _, q, peer = heapq.heappop(self._due)
            try:
                out = self._answer(q, "udp")
            except Exception:  # noqa: BLE001 - a broken handler must not stop later replies
                traceback.print_exc()
                continue
            self._udp_send(out, peer)

    def _udp_one(self, wire, peer):
        self._udp_send(self._reply(wire, "udp", peer), peer)

    def _udp_send(self, out, peer):
        if isinstance(out, Raw):
            out = out.data
        if out is not None and not self._stop.is_set():
            try:
                self.udp_sock.sendto(out, peer)
            except OSError:
                pass

    def _tcp_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp_sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.tcp_accepted += 1
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(10)
        try:
            peer = conn.getpeername()
            while not self._stop.is_set():
                hdr = recv_exact(conn, 2)
                if hdr is None:
                    return
                wire = recv_exact(conn, struct.unpack("!H", hdr)[0])
                if wire is None:
                    return
                out = self._reply(wire, "tcp", peer)
                if isinstance(out, Raw):
                    conn.sendall(out.data)
                    if out.close:
                        return
                elif out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            conn.close()

    def queries(self, qname=None, transport=None):
        """Recorded queries, optionally filtered by name (case-insensitive, FQDN) / transport."""
        if qname is not None:
            qname = qname.lower().rstrip(".") + "."
        with self.lock:
            return [e for e in self.log
                    if (qname is None or e[1] == qname) and (transport is None or e[0] == transport)]

    def count(self, qname=None, transport=None):
        return len(self.queries(qname, transport))

    def close(self):
        self._stop.set()
        with self._due_cv:
            self._due_cv.notify()
        for s in (self.udp_sock, self.tcp_sock):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)


def soa_rrset(zone, ttl=60, minimum=None):
    minimum = ttl if minimum is None else minimum
    if isinstance(zone, str):
        zone = dns.name.from_text(zone)
    origin = "" if zone == dns.name.root else zone.to_text()  # "ns." under the root
    return dns.rrset.from_text(zone, ttl, "IN", "SOA",
                               "ns.%s hostmaster.%s 1 7200 1800 86400 %d"
                               % (origin, origin, minimum))
