#!/usr/bin/python3
"""Writes the seed corpus of cache_snapshot_fuzz (run once; the files are committed).
Layout: see src/cache/snapshot.h. CRC32C is computed here so the valid seeds pass the checksums."""
import os
import struct


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def wire(name):
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def response(name, qtype=1, rcode=0, ttls=(300,)):
    q = wire(name) + struct.pack(">HH", qtype, 1)
    hdr = struct.pack(">HHHHHH", 0, 0x8180 | rcode, 1, len(ttls), 0, 0)
    pkt = hdr + q
    offsets = []
    for ttl in ttls:
        pkt += b"\xc0\x0c" + struct.pack(">HH", 1, 1)
        offsets.append(len(pkt))
        pkt += struct.pack(">IH", ttl, 4) + bytes([192, 0, 2, 1])
    return pkt, offsets


def entry(group, pkt, offsets, denial=False, do=False, cd=False, duration=300, inserted=1000):
    bits = (1 if denial else 0) | (2 if do else 0) | (4 if cd else 0)
    flags = struct.unpack(">H", pkt[2:4])[0] & 0x80AF
    rec = struct.pack(">IBHIQHH", group, bits, flags, duration, inserted, len(pkt), len(offsets))
    return rec + pkt + b"".join(struct.pack(">H", o) for o in offsets)


def snapshot(groups, entries, boot=bytes(range(1, 17)), written=2000, version=1):
    payload = b"".join(struct.pack(">H", len(g)) + g for g in groups) + b"".join(entries)
    hdr = b"NLDCACHE" + struct.pack(">II", version, 0) + boot
    hdr += struct.pack(">QIIQI", written, len(groups), len(entries), len(payload), crc32c(payload))
    hdr += struct.pack(">I", crc32c(hdr))
    return hdr + payload


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    g = [b"zones=cluster.local.:53 bind=169.254.20.10 cache_zones= success=9984/5/30",
         b"zones=.:53 bind=169.254.20.10 cache_zones= success=9984/5/30"]
    a, ao = response("kubernetes.default.svc.cluster.local")
    nx, _ = response("nope.cluster.local", rcode=3, ttls=())
    multi, mo = response("multi.example.org", ttls=(60, 120, 0, 0x80000000))
    seeds = {
        "empty_file": b"",
        "header_only": snapshot([], []),
        "valid_three_entries": snapshot(g, [entry(0, a, ao), entry(0, nx, [], denial=True),
                                            entry(1, multi, mo, do=True, cd=True, duration=60)]),
        "valid_expired_entry": snapshot(g[:1], [entry(0, a, ao, duration=1, inserted=0)]),
        "bad_magic": b"NOTCACHE" + snapshot([], [])[8:],
        "version_2": snapshot(g, [entry(0, a, ao)], version=2),
        "truncated_entry": snapshot(g, [entry(0, a, ao)])[:-7],
        "compressed_question": snapshot(g, [entry(0, b"\0" * 12 + b"\xc0\x0c\0\1\0\1", [])]),
        "ttl_offset_outside": snapshot(g, [entry(0, a, [len(a) - 2])]),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
