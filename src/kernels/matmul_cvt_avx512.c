/* matmul_cvt_avx512.c - AVX-512 f32 <-> f16/bf16 row conversions, bit-identical to base/half.h
 * (including its NaN rules, which differ from what the hardware conversions produce). */
#include "base/half.h"
#include "kernels/matmul_impl.h"

#include <immintrin.h>
#include <string.h>

/* vcvtph2ps quietens signalling NaNs; the reference keeps the payload as is. */
static __m512 f16x16_to_f32(__m256i h) {
    __m512i e = _mm512_cvtepu16_epi32(h);
    __m512 f = _mm512_cvtph_ps(h);
    __mmask16 special = _mm512_cmpeq_epi32_mask(_mm512_and_si512(e, _mm512_set1_epi32(0x7c00)),
                                                _mm512_set1_epi32(0x7c00));
    if (!special) return f;
    __m512i fix = _mm512_or_si512(
        _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(e, _mm512_set1_epi32(0x8000)), 16),
                        _mm512_set1_epi32(0x7f800000)),
        _mm512_slli_epi32(_mm512_and_si512(e, _mm512_set1_epi32(0x3ff)), 13));
    return _mm512_mask_blend_ps(special, f, _mm512_castsi512_ps(fix));
}

/* Integer round-to-nearest-even, as the reference (vcvtneps2bf16 would flush denormals). */
static __m256i f32x16_to_bf16(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, q));
}

/* vcvtps2ph keeps NaN payload bits; the reference returns sign | 0x7e00. */
static __m256i f32x16_to_f16(__m512 v) {
    __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    if (!nan) return h;
    __m512i u = _mm512_castps_si512(v);
    __m512i fix =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                        _mm512_set1_epi32(0x7e00));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, _mm512_cvtepu16_epi32(h), fix));
}

void kern_to_f32_avx512(const void *src, dtype t, int n, float *dst) {
    const uint16_t *h = src;
    int i = 0;
    if (t == DTYPE_F32) {
        memmove(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (t == DTYPE_BF16) {
        for (; i + 16 <= n; i += 16) {
            __m512i e = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i)));
            _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(e, 16)));
        }
        for (; i < n; i++)
            dst[i] = bf16_to_f32(h[i]);
    } else {
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(dst + i, f16x16_to_f32(_mm256_loadu_si256((const __m256i *)(h + i))));
        for (; i < n; i++)
            dst[i] = f16_to_f32(h[i]);
    }
}

void kern_from_f32_avx512(const float *src, dtype t, int n, void *dst) {
    uint16_t *h = dst;
    int i = 0;
    if (t == DTYPE_F32) {
        memmove(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (t == DTYPE_BF16) {
        for (; i + 16 <= n; i += 16)
            _mm256_storeu_si256((__m256i *)(h + i), f32x16_to_bf16(_mm512_loadu_ps(src + i)));
        for (; i < n; i++)
            h[i] = f32_to_bf16(src[i]);
    } else {
        for (; i + 16 <= n; i += 16)
            _mm256_storeu_si256((__m256i *)(h + i), f32x16_to_f16(_mm512_loadu_ps(src + i)));
        for (; i < n; i++)
            h[i] = f32_to_f16(src[i]);
    }
}
