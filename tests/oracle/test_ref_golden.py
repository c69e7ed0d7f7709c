"""Checks the numpy reference forward pass (ref_forward.py) against outputs it
did not produce: llama2.c run.c's greedy continuations of stories260K
(stories260K/golden.json), replayed on the Hugging Face conversion in
stories260K-hf/. Exact token equality over 120+ generated tokens is a strong
check of RMSNorm, rotate_half RoPE, GQA, SwiGLU and tied embeddings - the parts
test_logits.py then trusts when it judges the C engine.

Also checks that the reference's two code paths agree (incremental decode with
a KV cache vs one teacher-forced causal pass), since test_logits.py uses the
latter.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import ref_forward  # noqa: E402


def main():
    data = common.testdata_dir()
    with open(os.path.join(data, "stories260K", "golden.json")) as f:
        golden = json.load(f)
    model = ref_forward.load_model(os.path.join(data, "stories260K-hf"))
    t = common.Tally()
    for case in golden["cases"]:
        prompt, want = case["prompt_ids"], case["ids"]
        n = len(want) - len(prompt)
        got, rows = ref_forward.greedy(model, prompt, n)
        full = list(prompt) + got
        first_bad = next((i for i, (a, b) in enumerate(zip(full, want)) if a != b), None)
        t.check(full == want, "golden %r greedy" % case["prompt"],
                "first mismatch at id index %s" % first_bad)

        # teacher-forced pass over the golden ids must give the same logits rows
        tf = ref_forward.teacher_forced_logits(model, want[:-1])[len(prompt) - 1:]
        diff = float(np.max(np.abs(tf - rows)))
        t.check(diff < 1e-9, "golden %r teacher-forced == incremental" % case["prompt"],
                "max abs diff %.3g" % diff)
        print("case %r: %d generated ids %s, teacher-forced diff %.2g"
              % (case["prompt"], n, "match" if full == want else "DIFFER", diff))
    t.finish()


if __name__ == "__main__":
    main()
