#!/usr/bin/python3
"""require.py - run a test only where what it needs is present, else report it skipped.

  require.py [--cpu LEVEL] [--program NAME]... [--env K=V]... -- CMD [ARGS...]

--cpu LEVEL (scalar, avx2, avx512): the CPU flags that CLLM_CPU=LEVEL needs, read from
/proc/cpuinfo independently of cllm's own detection; also sets CLLM_CPU=LEVEL for CMD (without
this check a CLLM_CPU=avx512 leg on a CPU without AVX-512 silently runs AVX2 and passes).
--program NAME: an executable that must be on PATH (clang for the fuzzers, node for the npm tests).
When something is missing, prints "SKIPPED: <reason>" and exits 77 (CTest SKIP_RETURN_CODE);
.ci/run's skip rule (scripts/ci_skips.py) only accepts CPU-feature skips. Otherwise execs CMD."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_leg import cpu_flags  # noqa: E402

CPU_NEEDS = {
    "scalar": [],
    "avx2": ["avx2", "fma", "f16c"],
    "avx512": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"],
}


def main():
    args = sys.argv[1:]
    if "--" not in args:
        print(__doc__)
        return 2
    split = args.index("--")
    opts, cmd = args[:split], args[split + 1:]
    env = dict(os.environ)
    i = 0
    while i < len(opts):
        key, val = opts[i], opts[i + 1]
        i += 2
        if key == "--cpu":
            missing = [f for f in CPU_NEEDS[val] if f not in cpu_flags()]
            if missing:
                print("SKIPPED: CPU-FEATURE: CLLM_CPU=%s needs %s, which this CPU lacks" %
                      (val, " ".join(missing)))
                return 77
            env["CLLM_CPU"] = val
        elif key == "--program":
            if shutil.which(val) is None:
                print("SKIPPED: PROGRAM: %s is not installed (not on PATH)" % val)
                return 77
        elif key == "--env":
            k, v = val.split("=", 1)
            env[k] = v
        else:
            print("require.py: unknown option %s" % key)
            return 2
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(main())
