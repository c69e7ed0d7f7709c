/* quant.c - row quantize/dequantize dispatch, the plain types and the 32-element block types
 * (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1). The arithmetic follows ggml's reference quantizers step by
 * step (same operations in the same order, no FMA contraction: this file is built without
 * -mfma), so the blocks come out bit-identical to quantize_row_*_ref. K-quants: quant_k.c. */
#include "kernels/quant.h"

#include "base/half.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

static int min_i(int a, int b) {
    return a < b ? a : b;
}

/* ------------------------------------------------------------------ Q8_0 */

static void quantize_q8_0(const float *x, blk_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_f16(d);
        for (int j = 0; j < QK; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void dequantize_q8_0(const blk_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        const float d = f16_to_f32(b[i].d);
        for (int j = 0; j < QK; j++)
            y[j] = b[i].qs[j] * d;
    }
}

/* ------------------------------------------------------------------ symmetric 4/5 bit */

/* The value of largest magnitude, with its sign (the first one on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

/* Q4_0 (bits 4, offset 8) and Q5_0 (bits 5, offset 16): d = max / -offset, so the value of
 * largest magnitude maps to level 0 exactly. Levels are stored in L[32]. */
static float quantize_sym(const float *x, int bits, uint8_t *L) {
    const int off = 1 << (bits - 1), top = (1 << bits) - 1;
    const float d = signed_absmax(x, QK) / (float)-off, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++)
        L[j] = (uint8_t)min_i(top, (int8_t)(x[j] * id + ((float)off + 0.5f)));
    return d;
}

/* Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min. */
static void quantize_asym(const float *x, int bits, uint8_t *L, float *d_out, float *m_out) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const int top = (1 << bits) - 1;
    const float d = (max - min) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) {
        int l = (uint8_t)((x[j] - min) * id + 0.5f);
        L[j] = (uint8_t)(bits == 4 ? min_i(15, (int8_t)l) : l);
    }
    *d_out = d;
    *m_out = min;
}

static void pack_nibbles(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK / 2; j++)
        qs[j] = (uint8_t)((L[j] & 15) | (L[j + QK / 2] & 15) << 4);
}

static void pack_high_bits(const uint8_t *L, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < QK; j++)
        h |= (uint32_t)((L[j] >> 4) & 1) << j;
    memcpy(qh, &h, 4);
}

/* The 5-bit levels of a Q5 block (qh + qs). */
static void unpack5(const uint8_t *qh, const uint8_t *qs, int *L) {
    uint32_t h;
    memcpy(&h, qh, 4);
    for (int j = 0; j < QK / 2; j++) {
        L[j] = (qs[j] & 15) | (int)((h >> j) & 1) << 4;
        L[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
    }
}

static void quantize_legacy(dtype t, const float *x, void *dst, int64_t nb) {
    uint8_t L[QK];
    float d, m;
    for (int64_t i = 0; i < nb; i++, x += QK) {
        switch (t) {
        case DTYPE_Q4_0: {
            blk_q4_0 *b = (blk_q4_0 *)dst + i;
            b->d = f32_to_f16(quantize_sym(x, 4, L));
            pack_nibbles(L, b->qs);
            break;
        }
        case DTYPE_Q5_0: {
            blk_q5_0 *b = (blk_q5_0 *)dst + i;
            b->d = f32_to_f16(quantize_sym(x, 5, L));
            pack_nibbles(L, b->qs);
            pack_high_bits(L, b->qh);
            break;
        }
        case DTYPE_Q4_1: {
            blk_q4_1 *b = (blk_q4_1 *)dst + i;
            quantize_asym(x, 4, L, &d, &m);
            b->d = f32_to_f16(d), b->m = f32_to_f16(m);
            pack_nibbles(L, b->qs);
            break;
        }
        default: { /* Q5_1 */
            blk_q5_1 *b = (blk_q5_1 *)dst + i;
            quantize_asym(x, 5, L, &d, &m);
            b->d = f32_to_f16(d), b->m = f32_to_f16(m);
            pack_nibbles(L, b->qs);
            pack_high_bits(L, b->qh);
            break;
        }
        }
    }
}

static void dequantize_legacy(dtype t, const void *src, float *y, int64_t nb) {
    int L[QK];
    for (int64_t i = 0; i < nb; i++, y += QK) {
        float d, m = 0.0f;
        int off = 0;
        if (t == DTYPE_Q4_0 || t == DTYPE_Q4_1) {
            const uint8_t *qs;
            if (t == DTYPE_Q4_0) {
                const blk_q4_0 *b = (const blk_q4_0 *)src + i;
                d = f16_to_f32(b->d), qs = b->qs, off = 8;
            } else {
                const blk_q4_1 *b = (const blk_q4_1 *)src + i;
                d = f16_to_f32(b->d), m = f16_to_f32(b->m), qs = b->qs;
            }
            for (int j = 0; j < QK / 2; j++)
                L[j] = qs[j] & 15, L[j + 16] = qs[j] >> 4;
        } else if (t == DTYPE_Q5_0) {
            const blk_q5_0 *b = (const blk_q5_0 *)src + i;
            d = f16_to_f32(b->d), off = 16;
            unpack5(b->qh, b->qs, L);
        } else {
            const blk_q5_1 *b = (const blk_q5_1 *)src + i;
            d = f16_to_f32(b->d), m = f16_to_f32(b->m);
            unpack5(b->qh, b->qs, L);
        }
        /* ggml: (q - off) * d for the symmetric types, q * d + m for the others */
        if (off)
            for (int j = 0; j < QK; j++)
                y[j] = (float)(L[j] - off) * d;
        else
            for (int j = 0; j < QK; j++)
                y[j] = (float)L[j] * d + m;
    }
}

/* ------------------------------------------------------------------ dispatch */

void quant_quantize_row(dtype t, const float *src, void *dst, int64_t n) {
    const int64_t nb = n / dtype_block_elems(t);
    switch (t) {
    case DTYPE_F32:
        memmove(dst, src, (size_t)n * sizeof(float));
        break;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_f16(src[i]);
        break;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_bf16(src[i]);
        break;
    case DTYPE_Q8_0:
        quantize_q8_0(src, dst, nb);
        break;
    case DTYPE_Q4_0:
    case DTYPE_Q4_1:
    case DTYPE_Q5_0:
    case DTYPE_Q5_1:
        quantize_legacy(t, src, dst, nb);
        break;
    case DTYPE_Q4_K:
        quant_quantize_q4_k(src, dst, nb);
        break;
    case DTYPE_Q5_K:
        quant_quantize_q5_k(src, dst, nb);
        break;
    case DTYPE_Q6_K:
        quant_quantize_q6_k(src, dst, nb);
        break;
    case DTYPE_Q8_K:
        quant_quantize_q8_k(src, dst, nb);
        break;
    default:
        break;
    }
}

void quant_dequantize_row(dtype t, const void *src, float *dst, int64_t n) {
    const int64_t nb = n / dtype_block_elems(t);
    switch (t) {
    case DTYPE_F32:
        memmove(dst, src, (size_t)n * sizeof(float));
        break;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case DTYPE_Q8_0:
        dequantize_q8_0(src, dst, nb);
        break;
    case DTYPE_Q4_0:
    case DTYPE_Q4_1:
    case DTYPE_Q5_0:
    case DTYPE_Q5_1:
        dequantize_legacy(t, src, dst, nb);
        break;
    case DTYPE_Q4_K:
    case DTYPE_Q5_K:
        quant_dequantize_q45_k(t, src, dst, nb);
        break;
    case DTYPE_Q6_K:
        quant_dequantize_q6_k(src, dst, nb);
        break;
    case DTYPE_Q8_K:
        for (int64_t i = 0; i < nb; i++)
            for (int j = 0; j < QK_K; j++)
                dst[i * QK_K + j] = ((const blk_q8_k *)src)[i].d * ((const blk_q8_k *)src)[i].qs[j];
        break;
    default:
        break;
    }
}
