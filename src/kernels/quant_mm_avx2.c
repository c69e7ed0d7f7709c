/* quant_mm_avx2.c - AVX2 matmul over quantized weights (no VNNI): register tiles of MR tokens x NR
 * weight rows over the whole K, as in quant_mm_avx512.c but 8 lanes wide.
 *
 * Per output the order of operations is fixed (batch invariance): 8 int32 lanes, each the exact
 * integer dot product of 4 consecutive weight levels with x's q8 values (maddubs + madd; the
 * operands never saturate: unsigned levels <= 63, Q8_0 as |w| * sign(x, w));
 *  - legacy types, per 32-block: acc += float(lanes) * (dw * dx) (+ m * d*sum(q)/8 per lane for
 *    Q4_1/Q5_1; Q4_0/Q5_0 add the prepared -c * sum(q) lanes to the integers first);
 *  - K-quants, per 256-block: lanes sum scale * dot exactly, acc += float(lanes) * (d * dx),
 *    acc -= float(mins . bsums lanes) * (dmin * dx);
 * then one fixed 8-lane tree and the bias. */
#include "kernels/quant_blocks.h"
#include "kernels/quant_impl.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define KEEP_IN_REG(v) __asm__("" : "+x"(v))

#define MR 2      /* GEMM tile: tokens */
#define NR 4      /* GEMM tile: weight rows (legacy) */
#define NRK 2     /* GEMM tile: weight rows (K-quants) */
#define NRV 4     /* GEMV tile: weight rows */
#define SMALL_M 2 /* below this many tokens: GEMV tiles */
#define BLOCK_BYTES (256 * 1024)
#define ACC_MAX 8

AI float hsum8(__m256 v) { /* fixed tree: 8 -> 4 -> 2 -> 1 */
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

AI void finish(const quant_mm_args *a, const __m256 *acc, int m0, int n0, const int mr,
               const int nr) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            a->y[(size_t)(m0 + i) * a->ldy + n0 + j] =
                hsum8(acc[i * nr + j]) + (a->bias ? a->bias[n0 + j] : 0.0f);
}

/* Sum of each 4 consecutive products u * s (u unsigned, products never saturate). */
AI __m256i dot4(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* 32 bits -> 32 bytes: 16 where the bit is set, else 0. */
AI __m256i bits_to_16(uint32_t h) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                           0x0101010101010101ll, 0x0000000000000000ll);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

/* ------------------------------------------------------------------ legacy types */

typedef struct {
    __m256i q; /* unsigned levels; Q8_0: |w| */
    __m256i w; /* Q8_0: the signed values (for the sign of x) */
    float d, m;
} wblock;

AI wblock load_legacy(const uint8_t *row, int b, const dtype wt) {
    wblock c;
    const uint8_t *p = row + (size_t)b * dtype_block_bytes(wt);
    uint16_t h;
    memcpy(&h, p, 2);
    c.d = _cvtsh_ss(h);
    c.m = 0.0f;
    if (wt == DTYPE_Q8_0) {
        c.w = _mm256_loadu_si256((const __m256i *)(p + 2));
        c.q = _mm256_abs_epi8(c.w);
        return c;
    }
    c.w = _mm256_setzero_si256();
    const int asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1,
              five = wt == DTYPE_Q5_0 || wt == DTYPE_Q5_1;
    if (asym) {
        memcpy(&h, p + 2, 2);
        c.m = _cvtsh_ss(h);
    }
    const uint8_t *qs = p + 2 + 2 * asym + 4 * five;
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    c.q = _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
        _mm256_set1_epi8(15));
    if (five) {
        uint32_t hb;
        memcpy(&hb, p + 2 + 2 * asym, 4);
        c.q = _mm256_or_si256(c.q, bits_to_16(hb));
    }
    return c;
}

AI void step_legacy(const quant_mm_args *a, __m256 *acc, int m0, int n0, int b, const int mr,
                    const int nr, const dtype wt) {
    const int asym = wt == DTYPE_Q4_1 || wt == DTYPE_Q5_1;
    const int corr = wt == DTYPE_Q4_0 || wt == DTYPE_Q5_0;
    wblock w[NRV > NR ? NRV : NR];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        const uint8_t *row = (const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row;
        if (mr == 1)
            _mm_prefetch((const char *)row + (size_t)nr * a->w_row +
                             (size_t)b * dtype_block_bytes(wt),
                         _MM_HINT_T0);
        w[j] = load_legacy(row, b, wt);
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        const uint8_t *xr = a->xq + (size_t)(m0 + i) * a->lay.row_bytes;
        __m256i xq = _mm256_load_si256((const __m256i *)xr + b);
        KEEP_IN_REG(xq);
        const float dx = ((const float *)(xr + a->lay.off_d))[b];
        __m256i c0 = corr ? _mm256_load_si256((const __m256i *)(xr + a->lay.off_corr) + b)
                          : _mm256_setzero_si256();
        __m256 sx =
            asym ? _mm256_set1_ps(((const float *)(xr + a->lay.off_aux))[b]) : _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            __m256i p = wt == DTYPE_Q8_0 ? dot4(w[j].q, _mm256_sign_epi8(xq, w[j].w))
                                         : _mm256_add_epi32(c0, dot4(w[j].q, xq));
            __m256 s = _mm256_set1_ps(w[j].d * dx);
            acc[i * nr + j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[i * nr + j]);
            if (asym)
                acc[i * nr + j] = _mm256_fmadd_ps(_mm256_set1_ps(w[j].m), sx, acc[i * nr + j]);
        }
    }
}

AI void tile_legacy(const quant_mm_args *a, int m0, int n0, const int mr, const int nr,
                    const dtype wt) {
    __m256 acc[ACC_MAX];
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm256_setzero_ps();
    for (int b = 0; b < a->lay.nb; b++)
        step_legacy(a, acc, m0, n0, b, mr, nr, wt);
    finish(a, acc, m0, n0, mr, nr);
}

/* ------------------------------------------------------------------ K-quants */

typedef struct {
    uint8_t sc[16]; /* Q4_K/Q5_K: 6-bit scale of each 32-chunk; Q6_K: int8 scale of each 16 */
    __m256i mn;     /* Q4_K/Q5_K: int16 min of each 16-group; Q6_K: -32 * scale of each group */
    float d, dmin;
} kscales;

AI kscales load_kscales(const uint8_t *blk, const dtype wt) {
    kscales s;
    if (wt == DTYPE_Q6_K) {
        const blk_q6_k *p = (const blk_q6_k *)blk;
        memcpy(s.sc, p->scales, 16);
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p->scales));
        s.mn = _mm256_mullo_epi16(sc, _mm256_set1_epi16(-32));
        s.d = _cvtsh_ss(p->d), s.dmin = 0.0f;
        return s;
    }
    const blk_q4_k *p = (const blk_q4_k *)blk; /* Q5_K has the same head */
    int mn[8];
    for (int j = 0; j < 8; j++) {
        int sc;
        quant_k4_scale_min(p->scales, j, &sc, &mn[j]);
        s.sc[j] = (uint8_t)sc;
    }
    s.mn = _mm256_setr_epi16((short)mn[0], (short)mn[0], (short)mn[1], (short)mn[1], (short)mn[2],
                             (short)mn[2], (short)mn[3], (short)mn[3], (short)mn[4], (short)mn[4],
                             (short)mn[5], (short)mn[5], (short)mn[6], (short)mn[6], (short)mn[7],
                             (short)mn[7]);
    s.d = _cvtsh_ss(p->d), s.dmin = _cvtsh_ss(p->dmin);
    return s;
}

/* Unsigned levels of values 32c..32c+31 of a K-quant block, in element order. */
AI __m256i load_kchunk(const uint8_t *blk, int c, const dtype wt) {
    const __m256i m4 = _mm256_set1_epi8(15);
    if (wt == DTYPE_Q6_K) {
        const blk_q6_k *p = (const blk_q6_k *)blk;
        const int h = c / 4, s = c % 4;
        __m256i ql = _mm256_loadu_si256((const __m256i *)(p->ql + 64 * h + 32 * (s & 1)));
        __m256i lo = _mm256_and_si256(s >> 1 ? _mm256_srli_epi16(ql, 4) : ql, m4);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(p->qh + 32 * h));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * s), _mm256_set1_epi8(3));
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    const uint8_t *qs =
        wt == DTYPE_Q4_K ? ((const blk_q4_k *)blk)->qs : ((const blk_q5_k *)blk)->qs;
    __m256i z = _mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 2)));
    __m256i q = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(z, 4) : z, m4);
    if (wt == DTYPE_Q5_K) {
        __m256i qh = _mm256_loadu_si256((const __m256i *)((const blk_q5_k *)blk)->qh);
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, c), _mm256_set1_epi8(1));
        q = _mm256_or_si256(q, _mm256_slli_epi16(hb, 4));
    }
    return q;
}

/* int16 scale of each product pair of chunk c */
AI __m256i chunk_scales(const kscales *s, int c, const dtype wt) {
    if (wt == DTYPE_Q6_K)
        return _mm256_inserti128_si256(_mm256_set1_epi16((int8_t)s->sc[2 * c]),
                                       _mm_set1_epi16((int8_t)s->sc[2 * c + 1]), 1);
    return _mm256_set1_epi16(s->sc[c]);
}

AI void step_kquant(const quant_mm_args *a, __m256 *acc, int m0, int n0, int b, const int mr,
                    const int nr, const dtype wt) {
    const size_t bb = dtype_block_bytes(wt);
    kscales s[NRV > NRK ? NRV : NRK];
    __m256i ai[ACC_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++)
        s[j] = load_kscales((const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row + b * bb, wt);
    for (int q = 0; q < mr * nr; q++)
        ai[q] = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
        __m256i wq[NRV > NRK ? NRV : NRK], sc[NRV > NRK ? NRV : NRK];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint8_t *blk = (const uint8_t *)a->w + (size_t)(n0 + j) * a->w_row + b * bb;
            if (mr == 1)
                _mm_prefetch((const char *)blk + (size_t)nr * a->w_row + 32 * c, _MM_HINT_T0);
            wq[j] = load_kchunk(blk, c, wt);
            sc[j] = chunk_scales(&s[j], c, wt);
        }
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            __m256i xq =
                _mm256_load_si256((const __m256i *)(a->xq + (size_t)(m0 + i) * a->lay.row_bytes +
                                                    (size_t)b * QK_K + 32 * c));
            KEEP_IN_REG(xq);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                ai[i * nr + j] = _mm256_add_epi32(
                    ai[i * nr + j], _mm256_madd_epi16(_mm256_maddubs_epi16(wq[j], xq), sc[j]));
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        const uint8_t *xr = a->xq + (size_t)(m0 + i) * a->lay.row_bytes;
        __m256i bs = _mm256_load_si256((const __m256i *)(xr + a->lay.off_aux) + b);
        const float dx = ((const float *)(xr + a->lay.off_d))[b];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            __m256i mv = _mm256_madd_epi16(s[j].mn, bs);
            __m256 *o = &acc[i * nr + j];
            if (wt == DTYPE_Q6_K) {
                *o = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(ai[i * nr + j], mv)),
                                     _mm256_set1_ps(s[j].d * dx), *o);
            } else {
                *o = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[i * nr + j]),
                                     _mm256_set1_ps(s[j].d * dx), *o);
                *o = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mv), _mm256_set1_ps(s[j].dmin * dx), *o);
            }
        }
    }
}

AI void tile_kquant(const quant_mm_args *a, int m0, int n0, const int mr, const int nr,
                    const dtype wt) {
    __m256 acc[ACC_MAX];
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm256_setzero_ps();
    for (int b = 0; b < a->lay.nb; b++)
        step_kquant(a, acc, m0, n0, b, mr, nr, wt);
    finish(a, acc, m0, n0, mr, nr);
}

/* ------------------------------------------------------------------ instantiations */

typedef void (*tile_fn)(const quant_mm_args *a, int m0, int n0);
typedef struct {
    tile_fn gemm[MR + 1], gemm1[MR + 1], gemv;
    int nr;
} tile_set;

#define TL(name, DT, mr, nr)                                                                       \
    static void name##_##mr##x##nr(const quant_mm_args *a, int m0, int n0) {                       \
        if (DT >= DTYPE_Q4_K)                                                                      \
            tile_kquant(a, m0, n0, mr, nr, DT);                                                    \
        else                                                                                       \
            tile_legacy(a, m0, n0, mr, nr, DT);                                                    \
    }
#define TSET(name, DT, nr)                                                                         \
    TL(name, DT, 2, nr)                                                                            \
    TL(name, DT, 1, 1)                                                                             \
    TL(name, DT, 2, 1)                                                                             \
    TL(name, DT, 1, 4)                                                                             \
    static const tile_set name = {                                                                 \
        {NULL, name##_1x4, name##_2x##nr}, {NULL, name##_1x1, name##_2x1}, name##_1x4, nr};

TSET(t_q8_0, DTYPE_Q8_0, 4)
TSET(t_q4_0, DTYPE_Q4_0, 4)
TSET(t_q4_1, DTYPE_Q4_1, 4)
TSET(t_q5_0, DTYPE_Q5_0, 4)
TSET(t_q5_1, DTYPE_Q5_1, 4)
TSET(t_q4_k, DTYPE_Q4_K, 2)
TSET(t_q5_k, DTYPE_Q5_K, 2)
TSET(t_q6_k, DTYPE_Q6_K, 2)
_Static_assert(MR == 2 && NRV == 4, "the tile tables above");

static const tile_set *set_of(dtype wt) {
    static const tile_set *const sets[] = {&t_q8_0, &t_q4_0, &t_q4_1, &t_q5_0,
                                           &t_q5_1, &t_q4_k, &t_q5_k, &t_q6_k};
    return sets[wt - DTYPE_Q8_0];
}

void quant_mm_rows_avx2(const quant_mm_args *a, int n0, int n1) {
    const tile_set *t = set_of(a->wt);
    if (a->M < SMALL_M) {
        int n = n0; /* every token passes over a tile's rows while they are in cache */
        for (; n + NRV <= n1; n += NRV)
            for (int m = 0; m < a->M; m++)
                t->gemv(a, m, n);
        for (; n < n1; n++)
            for (int m = 0; m < a->M; m++)
                t->gemm1[1](a, m, n);
        return;
    }
    int nb_rows = (int)(BLOCK_BYTES / a->w_row);
    nb_rows = nb_rows < NR ? NR : nb_rows / NR * NR;
    for (int nb = n0; nb < n1; nb += nb_rows) {
        int nbe = n1 - nb < nb_rows ? n1 : nb + nb_rows;
        for (int m = 0; m < a->M; m += MR) {
            int mr = a->M - m < MR ? a->M - m : MR, n = nb;
            const int nr = mr == MR ? t->nr : NRV; /* the single-token tile is the 1x4 */
            for (; n + nr <= nbe; n += nr)
                t->gemm[mr](a, m, n);
            for (; n < nbe; n++)
                t->gemm1[mr](a, m, n);
        }
    }
}

/* ------------------------------------------------------------------ x quantization */

AI int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Bitwise the same as quant_mm_prep_rows: max |x| is exact, d and 1/d are the same scalar
 * operations, x * (1/d) is one IEEE multiply and cvtps2dq rounds half to even. */
void quant_mm_prep_rows_avx2(const quant_mm_args *a, const float *x, int ldx, int m0, int m1) {
    const quant_mm_layout *l = &a->lay;
    const int c = quant_mm_corr_mult(a->wt), kq = l->bl == QK_K;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
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
            __m256 mx = _mm256_setzero_ps();
            for (int v = 0; v < l->bl; v += 8)
                mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + v)));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            const __m256 idv = _mm256_set1_ps(id);
            d[b] = db;
            int s = 0;
            for (int v = 0; v < l->bl; v += 32) { /* 32 values: 4 x 8 int32 -> 32 int8 */
                __m256i q4[4];
                for (int k = 0; k < 4; k++)
                    q4[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + v + 8 * k), idv));
                __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q4[0], q4[1]),
                                               _mm256_packs_epi32(q4[2], q4[3]));
                _mm256_storeu_si256((__m256i *)(q + v), _mm256_permutevar8x32_epi32(p, perm));
                if (kq) {
                    int16_t *bs = (int16_t *)(row + l->off_aux) + (size_t)b * 16 + v / 16;
                    bs[0] = (int16_t)hsum_epi32(_mm256_add_epi32(q4[0], q4[1]));
                    bs[1] = (int16_t)hsum_epi32(_mm256_add_epi32(q4[2], q4[3]));
                    continue;
                }
                s = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q4[0], q4[1]),
                                                _mm256_add_epi32(q4[2], q4[3])));
                if (c) { /* sums of 4 consecutive values, times -c */
                    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(q4[0], q4[1]),
                                                  _mm256_hadd_epi32(q4[2], q4[3]));
                    h = _mm256_mullo_epi32(_mm256_permutevar8x32_epi32(h, perm),
                                           _mm256_set1_epi32(-c));
                    _mm256_store_si256((__m256i *)(row + l->off_corr) + b, h);
                }
            }
            if (!kq) ((float *)(row + l->off_aux))[b] = db * (float)s * 0.125f;
        }
    }
}
