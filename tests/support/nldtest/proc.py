"""Child-process bookkeeping shared by all Python tests.

Every long-running child a test starts is `track`ed: if the test leaks it (an exception before
its stop(), or ctest's timeout sending SIGTERM), the atexit hook kills it, and die_with_parent
makes the kernel kill it should the test process itself be SIGKILLed. Network namespaces made by
nldtest.netns are deleted by the same hook.
"""

import atexit
import ctypes
import signal
import subprocess

_live_procs = []  # (Popen, description): killed at interpreter exit if a test leaked one
live_netns = []  # namespace names nldtest.netns created and has not deleted yet


def _atexit_cleanup():
    for proc, _ in list(_live_procs):
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except Exception:
                pass
    for ns in list(live_netns):
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


def track(proc, what):
    """Registers a started Popen so that the exit hook kills it if the test leaks it."""
    _live_procs.append((proc, what))


def forget(proc):
    """Unregisters a Popen the test has stopped itself."""
    for i, (p, _) in enumerate(_live_procs):
        if p is proc:
            del _live_procs[i]
            return


def wait_proc(proc, timeout):
    """The exit code of proc, or None if it is still running after `timeout` seconds."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def kill_proc(proc):
    """SIGKILLs proc if it still runs and reaps it (bounded)."""
    if proc.poll() is None:
        proc.kill()
        wait_proc(proc, 10)
