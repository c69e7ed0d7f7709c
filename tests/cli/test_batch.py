#!/usr/bin/python3
"""`cllm run --input/--output`: a file of requests through the serving engine together.

Oracles: the stories260K golden ids (llama2.c run.c) for the golden prompts, and for the other
requests the single-sequence `cllm run --ids` path (itself checked against the goldens and the
numpy reference). Also checks the response format, per-request overrides and clean failures.

usage: test_batch.py PATH_TO_CLLM
"""
import json
import os
import tempfile

from clitest import TESTDATA, check, finish, run

MODEL = os.path.join(TESTDATA, "stories260K-hf")

golden = json.load(open(os.path.join(TESTDATA, "stories260K", "golden.json")))["cases"]
prompts = [c["prompt"] for c in golden] + ["Tom and Sue", "The dog ran to the", "One day, a big"]
with tempfile.TemporaryDirectory() as d:
    reqs = [{"prompt": p} for p in prompts]
    reqs[1]["max_generate_length"] = 17          # per-request override
    reqs.append({"prompt": "Lily had a", "temperature": 1.0, "seed": 5})  # sampled, seeded
    inp, out = os.path.join(d, "in.json"), os.path.join(d, "out.json")
    json.dump({"requests": reqs, "temperature": 0, "max_generate_length": 60}, open(inp, "w"))
    for extra in ([], ["--max-batched-tokens", "7", "--kv-memory", "160KiB"]):
        rc, _, err = run("run", "-m", MODEL, "--input", inp, "--output", out, "-t", "2", *extra)
        check(f"batch run {extra}", rc == 0, err.decode()[-400:])
        if rc:
            continue
        resp = json.load(open(out))["responses"]
        check("one response per request", len(resp) == len(reqs))
        for i, (r, q) in enumerate(zip(resp, reqs)):
            n = q.get("max_generate_length", 60)
            if i < len(golden):
                want = golden[i]["ids"][len(golden[i]["prompt_ids"]):][:n]
            else:
                args = ["run", "-m", MODEL, "-p", q["prompt"], "-n", str(n), "--ids"]
                args += ["--temp", str(q.get("temperature", 0)), "--seed", str(q.get("seed", 0))]
                want = [int(x) for x in run(*args)[1].split()]
            check(f"request {i} ids {extra}", r["output_ids"] == want, f"{r['output_ids'][:10]} vs {want[:10]}")
            check(f"request {i} fields", r["finish_reason"] in ("stop", "length") and
                  r["completion_tokens"] == len(r["output_ids"]) and r["prompt_tokens"] > 0 and
                  isinstance(r["output_text"], str))
        check("golden text", resp[0]["output_text"] == golden[0]["stdout"][len(golden[0]["prompt"]):][:len(resp[0]["output_text"])])
        if extra:
            check("preemption or chunking happened", b"requests" in err)
    bad = os.path.join(d, "bad.json")
    for doc in ('{"requests": []}', '{"requests": [{"nothing": 1}]}', 'not json',
                '{"requests": [{"prompt": "x", "max_generate_length": "many"}]}'):
        open(bad, "w").write(doc)
        rc, _, err = run("run", "-m", MODEL, "--input", bad, "--output", out)
        check(f"bad input {doc[:30]!r}", rc == 1 and b"error" in err, err)
    rc, _, err = run("run", "-m", MODEL, "--input", inp)
    check("--input without --output", rc == 1 and b"error" in err)

finish()
