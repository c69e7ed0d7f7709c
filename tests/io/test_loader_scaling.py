#!/usr/bin/python3
"""Loaders are linear (or n log n) in what they read: the same malformed-but-plausible input at 1x
and 16x size must cost at most 32x the CPU time (user + system of the child, not wall time, so a
loaded machine does not matter; a quadratic loader costs 256x). Every run has a timeout.

Cases (each `cllm info` or `cllm tokenize` on a file built from stories260K):
- GGUF SentencePiece vocabulary with one long token string (issue #12: merges were derived by
  hashing a prefix and a suffix at every split point, quadratic in the token's length);
- GGUF with many extra metadata keys (duplicate-key detection sorts them);
- safetensors with many extra tensors in the header (overlap detection sorts them);
- tokenizer.json with one long vocabulary entry and a long merge;
- config.json with a long array value.

usage: test_loader_scaling.py CLLM
"""
import copy
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from clitest import CLLM, TESTDATA, check, finish, run  # noqa: E402
import gguf_py  # noqa: E402

tmp = tempfile.mkdtemp(prefix="cllm-scaling-")
HF = os.path.join(TESTDATA, "stories260K-hf")
good_path = os.path.join(tmp, "good.gguf")
rc, _, err = run("quantize", HF, good_path, "f32")
check("write the valid file", rc == 0, err.decode()[-300:])
G = gguf_py.parse(open(good_path, "rb").read())


def cpu_time(args, timeout=120):
    """(exit code, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        rc = subprocess.run([CLLM, *args], capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return None, float(timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return rc, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def scaling(name, make, args_of, floor=0.05):
    """make(scale) -> path; the CPU time at 16x must be <= 32x the time at 1x (floored, so tiny
    times do not make the ratio noise). The best of two runs at each size."""
    t = {}
    for scale in (1, 16):
        path = make(scale)
        best = None
        for _ in range(2):
            rc, sec = cpu_time(args_of(path))
            check(f"{name} x{scale}: finishes with a status", rc in (0, 1), f"rc={rc}")
            best = sec if best is None else min(best, sec)
        t[scale] = best
    ratio = t[16] / max(t[1], floor)
    check(f"{name}: CPU time x16 input <= 32 x (x1)", ratio <= 32,
          f"x1 {t[1]:.3f} s, x16 {t[16]:.3f} s, ratio {ratio:.1f}")
    print(f"{name:40s} x1 {t[1]:.3f} s  x16 {t[16]:.3f} s  ratio {ratio:.1f}")


def kv_index(g, key):
    return [k for k, _, _ in g["kvs"]].index(key)


def gguf_str(s):
    return struct.pack("<Q", len(s)) + s


def long_token_gguf(scale):
    """tokenizer.ggml.tokens[300] = 'a' x (64 KiB x scale)."""
    g = copy.deepcopy(G)
    i = kv_index(g, "tokenizer.ggml.tokens")
    k, t, raw = g["kvs"][i]
    etype, n = struct.unpack_from("<IQ", raw, 0)
    pos, toks = 12, []
    for _ in range(n):
        (ln,) = struct.unpack_from("<Q", raw, pos)
        toks.append(raw[pos + 8:pos + 8 + ln])
        pos += 8 + ln
    toks[300] = b"a" * (65536 * scale)
    g["kvs"][i] = (k, t, struct.pack("<IQ", etype, n) + b"".join(gguf_str(s) for s in toks))
    path = os.path.join(tmp, f"longtok{scale}.gguf")
    open(path, "wb").write(gguf_py.build(g))
    return path


def many_keys_gguf(scale):
    """20,000 x scale extra uint32 keys."""
    g = copy.deepcopy(G)
    g["kvs"] += [(f"x.extra.key.{i:08d}", 4, struct.pack("<I", i)) for i in range(20000 * scale)]
    path = os.path.join(tmp, f"keys{scale}.gguf")
    open(path, "wb").write(gguf_py.build(g))
    return path


def hf_copy(name):
    d = os.path.join(tmp, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(HF, d)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return d


def many_tensors_st(scale):
    """The model's tensors plus 20,000 x scale extra one-element tensors."""
    d = hf_copy(f"st{scale}")
    data = open(os.path.join(HF, "model.safetensors"), "rb").read()
    (hlen,) = struct.unpack_from("<Q", data, 0)
    hdr = json.loads(data[8:8 + hlen])
    body = bytearray(data[8 + hlen:])
    for i in range(20000 * scale):
        hdr[f"extra.{i}"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(body), len(body) + 4]}
        body += b"\0\0\0\0"
    h = json.dumps(hdr).encode()
    h += b" " * ((-len(h)) % 8)
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + body)
    return d


def long_token_json(scale):
    """tokenizer.json with a vocabulary entry 'a' x (64 KiB x scale) and a merge producing it."""
    d = hf_copy(f"tj{scale}")
    p = os.path.join(d, "tokenizer.json")
    t = json.load(open(p))
    half = "a" * (32768 * scale)
    v = t["model"]["vocab"]
    v[half] = len(v)
    v[half + half] = len(v)
    t["model"]["merges"].append([half, half])
    json.dump(t, open(p, "w"))
    return d


def long_config(scale):
    """config.json with an unknown key holding 100,000 x scale numbers."""
    d = hf_copy(f"cfg{scale}")
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    c["x_padding"] = list(range(100000 * scale))
    json.dump(c, open(p, "w"))
    return d


check("sanity: the valid file loads", run("info", "-m", good_path)[0] == 0)
scaling("gguf: one long SentencePiece token", long_token_gguf, lambda p: ["info", "-m", p])
scaling("gguf: many metadata keys", many_keys_gguf, lambda p: ["info", "-m", p])
scaling("safetensors: many tensors", many_tensors_st, lambda p: ["info", "-m", p])
scaling("tokenizer.json: one long token + merge", long_token_json,
        lambda p: ["tokenize", "-m", p, "hello"])
scaling("config.json: long array", long_config, lambda p: ["info", "-m", p])

shutil.rmtree(tmp)
finish()
