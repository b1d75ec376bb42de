"""Integration-test harness for node-cache: the node-cache process, the unittest base class, and
re-exports of the shared helpers (common.py) and upstreams (upstreams.py), so tests only import
`harness`.

Run with Debian's /usr/bin/python3 (dnspython 2.3); stdlib otherwise. Everything a test starts is
stopped by pid through unittest cleanups (and an atexit hook as a last resort); every wait is
bounded.

Environment:
  NLD_BUILD_DIR   build tree; the binary is $NLD_BUILD_DIR/src/cmd/node-cache/node-cache
  NLD_NODE_CACHE  explicit path of the binary (overrides NLD_BUILD_DIR)
  NLD_IT_KEEP     if set, temp dirs are kept for post-mortem
  NLD_REFERENCE_NODE_CACHE  the real k8s-dns-node-cache for the comparison runs
                  (start_reference; skipped with a SKIPPED line when unset)
"""

import os
import signal
import subprocess
import sys
import unittest

import dns.exception
import dns.rcode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nldtest import *  # noqa: F401,F403,E402 - re-exported for the tests
from nldtest import (NetNs, die_with_parent, forget, kill_proc, make_tmpdir,  # noqa: E402
                     remove_tmpdir, track, wait_proc, wait_until)
from common import *  # noqa: F401,F403,E402 - re-exported for the tests
from common import (ask, cpu_seconds, free_port, http_get, node_cache_binary,  # noqa: E402
                    parse_metrics, reference_node_cache)
from upstreams import *  # noqa: F401,F403,E402 - re-exported for the tests
from upstreams import Knot, Responder  # noqa: E402

# ----------------------------------------------------------------------------------------------
# node-cache
# ----------------------------------------------------------------------------------------------

class NodeCache:
    """Runs the node-cache binary on a Corefile (or, with base_corefile, on a template that the
    node-cache wrapper renders, as configmap.go, with kube-dns ConfigMap files kubedns_files).

    The Corefile is written both as the -conf file and as the -basecorefile (so the node-cache
    wrapper's template render, if it runs, reproduces it unchanged) into a private temp dir, with an
    empty -kubednscm dir. Host networking is never touched (-setupinterface=false
    -setupiptables=false). `probe` = (host, port, qname) queried until any DNS reply comes back.
    stdout/stderr go to a file whose content is attached to failures via output(). Unless `flags`
    name one, -statedir is <tmp>/state: the default (/var/run/node-local-dns) is shared by every
    test on the host, and one test's cache snapshot must not warm another's cache.

    `binary` runs another program with the same interface instead: the reference
    k8s-dns-node-cache (reference_node_cache()). It gets the same argv minus -statedir (which it
    does not know), and a kube-dns address in its environment (it refuses to start without one;
    the ready Corefile makes it irrelevant). Its exit code on SIGTERM is not checked: the
    reference is measured, not judged."""

    def __init__(self, corefile, probe, flags=(), netns=None, localip="127.0.0.1",
                 metrics_addr=None, start_timeout=10.0, env=None, base_corefile=None,
                 kubedns_files=None, binary=None):
        self.reference = binary is not None
        self.binary = binary or node_cache_binary()
        self.tmp = make_tmpdir("nld-it-nc-")
        self.netns = netns
        self.corefile = corefile
        self.conf_path = os.path.join(self.tmp, "Corefile")
        self.base_path = os.path.join(self.tmp, "base", "Corefile.base")
        self.pidfile = os.path.join(self.tmp, "node-cache.pid")
        self.out_path = os.path.join(self.tmp, "node-cache.out")
        self.kubedns_dir = os.path.join(self.tmp, "kube-dns")
        os.makedirs(os.path.dirname(self.base_path))
        os.makedirs(self.kubedns_dir)
        if base_corefile is None:
            # a ready Corefile: also the base, so the wrapper's render reproduces it unchanged
            for p in (self.conf_path, self.base_path):
                with open(p, "w") as f:
                    f.write(corefile)
        else:
            # template mode: node-cache must render base_corefile into -conf itself
            with open(self.base_path, "w") as f:
                f.write(base_corefile)
            self.corefile = base_corefile
        for key, value in (kubedns_files or {}).items():
            with open(os.path.join(self.kubedns_dir, key), "w") as f:
                f.write(value)
        if metrics_addr is None and netns is None:
            metrics_addr = "127.0.0.1:%d" % free_port()
        self.metrics_addr = metrics_addr
        argv = [self.binary, "-conf", self.conf_path, "-basecorefile", self.base_path,
                "-kubednscm", self.kubedns_dir, "-pidfile", self.pidfile,
                "-setupinterface=false", "-setupiptables=false", "-localip", localip]
        if metrics_addr:
            argv += ["-metrics-listen-address", metrics_addr]
        flags = list(flags)
        # the default state dir is host-wide: tests run side by side keep their own
        if not self.reference and \
                not any(a == "-statedir" or a.startswith("-statedir=") for a in flags):
            flags += ["-statedir", os.path.join(self.tmp, "state")]
        argv += flags
        if netns:
            argv = netns.prefix() + argv
        self.argv = argv
        self.stopped = False
        self._out = open(self.out_path, "w")
        full_env = dict(os.environ)
        if self.reference:
            full_env.setdefault("KUBE_DNS_SERVICE_HOST", "127.0.0.1")
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env,
                                     preexec_fn=die_with_parent)
        track(self.proc, "node-cache")
        self.pid = self.proc.pid
        try:
            self._wait_ready(probe, start_timeout)
        except BaseException:
            self.kill()
            self.cleanup()
            raise

    def _wait_ready(self, probe, timeout):
        host, port, qname = probe

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("node-cache exited with %s during start-up; output:\n%s"
                                     % (self.proc.returncode, self.output()))
            if not os.path.exists(self.pidfile):
                return False
            if self.netns:
                r = self.netns.run(["kdig", "+time=1", "+retry=0", "@" + host, "-p", str(port),
                                    qname, "A"], timeout=5)
                return "->>HEADER<<-" in r.stdout
            try:
                ask(qname, "A", host, port, timeout=0.5)
                return True
            except dns.exception.Timeout:
                return False

        try:
            wait_until(ready, timeout, interval=0.1, what="node-cache pidfile + first DNS answer")
        except AssertionError as e:
            raise AssertionError("%s\nargv: %s\nCorefile:\n%s\noutput:\n%s"
                                 % (e, " ".join(self.argv), self.corefile, self.output()))
        with open(self.pidfile) as f:
            content = f.read().strip()
        if content != str(self.pid):
            raise AssertionError("pidfile %s contains %r, expected %d" %
                                 (self.pidfile, content, self.pid))

    def output(self):
        try:
            if not self._out.closed:
                self._out.flush()
            with open(self.out_path) as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

    def metrics(self, addr=None):
        """Parsed samples of http://<addr>/metrics (default: the -metrics-listen-address)."""
        addr = addr or self.metrics_addr
        status, body = http_get("http://%s/metrics" % addr)
        if status != 200:
            raise AssertionError("GET %s/metrics -> %d" % (addr, status))
        return parse_metrics(body)

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = wait_proc(self.proc, timeout)
            if rc is None:
                kill_proc(self.proc)
        else:
            rc = self.proc.returncode
        self._finish()
        return rc

    def kill(self):
        kill_proc(self.proc)
        self._finish()

    def _finish(self):
        forget(self.proc)
        if not self._out.closed:
            self._out.close()

    def cleanup(self):
        remove_tmpdir(self.tmp)


class NodeCacheTestCase(unittest.TestCase):
    """Base: tests start upstreams/node-cache via self.start_*(); everything is stopped through
    addCleanup (so also when setUp fails), in reverse order. Stopping node-cache checks that it was
    still alive and exits 0 on SIGTERM."""

    NEEDS_BINARY = True  # False for tests of the harness itself

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.NEEDS_BINARY:
            node_cache_binary()  # fail the whole class at once, with a clear message

    def start_knot(self, **kw):
        k = Knot(**kw)
        self.addCleanup(k.close)
        return k

    def start_responder(self, **kw):
        r = Responder(**kw)
        self.addCleanup(r.close)
        return r

    def start_netns(self, **kw):
        ns = NetNs(**kw)
        self.addCleanup(ns.close)
        return ns

    def start_node_cache(self, corefile, probe, **kw):
        nc = NodeCache(corefile, probe, **kw)
        if not hasattr(self, "_node_caches"):
            self._node_caches = []
        self._node_caches.append(nc)
        self.addCleanup(self._stop_node_cache, nc)
        return nc

    def start_reference(self, corefile, probe, **kw):
        """The reference k8s-dns-node-cache on the same Corefile and probe (no node-cache-only
        flags in kw), or the test is skipped after a visible SKIPPED line when
        NLD_REFERENCE_NODE_CACHE is unset."""
        ref = reference_node_cache()
        if ref is None:
            raise unittest.SkipTest("reference k8s-dns-node-cache: NLD_REFERENCE_NODE_CACHE unset")
        return self.start_node_cache(corefile, probe, binary=ref, **kw)

    def start_side(self, corefile, probe, reference, **kw):
        """start_reference (reference=True: skipped visibly without the binary) or
        start_node_cache on the same Corefile: the two sides of a differential test."""
        if reference:
            return self.start_reference(corefile, probe, **kw)
        return self.start_node_cache(corefile, probe, **kw)

    def _stop_node_cache(self, nc):
        if nc.stopped:  # the test stopped it itself and checked the outcome
            nc.cleanup()
            return
        was_alive = nc.alive()
        rc = nc.stop()
        if nc.reference:  # measured, not judged
            nc.cleanup()
            return
        try:
            if not was_alive:
                raise AssertionError("node-cache died during the test (exit %s); output:\n%s"
                                     % (nc.proc.returncode, nc.output()))
            if rc != 0:
                raise AssertionError("node-cache exit code on SIGTERM = %s (want 0); output tail:"
                                     "\n%s" % (rc, nc.output()[-4000:]))
        finally:
            nc.cleanup()

    def nc_output(self):
        return "\n".join(nc.output()[-3000:] for nc in getattr(self, "_node_caches", []))

    def assertRcode(self, msg, rcode, context=""):
        self.assertEqual(dns.rcode.to_text(msg.rcode()), dns.rcode.to_text(rcode),
                         "%s\nresponse:\n%s" % (context, msg))


def run_tests():
    """unittest main with verbose output (test names listed) and a non-zero exit on failure."""
    unittest.main(verbosity=2)
