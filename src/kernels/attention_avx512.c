/* attention_avx512.c - the attention kernel body compiled for AVX-512, with its three inner loops
 * (block scores, exp + sum, V accumulation) written with intrinsics. */
#include <immintrin.h>

#include "kernels/vexp_avx512.h"

static inline void isa_scores16(float *sc, const float *q, const float *kt, int hd) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int d = 0;
    for (; d + 2 <= hd; d += 2) {
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(kt + (size_t)d * 16), a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 1]), _mm512_loadu_ps(kt + (size_t)(d + 1) * 16),
                             a1);
    }
    for (; d < hd; d++)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(kt + (size_t)d * 16), a0);
    _mm512_storeu_ps(sc, _mm512_add_ps(a0, a1));
}

static inline float isa_exp_sum(float *x, int n, float mx) {
    __m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm));
        _mm512_storeu_ps(x + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (j < n) {
        __mmask16 k = (__mmask16)((1u << (n - j)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm));
        _mm512_mask_storeu_ps(x + j, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(acc);
}

static inline void isa_axpy(float *acc, float p, const float *v, int hd) {
    __m512 vp = _mm512_set1_ps(p);
    int d = 0;
    for (; d + 16 <= hd; d += 16)
        _mm512_storeu_ps(acc + d,
                         _mm512_fmadd_ps(vp, _mm512_loadu_ps(v + d), _mm512_loadu_ps(acc + d)));
    for (; d < hd; d++)
        acc[d] += p * v[d];
}

#define ATTN_SCORES16 isa_scores16
#define ATTN_EXP_SUM isa_exp_sum
#define ATTN_AXPY isa_axpy
#define ATTN_SUFFIX _avx512
#include "kernels/attention_impl.h"
