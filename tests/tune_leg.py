#!/usr/bin/python3
"""tune_leg.py - run a test with one matmul kernel family forced (CLLM_TUNE), or skip it.

  tune_leg.py SPEC CMD [ARGS...]

SPEC is a CLLM_TUNE value such as "bf16=avx512bf16" or "*=avx2". When this CPU lacks the
instructions a named family needs (read from /proc/cpuinfo, independently of cllm's own
detection), exits 77 (CTest SKIP_RETURN_CODE) with the reason; else runs CMD with CLLM_TUNE=SPEC
and exits with its status. Used to run the invariance and oracle suites once per family."""
import os
import sys

NEEDS = {
    "scalar": [],
    "avx2": ["avx2", "fma", "f16c"],
    "avx512": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"],
    "avx512bf16": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"],
    "amx": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile",
            "amx_int8"],
}


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    spec, cmd = sys.argv[1], sys.argv[2:]
    flags = cpu_flags()
    for item in spec.split(","):
        dtype, family = item.split("=", 1)[0], item.split("=", 1)[1].split("/", 1)[0]
        needs = NEEDS[family] + (["amx_bf16", "avx512_bf16"] if family == "amx" and dtype in ("bf16", "*") else [])
        missing = [f for f in needs if f not in flags]
        if missing:
            print("SKIPPED: CPU-FEATURE: CLLM_TUNE=%s needs %s, which this CPU lacks" % (spec, " ".join(missing)))
            return 77
    env = dict(os.environ, CLLM_TUNE=spec)
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(main())
