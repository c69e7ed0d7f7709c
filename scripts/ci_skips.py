#!/usr/bin/python3
"""ci_skips.py - fail CI when a test that CI must run was skipped.

  ci_skips.py BUILD_DIR

Reads the skipped tests from CTest's summary of the last run (BUILD_DIR/ctest-output.txt, which
scripts/test.sh writes; LastTest.log records a skip as "Test Passed") and each one's reason from
the "SKIPPED: ..." line it printed (BUILD_DIR/Testing/Temporary/LastTest.log). The rule: the only acceptable skip in CI is a CPU-feature skip,
a test that printed "SKIPPED: CPU-FEATURE: ..." (tests/tune_leg.py, tests/require.py --cpu)
because this machine's /proc/cpuinfo lacks the instructions its kernel family needs; those
cannot run here and are covered on machines that have them. Anything else - a missing program
(clang, node, npm: "SKIPPED: PROGRAM: ..."), or a skip without a reason - means CI ran less than
it should, and fails the run. Exit 0 when every skip is acceptable, 1 otherwise."""
import os
import re
import sys


def main():
    build = sys.argv[1]
    summary = open(os.path.join(build, "ctest-output.txt"), errors="replace").read()
    log = open(os.path.join(build, "Testing", "Temporary", "LastTest.log"), errors="replace").read()
    # ctest's summary: "The following tests did not run:" then "  12 - name (Skipped)" lines
    skipped = re.findall(r"^\s*\d+ - (\S+) \(Skipped\)", summary, re.M)
    # the reason: a "SKIPPED: ..." line in that test's output in LastTest.log
    outputs = {}
    for block in re.split(r"\n(?=\d+/\d+ Testing: )", log):
        m = re.match(r"\d+/\d+ Testing: (\S+)", block)
        out = re.search(r"\nOutput:\n-+\n(.*?)<end of output>", block, re.S)
        if m and out:
            outputs[m.group(1)] = out.group(1)
    bad, ok = [], []
    for name in skipped:
        reason = re.search(r"^SKIPPED: (.*)$", outputs.get(name, ""), re.M)
        reason = reason.group(1).strip() if reason else "(no reason printed)"
        (ok if reason.startswith("CPU-FEATURE:") else bad).append((name, reason))
    for name, reason in ok:
        print("skipped (allowed, CPU feature): %s: %s" % (name, reason))
    for name, reason in bad:
        print("skipped (NOT allowed in CI): %s: %s" % (name, reason))
    print("ci_skips: %d skipped, %d not allowed" % (len(skipped), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
