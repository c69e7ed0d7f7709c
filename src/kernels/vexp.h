/* vexp.h - a branch-free expf that compilers vectorise (range reduction to 2^n * e^r, degree-6
 * polynomial; max relative error about 2e-7 on the clamped range [-87, 88]). Used for softmax
 * and SiLU, where libm's expf would be called one element at a time. */
#ifndef CLLM_KERNELS_VEXP_H
#define CLLM_KERNELS_VEXP_H
#include <stdint.h>
#include <string.h>

static inline float kern_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* n = round(x / ln 2) via the 1.5 * 2^23 trick (no rintf, so it vectorises everywhere) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}
#endif
