/* act_avx512.c - SiLU(gate) * up with AVX-512 (the MLP activation is a visible share of prefill).
 */
#include "kernels/vexp_avx512.h"

void kern_silu_mul_avx512(float *g, const float *u, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 y = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(y, _mm512_loadu_ps(u + i)));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, g + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 y = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(y, _mm512_maskz_loadu_ps(k, u + i)));
    }
}
