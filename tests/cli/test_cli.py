#!/usr/bin/python3
"""End-to-end tests of the `cllm` command on the stories260K model.

Oracle: testdata/stories260K/golden.json, greedy outputs of llama2.c's run.c (nobody
here wrote it). `cllm run -p PROMPT -n N --temp 0` must print exactly the golden stdout, byte for
byte, and `--ids` must print exactly the golden generated ids. Also checks seeded sampling is
reproducible, stop strings, the --help texts, and that bad command lines fail cleanly.

usage: test_cli.py PATH_TO_CLLM   (test data from $CLLM_TESTDATA or testdata/)
"""
import json
import os

from clitest import TESTDATA, check, finish, run

MODEL = os.path.join(TESTDATA, "stories260K-hf")

golden = json.load(open(os.path.join(TESTDATA, "stories260K", "golden.json")))
for case in golden["cases"]:
    n_new = len(case["ids"]) - len(case["prompt_ids"])
    rc, out, err = run("run", "-m", MODEL, "-p", case["prompt"], "-n", str(n_new), "--temp", "0", "-t", "2")
    check(f"golden text {case['prompt']!r}", rc == 0 and out == case["stdout"].encode(),
          f"rc={rc}\n got: {out[:200]!r}\nwant: {case['stdout'][:200]!r}\n{err.decode()[-500:]}")
    check(f"timings on stderr {case['prompt']!r}", b"prompt eval time" in err and b"eval time" in err)
    ids = ",".join(map(str, case["prompt_ids"]))
    rc, out, err = run("run", "-m", MODEL, "--prompt-ids", ids, "-n", str(n_new), "--temp", "0", "--ids")
    want = " ".join(map(str, case["ids"][len(case["prompt_ids"]):]))
    check(f"golden ids {case['prompt']!r}", rc == 0 and out.decode().strip() == want,
          f"rc={rc} got {out[:120]!r}")

# seeded sampling: same seed -> same text; different seeds -> (almost surely) different text
args = ["run", "-m", MODEL, "-p", "Lily had a", "-n", "60", "--temp", "1.0", "--top-k", "40",
        "--top-p", "0.95", "--min-p", "0.05", "--repeat-penalty", "1.1"]
a = run(*args, "--seed", "42")
b = run(*args, "--seed", "42")
c = run(*args, "--seed", "7")
check("seed reproducible", a[0] == 0 and b[0] == 0 and a[1] == b[1], f"{a[1][:80]!r} vs {b[1][:80]!r}")
check("seeds differ", c[0] == 0 and a[1] != c[1], f"rc={c[0]}")
check("sampled text starts with prompt", a[1].startswith(b"Lily had a"))

# stop string: greedy output of case 0 contains "Lily"; stop there and print nothing of it
full = golden["cases"][0]["stdout"]
rc, out, err = run("run", "-m", MODEL, "-p", "Once upon a time", "-n", "124", "--temp", "0", "--stop", "Lily")
cut = full.index("Lily", len("Once upon a time"))
check("stop string", rc == 0 and out.decode() == full[:cut] + "\n", f"{out[:120]!r}")
check("stop reason", b"stopped by stop string" in err)
rc, out, err = run("run", "-m", MODEL, "-p", "Once upon a time", "-n", "124", "--temp", "0", "--stop", "\\n")
nl = full.index("\n")
check("stop string with escape", rc == 0 and out.decode() == full[:nl] + "\n", f"{out[:120]!r}")

# help texts document every flag
for sub in ("run", "info", "bench"):
    rc, out, _ = run(sub, "--help")
    check(f"{sub} --help", rc == 0 and b"usage" in out)
rc, out, _ = run("--help")
check("--help", rc == 0 and b"run" in out and b"bench" in out)

# info
rc, out, _ = run("info", "-m", MODEL)
check("info", rc == 0 and b"LlamaForCausalLM" in out and b"kv heads:           4" in out, out.decode())

# bad command lines: exit code 1 exactly (the CLI's error exit; a sanitizer's or a crash's
# exit code is something else) with a message
for bad in (["run"], ["run", "-m", MODEL], ["run", "-m", MODEL, "-p", "x", "-n", "abc"],
            ["run", "-m", MODEL, "-p", "x", "--temp"], ["run", "-m", MODEL, "-p", "x", "--bogus"],
            ["run", "-m", "/nonexistent", "-p", "x"], ["frobnicate"],
            ["run", "-m", MODEL, "--prompt-ids", "1,99999", "--ids"],
            ["run", "-m", MODEL, "-p", "x", "-n", "100000"],
            ["run", "-m", MODEL, "-p", "x", "--kv-type", "q4"], ["bench", "-m", MODEL, "-p", "100000"]):
    rc, out, err = run(*bad)
    check(f"bad args {bad[1:]}", rc == 1 and b"error" in err, f"rc={rc} err={err[:200]!r}")

finish()
