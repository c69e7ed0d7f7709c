/* quant_k.c - the K-quants (Q4_K, Q5_K, Q6_K, Q8_K): super-blocks of 256 with per-sub-block
 * scales. The quantizers follow ggml's reference ones (quantize_row_q*_K_ref): for Q4_K/Q5_K a
 * weighted least-squares search of each 32-element sub-block's scale and min over a few
 * candidate step sizes, for Q6_K an RMSE search of each 16-element sub-block's scale; the
 * sub-block scales are then quantized to 6 (Q4_K/Q5_K) or 8 (Q6_K) bits. Same operations in the
 * same order as ggml, without FMA contraction (built without -mfma). */
#include "base/half.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_impl.h"

#include <math.h>
#include <string.h>

#define GROUP_EPS 1e-15f

static int clamp_i(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Levels L[n] in [0, nmax] and (scale, min) with x ~ scale * L - min, chosen to minimise the
 * w-weighted squared error: start from the plain min/max fit, then try nstep + 1 other step
 * sizes (nmax + rmin + rdelta * is levels over the range) and solve the 2x2 least-squares
 * system for each. Returns the scale; *neg_min gets -min (>= 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep) {
    uint8_t aux[32];
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp_i(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_i(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
            aux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float s = (sum_w * sum_xl - sum_x * sum_l) / D;
            float m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (m > 0) {
                m = 0;
                s = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = s * aux[i] + m - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best) {
                memcpy(L, aux, (size_t)n);
                best = err;
                scale = s;
                min = m;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

/* Q4_K (bits 4) and Q5_K (bits 5): fit the 8 sub-blocks, quantize their scales and mins to
 * 6 bits relative to the largest, then re-quantize the values with the rounded parameters. */
static void quantize_q45_k(const float *x, void *blocks, int64_t nb, int bits) {
    const int nmax = (1 << bits) - 1;
    uint8_t L[QK_K];
    float mins[8], scales[8], w[32];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        uint8_t *sc12;
        uint16_t *d, *dmin;
        if (bits == 4) {
            blk_q4_k *b = (blk_q4_k *)blocks + i;
            sc12 = b->scales, d = &b->d, dmin = &b->dmin;
        } else {
            blk_q5_k *b = (blk_q5_k *)blocks + i;
            sc12 = b->scales, d = &b->d, dmin = &b->dmin;
        }
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += xs[l] * xs[l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                w[l] = av_x + fabsf(xs[l]);
            scales[j] = bits == 4
                            ? fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -1.f, 0.1f, 20)
                            : fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -0.5f, 0.1f, 15);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(sc12, 0, 12);
        for (int j = 0; j < 8; j++) {
            int ls = (uint8_t)quant_nearest_int(inv_scale * scales[j]);
            int lm = (uint8_t)quant_nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                sc12[j] = (uint8_t)ls;
                sc12[j + 4] = (uint8_t)lm;
            } else {
                sc12[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
                sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc12[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        *d = f32_to_f16(max_scale / 63.f);
        *dmin = f32_to_f16(max_min / 63.f);
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            quant_k4_scale_min(sc12, j, &sc, &mn);
            const float dd = f16_to_f32(*d) * sc;
            if (!dd) continue;
            const float dm = f16_to_f32(*dmin) * mn;
            for (int l = 0; l < 32; l++)
                L[32 * j + l] =
                    (uint8_t)clamp_i(quant_nearest_int((x[32 * j + l] + dm) / dd), 0, nmax);
        }
        if (bits == 4) {
            uint8_t *q = ((blk_q4_k *)blocks)[i].qs;
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    q[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
        } else {
            blk_q5_k *b = (blk_q5_k *)blocks + i;
            memset(b->qh, 0, sizeof b->qh);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) {
                    int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                    b->qh[l] |= (uint8_t)((l1 >> 4) << (2 * c) | (l2 >> 4) << (2 * c + 1));
                    b->qs[32 * c + l] = (uint8_t)((l1 & 15) | (l2 & 15) << 4);
                }
        }
    }
}

void quant_quantize_q4_k(const float *x, void *dst, int64_t nb) {
    quantize_q45_k(x, dst, nb, 4);
}
void quant_quantize_q5_k(const float *x, void *dst, int64_t nb) {
    quantize_q45_k(x, dst, nb, 5);
}

void quant_dequantize_q45_k(dtype t, const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *s12, *qs, *qh = NULL;
        float d, dmin;
        if (t == DTYPE_Q4_K) {
            const blk_q4_k *b = (const blk_q4_k *)src + i;
            s12 = b->scales, qs = b->qs, d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
        } else {
            const blk_q5_k *b = (const blk_q5_k *)src + i;
            s12 = b->scales, qs = b->qs, qh = b->qh;
            d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
        }
        for (int c = 0; c < 4; c++) {
            for (int h = 0; h < 2; h++) { /* sub-block 2c + h: low (h = 0) or high nibbles */
                int sc, mn;
                quant_k4_scale_min(s12, 2 * c + h, &sc, &mn);
                const float d1 = d * sc, m1 = dmin * mn;
                for (int l = 0; l < 32; l++) {
                    int q = (qs[32 * c + l] >> (4 * h)) & 15;
                    if (qh) q += ((qh[l] >> (2 * c + h)) & 1) << 4;
                    *y++ = d1 * q - m1;
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ Q6_K */

/* Signed levels L[16] in [-32, 31] (stored + 32) and a scale minimising the x^2-weighted
 * squared error over 19 candidate step sizes around max / -32. */
static float fit_scale_q6(const float *x, int8_t *L) {
    const int n = 16, nmax = 32;
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_i(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_i(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clamp_i(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void quant_quantize_q6_k(const float *x, void *dst, int64_t nb) {
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        blk_q6_k *b = (blk_q6_k *)dst + i;
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_q6(x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) {
                max_abs = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(b, 0, sizeof *b);
        if (max_abs < GROUP_EPS) continue; /* all zero, d = +0 */
        const float iscale = -128.f / max_scale;
        b->d = f32_to_f16(1 / iscale);
        for (int j = 0; j < 16; j++) {
            int v = quant_nearest_int(iscale * scales[j]);
            b->scales[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            const float d = f16_to_f32(b->d) * b->scales[j];
            if (!d) continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] =
                    (int8_t)(clamp_i(quant_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *q = L + 128 * h + l;
                b->ql[64 * h + l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
                b->ql[64 * h + 32 + l] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
                b->qh[32 * h + l] = (uint8_t)((q[0] >> 4) | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 |
                                              (q[96] >> 4) << 6);
            }
    }
}

void quant_dequantize_q6_k(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const blk_q6_k *b = (const blk_q6_k *)src + i;
        const float d = f16_to_f32(b->d);
        for (int e = 0; e < QK_K; e++) {
            const int h = e / 128, s = (e / 32) % 4, l = e % 32;
            int q = (b->ql[64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15;
            q |= ((b->qh[32 * h + l] >> (2 * s)) & 3) << 4;
            y[i * QK_K + e] = d * b->scales[e / 16] * (q - 32);
        }
    }
}

/* ------------------------------------------------------------------ Q8_K */

void quant_quantize_q8_k(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        blk_q8_k *b = (blk_q8_k *)dst + i;
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(b, 0, sizeof *b);
        if (!amax) continue;
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = quant_nearest_int(iscale * x[j]);
            b->qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b->qs[16 * j + l];
            b->bsums[j] = (int16_t)s;
        }
        b->d = 1 / iscale;
    }
}
