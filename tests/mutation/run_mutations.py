#!/usr/bin/python3
"""run_mutations.py - does the test suite see real bugs? (run by .ci/run after the normal legs)

  run_mutations.py [--scratch DIR] [--only NAME[,NAME...]]

Copies the repository (tracked and untracked-but-not-ignored files) into a scratch folder,
configures one Release build there and builds the library plus the tests the mutations need
(-j2), checks that those tests pass unmutated, then for each mutation in mutations.py: replaces
the original text (exactly one occurrence) in the scratch copy, rebuilds incrementally in the
same build folder, runs the selected tests with ctest -R, records which of them failed (those
"kill" the mutation), and restores the file. Exits 1 if any mutation survived (no selected test
failed) or the baseline failed. The repository itself is never modified.
CLLM_ORACLE_QUICK=1 is set for the tests: test_logits.py then runs each model at the default CPU
level only (the per-level runs check kernels, not these mutations), to keep the whole run within
about 10 minutes on 2 cores."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from mutations import MUTATIONS  # noqa: E402
from testdata import TESTDATA  # noqa: E402

JOBS = "2"


def sh(cmd, cwd=None, env=None, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.stdout.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit("run_mutations: failed: %s" % " ".join(cmd))
    return p


def copy_repo(dst):
    files = sh(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
               cwd=REPO).stdout.split("\0")
    for f in files:
        if not f or not os.path.isfile(os.path.join(REPO, f)):
            continue
        os.makedirs(os.path.dirname(os.path.join(dst, f)) or dst, exist_ok=True)
        shutil.copy2(os.path.join(REPO, f), os.path.join(dst, f))


def failed_tests(out):
    """Names of the tests ctest reports as failed (or timed out / not run)."""
    names = []
    m = re.search(r"The following tests FAILED:\n(.*?)(?:\n\S|\Z)", out, re.S)
    if m:
        for line in m.group(1).splitlines():
            mm = re.match(r"\s*\d+ - (\S+)", line)
            if mm:
                names.append(mm.group(1))
    return names


def run_tests(build, regex, env):
    p = subprocess.run(["ctest", "--test-dir", build, "-j", JOBS, "-R", regex],
                       capture_output=True, text=True, env=env)
    ran = re.findall(r"Test\s+#\d+: (\S+)", p.stdout)
    return p.returncode, failed_tests(p.stdout), ran, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scratch")
    ap.add_argument("--only")
    a = ap.parse_args()
    muts = MUTATIONS
    if a.only:
        want = set(a.only.split(","))
        muts = [m for m in MUTATIONS if m[0] in want]
    scratch = a.scratch or tempfile.mkdtemp(prefix="cllm-mutation-")
    src, build = os.path.join(scratch, "src-copy"), os.path.join(scratch, "build")
    t0 = time.time()
    env = dict(os.environ, CLLM_TESTDATA=os.path.abspath(TESTDATA), CLLM_TUNE="off",
               CLLM_ORACLE_QUICK="1", PYTHONDONTWRITEBYTECODE="1")
    try:
        if os.path.exists(src):
            shutil.rmtree(src)
        copy_repo(src)
        sh(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release"], env=env)
        targets = sorted({t for m in muts for t in m[4]})
        sh(["cmake", "--build", build, "-j", JOBS, "--target"] + targets, env=env)
        regexes = sorted({m[5] for m in muts})
        print("baseline (unmutated) after %.0f s" % (time.time() - t0), flush=True)
        for rx in regexes:
            rc, failed, ran, out = run_tests(build, rx, env)
            if rc != 0 or not ran:
                sys.stdout.write(out[-4000:])
                raise SystemExit("run_mutations: baseline fails or selects nothing: %s %s"
                                 % (rx, failed))
        results = []
        for name, rel, old, new, tgts, rx in muts:
            path = os.path.join(src, rel)
            text = open(path).read()
            if text.count(old) != 1:
                results.append((name, None, "original text found %d times in %s"
                                % (text.count(old), rel)))
                continue
            try:
                with open(path, "w") as f:
                    f.write(text.replace(old, new))
                b = sh(["cmake", "--build", build, "-j", JOBS, "--target"] + tgts, env=env,
                       check=False)
                if b.returncode != 0:
                    results.append((name, ["(build failed)"], "mutant does not compile"))
                    continue
                rc, failed, ran, out = run_tests(build, rx, env)
                results.append((name, failed, "ran: " + " ".join(ran)))
            finally:
                with open(path, "w") as f:
                    f.write(text)
            print("%-34s killed by: %s  (%.0f s)" % (name, " ".join(failed) if failed else
                                                     "NOBODY - survived", time.time() - t0),
                  flush=True)
        print("\n%-34s %s" % ("mutation", "killed by"))
        survived = 0
        for name, failed, note in results:
            if not failed or failed == ["(build failed)"]:
                survived += 1
                print("%-34s SURVIVED (%s)" % (name, note))
            else:
                print("%-34s %s" % (name, " ".join(failed)))
        print("%d mutations, %d survived, %.0f s" % (len(results), survived, time.time() - t0))
        return 1 if survived else 0
    finally:
        if not a.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
