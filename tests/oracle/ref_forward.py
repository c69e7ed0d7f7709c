"""Independent numpy reference forward pass for Hugging Face causal LMs.

This is the oracle the C engine's logits are checked against (test_logits.py),
and it is itself checked against outputs nobody in this project produced:
llama2.c's greedy continuations of stories260K (test_ref_golden.py).

Supported (Hugging Face semantics, math in float64 so the reference's own
rounding error is far below any tolerance we test):
  - LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM: RMSNorm, q/k/v/o
    projections (Qwen2 q/k/v biases; Llama attention_bias / mlp_bias flags),
    RoPE in rotate_half layout with optional Llama-3 frequency scaling,
    grouped-query attention, optional sliding window (Mistral), SwiGLU MLP,
    lm_head or tied embeddings.
  - GPT2LMHeadModel: learned positions, LayerNorm with bias, Conv1D weights
    stored [in, out], fused c_attn, GELU tanh approximation, tied or separate
    lm_head; tensor names with or without the "transformer." prefix.

Usage as a script (prints the generated ids, space-separated):
  ref_forward.py MODEL_DIR --prompt-ids 1,2,3 -n 16
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


# ----------------------------------------------------------------------------
# loading

def load_tensors(model_dir):
    """All tensors of a model folder: model.safetensors, or the shards listed in
    model.safetensors.index.json. Returns ({name: float32 array}, {name: dtype})."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    arrays, dtypes = {}, {}
    for name in files:
        for tname, (dt, arr) in safetensors_io.read(os.path.join(model_dir, name)).items():
            arrays[tname] = arr
            dtypes[tname] = dt
    return arrays, dtypes


def load_model(model_dir):
    """Build the reference model for a Hugging Face folder."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    arrays, _ = load_tensors(model_dir)
    arch = (cfg.get("architectures") or [""])[0]
    if arch in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
        return LlamaFamily(cfg, arrays, arch)
    if arch == "GPT2LMHeadModel":
        return GPT2(cfg, arrays)
    raise ValueError("unsupported architecture %r" % arch)


class KVCache:
    """Keys/values of all positions seen so far, per layer: [n_kv_heads, pos, head_dim]."""

    def __init__(self, n_layers):
        self.k = [None] * n_layers
        self.v = [None] * n_layers
        self.n = 0  # positions already in the cache

    def append(self, layer, k, v):
        if self.k[layer] is None:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = np.concatenate([self.k[layer], k], axis=1)
            self.v[layer] = np.concatenate([self.v[layer], v], axis=1)
        return self.k[layer], self.v[layer]


# ----------------------------------------------------------------------------
# shared pieces

def rms_norm(x, w, eps):
    # HF LlamaRMSNorm: x / sqrt(mean(x^2) + eps), then scale (no bias, no mean removal)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)  # biased variance, as torch
    return (x - mu) / np.sqrt(var + eps) * w + b


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    # GPT-2's "gelu_new": the tanh approximation, not the erf GELU
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(x, axis=-1):
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def attention(q, k, v, q_pos, k_pos, window=None):
    """Causal multi-head attention with grouped KV heads.

    q: [H, T, d]; k, v: [KV, S, d]; q_pos: [T], k_pos: [S] absolute positions.
    Query head h reads KV head h // (H/KV) (HF repeat_kv repeats each KV head
    H/KV times in a row). Returns [T, H*d]."""
    n_heads, t, d = q.shape
    group = n_heads // k.shape[0]
    k = np.repeat(k, group, axis=0)
    v = np.repeat(v, group, axis=0)
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)  # [H, T, S]
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window is not None:
        # HF sliding window: key j is visible to query i iff i - j < window
        allowed &= (q_pos[:, None] - k_pos[None, :]) < window
    scores = np.where(allowed[None], scores, -np.inf)
    out = softmax(scores) @ v  # [H, T, d]
    return out.transpose(1, 0, 2).reshape(t, n_heads * d)


# ----------------------------------------------------------------------------
# Llama / Mistral / Qwen2

def rope_inv_freq(head_dim, theta, scaling):
    """Per-pair rotation frequencies, with Llama-3 scaling when configured.

    Llama 3.1 (Meta's reference apply_scaling, same as HF "llama3"): wavelengths
    shorter than orig_ctx/high_freq_factor keep their frequency, longer than
    orig_ctx/low_freq_factor are divided by factor, and in between the two are
    blended linearly in orig_ctx/wavelen."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if not scaling:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "default":
        return inv_freq
    if kind != "llama3":
        raise ValueError("unsupported rope_scaling %r" % kind)
    factor = float(scaling["factor"])
    low = float(scaling["low_freq_factor"])
    high = float(scaling["high_freq_factor"])
    old_ctx = float(scaling["original_max_position_embeddings"])
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for f in inv_freq:
        wavelen = 2.0 * math.pi / f
        if wavelen < high_wavelen:
            out.append(f)
        elif wavelen > low_wavelen:
            out.append(f / factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append((1.0 - smooth) * f / factor + smooth * f)
    return np.array(out)


def apply_rope(x, pos, inv_freq):
    """rotate_half RoPE on x: [heads, T, d]; dimension i pairs with i + d/2."""
    ang = pos[:, None].astype(np.float64) * inv_freq[None, :]  # [T, d/2]
    cos, sin = np.cos(ang), np.sin(ang)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class LlamaFamily:
    def __init__(self, cfg, w, arch):
        self.arch = arch
        self.hidden = cfg["hidden_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_heads
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.vocab = cfg["vocab_size"]
        self.inv_freq = rope_inv_freq(self.head_dim, float(cfg.get("rope_theta", 10000.0)),
                                      cfg.get("rope_scaling"))
        # Mistral: sliding_window (null = full attention); Qwen2 only when use_sliding_window
        self.window = None
        if arch == "MistralForCausalLM":
            self.window = cfg.get("sliding_window")
        elif arch == "Qwen2ForCausalLM" and cfg.get("use_sliding_window"):
            raise ValueError("Qwen2 use_sliding_window is not modelled by this reference")
        # Qwen2 always has q/k/v biases and no o_proj bias; Llama has all four iff attention_bias
        attn_bias = cfg.get("attention_bias", False)
        mlp_bias = cfg.get("mlp_bias", False)

        def get(name):
            return w[name].astype(np.float64)

        def opt(name, present):
            return get(name) if present else None

        self.embed = get("model.embed_tokens.weight")  # [vocab, hidden]
        # tied: HF saves no lm_head.weight and reuses the embedding matrix
        self.lm_head = get("lm_head.weight") if "lm_head.weight" in w else self.embed
        self.norm = get("model.norm.weight")
        self.layers = []
        for i in range(self.n_layers):
            p = "model.layers.%d." % i
            qkv_bias = attn_bias or arch == "Qwen2ForCausalLM"
            self.layers.append({
                "ln1": get(p + "input_layernorm.weight"),
                "ln2": get(p + "post_attention_layernorm.weight"),
                "wq": get(p + "self_attn.q_proj.weight"),  # [H*d, hidden]
                "wk": get(p + "self_attn.k_proj.weight"),  # [KV*d, hidden]
                "wv": get(p + "self_attn.v_proj.weight"),  # [KV*d, hidden]
                "wo": get(p + "self_attn.o_proj.weight"),  # [hidden, H*d]
                "bq": opt(p + "self_attn.q_proj.bias", qkv_bias),
                "bk": opt(p + "self_attn.k_proj.bias", qkv_bias),
                "bv": opt(p + "self_attn.v_proj.bias", qkv_bias),
                "bo": opt(p + "self_attn.o_proj.bias", attn_bias),
                "wg": get(p + "mlp.gate_proj.weight"),  # [inter, hidden]
                "wu": get(p + "mlp.up_proj.weight"),  # [inter, hidden]
                "wd": get(p + "mlp.down_proj.weight"),  # [hidden, inter]
                "bg": opt(p + "mlp.gate_proj.bias", mlp_bias),
                "bu": opt(p + "mlp.up_proj.bias", mlp_bias),
                "bd": opt(p + "mlp.down_proj.bias", mlp_bias),
            })

    def forward(self, ids, cache):
        """Logits [T, vocab] for new tokens ids, continuing after cache.n positions."""
        ids = np.asarray(ids, dtype=np.int64)
        t = len(ids)
        pos = np.arange(cache.n, cache.n + t)
        d = self.head_dim
        x = self.embed[ids]  # [T, hidden]
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["ln1"], self.eps)
            q, k, v = linear(h, L["wq"], L["bq"]), linear(h, L["wk"], L["bk"]), linear(h, L["wv"], L["bv"])
            q = q.reshape(t, self.n_heads, d).transpose(1, 0, 2)
            k = k.reshape(t, self.n_kv, d).transpose(1, 0, 2)
            v = v.reshape(t, self.n_kv, d).transpose(1, 0, 2)
            q = apply_rope(q, pos, self.inv_freq)
            k = apply_rope(k, pos, self.inv_freq)
            k_all, v_all = cache.append(li, k, v)
            a = attention(q, k_all, v_all, pos, np.arange(cache.n + t), self.window)
            x = x + linear(a, L["wo"], L["bo"])
            h = rms_norm(x, L["ln2"], self.eps)
            m = silu(linear(h, L["wg"], L["bg"])) * linear(h, L["wu"], L["bu"])
            x = x + linear(m, L["wd"], L["bd"])
        cache.n += t
        return rms_norm(x, self.norm, self.eps) @ self.lm_head.T


def linear(x, w, b):
    """torch nn.Linear: weight stored [out, in]."""
    y = x @ w.T
    return y if b is None else y + b


# ----------------------------------------------------------------------------
# GPT-2

class GPT2:
    def __init__(self, cfg, w):
        self.hidden = cfg["n_embd"]
        self.n_layers = cfg["n_layer"]
        self.n_heads = cfg["n_head"]
        self.n_ctx = cfg.get("n_positions", 1024)
        self.vocab = cfg["vocab_size"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        act = cfg.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError("unsupported GPT-2 activation %r" % act)
        if cfg.get("scale_attn_by_inverse_layer_idx"):
            raise ValueError("scale_attn_by_inverse_layer_idx is not modelled")
        # checkpoints exist both with and without the "transformer." prefix
        pre = "transformer." if "transformer.wte.weight" in w else ""

        def get(name):
            return w[pre + name].astype(np.float64)

        self.wte = get("wte.weight")  # [vocab, n_embd]
        self.wpe = get("wpe.weight")  # [n_positions, n_embd]
        self.lm_head = w["lm_head.weight"].astype(np.float64) if "lm_head.weight" in w else self.wte
        self.ln_f = (get("ln_f.weight"), get("ln_f.bias"))
        self.layers = []
        for i in range(self.n_layers):
            p = "h.%d." % i
            # Conv1D weights are [in, out]: y = x @ W + b
            self.layers.append({
                "ln1": (get(p + "ln_1.weight"), get(p + "ln_1.bias")),
                "ln2": (get(p + "ln_2.weight"), get(p + "ln_2.bias")),
                "attn_w": get(p + "attn.c_attn.weight"),  # [n_embd, 3*n_embd]
                "attn_b": get(p + "attn.c_attn.bias"),
                "proj_w": get(p + "attn.c_proj.weight"),  # [n_embd, n_embd]
                "proj_b": get(p + "attn.c_proj.bias"),
                "fc_w": get(p + "mlp.c_fc.weight"),  # [n_embd, inner]
                "fc_b": get(p + "mlp.c_fc.bias"),
                "fc2_w": get(p + "mlp.c_proj.weight"),  # [inner, n_embd]
                "fc2_b": get(p + "mlp.c_proj.bias"),
            })

    def forward(self, ids, cache):
        ids = np.asarray(ids, dtype=np.int64)
        t = len(ids)
        pos = np.arange(cache.n, cache.n + t)
        if pos[-1] >= self.n_ctx:
            raise ValueError("position %d beyond n_positions %d" % (pos[-1], self.n_ctx))
        e, nh = self.hidden, self.n_heads
        d = e // nh
        x = self.wte[ids] + self.wpe[pos]
        for li, L in enumerate(self.layers):
            h = layer_norm(x, *L["ln1"], self.eps)
            qkv = h @ L["attn_w"] + L["attn_b"]  # fused along out: [q | k | v]
            q, k, v = (qkv[:, j * e:(j + 1) * e].reshape(t, nh, d).transpose(1, 0, 2) for j in range(3))
            k_all, v_all = cache.append(li, k, v)
            a = attention(q, k_all, v_all, pos, np.arange(cache.n + t))
            x = x + a @ L["proj_w"] + L["proj_b"]
            h = layer_norm(x, *L["ln2"], self.eps)
            x = x + gelu_tanh(h @ L["fc_w"] + L["fc_b"]) @ L["fc2_w"] + L["fc2_b"]
        cache.n += t
        return layer_norm(x, *self.ln_f, self.eps) @ self.lm_head.T


# ----------------------------------------------------------------------------
# drivers

def teacher_forced_logits(model, ids):
    """Logits [len(ids), vocab]: row i predicts token i+1, all in one causal pass."""
    return model.forward(ids, KVCache(model.n_layers))


def greedy(model, prompt_ids, n):
    """Greedy continuation (argmax, first index on exact ties as torch/numpy do).
    Returns (generated ids, logits rows [n, vocab] they were chosen from)."""
    cache = KVCache(model.n_layers)
    logits = model.forward(prompt_ids, cache)[-1]
    out, rows = [], []
    for step in range(n):
        nxt = int(np.argmax(logits))
        out.append(nxt)
        rows.append(logits)
        if step + 1 < n:
            logits = model.forward([nxt], cache)[-1]
    return out, np.array(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("-n", type=int, default=16, help="tokens to generate")
    args = ap.parse_args()
    model = load_model(args.model_dir)
    prompt = [int(s) for s in args.prompt_ids.split(",") if s.strip()]
    ids, _ = greedy(model, prompt, args.n)
    print(" ".join(str(i) for i in ids))


if __name__ == "__main__":
    main()
