/* matmul_avx512.h - what the AVX-512 float-weight matmul files share (matmul_avx512.c: f32 FMA
 * over f32/f16/bf16 weights; matmul_dpbf16_avx512.c: vdpbf16ps over bf16 weights with x rounded
 * to bf16): the accumulator budget, the one lane-reduction tree and the tile epilogue. Included
 * only by *_avx512.c files. */
#ifndef CLLM_KERNELS_MATMUL_AVX512_H
#define CLLM_KERNELS_MATMUL_AVX512_H

#include "kernels/matmul_impl.h"

#include <immintrin.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))
/* Load x once into a register for the tile's NR FMAs; left alone, GCC folds the load into every
 * FMA and the two 512-bit load ports become the bottleneck. */
#define KEEP_IN_REG(v) __asm__("" : "+v"(v))

/* Accumulators of the largest tile of either file (8 x 3 register tiles, 1 x 8 decode tiles). */
#define ACC_MAX 24

AI __mmask16 tail16(int r) {
    return (__mmask16)((1u << r) - 1);
}

/* x[k .. k + 32) of a row of K values as two vectors, zeros past K (the preparations of x). */
AI void load_x32(const float *x, int K, int k, __m512 *lo, __m512 *hi) {
    __mmask16 m_lo = K - k >= 16 ? 0xffff : K - k > 0 ? tail16(K - k) : 0;
    __mmask16 m_hi = K - k >= 32 ? 0xffff : K - k > 16 ? tail16(K - k - 16) : 0;
    *lo = _mm512_maskz_loadu_ps(m_lo, x + k);
    *hi = _mm512_maskz_loadu_ps(m_hi, x + k + 16);
}

/* ------------------------------------------------------------------ horizontal sums */

AI __m512 red1(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
}
AI __m512 red2(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xdd));
}
AI __m512 red3(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xee));
}
AI __m512 red4(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xdd));
}

/* Lane L of the result = sum of the 16 lanes of v[L], always by the tree
 * ((l[i] + l[i+8]) -> (+4) -> (+2) -> (+1)); 16 sums for ~45 instructions instead of ~130. */
AI __m512 reduce16(const __m512 *v) {
    __m512 A[16], c[8], d[4], e[2];
    for (int i = 0; i < 16; i++)
        A[i] = v[4 * (i % 4) + i / 4]; /* undo the 4x4 lane shuffle */
    for (int k = 0; k < 8; k++)
        c[k] = red1(A[2 * k], A[2 * k + 1]);
    for (int j = 0; j < 4; j++)
        d[j] = red2(c[2 * j], c[2 * j + 1]);
    for (int t = 0; t < 2; t++)
        e[t] = red3(d[2 * t], d[2 * t + 1]);
    return red4(e[0], e[1]);
}

/* Sum each accumulator acc[i * nr + j], add bias, store y[m0 + i][n0 + j]. Inlined into each
 * tile so the accumulators never leave registers and the stores are one masked row per token. */
AI void finish(const kern_mm_args *a, const __m512 *acc, int m0, int n0, const int mr,
               const int nr) {
    const int cnt = mr * nr, padded = (cnt + 15) / 16 * 16;
    __m512 v[(ACC_MAX + 15) / 16 * 16];
    float out[(ACC_MAX + 15) / 16 * 16] __attribute__((aligned(64)));
    for (int q = 0; q < padded; q++)
        v[q] = q < cnt ? acc[q] : _mm512_setzero_ps();
    for (int g = 0; g < padded; g += 16)
        _mm512_store_ps(out + g, reduce16(v + g));
    const __mmask16 mk = (__mmask16)((1u << nr) - 1);
    const __m512 b = a->bias ? _mm512_maskz_loadu_ps(mk, a->bias + n0) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        __m512 r = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, out + i * nr), b);
        _mm512_mask_storeu_ps(a->y + (size_t)(m0 + i) * a->ldy + n0, mk, r);
    }
}

#endif
