#!/usr/bin/python3
"""quant_oracle.py - an independent decoder of the GGUF block formats (written from the format
definitions with numpy, sharing no code with cllm) checks what cllm writes and computes:

  - cllm's dequantization of every type must equal this decoder's, bit for bit (both use
    float32 arithmetic in the same order the format defines: d * q, d * q + m, (d * sc) * q
    - dmin * m, (d * sc) * (q - 32));
  - the quantization error must be small (relative RMS per type);
  - cllm's quantized matmul (reference and SIMD path) must equal, within float32 rounding, the
    product of the decoded weights with x quantized per block as the kernels define it (blocks of
    32, or 256 for the K-quants: d = max|x| / 127, q = round-half-even(x / d)), in float64.

usage: quant_oracle.py QUANT_DUMP_BINARY"""
import os
import subprocess
import sys
import tempfile

import numpy as np

NAMES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q8_k"]
BLOCK = {3: (32, 34), 4: (32, 18), 5: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (256, 144), 9: (256, 176), 10: (256, 210), 11: (256, 292)}
F32 = np.float32


def f16(b):
    return np.ascontiguousarray(b).view("<f2").astype(F32).reshape(-1)


def nibbles(qs):  # (nb, 16) -> (nb, 32): low nibbles are elements 0..15, high 16..31
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)


def high_bits(qh):  # (nb, 4) little-endian u32 -> (nb, 32) bit j of element j
    u = np.ascontiguousarray(qh).view("<u4").reshape(-1, 1)
    return ((u >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)


def k4_scales(s):  # (nb, 12) -> scales, mins (nb, 8) of Q4_K / Q5_K
    s = s.astype(np.int32)
    sc = np.zeros((s.shape[0], 8), np.int32)
    mn = np.zeros_like(sc)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, mn


def decode(t, raw, n):
    """Returns (float32 values as the format defines them, float64 per-element model
    w = a * L + c with exact float64 a, c for the matmul check)."""
    be, bb = BLOCK[t]
    b = np.frombuffer(raw, np.uint8).reshape(n // be, bb)
    if t == 3:
        d = f16(b[:, 0:2])
        q = b[:, 2:34].view(np.int8).astype(np.int32)
        return (q.astype(F32) * d[:, None]).reshape(-1)
    if t in (4, 5, 6, 7):
        d = f16(b[:, 0:2])
        m = f16(b[:, 2:4]) if t in (5, 7) else None
        off = 2 + (2 if m is not None else 0)
        L = nibbles(b[:, off + (4 if t in (6, 7) else 0):][:, :16])
        if t in (6, 7):
            L = L | (high_bits(b[:, off:off + 4]) << 4)
        if m is None:
            return ((L - (8 if t == 4 else 16)).astype(F32) * d[:, None]).reshape(-1)
        return (L.astype(F32) * d[:, None] + m[:, None]).reshape(-1)
    if t in (8, 9):
        d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
        sc, mn = k4_scales(b[:, 4:16])
        qh = b[:, 16:48] if t == 9 else None
        qs = b[:, 48:176] if t == 9 else b[:, 16:144]
        out = np.zeros((b.shape[0], 256), F32)
        for j in range(8):  # sub-block j: nibble (j % 2) of qs bytes 32 (j // 2) ..
            L = ((qs[:, 32 * (j // 2):32 * (j // 2) + 32] >> (4 * (j % 2))) & 15).astype(np.int32)
            if qh is not None:
                L = L + (((qh >> j) & 1).astype(np.int32) << 4)
            d1 = d * sc[:, j].astype(F32)
            m1 = dmin * mn[:, j].astype(F32)
            out[:, 32 * j:32 * j + 32] = d1[:, None] * L.astype(F32) - m1[:, None]
        return out.reshape(-1)
    if t == 10:
        ql, qh = b[:, 0:128], b[:, 128:192]
        sc = b[:, 192:208].view(np.int8).astype(F32)
        d = f16(b[:, 208:210])
        out = np.zeros((b.shape[0], 256), F32)
        for e in range(256):
            h, s, l = e // 128, (e // 32) % 4, e % 32
            lo = (ql[:, 64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15
            hi = (qh[:, 32 * h + l] >> (2 * s)) & 3
            q = (lo | (hi << 4)).astype(np.int32) - 32
            out[:, e] = (d * sc[:, e // 16]) * q.astype(F32)
        return out.reshape(-1)
    if t == 11:
        d = np.ascontiguousarray(b[:, 0:4]).view("<f4").reshape(-1)
        q = b[:, 4:260].view(np.int8).astype(np.int32)
        bs = np.ascontiguousarray(b[:, 260:292]).view("<i2").astype(np.int32)
        sums = q.reshape(-1, 16, 16).sum(axis=2)
        nz = d != 0
        assert (bs[nz] == sums[nz]).all(), "q8_k bsums"
        return (q.astype(F32) * d[:, None]).reshape(-1)
    raise ValueError(t)


def quantize_x(x, bl):
    """x rows quantized per block as the matmul kernels define it; returns float64 values."""
    xb = x.reshape(x.shape[0], -1, bl).astype(F32)
    amax = np.abs(xb).max(axis=2)
    d = (amax / F32(127)).astype(F32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, F32(1) / d, F32(0)).astype(F32)
    q = np.rint((xb * inv[:, :, None]).astype(F32))
    return (q.astype(np.float64) * d[:, :, None].astype(np.float64)).reshape(x.shape[0], -1)


def main():
    fails = 0
    rms_bound = {3: .01, 4: .15, 5: .12, 6: .08, 7: .06, 8: .12, 9: .06, 10: .03, 11: .01}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dump.bin")
        subprocess.run([sys.argv[1], path], check=True)
        data = open(path, "rb").read()
    pos = 0

    def take(nbytes):
        nonlocal pos
        chunk = data[pos:pos + nbytes]
        pos += nbytes
        return chunk

    while pos < len(data):
        tag = int(np.frombuffer(take(4), "<u4")[0])
        t = tag & 0xff
        be, bb = BLOCK[t]
        if tag < 0x100:
            n = int(np.frombuffer(take(4), "<u4")[0])
            x = np.frombuffer(take(4 * n), "<f4")
            q = take(n // be * bb)
            y = np.frombuffer(take(4 * n), "<f4")
            mine = decode(t, q, n)
            same = np.array_equal(mine.view(np.uint32), y.view(np.uint32))
            rel = np.sqrt(np.mean((mine.astype(np.float64) - x) ** 2) / np.mean(x.astype(np.float64) ** 2))
            ok = same and rel < rms_bound[t]
            print(f"{NAMES[t]:5s} dequant bitwise {'same' if same else 'DIFFERENT'}, rel. RMS error {rel:.4f}")
            if not same:
                bad = np.nonzero(mine.view(np.uint32) != y.view(np.uint32))[0]
                print(f"   first difference at {bad[0]}: oracle {mine[bad[0]]!r} cllm {y[bad[0]]!r}")
        else:
            M, K, N = (int(v) for v in np.frombuffer(take(12), "<u4"))
            x = np.frombuffer(take(4 * M * K), "<f4").reshape(M, K)
            rb = K // be * bb
            W = np.stack([decode(t, take(rb), K) for _ in range(N)]).astype(np.float64)
            y_ref = np.frombuffer(take(4 * M * N), "<f4").reshape(M, N)
            y_fast = np.frombuffer(take(4 * M * N), "<f4").reshape(M, N)
            xq = quantize_x(x, 256 if t >= 8 else 32)
            exact = xq @ W.T
            mag = np.abs(xq) @ np.abs(W).T
            tol = mag * (K / 32 + 24) * 8 * 2.0 ** -24 + 1e-30
            e1 = np.abs(y_ref - exact) / tol
            e2 = np.abs(y_fast - exact) / tol
            ok = (e1 <= 1).all() and (e2 <= 1).all()
            print(f"{NAMES[t]:5s} matmul M={M} K={K} N={N}: |ref - oracle| <= {e1.max():.3f} tol, "
                  f"|fast - oracle| <= {e2.max():.3f} tol")
        if not ok:
            fails += 1
    print("all checks passed" if not fails else f"{fails} check(s) failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
