/* quant_mm_avx512.h - what the AVX-512 quantized matmul files (quant_mm_avx512.c: legacy types and
 * x quantization, quant_mm_k_avx512.c: K-quants) share: tile sizes, the final lane reduction, and
 * the loop that covers the output with tiles. Included only by *_avx512.c files. */
#ifndef CLLM_KERNELS_QUANT_MM_AVX512_H
#define CLLM_KERNELS_QUANT_MM_AVX512_H

#include "kernels/quant_blocks.h"
#include "kernels/quant_impl.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define KEEP_IN_REG(v) __asm__("" : "+v"(v))

#define QUANT_MM_MR 4      /* GEMM tile: tokens */
#define QUANT_MM_NR1 8     /* GEMV tile: weight rows, at most */
#define QUANT_MM_SMALL_M 2 /* below this many tokens: GEMV tiles */
#define QUANT_MM_FEW_M 4   /* below this many tokens: weights come from DRAM, prefetch them */
/* ... a->pf_tiles tiles ahead (default 2; a tuned variant, see tune.h) */
#define QUANT_MM_BLOCK_BYTES (256 * 1024) /* weight rows per L2 block of the GEMM */
#define QUANT_MM_ACC_MAX 16

AI float hsum16(__m512 v) { /* fixed tree: 16 -> 8 -> 4 -> 2 -> 1 */
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

AI void finish(const quant_mm_args *a, const __m512 *acc, int m0, int n0, const int mr,
               const int nr) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            a->y[(size_t)(m0 + i) * a->ldy + n0 + j] =
                hsum16(acc[i * nr + j]) + (a->bias ? a->bias[n0 + j] : 0.0f);
}

/* Tiles of one type: gemm[mr] = mr x nr, gemm1[mr] = mr x 1 (column remainders), gemv = 1 x nrv.
 * The tile function TILE(a, m0, n0, mr, nr, dtype) must be defined before QUANT_MM_TSET is used. */
typedef void (*quant_mm_tile_fn)(const quant_mm_args *a, int m0, int n0);
typedef struct {
    quant_mm_tile_fn gemm[QUANT_MM_MR + 1], gemm1[QUANT_MM_MR + 1], gemv;
    int nr, nrv;
} quant_mm_tile_set;

#define QUANT_MM_TL(name, DT, mr, nr)                                                              \
    static void name##_##mr##x##nr(const quant_mm_args *a, int m0, int n0) {                       \
        TILE(a, m0, n0, mr, nr, DT);                                                               \
    }
#define QUANT_MM_TSET(name, DT, nr, nrv)                                                           \
    QUANT_MM_TL(name, DT, 1, nr)                                                                   \
    QUANT_MM_TL(name, DT, 2, nr)                                                                   \
    QUANT_MM_TL(name, DT, 3, nr)                                                                   \
    QUANT_MM_TL(name, DT, 4, nr)                                                                   \
    QUANT_MM_TL(name, DT, 1, 1)                                                                    \
    QUANT_MM_TL(name, DT, 2, 1)                                                                    \
    QUANT_MM_TL(name, DT, 3, 1)                                                                    \
    QUANT_MM_TL(name, DT, 4, 1)                                                                    \
    QUANT_MM_TL(name##_v, DT, 1, nrv)                                                              \
    static const quant_mm_tile_set name = {                                                        \
        {NULL, name##_1x##nr, name##_2x##nr, name##_3x##nr, name##_4x##nr},                        \
        {NULL, name##_1x1, name##_2x1, name##_3x1, name##_4x1},                                    \
        name##_v_1x##nrv,                                                                          \
        nr,                                                                                        \
        nrv};

/* Outputs [0, M) x [n0, n1): GEMV tiles for few tokens; else, per L2 block of weight rows, every
 * token tile passes over the block. */
static inline void quant_mm_run_tiles(const quant_mm_args *a, int n0, int n1,
                                      const quant_mm_tile_set *t) {
    if (a->M < QUANT_MM_SMALL_M) {
        int n = n0; /* every token passes over a tile's rows while they are in cache */
        for (; n + t->nrv <= n1; n += t->nrv)
            for (int m = 0; m < a->M; m++)
                t->gemv(a, m, n);
        for (; n < n1; n++)
            for (int m = 0; m < a->M; m++)
                t->gemm1[1](a, m, n);
        return;
    }
    int nb_rows = (int)(QUANT_MM_BLOCK_BYTES / a->w_row);
    nb_rows = nb_rows < t->nr ? t->nr : nb_rows / t->nr * t->nr;
    for (int nb = n0; nb < n1; nb += nb_rows) {
        int nbe = n1 - nb < nb_rows ? n1 : nb + nb_rows;
        for (int m = 0; m < a->M; m += QUANT_MM_MR) {
            int mr = a->M - m < QUANT_MM_MR ? a->M - m : QUANT_MM_MR, n = nb;
            for (; n + t->nr <= nbe; n += t->nr)
                t->gemm[mr](a, m, n);
            for (; n < nbe; n++)
                t->gemm1[mr](a, m, n);
        }
    }
}

/* K-quant weights (quant_mm_k_avx512.c). */
void quant_mm_rows_k_avx512(const quant_mm_args *a, int n0, int n1);

#endif
