#!/usr/bin/python3
"""Malformed GGUF files must give a clear one-line error and exit status 1, never a crash.

A valid f32 GGUF of stories260K is written with `cllm quantize`, taken apart (gguf_py.py) and
rebuilt with one fault per case; `cllm info -m FILE` must exit 1 with exactly one stderr line
"cllm: error: ..." containing the expected words.

usage: test_gguf_bad_files.py CLLM
"""
import copy
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from clitest import TESTDATA, check, finish, run  # noqa: E402
import gguf_py  # noqa: E402

tmp = tempfile.mkdtemp(prefix="cllm-gguf-bad-")
good_path = os.path.join(tmp, "good.gguf")
rc, _, err = run("quantize", os.path.join(TESTDATA, "stories260K-hf"), good_path, "f32")
check("write the valid file", rc == 0, err.decode()[-300:])
good = open(good_path, "rb").read()
G = gguf_py.parse(good)


def info(name):
    for ti in G2["infos"]:
        if ti["name"] == name:
            return ti
    raise KeyError(name)


def kv_set(g, key, vtype, raw):
    g["kvs"] = [(k, t, v) if k != key else (k, vtype, raw) for k, t, v in g["kvs"]]
    if key not in [k for k, _, _ in g["kvs"]]:
        g["kvs"].append((key, vtype, raw))


cases = []  # (name, bytes, expected words in the error)


def case(name, data, *words):
    cases.append((name, data, words))


case("bad magic", b"GGUX" + good[4:], "not a GGUF file")
case("bad version", good[:4] + struct.pack("<I", 7) + good[8:], "version 7")
case("truncated header", good[:13], "tensor count")
case("truncated key/values", good[:5003], "tokenizer.ggml.tokens", "remain")
case("truncated tensor data", good[:len(good) - 1000], "past the end")
case("absurd tensor count", good[:8] + struct.pack("<Q", 1 << 62) + good[16:], "tensor count")
case("absurd key/value count", good[:16] + struct.pack("<Q", 1 << 62) + good[24:],
     "key/value count")

G2 = copy.deepcopy(G)
info("blk.0.attn_k.weight")["offset"] = info("blk.0.attn_q.weight")["offset"]
case("overlapping tensors", gguf_py.build(G2), "overlap")

G2 = copy.deepcopy(G)
info("blk.1.ffn_up.weight")["offset"] = 1 << 40
case("offset out of range", gguf_py.build(G2), "blk.1.ffn_up.weight", "past the end")

G2 = copy.deepcopy(G)
info("blk.1.ffn_up.weight")["offset"] += 4
case("misaligned offset", gguf_py.build(G2), "not a multiple of the alignment")

G2 = copy.deepcopy(G)
kv_set(G2, "general.alignment", 4, struct.pack("<I", 48))
case("alignment not a power of two", gguf_py.build(G2, align=48), "power of two")

G2 = copy.deepcopy(G)
info("token_embd.weight")["type"] = 8  # Q8_0 with 64-element rows: fine; make the rows 48
info("token_embd.weight")["dims"] = [48, 512]
case("row not a multiple of the block size", gguf_py.build(G2), "multiple", "Q8_0")

G2 = copy.deepcopy(G)
info("output_norm.weight")["dims"] = [64, 1 << 40]
case("tensor larger than the file", gguf_py.build(G2), "output_norm.weight", "past the end")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["dims"] = [1 << 40, 1 << 40]
case("element count overflow", gguf_py.build(G2), "overflow")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["dims"] = [64, -64]
case("negative dimension", gguf_py.build(G2), "dimension")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["dims"] = [64, 64, 1, 1, 1]
case("five dimensions", gguf_py.build(G2), "dimensions")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["type"] = 99
case("unknown tensor type", gguf_py.build(G2), "blk.0.attn_q.weight", "unknown ggml type 99")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["type"] = 20  # IQ4_NL: a real ggml type cllm cannot compute with
case("unsupported tensor type", gguf_py.build(G2), "blk.0.attn_q.weight", "IQ4_NL",
     "not supported")

G2 = copy.deepcopy(G)
G2["infos"] = [t for t in G2["infos"] if t["name"] != "blk.2.ffn_down.weight"]
case("missing tensor", gguf_py.build(G2), "missing tensor 'blk.2.ffn_down.weight'")

G2 = copy.deepcopy(G)
info("blk.0.attn_k.weight")["name"] = "blk.0.attn_q.weight"
case("duplicate tensor name", gguf_py.build(G2), "appears twice")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["dims"] = [32, 128]
case("wrong shape", gguf_py.build(G2), "blk.0.attn_q.weight", "shape")

G2 = copy.deepcopy(G)
info("blk.0.attn_q.weight")["name"] = "x" * 70
case("tensor name too long", gguf_py.build(G2), "name of 70 bytes")

# an unterminated string: the last key's value claims more bytes than the file has
G2 = copy.deepcopy(G)
kv_set(G2, "general.name", 8, struct.pack("<Q", 1 << 50) + b"stories")
case("unterminated string", gguf_py.build(G2), "general.name", "past the end")

G2 = copy.deepcopy(G)
raw = [v for k, t, v in G2["kvs"] if k == "tokenizer.ggml.scores"][0]
kv_set(G2, "tokenizer.ggml.scores", 9, raw[:4] + struct.pack("<Q", 1 << 60) + raw[12:])
case("huge array length", gguf_py.build(G2), "tokenizer.ggml.scores", "cannot fit")

G2 = copy.deepcopy(G)
kv_set(G2, "general.architecture", 8, struct.pack("<Q", 5) + b"bloom")
case("unsupported architecture", gguf_py.build(G2), "architecture 'bloom'")

G2 = copy.deepcopy(G)
kv_set(G2, "llama.block_count", 4, struct.pack("<I", 0))
case("zero layers", gguf_py.build(G2), "block_count")

G2 = copy.deepcopy(G)
G2["kvs"] = [(k, t, v) for k, t, v in G2["kvs"] if k != "llama.embedding_length"]
case("missing hyper-parameter", gguf_py.build(G2), "llama.embedding_length")

G2 = copy.deepcopy(G)
kv_set(G2, "llama.attention.head_count", 8, struct.pack("<Q", 1) + b"8")
case("hyper-parameter of the wrong type", gguf_py.build(G2), "head_count", "expected")

G2 = copy.deepcopy(G)
G2["kvs"].append(G2["kvs"][3])
case("duplicate key", gguf_py.build(G2), "appears more than once", G2["kvs"][3][0])

for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
    G2 = copy.deepcopy(G)
    kv_set(G2, key, 4, struct.pack("<I", 512))
    case(f"{key} out of range", gguf_py.build(G2), key, "512", "not a token id")

check("sanity: the valid file loads", run("info", "-m", good_path)[0] == 0)
for name, data, words in cases:
    path = os.path.join(tmp, name.replace(" ", "_").replace("/", "_") + ".gguf")
    open(path, "wb").write(data)
    rc, out, err = run("info", "-m", path)
    text = err.decode(errors="replace")
    lines = text.strip("\n").split("\n")
    ok = rc == 1 and len(lines) == 1 and lines[0].startswith("cllm: error: ") and \
        all(w in lines[0] for w in words)
    check(f"bad gguf: {name}", ok, f"rc={rc} stderr={text[-300:]!r}")
    if ok:
        print(f"ok  {name:38s} {lines[0][:150]}")
    # the tokenizer path reads the same files
    rc2, _, err2 = run("tokenize", "-m", path, "hello")
    check(f"bad gguf tokenize: {name}", rc2 in (0, 1), f"rc={rc2} {err2.decode()[-200:]!r}")

# command-line errors of `cllm quantize`
for args, words in [(["quantize", good_path, os.path.join(tmp, "x.gguf"), "q3_k"], "unknown TYPE"),
                    (["quantize", good_path, "/nonexistent-dir/x.gguf", "q8_0"], "cannot create"),
                    (["quantize", os.path.join(tmp, "missing"), os.path.join(tmp, "y.gguf"), "f16"],
                     "not found"),
                    (["quantize", good_path], "usage")]:
    rc, out, err = run(*args)
    lines = err.decode().strip("\n").split("\n")
    check(f"quantize error {args[1:]}", rc == 1 and lines[-1].startswith("cllm: error: ") and
          words in lines[-1], f"rc={rc} {err.decode()[-300:]!r}")
check("no partial output left", not os.path.exists(os.path.join(tmp, "x.gguf.part")))

shutil.rmtree(tmp)
finish()
