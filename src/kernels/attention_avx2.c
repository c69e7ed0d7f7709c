/* attention_avx2.c - the attention kernel body compiled for AVX2 + FMA, with the block-score
 * and V-accumulation loops written with intrinsics. */
#include <immintrin.h>

static inline void isa_scores16(float *sc, const float *q, const float *kt, int hd) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m256 qd = _mm256_set1_ps(q[d]);
        a0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + (size_t)d * 16), a0);
        a1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + (size_t)d * 16 + 8), a1);
    }
    _mm256_storeu_ps(sc, a0);
    _mm256_storeu_ps(sc + 8, a1);
}

static inline void isa_axpy(float *acc, float p, const float *v, int hd) {
    __m256 vp = _mm256_set1_ps(p);
    int d = 0;
    for (; d + 8 <= hd; d += 8)
        _mm256_storeu_ps(acc + d,
                         _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + d), _mm256_loadu_ps(acc + d)));
    for (; d < hd; d++)
        acc[d] += p * v[d];
}

#define ATTN_SCORES16 isa_scores16
#define ATTN_AXPY isa_axpy
#define ATTN_SUFFIX _avx2
#include "kernels/attention_impl.h"
