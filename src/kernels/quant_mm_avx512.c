/* quant_mm_avx512.c - AVX-512 (BW + VNNI) matmul over quantized weights of the 32-element types,
 * and the x quantization: register tiles of MR tokens x NR weight rows over the whole K; the weight
 * chunk of each row is unpacked once per tile and used by all the tile's tokens. GEMV (M <
 * QUANT_MM_SMALL_M) uses 1 x 8 tiles, GEMM blocks N so that a block of weight rows stays in L2
 * while every token tile passes over it (quant_mm_avx512.h). K-quants: quant_mm_k_avx512.c.
 *
 * Per output the order of operations is fixed (batch invariance): 16 int32 lanes, each the
 * exact integer dot product of 4 consecutive weight levels with x's q8 values;
 *  - legacy types, per 64 values (2 blocks, lanes 0-7 / 8-15): acc += float(lanes) * (dw * dx)
 *    (+ m * d*sum(q)/8 per lane for Q4_1/Q5_1); unsigned-level dot products are corrected by
 *    the prepared -c * sum(q) per lane (c = the level offset, 128 for Q8_0's w ^ 0x80);
 * then one fixed 16-lane tree and the bias. Tile shape, M and threads never change that. */
#include "kernels/quant_mm_avx512.h"

#define NR 4 /* GEMM tile: weight rows */

/* ------------------------------------------------------------------ legacy types */

/* float pair from memory -> [f0 x 8, f1 x 8] */
AI __m512 pair_f32(const float *p) {
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castpd_ps(_mm512_castpd128_pd512(
                                          _mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)p)))));
}

/* Word-permute indices that take words w0 and w1 of two consecutive blocks' bytes to
 * [w0 x 8, w1 x 8] (the blocks' f16 scales or mins, for one 16-lane vector). */
AI __m512i idx_pair(const int w0, const int w1) {
    return _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, w1, w1, w1, w1, w1, w1,
                            w1, w1, w0, w0, w0, w0, w0, w0, w0, w0);
}
AI __m512 cvt_pair(__m512i words) { /* words 0-15 (f16) -> 16 floats */
    return _mm512_cvtph_ps(_mm512_castsi512_si256(words));
}

/* Nibble levels of two blocks (nibbles at q0 and q0 + bs) in element order: broadcasts give
 * [qs0 | qs0 | qs1 | qs1], the second copy of each is shifted right by 4. */
AI __m512i nibbles2(const uint8_t *q0, int bs, const int two) {
    __m512i z = _mm512_mask_blend_epi64(
        0xf0, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q0)),
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(two ? q0 + bs : q0))));
    z = _mm512_mask_srli_epi16(z, 0xff00ff00u, z, 4);
    z = _mm512_and_si512(z, _mm512_set1_epi8(15));
    return two ? z : _mm512_maskz_mov_epi64(0x0f, z);
}

/* Weight row data of one 64-value chunk (blocks b, b + 1; two = 0: b + 1 is past the row). */
typedef struct {
    __m512i q;   /* unsigned levels (Q8_0: w ^ 0x80) */
    __m512 d, m; /* per-lane block scale, min */
} wchunk;

/* Scales from one masked load of both blocks and a word permute; nibbles from two broadcasts. */
/* Unsigned levels of blocks b, b + 1 (two = 0: only b) in element order (Q8_0: w ^ 0x80). */
AI __m512i load_q(const uint8_t *row, int b, const dtype wt, const int two) {
    const int bs = (int)dtype_block_bytes(wt);
    const uint8_t *p0 = row + (size_t)b * bs;
    if (wt == DTYPE_Q8_0) {
        __m256i q0 = _mm256_loadu_si256((const __m256i *)(p0 + 2));
        __m256i q1 =
            two ? _mm256_loadu_si256((const __m256i *)(p0 + bs + 2)) : _mm256_set1_epi8(-128);
        return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1),
                                _mm512_set1_epi8((char)0x80));
    }
    const int asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1,
              five = wt == DTYPE_Q5_0 || wt == DTYPE_Q5_1;
    __m512i q = nibbles2(p0 + 2 + 2 * asym + 4 * five, bs, two); /* after d (, m) (, qh) */
    if (five) {
        uint32_t h0, h1 = 0;
        memcpy(&h0, p0 + 2 + 2 * asym, 4);
        if (two) memcpy(&h1, p0 + bs + 2 + 2 * asym, 4);
        __mmask64 hm = (__mmask64)h0 | (__mmask64)h1 << 32;
        q = _mm512_mask_add_epi8(q, hm, q, _mm512_set1_epi8(16));
    }
    return q;
}

AI wchunk load_legacy(const uint8_t *row, int b, const dtype wt, const int two) {
    wchunk c;
    const int bs = (int)dtype_block_bytes(wt), s = bs / 2,
              asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1;
    const uint8_t *p0 = row + (size_t)b * bs;
    c.q = load_q(row, b, wt, two);
    __m512i win = _mm512_maskz_loadu_epi16(two ? (__mmask32)((1ull << (s + 2)) - 1) : 3u, p0);
    c.d = cvt_pair(_mm512_permutexvar_epi16(idx_pair(0, s), win));
    c.m = asym ? cvt_pair(_mm512_permutexvar_epi16(idx_pair(1, s + 1), win)) : _mm512_setzero_ps();
    return c;
}

/* x's data for chunk k64 of one token row. */
typedef struct {
    __m512i q, c0; /* q8 values, offset correction lanes */
    __m512 d, sx;  /* per-lane block scale, d * sum(q) / 8 */
} xchunk;

AI xchunk load_x(const quant_mm_args *a, int m, int k64, const dtype wt) {
    const int asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1;
    const uint8_t *xr = a->xq + (size_t)m * a->lay.row_bytes;
    xchunk x;
    x.q = _mm512_load_si512(xr + (size_t)k64 * 64);
    x.d = pair_f32((const float *)(xr + a->lay.off_d) + 2 * k64);
    x.c0 =
        asym ? _mm512_setzero_si512() : _mm512_load_si512(xr + a->lay.off_corr + (size_t)k64 * 64);
    x.sx = asym ? pair_f32((const float *)(xr + a->lay.off_aux) + 2 * k64) : _mm512_setzero_ps();
    return x;
}

/* The one definition of a legacy chunk's contribution to an output's accumulator. */
AI __m512 mac_legacy(__m512 acc, const wchunk *w, const xchunk *x, const dtype wt) {
    __m512i p = _mm512_dpbusd_epi32(x->c0, w->q, x->q);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(w->d, x->d), acc);
    if (wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1) acc = _mm512_fmadd_ps(w->m, x->sx, acc);
    return acc;
}

/* Decode (few tokens): the rows two tiles ahead come from DRAM; start them early. */
AI void prefetch_next(const quant_mm_args *a, const uint8_t *p, const int mr, const int nr) {
    if (mr == 1 || a->M < QUANT_MM_FEW_M)
        _mm_prefetch((const char *)p + (size_t)a->pf_tiles * nr * a->w_row, _MM_HINT_T0);
}

/* One 64-value chunk k64 (blocks 2 k64, 2 k64 + 1; two = 0: only the first exists). GEMV
 * (mr = 1) unpacks and uses one weight row at a time (fewer live registers). */
AI void step_legacy(const quant_mm_args *a, __m512 *acc, int m0, int n0, int k64, const int mr,
                    const int nr, const dtype wt, const int two) {
    const size_t off = (size_t)k64 * 2 * dtype_block_bytes(wt);
    const uint8_t *w0 = (const uint8_t *)a->w + (size_t)n0 * a->w_row;
    if (mr == 1) {
        xchunk x = load_x(a, m0, k64, wt);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint8_t *row = w0 + (size_t)j * a->w_row;
            prefetch_next(a, row + off, mr, nr);
            wchunk w = load_legacy(row, 2 * k64, wt, two);
            acc[j] = mac_legacy(acc[j], &w, &x, wt);
        }
        return;
    }
    wchunk w[QUANT_MM_NR1];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        prefetch_next(a, w0 + (size_t)j * a->w_row + off, mr, nr);
        w[j] = load_legacy(w0 + (size_t)j * a->w_row, 2 * k64, wt, two);
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        xchunk x = load_x(a, m0 + i, k64, wt);
        KEEP_IN_REG(x.q);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = mac_legacy(acc[i * nr + j], &w[j], &x, wt);
    }
}

/* GEMV over 16 blocks (nc = 8 chunks; or 8 blocks, nc = 4) from block 2 k64: each row's scales
 * (and mins) come from one gather, and the lane scales d_w * d_x of all 16 blocks from one
 * multiply; per chunk a permute spreads them. Same lane values and operations per chunk as
 * step_legacy (mac_legacy). */
AI void step_gemv16(const quant_mm_args *a, __m512 *acc, int m0, int n0, int k64, const int nr,
                    const dtype wt, const int nc) {
    const int asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1, bs = (int)dtype_block_bytes(wt);
    const uint8_t *xr = a->xq + (size_t)m0 * a->lay.row_bytes;
    const __m512i vidx =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32(bs));
    const __mmask16 lanes = (__mmask16)((1u << (2 * nc)) - 1);
    const __m512 dx = _mm512_maskz_loadu_ps(lanes, (const float *)(xr + a->lay.off_d) + 2 * k64);
    const __m512 sx16 =
        asym ? _mm512_maskz_loadu_ps(lanes, (const float *)(xr + a->lay.off_aux) + 2 * k64)
             : _mm512_setzero_ps();
    __m512 s16[QUANT_MM_NR1], m16[QUANT_MM_NR1];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        const uint8_t *p =
            (const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row + (size_t)k64 * 2 * bs;
        __m512i g =
            nc == 8 ? _mm512_i32gather_epi32(vidx, p, 1)
                    : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
                                                  (__mmask16)((1u << (2 * nc)) - 1), vidx, p, 1);
        s16[j] = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)), dx);
        if (asym) m16[j] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
    }
    for (int c = 0; c < nc; c++) {
        const __m512i idx = _mm512_set_epi32(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                                             2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c, 2 * c, 2 * c,
                                             2 * c, 2 * c, 2 * c, 2 * c, 2 * c);
        const int k = k64 + c;
        __m512i xq = _mm512_load_si512(xr + (size_t)k * 64);
        __m512i c0 = asym ? _mm512_setzero_si512()
                          : _mm512_load_si512(xr + a->lay.off_corr + (size_t)k * 64);
        __m512 sx = asym ? _mm512_permutexvar_ps(idx, sx16) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint8_t *row = (const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row;
            prefetch_next(a, row + (size_t)k * 2 * bs, 1, nr);
            __m512i p = _mm512_dpbusd_epi32(c0, load_q(row, 2 * k, wt, 1), xq);
            acc[j] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, s16[j]), acc[j]);
            if (asym) acc[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, m16[j]), sx, acc[j]);
        }
    }
}

/* Q4_0 / Q4_1: two chunks (4 blocks, 72 or 80 bytes) at once, their 4 scales (and mins) from one
 * 64-byte load and word permute: the same operations per chunk as step_legacy, fewer of them. */
AI void step_legacy4(const quant_mm_args *a, __m512 *acc, int m0, int n0, int k64, const int mr,
                     const int nr, const dtype wt) {
    const int asym = wt == DTYPE_Q4_1, bs = (int)dtype_block_bytes(wt), s = bs / 2;
    const __m512i idx_d = _mm512_set_epi16(3 * s, 3 * s, 3 * s, 3 * s, 3 * s, 3 * s, 3 * s, 3 * s,
                                           2 * s, 2 * s, 2 * s, 2 * s, 2 * s, 2 * s, 2 * s, 2 * s,
                                           s, s, s, s, s, s, s, s, 0, 0, 0, 0, 0, 0, 0, 0);
    const uint8_t *w0 = (const uint8_t *)a->w + (size_t)n0 * a->w_row + (size_t)k64 * 2 * bs;
    __m512i dw[QUANT_MM_NR1], mw[QUANT_MM_NR1];
    wchunk w[QUANT_MM_NR1];
    xchunk x[QUANT_MM_MR];
    for (int h = 0; h < 2; h++) {
        if (mr == 1) x[0] = load_x(a, m0, k64 + h, wt);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint8_t *p = w0 + (size_t)j * a->w_row;
            if (h == 0) {
                prefetch_next(a, p, mr, nr);
                prefetch_next(a, p + 64, mr, nr);
                __m512i win =
                    _mm512_maskz_loadu_epi16((__mmask32)((1ull << (3 * s + 1 + asym)) - 1), p);
                dw[j] = _mm512_permutexvar_epi16(idx_d, win);
                if (asym)
                    mw[j] = _mm512_permutexvar_epi16(_mm512_add_epi16(idx_d, _mm512_set1_epi16(1)),
                                                     win);
            }
            w[j].q = nibbles2(p + 2 * bs * h + 2 + 2 * asym, bs, 1);
            w[j].d = _mm512_cvtph_ps(h ? _mm512_extracti64x4_epi64(dw[j], 1)
                                       : _mm512_castsi512_si256(dw[j]));
            w[j].m = !asym ? _mm512_setzero_ps()
                           : _mm512_cvtph_ps(h ? _mm512_extracti64x4_epi64(mw[j], 1)
                                               : _mm512_castsi512_si256(mw[j]));
            if (mr == 1) acc[j] = mac_legacy(acc[j], &w[j], &x[0], wt);
        }
        if (mr == 1) continue;
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            x[i] = load_x(a, m0 + i, k64 + h, wt);
            KEEP_IN_REG(x[i].q);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                acc[i * nr + j] = mac_legacy(acc[i * nr + j], &w[j], &x[i], wt);
        }
    }
}

AI void tile_legacy(const quant_mm_args *a, int m0, int n0, const int mr, const int nr,
                    const dtype wt) {
    __m512 acc[QUANT_MM_ACC_MAX];
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm512_setzero_ps();
    const int nb = a->lay.nb;
    int k = 0;
    if (mr == 1) {
        for (; 2 * k + 16 <= nb; k += 8)
            step_gemv16(a, acc, m0, n0, k, nr, wt, 8);
        if (2 * k + 8 <= nb) step_gemv16(a, acc, m0, n0, k, nr, wt, 4), k += 4;
    }
    if (wt == DTYPE_Q4_0 || wt == DTYPE_Q4_1)
        for (; 2 * k + 4 <= nb; k += 2)
            step_legacy4(a, acc, m0, n0, k, mr, nr, wt);
    for (; 2 * k + 2 <= nb; k++)
        step_legacy(a, acc, m0, n0, k, mr, nr, wt, 1);
    if (2 * k < nb) step_legacy(a, acc, m0, n0, k, mr, nr, wt, 0);
    finish(a, acc, m0, n0, mr, nr);
}

/* ------------------------------------------------------------------ instantiations */

#define TILE tile_legacy
QUANT_MM_TSET(t_q8_0, DTYPE_Q8_0, 4, 8)
QUANT_MM_TSET(t_q4_0, DTYPE_Q4_0, 4, 8)
QUANT_MM_TSET(t_q4_1, DTYPE_Q4_1, 4, 8)
QUANT_MM_TSET(t_q5_0, DTYPE_Q5_0, 4, 8)
QUANT_MM_TSET(t_q5_1, DTYPE_Q5_1, 4, 8)
_Static_assert(QUANT_MM_NR1 == 8 && NR == 4 && QUANT_MM_MR == 4, "the tile tables above");

void quant_mm_rows_avx512(const quant_mm_args *a, int n0, int n1) {
    static const quant_mm_tile_set *const sets[] = {&t_q8_0, &t_q4_0, &t_q4_1, &t_q5_0, &t_q5_1};
    if (a->wt >= DTYPE_Q4_K)
        quant_mm_rows_k_avx512(a, n0, n1);
    else
        quant_mm_run_tiles(a, n0, n1, sets[a->wt - DTYPE_Q8_0]);
}

/* ------------------------------------------------------------------ x quantization */

/* Bitwise the same as quant_mm_prep_rows' scalar code: max |x| is exact, d and 1/d are the same
 * scalar operations, x * (1/d) is one IEEE multiply and cvtps2dq rounds half to even. */
void quant_mm_prep_rows_avx512(const quant_mm_args *a, const float *x, int ldx, int m0, int m1) {
    const quant_mm_layout *l = &a->lay;
    const int c = quant_mm_corr_mult(a->wt), kq = l->bl == QK_K, nv = l->bl / 16;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int m = m0; m < m1; m++) {
        const float *xr = x + (size_t)m * ldx;
        uint8_t *row = (uint8_t *)a->xq + (size_t)m * l->row_bytes;
        float *d = (float *)(row + l->off_d);
        for (int b = 0; b < l->nbp; b++) {
            int8_t *q = (int8_t *)row + (size_t)b * l->bl;
            if (b >= l->nb) { /* padding block of an odd legacy row */
                quant_mm_zero_block(l, row, b, c);
                continue;
            }
            const float *xb = xr + (size_t)b * l->bl;
            __m512 mx = _mm512_setzero_ps();
            for (int v = 0; v < nv; v++)
                mx = _mm512_max_ps(mx, _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + 16 * v)));
            const float amax = _mm512_reduce_max_ps(mx);
            const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            const __m512 idv = _mm512_set1_ps(id);
            d[b] = db;
            int s = 0;
            for (int v = 0; v < nv; v++) {
                __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * v), idv));
                _mm_storeu_si128((__m128i *)(q + 16 * v), _mm512_cvtepi32_epi8(qi));
                const int gs = _mm512_reduce_add_epi32(qi);
                if (kq)
                    ((int16_t *)(row + l->off_aux))[(size_t)b * 16 + v] = (int16_t)gs;
                else
                    s += gs;
            }
            if (kq) continue;
            ((float *)(row + l->off_aux))[b] = db * (float)s * 0.125f;
            if (c) {
                __m256i q8 = _mm256_loadu_si256((const __m256i *)q);
                __m256i cs = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                                 _mm256_set1_epi8((char)(uint8_t)c), q8);
                _mm256_store_si256((__m256i *)(row + l->off_corr) + b,
                                   _mm256_sub_epi32(_mm256_setzero_si256(), cs));
            }
        }
    }
}
