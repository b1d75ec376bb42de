"""Bounded polling: the only wait helper of the Python tests."""

import time


class WaitTimeout(AssertionError):
    """wait_until ran out of time. An AssertionError, so unittest reports it as a failure and the
    scenario runners that catch AssertionError see it too."""


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() every `interval` seconds until it returns a truthy value, which is returned.

    After `timeout` seconds raises WaitTimeout naming `what`, the last value and the last
    exception. A predicate that raises is polled again: a daemon that is still starting refuses
    connections, and that is "not yet", not a failure.
    """
    deadline = time.monotonic() + timeout
    last = None
    last_exc = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - polled predicate may fail until ready
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)%s" %
                      (timeout, what, last,
                       "\nlast error: %s: %s" % (type(last_exc).__name__, last_exc)
                       if last_exc is not None else ""))
