/* quant_mm_k_avx512.c - AVX-512 (BW + VNNI) matmul over K-quant weights (Q4_K, Q5_K, Q6_K): per
 * 256-block, each weight row's scales are unpacked once and its 4 chunks of 64 levels once per
 * tile, and used by all the tile's tokens (tiles and loops: quant_mm_avx512.h).
 *
 * Per output the order of operations is fixed (batch invariance): 16 int32 lanes, each summing
 * exactly, over the block, sub-block scale x (dot product of 4 consecutive weight levels with
 * x's q8 values) (maddubs + dpwssd; Q6_K adds -32 * scale . bsums); then per block
 * acc += float(lanes) * (d * dx) and acc -= float(mins . bsums lanes) * (dmin * dx); then one
 * fixed 16-lane tree and the bias. */
#include "kernels/quant_mm_avx512.h"

#define NRK 2 /* GEMM tile: weight rows */

typedef struct {
    __m512i sc[4]; /* int16 scale of each pair of products, per 64-value chunk */
    __m256i mn;    /* Q4_K/Q5_K: int16 min of each 16-group; Q6_K: -32 * scale of each group */
    __m512 d, dmin;
} kscales;

AI kscales load_kscales(const uint8_t *blk, const dtype wt) {
    kscales s;
    if (wt == DTYPE_Q6_K) {
        const blk_q6_k *p = (const blk_q6_k *)blk;
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p->scales));
        for (int c = 0; c < 4; c++) { /* groups 4c..4c+3, 8 int16 each */
            const __m512i idx =
                _mm512_set_epi16(4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3,
                                 4 * c + 3, 4 * c + 3, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2,
                                 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 1, 4 * c + 1,
                                 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1,
                                 4 * c, 4 * c, 4 * c, 4 * c, 4 * c, 4 * c, 4 * c, 4 * c);
            s.sc[c] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc));
        }
        s.mn = _mm256_mullo_epi16(sc, _mm256_set1_epi16(-32));
        s.d = _mm512_set1_ps(_cvtsh_ss(p->d));
        s.dmin = _mm512_setzero_ps();
        return s;
    }
    const blk_q4_k *p = (const blk_q4_k *)blk; /* Q5_K has the same head */
    uint32_t u[4];
    memcpy(u, p->scales, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4); /* mins 4..7 */
    const uint32_t m03 = u[1] & k1;                        /* mins 0..3 */
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);        /* scales 4..7 */
    u[0] &= k1;                                            /* scales 0..3 */
    u[2] = m03;
    __m128i sc8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[1], (int)u[0]));
    __m128i mn8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
    for (int c = 0; c < 4; c++) {
        __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * c))),
                                         _mm256_set1_epi16((short)(2 * c + 1)), 1);
        s.sc[c] = _mm512_permutexvar_epi16(idx, _mm512_castsi128_si512(sc8));
    }
    const __m256i pairs = _mm256_set_epi16(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    s.mn = _mm256_permutexvar_epi16(pairs, _mm256_castsi128_si256(mn8));
    s.d = _mm512_set1_ps(_cvtsh_ss(p->d));
    s.dmin = _mm512_set1_ps(_cvtsh_ss(p->dmin));
    return s;
}

/* Unsigned levels of values 64c..64c+63 of a K-quant block, in element order. */
AI __m512i load_kchunk(const uint8_t *blk, int c, const dtype wt) {
    const __m512i m4 = _mm512_set1_epi8(15);
    if (wt == DTYPE_Q6_K) {
        const blk_q6_k *p = (const blk_q6_k *)blk;
        const int h = c / 2, s0 = 2 * (c % 2);
        __m512i ql = _mm512_loadu_si512(p->ql + 64 * h);
        __m512i lo = _mm512_and_si512(c % 2 ? _mm512_srli_epi16(ql, 4) : ql, m4);
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p->qh + 32 * h)));
        __m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * s0)),
                                         _mm256_set1_epi16((short)(2 * s0 + 2)), 1);
        __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, cnt), _mm512_set1_epi8(3));
        return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
    }
    const uint8_t *qs =
        wt == DTYPE_Q4_K ? ((const blk_q4_k *)blk)->qs : ((const blk_q5_k *)blk)->qs;
    __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
    __m512i cnt = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512i q = _mm512_and_si512(_mm512_srlv_epi16(z, cnt), m4);
    if (wt == DTYPE_Q5_K) {
        const blk_q5_k *p = (const blk_q5_k *)blk;
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p->qh));
        __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                         _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
        q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, _mm512_set1_epi8(16));
    }
    return q;
}

/* One 256-block of a K-quant tile. */
AI void step_kquant(const quant_mm_args *a, __m512 *acc, int m0, int n0, int b, const int mr,
                    const int nr, const dtype wt) {
    const size_t bb = dtype_block_bytes(wt);
    kscales s[QUANT_MM_NR1];
    __m512i ai[QUANT_MM_ACC_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++)
        s[j] = load_kscales((const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row + b * bb, wt);
    for (int q = 0; q < mr * nr; q++)
        ai[q] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512i wq[QUANT_MM_NR1];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint8_t *blk = (const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row + b * bb;
            if (mr == 1 || a->M < QUANT_MM_FEW_M) /* decode: prefetch 2 tiles ahead */
                _mm_prefetch((const char *)blk + (size_t)a->pf_tiles * nr * a->w_row + 64 * c,
                             _MM_HINT_T0);
            wq[j] = load_kchunk(blk, c, wt);
        }
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            __m512i xq = _mm512_load_si512(a->xq + (size_t)(m0 + i) * a->lay.row_bytes +
                                           (size_t)b * QK_K + 64 * c);
            KEEP_IN_REG(xq);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                ai[i * nr + j] = _mm512_dpwssd_epi32(ai[i * nr + j],
                                                     _mm512_maddubs_epi16(wq[j], xq), s[j].sc[c]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        const uint8_t *xr = a->xq + (size_t)(m0 + i) * a->lay.row_bytes;
        __m256i bs = _mm256_load_si256((const __m256i *)(xr + a->lay.off_aux) + b);
        __m512 dx = _mm512_set1_ps(((const float *)(xr + a->lay.off_d))[b]);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            __m512i mv = _mm512_castsi256_si512(_mm256_madd_epi16(s[j].mn, bs));
            mv = _mm512_maskz_mov_epi32(0xff, mv);
            __m512 *o = &acc[i * nr + j];
            if (wt == DTYPE_Q6_K) {
                *o = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(ai[i * nr + j], mv)),
                                     _mm512_mul_ps(s[j].d, dx), *o);
            } else {
                *o = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[i * nr + j]), _mm512_mul_ps(s[j].d, dx),
                                     *o);
                *o = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mv), _mm512_mul_ps(s[j].dmin, dx), *o);
            }
        }
    }
}

AI void tile_kquant(const quant_mm_args *a, int m0, int n0, const int mr, const int nr,
                    const dtype wt) {
    __m512 acc[QUANT_MM_ACC_MAX];
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm512_setzero_ps();
    for (int b = 0; b < a->lay.nb; b++)
        step_kquant(a, acc, m0, n0, b, mr, nr, wt);
    finish(a, acc, m0, n0, mr, nr);
}

#define TILE tile_kquant
QUANT_MM_TSET(t_q4_k, DTYPE_Q4_K, 2, 4)
QUANT_MM_TSET(t_q5_k, DTYPE_Q5_K, 2, 4)
QUANT_MM_TSET(t_q6_k, DTYPE_Q6_K, 2, 4)
_Static_assert(NRK == 2 && QUANT_MM_MR == 4, "the tile tables above");

void quant_mm_rows_k_avx512(const quant_mm_args *a, int n0, int n1) {
    static const quant_mm_tile_set *const sets[] = {&t_q4_k, &t_q5_k, &t_q6_k};
    quant_mm_run_tiles(a, n0, n1, sets[a->wt - DTYPE_Q4_K]);
}
