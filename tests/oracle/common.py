"""Shared helpers for the oracle tests: where test data lives, finding the cllm
binary, and a pass/fail tally that ends every test with "N passed, M failed"."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testdata import testdata_dir  # noqa: E402,F401  (tests/testdata.py; re-exported)


def cllm_binary(argv):
    """The cllm executable: argv[1], else $CLLM_BIN."""
    path = argv[1] if len(argv) > 1 else os.environ.get("CLLM_BIN")
    if not path:
        sys.exit("usage: %s CLLM_BINARY (or set CLLM_BIN)" % os.path.basename(argv[0]))
    if not os.access(path, os.X_OK):
        sys.exit("cllm binary not executable: %s" % path)
    return path


class Tally:
    """Counts checks; each failure is printed at once with its reason."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return ok

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)
