/* matmul_cvt_avx2.c - AVX2+F16C f32 <-> f16/bf16 row conversions, bit-identical to base/half.h
 * (including its NaN rules, which differ from what the hardware conversions produce). */
#include "base/half.h"
#include "kernels/matmul_impl.h"

#include <immintrin.h>
#include <string.h>

/* 8 x 32-bit lanes (each < 0x10000) -> 8 x uint16 */
static __m128i pack16(__m256i v) {
    return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

/* vcvtph2ps quietens signalling NaNs; the reference keeps the payload as is. */
static __m256 f16x8_to_f32(__m128i h) {
    __m256i e = _mm256_cvtepu16_epi32(h);
    __m256 f = _mm256_cvtph_ps(h);
    __m256i special = _mm256_cmpeq_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0x7c00)),
                                         _mm256_set1_epi32(0x7c00));
    if (_mm256_testz_si256(special, special)) return f;
    __m256i fix = _mm256_or_si256(
        _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0x8000)), 16),
                        _mm256_set1_epi32(0x7f800000)),
        _mm256_slli_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0x3ff)), 13));
    return _mm256_blendv_ps(f, _mm256_castsi256_ps(fix), _mm256_castsi256_ps(special));
}

/* Integer round-to-nearest-even, as the reference. */
static __m128i f32x8_to_bf16(__m256 v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    /* both sides are non-negative as int32, so the signed compare is the unsigned one */
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return pack16(_mm256_blendv_epi8(r, q, nan));
}

/* vcvtps2ph keeps NaN payload bits; the reference returns sign | 0x7e00. */
static __m128i f32x8_to_f16(__m256 v) {
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    if (_mm256_testz_si256(nan, nan)) return h;
    __m256i u = _mm256_castps_si256(v);
    __m256i fix =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000)),
                        _mm256_set1_epi32(0x7e00));
    return pack16(_mm256_blendv_epi8(_mm256_cvtepu16_epi32(h), fix, nan));
}

void kern_to_f32_avx2(const void *src, dtype t, int n, float *dst) {
    const uint16_t *h = src;
    int i = 0;
    if (t == DTYPE_F32) {
        memmove(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (t == DTYPE_BF16) {
        for (; i + 8 <= n; i += 8) {
            __m256i e = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(e, 16)));
        }
        for (; i < n; i++)
            dst[i] = bf16_to_f32(h[i]);
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, f16x8_to_f32(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < n; i++)
            dst[i] = f16_to_f32(h[i]);
    }
}

void kern_from_f32_avx2(const float *src, dtype t, int n, void *dst) {
    uint16_t *h = dst;
    int i = 0;
    if (t == DTYPE_F32) {
        memmove(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (t == DTYPE_BF16) {
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(h + i), f32x8_to_bf16(_mm256_loadu_ps(src + i)));
        for (; i < n; i++)
            h[i] = f32_to_bf16(src[i]);
    } else {
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(h + i), f32x8_to_f16(_mm256_loadu_ps(src + i)));
        for (; i < n; i++)
            h[i] = f32_to_f16(src[i]);
    }
}
