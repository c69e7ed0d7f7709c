"""clitest.py - shared harness of the CLI tests: the binary (argv[1]), the test data location
($CLLM_TESTDATA or testdata/ in the repo), a check() tally and the closing
"N passed, M failed" line with the exit status."""
import os
import subprocess
import sys

CLLM = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testdata import TESTDATA  # noqa: E402  (tests/testdata.py)
_tally = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        _tally["passed"] += 1
    else:
        _tally["failed"] += 1
        print(f"FAIL {name} {detail}")


def run(*args, timeout=300, stdin=None):
    """Run cllm; returns (exit code, stdout bytes, stderr bytes)."""
    p = subprocess.run([CLLM, *args], capture_output=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout, p.stderr


def finish():
    print(f"{_tally['passed']} passed, {_tally['failed']} failed")
    sys.exit(1 if _tally["failed"] else 0)
