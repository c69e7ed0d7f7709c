/* quant_amx_amx.c - the AMX-INT8 kernel of the AMX family (layout and numerics: quant_amx.h).
 *
 * A weight group (16 rows) is swept once per tile of up to 16 tokens: per block of 32 values one
 * TDPBSSD gives the exact int32 dot products of the tokens' x with the group's 16 rows (C tile,
 * alternating between two C tiles so that the next block's multiply overlaps this block's
 * scaling), the C tile goes to L1 and each token's row of 16 sums is scaled and accumulated in
 * its own zmm register in block order. Q4_0 records are unpacked from nibbles into a 512-byte
 * B tile on the stack first. Tokens beyond a tile and columns beyond [n0, n1) are never stored,
 * and no result depends on how many tokens share the tile. */
#include "kernels/quant_amx.h"

#include "kernels/amx.h"

#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Tiles: 0, 1 = C (even / odd block), 2, 3 = A (x, even / odd), 4, 5 = B (weights, even / odd). */
static void configure(int mr) {
    amx_tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 2; t++) {
        c.rows[t] = (uint8_t)mr;
        c.colsb[t] = 64;
        c.rows[2 + t] = (uint8_t)mr;
        c.colsb[2 + t] = 32;
        c.rows[4 + t] = 8;
        c.colsb[4 + t] = 64;
    }
    _tile_loadconfig(&c);
}

/* Unpack a Q4_0 record's nibbles into a signed B tile (level - 8). */
AI void unpack_q4(const uint8_t *rec, int8_t *tile) {
    const __m512i lo4 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    for (int i = 0; i < 4; i++) {
        __m512i p = _mm512_loadu_si512(rec + 64 * i);
        __m512i lo = _mm512_sub_epi8(_mm512_and_si512(p, lo4), eight);
        __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(p, 4), lo4), eight);
        _mm512_store_si512(tile + 64 * i, lo);
        _mm512_store_si512(tile + 256 + 64 * i, hi);
    }
}

/* acc[i] = fma(float(C row i), dx(m0 + i, b) * dw, acc[i]) for the tile's mr tokens. */
AI void scale_rows(__m512 *acc, const int32_t *c, const quant_mm_args *a, int m0, int b,
                   const float *dw_p, const int mr) {
    const __m512 dw = _mm512_loadu_ps(dw_p);
    const uint8_t *xd = a->xq + (size_t)m0 * a->lay.row_bytes + a->lay.off_d + 4 * (size_t)b;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        float dx;
        memcpy(&dx, xd + (size_t)i * a->lay.row_bytes, 4);
        __m512 s = _mm512_mul_ps(_mm512_set1_ps(dx), dw);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * i)), s, acc[i]);
    }
}

/* One group g (16 weight rows) for tokens [m0, m0 + mr), columns [n0, n1) stored. */
AI void group_tile(const quant_mm_args *a, const uint8_t *packed, int g, int m0, int n0, int n1,
                   const int mr, const int q4) {
    const int nb = a->K / 32;
    const size_t rec = q4 ? 320 : 576, soff = q4 ? 256 : 512;
    const uint8_t *G = packed + (size_t)g * nb * rec;
    const uint8_t *xr = a->xq + (size_t)m0 * a->lay.row_bytes;
    const long stride = (long)a->lay.row_bytes;
    const size_t pf_ahead = (size_t)(a->pf_tiles > 0 ? a->pf_tiles : 1) * 4 * rec;
    int32_t c0[256] __attribute__((aligned(64))), c1[256] __attribute__((aligned(64)));
    int8_t t0[512] __attribute__((aligned(64))), t1[512] __attribute__((aligned(64)));
    __m512 acc[16];
    for (int i = 0; i < mr; i++)
        acc[i] = _mm512_setzero_ps();
        /* one block: x tile A, weight tile B (Q4_0: unpacked into T first), C = A . B */
#define BLOCK_MUL(C, A, B, T, rec_p, b)                                                            \
    do {                                                                                           \
        _tile_loadd(A, xr + (size_t)(b)*32, stride);                                               \
        if (q4) {                                                                                  \
            unpack_q4(rec_p, T);                                                                   \
            _tile_loadd(B, T, 64);                                                                 \
        } else {                                                                                   \
            _tile_loadd(B, rec_p, 64);                                                             \
        }                                                                                          \
        _tile_zero(C);                                                                             \
        _tile_dpbssd(C, A, B);                                                                     \
    } while (0)
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *r0 = G + (size_t)b * rec, *r1 = r0 + rec;
        if (mr < 4)
            for (size_t l = 0; l < 2 * rec; l += 64)
                _mm_prefetch((const char *)r0 + pf_ahead + l, _MM_HINT_T0);
        BLOCK_MUL(0, 2, 4, t0, r0, b);
        BLOCK_MUL(1, 3, 5, t1, r1, b + 1);
        _tile_stored(0, c0, 64);
        scale_rows(acc, c0, a, m0, b, (const float *)(r0 + soff), mr);
        _tile_stored(1, c1, 64);
        scale_rows(acc, c1, a, m0, b + 1, (const float *)(r1 + soff), mr);
    }
    if (b < nb) {
        const uint8_t *r0 = G + (size_t)b * rec;
        BLOCK_MUL(0, 2, 4, t0, r0, b);
        _tile_stored(0, c0, 64);
        scale_rows(acc, c0, a, m0, b, (const float *)(r0 + soff), mr);
    }
#undef BLOCK_MUL
    const __mmask16 mk = amx_group_mask(g, n0, n1); /* columns in [n0, n1) */
    const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mk, a->bias + g * 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++)
        _mm512_mask_storeu_ps(a->y + (size_t)(m0 + i) * a->ldy + g * 16, mk,
                              _mm512_add_ps(acc[i], bias));
}

typedef void (*group_fn)(const quant_mm_args *a, const uint8_t *packed, int g, int m0, int n0,
                         int n1);
#define GF(mr, q4)                                                                                 \
    static void group_##mr##_##q4(const quant_mm_args *a, const uint8_t *p, int g, int m0, int n0, \
                                  int n1) {                                                        \
        group_tile(a, p, g, m0, n0, n1, mr, q4);                                                   \
    }
#define GF2(mr) GF(mr, 0) GF(mr, 1)
/* clang-format off */
GF2(1) GF2(2) GF2(3) GF2(4) GF2(5) GF2(6) GF2(7) GF2(8)
GF2(9) GF2(10) GF2(11) GF2(12) GF2(13) GF2(14) GF2(15) GF2(16)
#define GR(mr) {group_##mr##_0, group_##mr##_1}
static const group_fn groups[17][2] = {
    {NULL, NULL}, GR(1), GR(2), GR(3), GR(4), GR(5), GR(6), GR(7), GR(8),
    GR(9), GR(10), GR(11), GR(12), GR(13), GR(14), GR(15), GR(16)};
/* clang-format on */

/* Decode (few tokens): the same numbers without tiles. The B tile rows are already in VNNI order
 * (row r holds each weight row's 4 values at k = 4 r ..), so 8 vpdpbusd with the token's x
 * broadcast 4 bytes at a time give the 16 rows' exact block sums; vpdpbusd multiplies unsigned
 * by signed, so the weights go in as level + c (Q8_0: w ^ 0x80, c = 128; Q4_0: the nibble q,
 * c = 8) and c * sum(x) comes off. The float steps are scale_rows' exactly: bitwise the tiles'
 * results, without their per-block latency. */
#define GEMV_MAX_BLOCKS 4096 /* rows up to 131072 values (longer ones use the tiles) */

static void gemv_group(const quant_mm_args *a, const uint8_t *packed, int g, int m, int n0, int n1,
                       const int32_t *sx, const int q4) {
    const int nb = a->K / 32;
    const size_t rec = q4 ? 320 : 576, soff = q4 ? 256 : 512;
    const uint8_t *G = packed + (size_t)g * nb * rec;
    const uint8_t *xr = a->xq + (size_t)m * a->lay.row_bytes;
    const size_t pf = (size_t)(a->pf_tiles > 0 ? a->pf_tiles : 1) * 4 * rec;
    const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char)0x80);
    const int c = q4 ? 8 : 128;
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *r = G + (size_t)b * rec;
        for (size_t l = 0; l < rec; l += 64)
            _mm_prefetch((const char *)r + pf + l, _MM_HINT_T0);
        const uint8_t *x = xr + (size_t)b * 32;
        __m512i isum = _mm512_setzero_si512();
        for (int q = 0; q < 4; q++) {
            int32_t x0, x1;
            memcpy(&x0, x + 4 * q, 4);
            memcpy(&x1, x + 16 + 4 * q, 4);
            __m512i w0, w1;
            if (q4) {
                __m512i p = _mm512_loadu_si512(r + 64 * q);
                w0 = _mm512_and_si512(p, lo4);
                w1 = _mm512_and_si512(_mm512_srli_epi16(p, 4), lo4);
            } else {
                w0 = _mm512_xor_si512(_mm512_loadu_si512(r + 64 * q), flip);
                w1 = _mm512_xor_si512(_mm512_loadu_si512(r + 64 * (q + 4)), flip);
            }
            isum = _mm512_dpbusd_epi32(isum, w0, _mm512_set1_epi32(x0));
            isum = _mm512_dpbusd_epi32(isum, w1, _mm512_set1_epi32(x1));
        }
        isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(c * sx[b]));
        float dx;
        memcpy(&dx, xr + a->lay.off_d + 4 * (size_t)b, 4);
        __m512 s = _mm512_mul_ps(_mm512_set1_ps(dx), _mm512_loadu_ps((const float *)(r + soff)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, acc);
    }
    const __mmask16 mk = amx_group_mask(g, n0, n1);
    const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mk, a->bias + g * 16) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(a->y + (size_t)m * a->ldy + g * 16, mk, _mm512_add_ps(acc, bias));
}

static void gemv_rows(const quant_mm_args *a, const uint8_t *packed, int n0, int n1) {
    const int q4 = a->wt == DTYPE_Q4_0, nb = a->K / 32;
    int32_t sx[GEMV_MAX_BLOCKS];
    for (int m = 0; m < a->M; m++) {
        const int8_t *x = (const int8_t *)(a->xq + (size_t)m * a->lay.row_bytes);
        for (int b = 0; b < nb; b++) {
            int t = 0;
            for (int k = 0; k < 32; k++)
                t += x[b * 32 + k];
            sx[b] = t;
        }
        for (int g = n0 / 16; g * 16 < n1; g++)
            gemv_group(a, packed, g, m, n0, n1, sx, q4);
    }
}

/* Groups are taken in L2-sized blocks; every tile of tokens passes over a block while it is in L2
 * (prefill reads the weights from DRAM once, not once per token tile). */
#define BLOCK_BYTES (512 * 1024)

void quant_amx_rows(const quant_mm_args *a, const uint8_t *packed, int n0, int n1) {
    if (n0 >= n1) return;
    if (a->M < 4 && a->K / 32 <= GEMV_MAX_BLOCKS) {
        gemv_rows(a, packed, n0, n1);
        return;
    }
    const int q4 = a->wt == DTYPE_Q4_0;
    const size_t group_bytes = (size_t)(a->K / 32) * (q4 ? 320 : 576);
    int per_block = (int)(BLOCK_BYTES / (group_bytes ? group_bytes : 1));
    if (per_block < 1) per_block = 1;
    int configured = 0;
    const int g_end = (n1 + 15) / 16;
    for (int gb = n0 / 16; gb < g_end; gb += per_block) {
        int gbe = gb + per_block < g_end ? gb + per_block : g_end;
        for (int m0 = 0; m0 < a->M; m0 += 16) {
            int mr = a->M - m0 < 16 ? a->M - m0 : 16;
            if (mr != configured) {
                configure(mr);
                configured = mr;
            }
            for (int g = gb; g < gbe; g++)
                groups[mr][q4](a, packed, g, m0, n0, n1);
        }
    }
    _tile_release();
}
