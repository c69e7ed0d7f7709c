/* matmul_cvt.c - f32 <-> f16/bf16 row conversions: dispatch and the scalar path (base/half.h is
 * the reference; the SIMD versions in matmul_cvt_avx2.c / matmul_cvt_avx512.c match it bitwise). */
#include "base/half.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant.h"

#include <string.h>

static void to_f32_scalar(const void *src, dtype t, int n, float *dst) {
    const uint16_t *h = src;
    if (t == DTYPE_F32)
        memmove(dst, src, (size_t)n * sizeof(float));
    else if (t == DTYPE_BF16)
        for (int i = 0; i < n; i++)
            dst[i] = bf16_to_f32(h[i]);
    else
        for (int i = 0; i < n; i++)
            dst[i] = f16_to_f32(h[i]);
}

static void from_f32_scalar(const float *src, dtype t, int n, void *dst) {
    uint16_t *h = dst;
    if (t == DTYPE_F32)
        memmove(dst, src, (size_t)n * sizeof(float));
    else if (t == DTYPE_BF16)
        for (int i = 0; i < n; i++)
            h[i] = f32_to_bf16(src[i]);
    else
        for (int i = 0; i < n; i++)
            h[i] = f32_to_f16(src[i]);
}

void kern_to_f32_on(kern_mm_path p, const void *src, dtype t, int n, float *dst) {
    if (n <= 0) return;
    if (dtype_is_quant(t)) { /* embedding rows of a quantized token_embd */
        quant_dequantize_row(t, src, dst, n);
        return;
    }
    if (p >= KERN_MM_AVX512)
        kern_to_f32_avx512(src, t, n, dst);
    else if (p == KERN_MM_AVX2)
        kern_to_f32_avx2(src, t, n, dst);
    else
        to_f32_scalar(src, t, n, dst);
}

void kern_from_f32_on(kern_mm_path p, const float *src, dtype t, int n, void *dst) {
    if (n <= 0) return;
    if (p >= KERN_MM_AVX512)
        kern_from_f32_avx512(src, t, n, dst);
    else if (p == KERN_MM_AVX2)
        kern_from_f32_avx2(src, t, n, dst);
    else
        from_f32_scalar(src, t, n, dst);
}

void kern_to_f32(const void *src, dtype t, int n, float *dst) {
    kern_to_f32_on(kern_mm_best_path(), src, t, n, dst);
}

void kern_from_f32(const float *src, dtype t, int n, void *dst) {
    kern_from_f32_on(kern_mm_best_path(), src, t, n, dst);
}
