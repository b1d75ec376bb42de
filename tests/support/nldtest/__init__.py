"""The one Python test-support package of the repository (tests/README.md).

Every Python test imports bounded waiting, network namespaces, child-process bookkeeping,
temporary directories and free ports from here; no module defines its own wait helper. A test file puts this
folder on sys.path with the one idiom

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

so the tests run the same under ctest and by hand (`python3 tests/<dir>/<file>.py`).
Debian's /usr/bin/python3; dnspython only for NetNs.dns().
"""

from nldtest.netns import NetNs
from nldtest.ports import free_port
from nldtest.proc import die_with_parent, forget, kill_proc, track, wait_proc
from nldtest.tmp import make_tmpdir, remove_tmpdir
from nldtest.wait import WaitTimeout, wait_until

__all__ = ["NetNs", "WaitTimeout", "die_with_parent", "forget", "free_port", "kill_proc",
           "make_tmpdir", "remove_tmpdir", "track", "wait_proc", "wait_until"]
