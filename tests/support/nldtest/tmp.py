"""Temporary directories of a test; NLD_IT_KEEP=1 keeps them for a post-mortem."""

import os
import shutil
import tempfile


def make_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_tmpdir(d):
    if os.environ.get("NLD_IT_KEEP"):
        return
    shutil.rmtree(d, ignore_errors=True)
