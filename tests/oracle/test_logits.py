"""Checks the C engine's logits against the numpy reference (ref_forward.py) on
tiny random models covering each supported architecture feature
(make_tiny_models.py: GPT-2 tied/untied and with/without name prefix, Llama
GQA, Qwen2 biases + tied embeddings, Llama-3 rope scaling with explicit
head_dim, Mistral with and without an active sliding window; f32 plus bf16/f16
copies and copies with misaligned tensor data).

For every model (and for a subset, ALL_LEVELS, at every CPU kernel level:
CLLM_CPU unset, scalar, avx2, avx512) it runs
    cllm run -m DIR --prompt-ids P -n 16 --temp 0 --ids --dump-logits OUT -t 2
whose contract is: stdout = the generated ids; OUT = float32 rows of
vocab_size logits, row i being the logits generated token i was chosen from.
The reference is then run teacher-forced on prompt + generated ids, and each
row is compared with error = max|engine - ref| / max|ref|:
  - f32 weights: <= 1e-5 (both sides compute in >= f32). Measured on the tiny models at every
    CPU level and in every variant: 2.6e-7 .. 7.3e-7 (scalar llama-gqa the worst), so 1e-5 is
    a 14x margin; it was 1e-4, under which an RMSNorm with eps outside the square root
    (errors 1.4e-5 .. 4.4e-5 with the old eps 1e-5 models) passed.
  - bf16/f16 weights: <= 2e-2. The reference uses the same rounded weights
    but computes in float64; the engine may additionally round activations
    (or the KV cache) to bf16, 8 bits of mantissa, relative step 3.9e-3, and
    that error accumulates over layers. Rounding every matmul input to bf16
    inside the reference moves these models' logits by up to 1.2e-2, so 2e-2
    admits that design with some margin while still catching real mistakes
    (a wrong RoPE pairing, GQA mapping, norm or missing bias moves them by
    1e-1..1e0). Measured with the first engine build: bf16 ~4e-3, f16 ~6e-4.
A few extra runs (VARIANTS) repeat this with small prefill chunks and KV
blocks (-b, --block-size), one thread, and a half-precision KV cache, so
paging, chunked prefill and the KV dtypes are checked against the same oracle.
The pretrained stories260K-hf (from the test data, not copied; symlinked
without its tokenizer) is run the same way from its 5-id golden prompt for
124 tokens, and its ids must also equal
llama2.c's golden output exactly.
Greedy ids must equal the reference argmax unless the reference's top logit
and the engine's choice are within the tolerance (a near-tie; reported, not
failed). Random weights make the model itself the oracle for structure (no
pretrained data needed), and random prompts of >= 32 tokens exercise
attention over many positions.

Usage: test_logits.py CLLM_BINARY   (or CLLM_BIN in the environment)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import make_tiny_models  # noqa: E402
import ref_forward  # noqa: E402

N_GEN = 16
PROMPT_LEN = 40
TOL = {"F32": 1e-5, "BF16": 2e-2, "F16": 2e-2}
# "" = the engine's own choice (best the CPU has); the others force lower levels
CPU_MODES = ["", "scalar", "avx2", "avx512"]
# A kernel family forced by CLLM_TUNE (tests/tune_leg.py) is checked at the CPU's full level only:
# the CLLM_CPU masks would take away the instructions that family needs.
if os.environ.get("CLLM_TUNE", "off") not in ("", "off", "on", "auto", "force"):
    CPU_MODES = [""]
# tests/mutation/run_mutations.py: the default level only (the mutations are not in the kernels'
# per-level code; this keeps a mutation's run short)
if os.environ.get("CLLM_ORACLE_QUICK") == "1":
    CPU_MODES = [""]
# models run at every CPU level (the rest at the default level only, to keep the test
# fast when the machine is busy): every weight dtype, GPT-2's LayerNorm/GELU, biases,
# odd-address weights and the sliding window go through each kernel set
ALL_LEVELS = {"llama-gqa", "llama-gqa-bf16", "llama-gqa-f16", "gpt2-tied",
              "qwen2-bias-tied-bf16", "llama-gqa-bf16-misaligned", "mistral-swa"}
# extra runs that exercise other engine paths on the same models:
# (model, extra cllm args, tolerance or None for the dtype's default)
VARIANTS = [
    # prompt prefilled in chunks of 7 tokens into 4-token KV blocks: chunk and block
    # boundaries fall mid-sequence, so paging and chunked prefill must be right
    ("llama-gqa", ["-b", "7", "--block-size", "4"], None),
    ("gpt2-untied", ["-b", "5", "--block-size", "3"], None),
    ("llama3-ropescaling", ["-b", "1"], None),  # prompt fed one token at a time
    ("mistral", ["-t", "1"], None),
    ("mistral-swa", ["-b", "7", "--block-size", "4"], None),  # window edge crosses blocks
    # half-precision KV cache on f32 weights: K/V rounded to 8 (bf16) or 11 (f16) mantissa bits
    ("llama-gqa", ["--kv-type", "bf16"], 2e-2),
    ("qwen2-bias-tied", ["--kv-type", "f16"], 2e-2),
]
RUN_TIMEOUT = 30


def run_engine(binary, model_dir, prompt, n_gen, out_bin, cpu_mode, extra):
    """Run cllm; returns (ids, flat float32 logits or None, error text or None)."""
    env = dict(os.environ)
    env.pop("CLLM_CPU", None)
    if cpu_mode:
        env["CLLM_CPU"] = cpu_mode
    if os.path.exists(out_bin):
        os.unlink(out_bin)
    cmd = [binary, "run", "-m", model_dir, "--prompt-ids", ",".join(map(str, prompt)),
           "-n", str(n_gen), "--temp", "0", "--ids", "--dump-logits", out_bin, "-t", "2"] + extra
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, None, "timed out after %d s" % RUN_TIMEOUT
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines()
        # a sanitizer report's ERROR line says more than its tail
        key = [l for l in lines if "ERROR:" in l or "runtime error" in l] or lines[-3:]
        return None, None, "exit status %d: %s" % (p.returncode, " | ".join(key)[:500])
    try:
        ids = [int(s) for s in p.stdout.split()]
    except ValueError:
        return None, None, "stdout is not a list of ids: %r" % p.stdout[:200]
    if not os.path.exists(out_bin):
        return ids, None, "no logits file written"
    return ids, np.fromfile(out_bin, dtype="<f4"), None


class Subject:
    """A model under test: its folder, the reference model, the prompt and how
    many tokens to generate, and the reference logits per generated sequence."""

    def __init__(self, name, folder, dtype, prompt, n_gen, golden=None):
        self.name, self.folder, self.dtype = name, folder, dtype
        self.model = ref_forward.load_model(folder)
        self.prompt, self.n_gen, self.golden = prompt, n_gen, golden
        with open(os.path.join(folder, "config.json")) as f:
            eos = json.load(f).get("eos_token_id")
        self.eos = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        self._ref = {}

    def reference(self, ids):
        """Reference logits rows for generated ids (teacher-forced), cached."""
        key = tuple(ids)
        if key not in self._ref:
            full = self.prompt + list(ids[:-1])
            self._ref[key] = ref_forward.teacher_forced_logits(self.model, full)[len(self.prompt) - 1:]
        return self._ref[key]


def check_run(t, binary, subj, tol, cpu_mode, tmp, extra=()):
    """One engine run vs the reference. Returns the measured max error or None."""
    label = "%s [CLLM_CPU=%s%s]" % (subj.name, cpu_mode or "default", "".join(" " + a for a in extra))
    ids, flat, err = run_engine(binary, subj.folder, subj.prompt, subj.n_gen,
                                os.path.join(tmp, "logits.bin"), cpu_mode, list(extra))
    if not t.check(err is None, label + " run", err or ""):
        return None
    vocab = subj.model.vocab
    n = len(ids)
    # the engine may stop early only because it produced an EOS id
    ok_len = n == subj.n_gen or (0 < n < subj.n_gen and ids[-1] in subj.eos)
    if not t.check(ok_len, label + " number of ids", "got %d ids: %s" % (n, ids)):
        return None
    if not t.check(flat.size == n * vocab, label + " logits file size",
                   "%d floats, want %d rows x %d" % (flat.size, n, vocab)):
        return None
    rows = flat.reshape(n, vocab).astype(np.float64)
    ref = subj.reference(ids)

    scale = np.max(np.abs(ref), axis=1)
    errs = np.max(np.abs(rows - ref), axis=1) / scale
    worst = int(np.argmax(errs))
    t.check(bool(np.all(np.isfinite(rows))), label + " logits finite")
    t.check(errs[worst] <= tol, label + " logits error",
            "row %d: %.3g > %.3g (max|ref| %.3g)" % (worst, errs[worst], tol, scale[worst]))

    near_ties = []
    for i, tok in enumerate(ids):
        best = int(np.argmax(ref[i]))
        if tok == best:
            continue
        gap = (ref[i][best] - ref[i][tok]) / scale[i] if 0 <= tok < vocab else np.inf
        if t.check(gap <= tol, label + " greedy id %d" % i,
                   "engine %d, reference argmax %d, relative gap %.3g" % (tok, best, gap)):
            near_ties.append((i, tok, best, gap))
    for i, tok, best, gap in near_ties:
        print("  near-tie %s step %d: engine %d vs reference %d (gap %.2g)"
              % (label, i, tok, best, gap))
    if subj.golden is not None:
        # a pretrained model whose greedy output is known from llama2.c: must match exactly
        t.check(subj.prompt + ids == subj.golden, label + " ids == llama2.c golden",
                "first difference at generated id %s" % next(
                    (i for i, (a, b) in enumerate(zip(ids, subj.golden[len(subj.prompt):])) if a != b),
                    None))
    return float(errs[worst])


def main():
    binary = common.cllm_binary(sys.argv)
    t = common.Tally()
    tmp = tempfile.mkdtemp(prefix="cllm-oracle-logits-")
    try:
        subjects = {}
        for i, (name, (folder, dtype)) in enumerate(
                make_tiny_models.make_all(os.path.join(tmp, "models")).items()):
            rng = np.random.default_rng(1000 + i)
            with open(os.path.join(folder, "config.json")) as f:
                vocab = json.load(f)["vocab_size"]
            # ids >= 3 keep BOS/EOS-like ids out of the prompt
            prompt = [int(x) for x in rng.integers(3, vocab, PROMPT_LEN)]
            subjects[name] = Subject(name, folder, dtype, prompt, N_GEN)

        # the pretrained stories260K (real weights, real attention patterns), checked
        # against llama2.c's greedy ids as well as the reference's logits
        data = common.testdata_dir()
        with open(os.path.join(data, "stories260K", "golden.json")) as f:
            case = json.load(f)["cases"][0]
        # symlinks to just the weights and config: this test is about the forward pass, so a
        # tokenizer.json the engine cannot load yet must not hide it (tokenizer tests own that)
        weights_only = os.path.join(tmp, "stories260K-hf")
        os.makedirs(weights_only)
        for fname in ("config.json", "model.safetensors"):
            os.symlink(os.path.join(os.path.abspath(data), "stories260K-hf", fname),
                       os.path.join(weights_only, fname))
        subjects["stories260K-hf"] = Subject(
            "stories260K-hf", weights_only, "F32", case["prompt_ids"],
            len(case["ids"]) - len(case["prompt_ids"]), golden=case["ids"])

        fmt = "%-26s %-5s %-8s %-10s %-9s %s"
        print(fmt % ("model", "dtype", "CLLM_CPU", "max err", "tolerance", "extra args"))
        runs = [(name, mode, [], None) for name in subjects
                for mode in (CPU_MODES if name in ALL_LEVELS else [""])]
        runs += [(name, "", extra, tol) for name, extra, tol in VARIANTS]
        for name, mode, extra, tol in runs:
            subj = subjects[name]
            tol = tol or TOL[subj.dtype]
            e = check_run(t, binary, subj, tol, mode, tmp, extra)
            print(fmt % (name, subj.dtype, mode or "default", "-" if e is None else "%.2e" % e,
                         "%.0e" % tol, " ".join(extra)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
