#!/usr/bin/python3
"""GGUF files written by `cllm quantize`, run by cllm.

Oracles: llama2.c's greedy goldens for stories260K (testdata/stories260K/golden.json)
and the Hugging Face folders' own logits (the HF loader is checked against a numpy reference by
tests/oracle).
  1. stories260K-hf -> f32 GGUF (llama arch, q/k rows permuted as llama.cpp's converter does):
     `cllm run` must print the golden text and ids exactly.
  2. q8_0 GGUF: the first >= 10 golden ids of every case, and >= 120 of the 377, reproduced.
  3. f32 GGUF logits == HF folder logits within 1e-5 (max |diff| / max |ref|) for stories260K
     and tiny random models of every architecture (llama GQA, Llama-3 rope scaling with
     rope_freqs, qwen2 with biases, gpt2 with the fused attn_qkv).
  4. Quantized vs f32 logits, teacher-forced over a text: mean KL(p_f32 || p_quant) and top-1
     agreement, printed per type; bounds: KL <= ~2x the measured value per (model, type)
     (KL_MAX), q8_0 top-1 >= 98% on stories260K and on the tiny qwen2
     (64-wide rows); on a 256-wide qwen2 (where the K-quants are used, not their fallbacks;
     random weights make it far more sensitive than a trained model) q8_0 >= 95% and the KL
     must grow from f16 to bf16, q8_0, q6_k, q4_k_m.
  5. GGUF -> GGUF re-quantization and `--quant` at load.
  6. The tokenizer written into the GGUF (tokenizer.ggml.*) tokenizes like the Hugging Face
     tokenizer it came from (llama3, qwen3: tokenizer.json byte-level BPE with the pre-tokenizer
     name guessed from the split regex; mistral, stories260K: SentencePiece-style BPE whose
     scores are derived from the merge ranks; qwen2, gpt2: vocab.json + merges.txt), on a set
     of tricky strings.

usage: test_gguf_models.py CLLM GGUF_LOGITS
"""
import json
import os
import sys
import shutil
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "io"))  # gguf_py
from clitest import TESTDATA, check, finish, run  # noqa: E402
import make_tiny_models  # noqa: E402
import gguf_py  # noqa: E402

LOGITS = sys.argv[2]
STORIES = os.path.join(TESTDATA, "stories260K-hf")
TYPES = ["f32", "f16", "bf16", "q8_0", "q6_k", "q4_k_m", "q4_0"]
golden = json.load(open(os.path.join(TESTDATA, "stories260K", "golden.json")))
tmp = tempfile.mkdtemp(prefix="cllm-gguf-")


def quantize(src, name, qtype):
    out = os.path.join(tmp, f"{name}-{qtype}.gguf")
    rc, _, err = run("quantize", src, out, qtype)
    check(f"quantize {name} {qtype}", rc == 0 and os.path.exists(out), err.decode()[-400:])
    return out


def logits(model, ids, quant=None):
    import subprocess
    out = os.path.join(tmp, "logits.bin")
    args = [LOGITS, model, ",".join(map(str, ids)), out] + ([quant] if quant else [])
    p = subprocess.run(args, capture_output=True, timeout=300)
    if p.returncode != 0:
        check(f"logits {os.path.basename(model)}", False, p.stderr.decode()[-400:])
        return None
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), -1).astype(np.float64)


def compare(ref, got):
    """mean KL(softmax(ref) || softmax(got)) and top-1 agreement."""
    def logp(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    lp, lq = logp(ref), logp(got)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1).mean()
    top1 = (ref.argmax(axis=1) == got.argmax(axis=1)).mean()
    return kl, top1


# 1. f32 GGUF reproduces the goldens exactly
f32 = quantize(STORIES, "stories", "f32")
for case in golden["cases"]:
    n_new = len(case["ids"]) - len(case["prompt_ids"])
    rc, out, err = run("run", "-m", f32, "-p", case["prompt"], "-n", str(n_new), "--temp", "0", "-t", "2")
    check(f"gguf f32 golden text {case['prompt']!r}", rc == 0 and out == case["stdout"].encode(),
          f"rc={rc}\n got: {out[:200]!r}\nwant: {case['stdout'][:200]!r}\n{err.decode()[-300:]}")
    ids = ",".join(map(str, case["prompt_ids"]))
    rc, out, err = run("run", "-m", f32, "--prompt-ids", ids, "-n", str(n_new), "--temp", "0", "--ids")
    want = case["ids"][len(case["prompt_ids"]):]
    check(f"gguf f32 golden ids {case['prompt']!r}", rc == 0 and out.split() == [str(i).encode() for i in want])

# 2. q8_0: golden tokens matched
q8 = quantize(STORIES, "stories", "q8_0")
q8_same = q8_total = 0
for case in golden["cases"]:
    want = case["ids"][len(case["prompt_ids"]):]
    rc, out, err = run("run", "-m", q8, "--prompt-ids", ",".join(map(str, case["prompt_ids"])),
                       "-n", str(len(want)), "--temp", "0", "--ids")
    got = [int(x) for x in out.split()]
    same = sum(1 for a, b in zip(got, want) if a == b)
    prefix = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    print(f"q8_0 golden {case['prompt']!r}: {same}/{len(want)} tokens equal, first {prefix} identical")
    check(f"q8_0 run {case['prompt']!r}", rc == 0 and len(got) == len(want))
    # measured: the first 114, 15 and 118 ids identical (248 of 377 equal) with the default
    # kernels, 67, 15 and 71 (155 of 377) with the AMX-INT8 family: greedy paths of a correct
    # q8_0 model part from f32 at a near-tie; a broken one parts at once
    check(f"q8_0 golden {case['prompt']!r}: first >= 10 ids identical", prefix >= 10, str(prefix))
    q8_same += same
    q8_total += len(want)
check("q8_0 golden: >= 120 of 377 ids equal", q8_total != 377 or q8_same >= 120, f"{q8_same}/{q8_total}")

# 3 + 4 on stories260K: the text is golden case 0
text = golden["cases"][0]["ids"]
ref = logits(STORIES, text)
g32 = logits(f32, text)
if ref is not None and g32 is not None:
    err = np.abs(ref - g32).max() / np.abs(ref).max()
    check("stories260K f32 gguf logits == HF", err <= 1e-5, f"rel err {err:.2e}")


# Upper bounds on the mean KL divergence per (model, type): about 2x what was measured (floor 1e-5),
# deterministic on a given kernel family. Measured: stories260K f16 1e-6, bf16 7.0e-5, q8_0 4.1e-4,
# q6_k 4.1e-4 (falls back to q8_0), q4_k_m 8.0e-3, q4_0 4.2e-2; qwen2-bias-tied 3e-6, 2.3e-4,
# 2.9e-3, 2.9e-3, 6.9e-2, 0.28; qwen2-256 1.8e-5, 1.2e-3, 1.8e-2, 0.13, 1.24, 1.66.
KL_MAX = {
    "stories260K": {"f16": 1e-5, "bf16": 1.5e-4, "q8_0": 1e-3, "q6_k": 1e-3, "q4_k_m": 0.02,
                    "q4_0": 0.09},
    "qwen2-bias-tied": {"f16": 1e-5, "bf16": 5e-4, "q8_0": 6e-3, "q6_k": 6e-3, "q4_k_m": 0.14,
                        "q4_0": 0.6},
    "qwen2-256": {"f16": 4e-5, "bf16": 2.5e-3, "q8_0": 0.04, "q6_k": 0.27, "q4_k_m": 2.5,
                  "q4_0": 3.4},
}


def quality(name, src, ref, text, bound_q8):
    kls = {}
    for t in TYPES[1:]:
        path = quantize(src, name, t)
        got = logits(path, text)
        if got is None or ref is None:
            continue
        kl, top1 = compare(ref, got)
        kls[t] = kl
        print(f"{name:20s} {t:7s} KL {kl:.6f}  top-1 {100 * top1:6.2f}%")
        if t == "q8_0":
            check(f"{name} q8_0 top-1 >= {bound_q8:.0%}", top1 >= bound_q8, f"{top1:.4f}")
        check(f"{name} {t} KL finite", np.isfinite(kl))
        bound = KL_MAX.get(name, {}).get(t)
        if bound is not None:
            check(f"{name} {t} KL <= {bound:g}", kl <= bound, f"{kl:.6f}")
    return kls


quality("stories260K", STORIES, ref, text, 0.98)
got = logits(STORIES, text, "q8_0")
if got is not None and ref is not None:
    kl, top1 = compare(ref, got)
    print(f"{'stories260K':20s} --quant q8_0 KL {kl:.6f}  top-1 {100 * top1:6.2f}%")
    check("--quant q8_0 top-1 >= 98%", top1 >= 0.98, f"{top1:.4f}")

# 5. GGUF -> GGUF: f32 GGUF to q8_0 gives the same tensors as HF -> q8_0 (same rows, same
# quantizer; the f32 GGUF's q/k rows are already permuted and must not be permuted again)
q8b = os.path.join(tmp, "stories-q8_0-from-gguf.gguf")
rc, _, err = run("quantize", f32, q8b, "q8_0")
check("gguf -> gguf quantize", rc == 0, err.decode()[-300:])
if rc == 0:
    a, b = gguf_py.parse(open(q8, "rb").read()), gguf_py.parse(open(q8b, "rb").read())
    names = [t["name"] for t in a["infos"]]
    check("gguf -> gguf same tensor names", names == [t["name"] for t in b["infos"]])
    same = all(gguf_py.tensor_bytes(a, n) == gguf_py.tensor_bytes(b, n) for n in names)
    check("gguf -> gguf q8_0 same tensor data", same)
    check("gguf -> gguf keeps the tokenizer", [k for k, _, _ in a["kvs"] if k.startswith("tokenizer.")]
          == [k for k, _, _ in b["kvs"] if k.startswith("tokenizer.")])

# writing over the input file: the output goes to OUT.part and is renamed at the end
inplace = os.path.join(tmp, "inplace.gguf")
shutil.copy(f32, inplace)
rc, _, err = run("quantize", inplace, inplace, "q8_0")
rc2, out, _ = run("run", "-m", inplace, "--prompt-ids", "1,403,407", "-n", "4", "--temp", "0", "--ids")
check("quantize IN == OUT", rc == 0 and rc2 == 0 and len(out.split()) == 4 and
      not os.path.exists(inplace + ".part"), err.decode()[-300:])

# 3 + 4 on tiny random models (written to the temp dir)
models = make_tiny_models.base_models()
rng = np.random.default_rng(5)
for name in ["llama-gqa", "llama3-ropescaling", "qwen2-bias-tied", "gpt2-tied", "mistral"]:
    cfg, tensors = models[name]
    folder = os.path.join(tmp, name)
    make_tiny_models.write_model(folder, cfg, tensors, "F32")
    ids = [1] + list(rng.integers(3, cfg["vocab_size"], 47))
    href = logits(folder, ids)
    gpath = quantize(folder, name, "f32")
    g = logits(gpath, ids)
    if href is not None and g is not None:
        err = np.abs(href - g).max() / np.abs(href).max()
        check(f"{name} f32 gguf logits == HF", err <= 1e-5, f"rel err {err:.2e}")
    if name == "qwen2-bias-tied":
        quality(name, folder, href, ids, 0.98)

# a qwen2-shaped model with 256-wide rows, so the K-quants (256-element blocks) are used
# rather than their fallbacks
cfg, tensors = make_tiny_models.llama_like("Qwen2ForCausalLM", 21, vocab=512, hidden=256,
                                           inter=512, layers=2, heads=4, kv_heads=2,
                                           qkv_bias=True)
folder = os.path.join(tmp, "qwen2-256")
make_tiny_models.write_model(folder, cfg, tensors, "F32")
ids = [1] + list(rng.integers(3, 512, 63))
kls = quality("qwen2-256", folder, logits(folder, ids), ids, 0.95)
# more bits, less divergence (every type is used as itself here: rows are 256 wide)
order = ["f16", "bf16", "q8_0", "q6_k", "q4_k_m"]
check("qwen2-256 KL grows as bits shrink", all(kls.get(a, 1e9) < kls.get(b, 0) for a, b in
                                               zip(order, order[1:])), str(kls))

# 6. tokenizers: HF folder vs the GGUF cllm wrote from it, id for id
TEXTS = ["Hello world", "  leading spaces and   runs   of spaces ", "line one\nline two\n\n\ttab",
         "numbers 1234567 and 3.14159, 2024-11-22", "caf\u00e9 na\u00efve \u00fcber \u00c5ngstr\u00f6m",
         "\u4f60\u597d\uff0c\u4e16\u754c \u3053\u3093\u306b\u3061\u306f", "emoji \U0001f600\U0001f680!",
         "code: if (x != y) { return a->b[i]; } // done", "I'm, you're, they'll; DON'T",
         "<s> special </s> <|endoftext|> <|im_start|>user", "", " ", "\n\n\n", "Once upon a time"]
jsonl = "".join(json.dumps(t) + "\n" for t in TEXTS).encode()


def tokenizer_folder(name, src, arch, bos, eos):
    folder = os.path.join(tmp, "tok-" + name)
    os.makedirs(folder, exist_ok=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"]:
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), folder)
    if os.path.exists(os.path.join(folder, "tokenizer.json")):
        tj = json.load(open(os.path.join(folder, "tokenizer.json")))
        ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj["added_tokens"]]
    else:
        ids = list(json.load(open(os.path.join(folder, "vocab.json"))).values())
        tc = os.path.join(folder, "tokenizer_config.json")
        if os.path.exists(tc):
            ids += [int(i) for i in json.load(open(tc)).get("added_tokens_decoder", {})]
    cfg, tensors = make_tiny_models.llama_like(arch, 3, vocab=max(ids) + 1, hidden=32, inter=32,
                                               layers=1, heads=4, kv_heads=4, tied=True,
                                               qkv_bias=arch == "Qwen2ForCausalLM")
    cfg = dict(cfg, bos_token_id=bos, eos_token_id=eos)
    tensors = [(n, a) for n, a in tensors if n != "lm_head.weight"]
    make_tiny_models.write_model(folder, cfg, tensors, "F16")
    return folder


TOKDIR = os.path.join(TESTDATA, "tokenizers")
for name, src, arch, bos, eos in [
        ("llama3", os.path.join(TOKDIR, "llama3"), "LlamaForCausalLM", 128000, 128001),
        ("qwen3", os.path.join(TOKDIR, "qwen3"), "Qwen2ForCausalLM", None, 151645),
        ("mistral-spm", os.path.join(TOKDIR, "mistral-v0.1-spm"), "LlamaForCausalLM", 1, 2),
        ("qwen2-files", os.path.join(TOKDIR, "qwen2"), "Qwen2ForCausalLM", None, 151643),
        ("gpt2-files", os.path.join(TOKDIR, "gpt2"), "LlamaForCausalLM", 50256, 50256),
        ("stories260K", STORIES, None, None, None)]:
    folder = STORIES if name == "stories260K" else tokenizer_folder(name, src, arch, bos, eos)
    g = quantize(folder, "tok-" + name, "q8_0")
    rc1, hf, e1 = run("tokenize", "-m", folder, "--jsonl", stdin=jsonl)
    rc2, gg, e2 = run("tokenize", "-m", g, "--jsonl", stdin=jsonl)
    hf_l, gg_l = hf.decode().splitlines(), gg.decode().splitlines()
    bad = [TEXTS[i] for i, (a, b) in enumerate(zip(hf_l, gg_l)) if a != b]
    check(f"tokenizer {name}: gguf == tokenizer.json", rc1 == 0 and rc2 == 0 and
          len(hf_l) == len(TEXTS) and not bad and len(gg_l) == len(hf_l),
          f"rc {rc1} {rc2} differ on {bad[:3]} {e1.decode()[-200:]} {e2.decode()[-200:]}")
    # the chat template travels in the GGUF: `cllm template` renders the same prompt from both
    if os.path.exists(os.path.join(folder, "tokenizer_config.json")) and \
            "chat_template" in json.load(open(os.path.join(folder, "tokenizer_config.json"))):
        conv = os.path.join(tmp, "conv.json")
        with open(conv, "w") as f:
            json.dump([{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "Hi <b>there</b>"}], f)
        r1, t1, _ = run("template", "-m", folder, "--messages", conv, "--add-generation-prompt")
        r2, t2, e2t = run("template", "-m", g, "--messages", conv, "--add-generation-prompt")
        check(f"template {name}: gguf == tokenizer_config.json", r1 == 0 and r2 == 0 and
              t1 == t2 and len(t1) > 0, f"rc {r1} {r2} {e2t.decode()[-200:]}")
    if bad:
        for i, t in enumerate(TEXTS):
            if t in bad[:2]:
                print("  ", repr(t), "\n   hf  ", hf_l[i][:200], "\n   gguf", gg_l[i][:200])

shutil.rmtree(tmp)
finish()
