"""Smoke test of `cllm bench --serve`: a tiny offline serving benchmark must succeed and report
output tokens/s (argv[1]: the cllm binary; CLLM_TESTDATA: the test data folder)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testdata import td_path  # noqa: E402  (tests/testdata.py)

cllm = sys.argv[1]
model = td_path("stories260K-hf")
cmd = [cllm, "bench", "--serve", "-m", model, "--requests", "8", "--prompt-len", "16",
       "--gen-len", "8", "--concurrency", "4", "-t", "1"]
p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
if p.returncode != 0:
    sys.exit("FAIL: exit code %d" % p.returncode)
for needle in ("output tokens/s", "requests/s", "TTFT", "TPOT", "single-stream decode"):
    if needle not in p.stdout:
        sys.exit("FAIL: output does not name %r" % needle)
h = subprocess.run([cllm, "bench", "--serve", "--help"], capture_output=True, text=True)
if h.returncode != 0 or "--shared-prefix" not in h.stdout:
    sys.exit("FAIL: --help")
bad = subprocess.run([cllm, "bench", "--serve", "-m", model, "--bogus"], capture_output=True,
                     text=True)
if bad.returncode != 1 or len(bad.stderr.strip().splitlines()) != 1:
    sys.exit("FAIL: unknown option should fail with one line, exit 1")
print("OK")
