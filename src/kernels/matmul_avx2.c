/* matmul_avx2.c - AVX2+FMA+F16C matmul: register tiles of MR tokens x NR weight rows over the
 * whole K, for f32, f16 and bf16 weights (bf16 widened to f32 in registers).
 *
 * Reduction order (batch invariance): every output element has one 8-lane accumulator that sees
 * the K chunks in increasing order (for bf16: per 16-chunk, the 8 even-indexed elements' FMA then
 * the 8 odd-indexed ones; x is prepared in that layout), the tail chunk is zero padded, then the
 * lanes are summed by one fixed tree (hsum8) and the bias is added. Tile shape, M and threads
 * never change that. */
#include "kernels/matmul_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* 16 ymm registers: 8 accumulators + up to 4 widened weights + x. */
#define MR 4
#define NR 2
#define NR1 4     /* decode tile: 1 token x 4 rows */
#define SMALL_M 3 /* below this, W is streamed once per token by the decode tile */
#define BLOCK_BYTES (256 * 1024)

/* (l[i] + l[i+4]) -> (+2) -> (+1) */
AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One 16-element chunk of bf16 weights; w rows may be a zero-padded copy (tail). */
AI void step_bf16(__m256 *acc, const uint16_t *const *wr, const float *x, int ldx, int k, int wk,
                  const int mr, const int nr) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 we[NR1], wo[NR1];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        __m256i r = _mm256_loadu_si256((const __m256i *)(wr[j] + wk));
        we[j] = _mm256_castsi256_ps(_mm256_slli_epi32(r, 16));
        wo[j] = _mm256_castsi256_ps(_mm256_and_si256(r, hi));
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        __m256 xe = _mm256_load_ps(x + (size_t)i * ldx + k);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm256_fmadd_ps(we[j], xe, acc[i * nr + j]);
        __m256 xo = _mm256_load_ps(x + (size_t)i * ldx + k + 8);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm256_fmadd_ps(wo[j], xo, acc[i * nr + j]);
    }
}

/* One 8-element chunk of f32/f16 weights; rows may be zero-padded copies (tail). */
AI void step_f(__m256 *acc, const void *const *wr, int wk, const float *const *xr, int xk,
               const int mr, const int nr, const dtype wt) {
    __m256 wv[NR1];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++)
        wv[j] =
            wt == DTYPE_F16
                ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)wr[j] + wk)))
                : _mm256_loadu_ps((const float *)wr[j] + wk);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        __m256 xv = _mm256_loadu_ps(xr[i] + xk);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm256_fmadd_ps(wv[j], xv, acc[i * nr + j]);
    }
}

AI void tile(const kern_mm_args *a, int m0, int n0, const int mr, const int nr, const dtype wt) {
    __m256 acc[MR * NR > NR1 ? MR * NR : NR1];
    const int K = a->K;
    const size_t es = dtype_size(wt);
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm256_setzero_ps();
    int k = 0;
    if (wt == DTYPE_BF16) {
        const uint16_t *wr[NR1];
        for (int j = 0; j < nr; j++)
            wr[j] = (const uint16_t *)a->w + (size_t)(n0 + j) * K;
        const float *x = a->xp + (size_t)m0 * a->xp_ld;
        for (; k + 16 <= K; k += 16)
            step_bf16(acc, wr, x, a->xp_ld, k, k, mr, nr);
        if (k < K) { /* x is zero padded; pad the weights the same way */
            uint16_t pad[NR1][16];
            const uint16_t *pr[NR1];
            for (int j = 0; j < nr; j++) {
                memset(pad[j], 0, sizeof pad[j]);
                memcpy(pad[j], wr[j] + k, (size_t)(K - k) * 2);
                pr[j] = pad[j];
            }
            step_bf16(acc, pr, x, a->xp_ld, k, 0, mr, nr);
        }
    } else {
        const void *wr[NR1];
        const float *xr[MR];
        for (int j = 0; j < nr; j++)
            wr[j] = (const char *)a->w + (size_t)(n0 + j) * K * es;
        for (int i = 0; i < mr; i++)
            xr[i] = a->x + (size_t)(m0 + i) * a->ldx;
        for (; k + 8 <= K; k += 8)
            step_f(acc, wr, k, xr, k, mr, nr, wt);
        if (k < K) {
            float xpad[MR][8];
            char wpad[NR1][32];
            const void *pw[NR1];
            const float *px[MR];
            for (int j = 0; j < nr; j++) {
                memset(wpad[j], 0, sizeof wpad[j]);
                memcpy(wpad[j], (const char *)wr[j] + (size_t)k * es, (size_t)(K - k) * es);
                pw[j] = wpad[j];
            }
            for (int i = 0; i < mr; i++) {
                memset(xpad[i], 0, sizeof xpad[i]);
                memcpy(xpad[i], xr[i] + k, (size_t)(K - k) * sizeof(float));
                px[i] = xpad[i];
            }
            step_f(acc, pw, 0, px, 0, mr, nr, wt);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            a->y[(size_t)(m0 + i) * a->ldy + n0 + j] =
                hsum8(acc[i * nr + j]) + (a->bias ? a->bias[n0 + j] : 0.0f);
}

typedef kern_tile_fn tile_fn;

#define T(dt, DT, mr, nr)                                                                          \
    static void tile_##dt##_##mr##x##nr(const kern_mm_args *a, int m0, int n0) {                   \
        tile(a, m0, n0, mr, nr, DT);                                                               \
    }
/* clang-format off */
#define TALL(dt, DT)                                                                               \
    T(dt, DT, 1, 1) T(dt, DT, 1, 2) T(dt, DT, 1, 3) T(dt, DT, 1, 4)                                \
    T(dt, DT, 2, 1) T(dt, DT, 2, 2) T(dt, DT, 3, 1) T(dt, DT, 3, 2) T(dt, DT, 4, 1) T(dt, DT, 4, 2)
/* clang-format on */
TALL(f32, DTYPE_F32)
TALL(f16, DTYPE_F16)
TALL(bf16, DTYPE_BF16)

#define TTAB(dt)                                                                                   \
    {                                                                                              \
        {NULL}, {NULL, tile_##dt##_1x1, tile_##dt##_1x2},                                          \
            {NULL, tile_##dt##_2x1, tile_##dt##_2x2}, {NULL, tile_##dt##_3x1, tile_##dt##_3x2}, {  \
            NULL, tile_##dt##_4x1, tile_##dt##_4x2                                                 \
        }                                                                                          \
    }
#define GTAB(dt)                                                                                   \
    { NULL, tile_##dt##_1x1, tile_##dt##_1x2, tile_##dt##_1x3, tile_##dt##_1x4 }

static const tile_fn tiles[3][MR + 1][NR + 1] = {TTAB(f32), TTAB(f16), TTAB(bf16)};
static const tile_fn gemvs[3][NR1 + 1] = {GTAB(f32), GTAB(f16), GTAB(bf16)};

void kern_mm_rows_avx2(const kern_mm_args *a, int n0, int n1) {
    const int t = a->wt == DTYPE_F32 ? 0 : a->wt == DTYPE_F16 ? 1 : 2;
    if (a->M < SMALL_M)
        kern_mm_sweep_gemv(a, n0, n1, NR1, gemvs[t]);
    else
        kern_mm_sweep_tiles(a, n0, n1, BLOCK_BYTES, MR, NR, &tiles[t][0][0]);
}

/* x rows -> per 16-chunk: 8 even-indexed then 8 odd-indexed values, zero padded to xp_ld. */
void kern_mm_prep_x_avx2(const kern_mm_args *a, int m0, int m1, float *xp) {
    const int K = a->K;
    for (int m = m0; m < m1; m++) {
        const float *x = a->x + (size_t)m * a->ldx;
        float *d = xp + (size_t)m * a->xp_ld;
        for (int k = 0; k < a->xp_ld; k += 16) {
            float buf[16] = {0};
            const float *s = x + k;
            if (k + 16 > K) {
                if (k < K) memcpy(buf, x + k, (size_t)(K - k) * sizeof(float));
                s = buf;
            }
            __m256 lo = _mm256_loadu_ps(s), hi = _mm256_loadu_ps(s + 8);
            /* per 128-bit lane: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then fix the quarter order */
            __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
            __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
            e = _mm256_castpd_ps(
                _mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
            o = _mm256_castpd_ps(
                _mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
            _mm256_store_ps(d + k, e);
            _mm256_store_ps(d + k + 8, o);
        }
    }
}
