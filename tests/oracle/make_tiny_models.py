"""Writes small random Hugging Face model folders (config.json + model.safetensors)
for the logits oracle, one per architecture feature the engine must get right:

  gpt2-tied           GPT-2, names WITH "transformer." prefix, no lm_head.weight
  gpt2-untied         GPT-2, names WITHOUT prefix, separate lm_head.weight, 3 heads,
                      layer_norm_epsilon 0.02
  llama-gqa           Llama, 4 query heads sharing 2 KV heads, untied lm_head
  qwen2-bias-tied     Qwen2, q/k/v biases, tie_word_embeddings, no lm_head.weight
  llama3-ropescaling  Llama-3 rope_scaling (factor 8, original context 64 so the
                      scaling changes positions < 100), explicit head_dim 32 with
                      hidden 64 / 4 heads (q_proj is 128 x 64, o_proj 64 x 128), tied
  mistral             MistralForCausalLM, 8 heads / 2 KV heads, 3 layers, rms_norm_eps
                      0.05 (so ignoring the configured eps shows)
  mistral-swa         MistralForCausalLM with sliding_window 16 (active at test lengths)
Every model has its own non-default rms_norm_eps / layer_norm_epsilon (1e-2 ... 1e-6) and
rope_theta (3e4 ... 1e6), so an engine that ignores either, or applies eps in the wrong place
(outside the square root), fails on several models, not one.
and bf16 / f16 copies of llama-gqa, qwen2-bias-tied and gpt2-tied (suffix -bf16,
-f16). Every tensor of a variant is stored in that dtype (as save_pretrained
does for torch_dtype bfloat16). Two more copies of llama-gqa (f32, bf16; suffix
-misaligned) put one unused byte before the tensor data, so every tensor
starts at an odd offset: legal safetensors that kernels reading mmap'd
weights through float pointers get wrong (or crash on, under UBSan).

Weights are N(0, 0.05..0.2) from a fixed numpy seed, large enough that logits
are far from flat (so greedy choices are decisive), small enough that nothing
saturates. Sizes are tiny so a full test run takes seconds.

Usage: make_tiny_models.py OUT_DIR   (prints the folder names it wrote)
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

TORCH_DTYPE = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


class Init:
    """Deterministic random tensors; one generator per model so models don't
    change when another model's definition changes."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, std):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def norm_weight(self, n):
        # around 1 but not exactly, so a kernel that ignores the weight is caught
        return (1.0 + self.rng.standard_normal(n) * 0.1).astype(np.float32)


def llama_like(arch, seed, vocab, hidden, inter, layers, heads, kv_heads, head_dim=None,
               tied=False, qkv_bias=False, extra_cfg=None):
    """Config and tensors [(name, array)] for Llama/Mistral/Qwen2."""
    r = Init(seed)
    d = head_dim or hidden // heads
    model_type = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                  "Qwen2ForCausalLM": "qwen2"}[arch]
    cfg = {
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": tied,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if head_dim:
        cfg["head_dim"] = head_dim
    cfg.update(extra_cfg or {})
    t = [("model.embed_tokens.weight", r.normal((vocab, hidden), 0.5))]
    for i in range(layers):
        p = "model.layers.%d." % i
        t += [
            (p + "input_layernorm.weight", r.norm_weight(hidden)),
            (p + "self_attn.q_proj.weight", r.normal((heads * d, hidden), 0.15)),
            (p + "self_attn.k_proj.weight", r.normal((kv_heads * d, hidden), 0.15)),
            (p + "self_attn.v_proj.weight", r.normal((kv_heads * d, hidden), 0.15)),
            (p + "self_attn.o_proj.weight", r.normal((hidden, heads * d), 0.1)),
        ]
        if qkv_bias:
            # large enough to move the attention pattern visibly
            t += [
                (p + "self_attn.q_proj.bias", r.normal(heads * d, 0.2)),
                (p + "self_attn.k_proj.bias", r.normal(kv_heads * d, 0.2)),
                (p + "self_attn.v_proj.bias", r.normal(kv_heads * d, 0.2)),
            ]
        t += [
            (p + "post_attention_layernorm.weight", r.norm_weight(hidden)),
            (p + "mlp.gate_proj.weight", r.normal((inter, hidden), 0.15)),
            (p + "mlp.up_proj.weight", r.normal((inter, hidden), 0.15)),
            (p + "mlp.down_proj.weight", r.normal((hidden, inter), 0.1)),
        ]
    t.append(("model.norm.weight", r.norm_weight(hidden)))
    if not tied:
        t.append(("lm_head.weight", r.normal((vocab, hidden), 0.2)))
    return cfg, t


def gpt2(seed, vocab, n_embd, layers, heads, tied, prefix, eps=1e-5):
    r = Init(seed)
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": vocab,
        "n_embd": n_embd,
        "n_layer": layers,
        "n_head": heads,
        "n_positions": 128,
        "n_ctx": 128,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": eps,
        "tie_word_embeddings": tied,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    pre = "transformer." if prefix else ""
    e = n_embd
    t = [(pre + "wte.weight", r.normal((vocab, e), 0.3)),
         (pre + "wpe.weight", r.normal((128, e), 0.2))]
    for i in range(layers):
        p = pre + "h.%d." % i
        t += [
            (p + "ln_1.weight", r.norm_weight(e)),
            (p + "ln_1.bias", r.normal(e, 0.05)),
            (p + "attn.c_attn.weight", r.normal((e, 3 * e), 0.15)),  # Conv1D: [in, out]
            (p + "attn.c_attn.bias", r.normal(3 * e, 0.1)),
            (p + "attn.c_proj.weight", r.normal((e, e), 0.1)),
            (p + "attn.c_proj.bias", r.normal(e, 0.05)),
            (p + "ln_2.weight", r.norm_weight(e)),
            (p + "ln_2.bias", r.normal(e, 0.05)),
            (p + "mlp.c_fc.weight", r.normal((e, 4 * e), 0.15)),
            (p + "mlp.c_fc.bias", r.normal(4 * e, 0.1)),
            (p + "mlp.c_proj.weight", r.normal((4 * e, e), 0.1)),
            (p + "mlp.c_proj.bias", r.normal(e, 0.05)),
        ]
    t += [(pre + "ln_f.weight", r.norm_weight(e)), (pre + "ln_f.bias", r.normal(e, 0.05))]
    if not tied:
        t.append(("lm_head.weight", r.normal((vocab, e), 0.2)))
    return cfg, t


def base_models():
    """name -> (config, [(tensor name, f32 array)])"""
    return {
        "gpt2-tied": gpt2(11, vocab=320, n_embd=64, layers=2, heads=4, tied=True, prefix=True,
                          eps=1e-3),
        "gpt2-untied": gpt2(12, vocab=288, n_embd=48, layers=3, heads=3, tied=False, prefix=False,
                            eps=0.02),
        "llama-gqa": llama_like("LlamaForCausalLM", 13, vocab=384, hidden=64, inter=160,
                                layers=2, heads=4, kv_heads=2,
                                extra_cfg={"rms_norm_eps": 1e-2, "rope_theta": 5e5}),
        "qwen2-bias-tied": llama_like("Qwen2ForCausalLM", 14, vocab=448, hidden=64, inter=128,
                                      layers=2, heads=4, kv_heads=2, tied=True, qkv_bias=True,
                                      extra_cfg={"rope_theta": 1000000.0, "rms_norm_eps": 1e-3,
                                                 "use_sliding_window": False,
                                                 "sliding_window": 4096}),
        "llama3-ropescaling": llama_like(
            "LlamaForCausalLM", 15, vocab=320, hidden=64, inter=128, layers=2, heads=4,
            kv_heads=2, head_dim=32, tied=True,
            extra_cfg={"rms_norm_eps": 1e-4, "rope_theta": 5e5,
                       "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 64}}),
        "mistral": llama_like("MistralForCausalLM", 16, vocab=288, hidden=64, inter=192,
                              layers=3, heads=8, kv_heads=2,
                              # a large eps, so an engine that ignores the configured
                              # value (1e-5/1e-6 defaults) is off by far more than 1e-4
                              extra_cfg={"sliding_window": 4096, "rms_norm_eps": 0.05,
                                         "rope_theta": 2e5}),
        # sliding_window 16 is far below the ~56 positions a test uses, so attention must
        # drop keys older than 16 positions (HF: key j visible to query i iff i - j < 16)
        "mistral-swa": llama_like("MistralForCausalLM", 17, vocab=256, hidden=64, inter=128,
                                  layers=2, heads=4, kv_heads=2,
                                  extra_cfg={"sliding_window": 16, "rms_norm_eps": 1e-6,
                                             "rope_theta": 3e4}),
    }


# the models that also get half-precision copies, and the dtypes
HALF_VARIANTS = [("llama-gqa", "BF16"), ("llama-gqa", "F16"),
                 ("qwen2-bias-tied", "BF16"), ("qwen2-bias-tied", "F16"),
                 ("gpt2-tied", "BF16")]
MISALIGNED_VARIANTS = [("llama-gqa", "F32"), ("llama-gqa", "BF16")]


def write_model(folder, cfg, tensors, dtype, lead=0):
    os.makedirs(folder, exist_ok=True)
    cfg = dict(cfg, torch_dtype=TORCH_DTYPE[dtype])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    safetensors_io.write(os.path.join(folder, "model.safetensors"),
                         [(name, dtype, arr) for name, arr in tensors], lead=lead)


def make_all(out_dir):
    """Write every tiny model under out_dir. Returns {name: (folder, dtype)}."""
    models = base_models()
    written = {}
    for name, (cfg, tensors) in models.items():
        folder = os.path.join(out_dir, name)
        write_model(folder, cfg, tensors, "F32")
        written[name] = (folder, "F32")
    for name, dtype in HALF_VARIANTS:
        cfg, tensors = models[name]
        vname = "%s-%s" % (name, dtype.lower())
        folder = os.path.join(out_dir, vname)
        write_model(folder, cfg, tensors, dtype)
        written[vname] = (folder, dtype)
    for name, dtype in MISALIGNED_VARIANTS:
        cfg, tensors = models[name]
        vname = "%s%s-misaligned" % (name, "" if dtype == "F32" else "-" + dtype.lower())
        folder = os.path.join(out_dir, vname)
        write_model(folder, cfg, tensors, dtype, lead=1)
        written[vname] = (folder, dtype)
    return written


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_models.py OUT_DIR")
    for name, (folder, dtype) in make_all(sys.argv[1]).items():
        print("%-26s %-5s %s" % (name, dtype, folder))


if __name__ == "__main__":
    main()
