"""Network namespaces for tests: `nld-it-<pid>-<n>`, unique per test process, so tests running
concurrently never collide. Requires root. Deleted by close() and, if a test leaks one, by the
exit hook of nldtest.proc."""

import os
import subprocess

from nldtest.proc import live_netns


class NetNs:
    """A network namespace `nld-it-<pid>-<n>` with lo up and extra /32 addresses on lo. Deleted by
    close() (also at exit). Requires root."""

    _counter = 0

    def __init__(self, addresses=("169.254.20.10",)):
        NetNs._counter += 1
        self.name = "nld-it-%d-%d" % (os.getpid(), NetNs._counter)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        live_netns.append(self.name)
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
        import dns.message  # here, so that tests without dnspython can import nldtest
        return dns.message.from_wire(bytes.fromhex(r.stdout.strip()))

    def http_get(self, url, timeout=5):
        """(status, body) of a GET run with curl inside the namespace."""
        r = self.run(["curl", "-s", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", url],
                     timeout=timeout + 10)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def close(self):
        if self.name in live_netns:
            subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
            live_netns.remove(self.name)
