/* matmul_dpbf16_avx512.c - the AVX512-BF16 family for bf16 weights: x rounded to bf16 once per
 * call (round to nearest even, as vcvtne2ps2bf16 does), then each 32-element chunk of a weight row
 * is one vdpbf16ps with the token's bf16 x: two products per f32 lane and instruction, and no
 * widening of the weights. The products of two bf16 values are exact in f32, so the only rounding
 * beyond the f32-FMA family is that of x (relative 2^-9): llama.cpp's numerics for bf16 weights.
 * Which family runs is chosen per CPU by measurement (tune.h): on CPUs where vdpbf16ps has the
 * throughput of an FMA (AMD Zen 4) it doubles the peak; where it has half (some Intel cores) the
 * f32-FMA family wins.
 *
 * Reduction order (batch invariance): every output has one 16-lane accumulator that sees the K
 * chunks of 32 in increasing order (each vdpbf16ps adds its lane's two products in the order the
 * instruction defines), the tail chunk is masked to zeros (x is zero padded), then the 16 lanes
 * are summed by reduce16 and the bias is added. Tile shape, M and threads never change that. */
#include "kernels/matmul_avx512.h"

#define MR 8  /* GEMM tile: tokens */
#define NR 3  /* GEMM tile: weight rows (24 accumulators + 3 weights + 1 x) */
#define NR1 8 /* decode tile: weight rows in flight */
#define SMALL_M KERN_MM_GEMM_MIN_M
#define BLOCK_BYTES (512 * 1024) /* weight rows per L2 block of the GEMM */
_Static_assert((MR * NR) <= ACC_MAX && NR1 <= ACC_MAX, "accumulator budget");

void kern_mm_prep_x_dpbf16(const kern_mm_args *a, int m0, int m1, uint16_t *xb) {
    const int K = a->K;
    for (int m = m0; m < m1; m++) {
        const float *x = a->x + (size_t)m * a->ldx;
        uint16_t *d = xb + (size_t)m * a->xp_ld;
        for (int k = 0; k < a->xp_ld; k += 32) {
            __m512 lo, hi;
            load_x32(x, K, k, &lo, &hi);
            _mm512_store_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* One tile over the full K: mr tokens x nr weight rows; pf: prefetch rows a->pf_tiles tiles
 * ahead (decode). mr, nr, pf are compile-time constants in every instantiation. */
AI void tile(const kern_mm_args *a, int m0, int n0, const int mr, const int nr, const int pf) {
    __m512 acc[ACC_MAX];
    const int K = a->K;
    const uint16_t *w = (const uint16_t *)a->w + (size_t)n0 * K;
    const uint16_t *x = (const uint16_t *)a->xp + (size_t)m0 * a->xp_ld;
    const size_t pfd = (size_t)(a->pf_tiles > 0 ? a->pf_tiles : 1) * nr * K;
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32) {
        const int full = K - k >= 32;
        const __mmask32 mk = full ? ~(__mmask32)0 : (__mmask32)((1ull << (K - k)) - 1);
        __m512i wv[NR1];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const uint16_t *p = w + (size_t)j * K + k;
            wv[j] = full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(mk, p);
            if (pf) _mm_prefetch((const char *)(p + pfd), _MM_HINT_T0);
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512i xv = _mm512_load_si512(x + (size_t)i * a->xp_ld + k);
            KEEP_IN_REG(xv);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                acc[i * nr + j] = _mm512_dpbf16_ps(acc[i * nr + j], (__m512bh)wv[j], (__m512bh)xv);
        }
    }
    finish(a, acc, m0, n0, mr, nr);
}

typedef kern_tile_fn tile_fn;

/* clang-format off */ /* it lays rows of macro instantiations out differently on each run */
#define T(mr, nr)                                                                                  \
    static void tile_##mr##x##nr(const kern_mm_args *a, int m0, int n0) {                          \
        tile(a, m0, n0, mr, nr, 0);                                                                \
    }
#define TROW(mr) T(mr, 1) T(mr, 2) T(mr, 3)
TROW(1) TROW(2) TROW(3) TROW(4) TROW(5) TROW(6) TROW(7) TROW(8)
#define G(nr)                                                                                      \
    static void gemv_##nr(const kern_mm_args *a, int m0, int n0) {                                 \
        tile(a, m0, n0, 1, nr, 1);                                                                 \
    }
G(1) G(2) G(3) G(4) G(5) G(6) G(7) G(8)

#define TR(mr)                                                                                     \
    { NULL, tile_##mr##x1, tile_##mr##x2, tile_##mr##x3 }
static const tile_fn tiles[MR + 1][NR + 1] = {{NULL}, TR(1), TR(2), TR(3), TR(4),
                                              TR(5),  TR(6), TR(7), TR(8)};
static const tile_fn gemvs[NR1 + 1] = {NULL,   gemv_1, gemv_2, gemv_3, gemv_4,
                                       gemv_5, gemv_6, gemv_7, gemv_8};
/* clang-format on */

void kern_mm_rows_dpbf16(const kern_mm_args *a, int n0, int n1) {
    if (a->M < SMALL_M)
        kern_mm_sweep_gemv(a, n0, n1, NR1, gemvs);
    else
        kern_mm_sweep_tiles(a, n0, n1, BLOCK_BYTES, MR, NR, &tiles[0][0]);
}
