#!/usr/bin/python3
"""Run inside the test's network namespace by test_flood.py: a forked child sends a flood of
queries for unique names (fire and forget, paced at RATE queries a second for SECONDS) to
SERVER:53 while the parent asks each of the CACHED names over and over on its own socket,
measuring each answer's latency (two processes: a thread would share the GIL with the flood and
add its waits to the latencies).
Prints one JSON object: {"sent", "elapsed", "cached_asked", "cached_ok", "cached_lat_us": [...]}.
Bounded: it stops after SECONDS plus at most one 1 s wait per cached query.

argv: SERVER RATE SECONDS ZONE CACHED_NAME...
"""

import json
import socket
import struct
import sys
import os
import time

import dns.message
import dns.rcode


def flood(server, rate, seconds, zone, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)  # answers are not read
    s.setblocking(False)
    tail = b"".join(bytes([len(label)]) + label.encode() for label in zone.split(".") if label)
    tail += b"\x00" + struct.pack("!HH", 1, 1)
    tick = 0.005
    per_tick = max(1, int(rate * tick))
    sent = 0
    t0 = time.monotonic()
    next_tick = t0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        for _ in range(per_tick):
            label = b"%010x" % sent
            pkt = struct.pack("!HHHHHH", sent & 0xFFFF, 0x0100, 1, 0, 0, 0) + \
                bytes([len(label)]) + label + tail
            try:
                s.sendto(pkt, (server, 53))
            except (BlockingIOError, ConnectionRefusedError):
                pass
            sent += 1
        next_tick += tick
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out["sent"] = sent
    out["elapsed"] = time.monotonic() - t0
    s.close()


def main():
    server, rate, seconds, zone = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    cached = sys.argv[5:]
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(rfd)
        out = {}
        try:
            flood(server, rate, seconds, zone, out)
        finally:
            os.write(wfd, json.dumps(out).encode())
            os._exit(0)
    os.close(wfd)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(1.0)
    asked = ok = 0
    lat = []
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        name = cached[i % len(cached)]
        i += 1
        q = dns.message.make_query(name, "A")
        start = time.monotonic()
        c.sendto(q.to_wire(), (server, 53))
        asked += 1
        try:
            while True:
                wire, _ = c.recvfrom(65535)
                r = dns.message.from_wire(wire)
                if r.id == q.id:
                    break
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                ok += 1
                lat.append(int((time.monotonic() - start) * 1e6))
        except socket.timeout:
            pass
        time.sleep(0.01)
    with os.fdopen(rfd) as f:
        out = json.loads(f.read() or "{}")
    os.waitpid(child, 0)
    out.update(cached_asked=asked, cached_ok=ok, cached_lat_us=sorted(lat))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
