#!/usr/bin/python3
"""ci_skips.py - fail CI when a test that CI must run was skipped.

  ci_skips.py BUILD_DIR

Reads CTest's last run (BUILD_DIR/Testing/Temporary/LastTest.log) and lists the skipped tests
with the reason each printed. The rule: the only acceptable skip in CI is a CPU-feature skip,
a test that printed "SKIPPED: CPU-FEATURE: ..." (tests/tune_leg.py, tests/require.py --cpu)
because this machine's /proc/cpuinfo lacks the instructions its kernel family needs; those
cannot run here and are covered on machines that have them. Anything else - a missing program
(clang, node, npm: "SKIPPED: PROGRAM: ..."), or a skip without a reason - means CI ran less than
it should, and fails the run. Exit 0 when every skip is acceptable, 1 otherwise."""
import os
import re
import sys


def main():
    log = os.path.join(sys.argv[1], "Testing", "Temporary", "LastTest.log")
    text = open(log, errors="replace").read()
    # LastTest.log: one block per test, "N/M Testing: NAME" ... "Test Skipped" / "Test Passed"
    bad, ok = [], []
    for block in re.split(r"\n(?=\d+/\d+ Testing: )", text):
        m = re.match(r"\d+/\d+ Testing: (\S+)", block)
        if not m:
            continue
        name = m.group(1)
        if 'Test Skipped' not in block and 'Test Not Run' not in block and \
                "SKIPPED:" not in block:
            continue
        reason = re.search(r"SKIPPED: (.*)", block)
        reason = reason.group(1).strip() if reason else "(no reason printed)"
        (ok if reason.startswith("CPU-FEATURE:") else bad).append((name, reason))
    for name, reason in ok:
        print("skipped (allowed, CPU feature): %s: %s" % (name, reason))
    for name, reason in bad:
        print("skipped (NOT allowed in CI): %s: %s" % (name, reason))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
