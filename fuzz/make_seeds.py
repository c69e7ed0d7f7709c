#!/usr/bin/python3
"""Seed corpus for fuzz_gguf: small valid GGUF files (a 1-layer llama and gpt2 with 8-wide
F32/F16/Q8_0 tensors and a 6-token vocabulary) and a truncated one.
usage: make_seeds.py OUT_DIR"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "io"))
import gguf_py  # noqa: E402


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v):
    return (k, 4, struct.pack("<I", v))


def kv_f32(k, v):
    return (k, 6, struct.pack("<f", v))


def kv_str(k, v):
    return (k, 8, s(v))


def kv_arr_str(k, items):
    return (k, 9, struct.pack("<IQ", 8, len(items)) + b"".join(s(i) for i in items))


def kv_arr_i32(k, items):
    return (k, 9, struct.pack("<IQ", 5, len(items)) + struct.pack("<%di" % len(items), *items))


def model(arch, qtype):
    H, I, V = 32, 64, 6
    kvs = [kv_str("general.architecture", arch), kv_u32(arch + ".block_count", 1),
           kv_u32(arch + ".embedding_length", H), kv_u32(arch + ".feed_forward_length", I),
           kv_u32(arch + ".attention.head_count", 4), kv_u32(arch + ".context_length", 16),
           kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5),
           kv_str("tokenizer.ggml.model", "gpt2"), kv_str("tokenizer.ggml.pre", "gpt-2"),
           kv_arr_str("tokenizer.ggml.tokens", ["a", "b", "ab", "c", "<s>", "</s>"]),
           kv_arr_i32("tokenizer.ggml.token_type", [1, 1, 1, 1, 3, 3]),
           kv_arr_str("tokenizer.ggml.merges", ["a b"]),
           kv_u32("tokenizer.ggml.bos_token_id", 4), kv_u32("tokenizer.ggml.eos_token_id", 5),
           kv_str("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}")]
    bsize = {0: (1, 4), 1: (1, 2), 8: (32, 34)}
    shapes = [("token_embd.weight", [H, V]), ("output_norm.weight", [H])]
    if arch == "gpt2":
        shapes += [("position_embd.weight", [H, 16]), ("output_norm.bias", [H]),
                   ("blk.0.attn_norm.bias", [H]), ("blk.0.attn_qkv.weight", [H, 3 * H]),
                   ("blk.0.attn_qkv.bias", [3 * H]), ("blk.0.attn_output.bias", [H]),
                   ("blk.0.ffn_norm.bias", [H]), ("blk.0.ffn_up.bias", [I]),
                   ("blk.0.ffn_down.bias", [H])]
    else:
        shapes += [("blk.0.attn_q.weight", [H, H]), ("blk.0.attn_k.weight", [H, H]),
                   ("blk.0.attn_v.weight", [H, H]), ("blk.0.ffn_gate.weight", [H, I])]
    shapes += [("blk.0.attn_norm.weight", [H]), ("blk.0.attn_output.weight", [H, H]),
               ("blk.0.ffn_norm.weight", [H]), ("blk.0.ffn_up.weight", [H, I]),
               ("blk.0.ffn_down.weight", [I, H])]
    infos, data = [], b""
    for name, dims in shapes:
        t = 0 if len(dims) == 1 or "embd" in name else qtype
        blk, bs = bsize[t]
        n = 1
        for d in dims:
            n *= d
        infos.append({"name": name, "dims": dims, "type": t, "offset": len(data)})
        body = bytes((i * 7 + 3) % 251 // 8 for i in range(n // blk * bs))
        data += body + b"\0" * ((-len(body)) % 32)
    return gguf_py.build({"version": 3, "kvs": kvs, "infos": infos, "data": data})


out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for arch in ["llama", "gpt2", "qwen2"]:
    for q in [0, 1, 8]:
        open(os.path.join(out, f"{arch}-{q}.gguf"), "wb").write(model(arch, q))
open(os.path.join(out, "truncated.gguf"), "wb").write(model("llama", 8)[:700])
