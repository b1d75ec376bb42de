"""Free ports for servers a test starts on loopback.

Why not just "bind port 0, read it, close it": that port comes from the kernel's ephemeral range
(net.ipv4.ip_local_port_range), so between the close and the server's own bind any outgoing
connection on the machine (another test's client, resolver or upstream socket under `ctest -j`)
may take it as its source port, and another test process may be handed the same port. Seen in CI
as `listen tcp 127.0.0.1:<port>: Address already in use`. So ports are drawn below the ephemeral
range, where the kernel never picks source ports, and each one is claimed for the life of the
test process with an flock on a file in a shared directory, so parallel test processes never
pick the same one. Locks vanish when the process ends, however it ends.
"""

import fcntl
import os
import random
import socket
import tempfile

_LOCK_DIR = os.path.join(tempfile.gettempdir(), "nld-test-ports")
_held = {}  # port → fd of its lock file, kept open for the life of this process


def _pool():
    """The port range to draw from: below the ephemeral range (above it if that is too low)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    if lo - 1 >= 12000:
        return 10000, lo - 1
    return hi + 1, 65535


def _bindable(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(family, kind) as so:
            if kind == socket.SOCK_STREAM:
                so.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                so.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on host, outside the ephemeral range and claimed by no
    other test process."""
    os.makedirs(_LOCK_DIR, mode=0o777, exist_ok=True)
    lo, hi = _pool()
    for _ in range(500):
        port = random.randint(lo, hi)
        if port in _held:
            continue
        fd = os.open(os.path.join(_LOCK_DIR, str(port)), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _bindable(host, port):
            _held[port] = fd
            return port
        os.close(fd)
    raise RuntimeError("could not find a free port in %d-%d" % (lo, hi))
