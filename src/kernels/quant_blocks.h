/* quant_blocks.h - the GGUF block structs (byte layouts exactly as ggml's block_q*), shared by
 * the quantizers (quant.c, quant_k.c) and the quantized matmul kernels (quant_mm*.c). */
#ifndef CLLM_KERNELS_QUANT_BLOCKS_H
#define CLLM_KERNELS_QUANT_BLOCKS_H

#include <stdint.h>

#define QK 32    /* elements per block of the legacy types */
#define QK_K 256 /* elements per super-block of the K-quants */

/* d, m and dmin are IEEE half precision bit patterns. */
typedef struct {
    uint16_t d;
    int8_t qs[QK];
} blk_q8_0;
typedef struct {
    uint16_t d;
    uint8_t qs[QK / 2]; /* element j in the low nibble of qs[j], j + 16 in the high one */
} blk_q4_0;
typedef struct {
    uint16_t d, m;
    uint8_t qs[QK / 2];
} blk_q4_1;
typedef struct {
    uint16_t d;
    uint8_t qh[4]; /* bit j (little-endian u32) = bit 4 of element j */
    uint8_t qs[QK / 2];
} blk_q5_0;
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK / 2];
} blk_q5_1;
/* K-quants: 8 sub-blocks of 32 with 6-bit scale and min packed in scales[12]: sub-block j < 4:
 * scale = scales[j] & 63, min = scales[j + 4] & 63; j >= 4: scale = (scales[j + 4] & 15) |
 * (scales[j - 4] >> 6) << 4, min = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4.
 * qs: per 64 elements, 32 bytes: low nibbles = the first 32 elements, high nibbles the next. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
} blk_q4_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8]; /* bit 2c of qh[l]: element 64c + l gets +16; bit 2c+1: 64c + 32 + l */
    uint8_t qs[QK_K / 2];
} blk_q5_k;
/* 16 sub-blocks of 16, int8 scales; value = d * scale * (q - 32), q 6-bit. Per 128 elements:
 * 64 ql bytes and 32 qh bytes: element 128h + 32s + l (s = 0..3, l < 32) has low bits
 * ql[64h + l + 32 (s & 1)] >> 4 (s >> 1) (low nibble for s < 2), high bits
 * (qh[32h + l] >> 2s) & 3. Element e has scale scales[e / 16]. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} blk_q6_k;
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} blk_q8_k;

_Static_assert(sizeof(blk_q8_0) == 34, "q8_0");
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q4_k) == 144, "q4_k");
_Static_assert(sizeof(blk_q5_k) == 176, "q5_k");
_Static_assert(sizeof(blk_q6_k) == 210, "q6_k");
_Static_assert(sizeof(blk_q8_k) == 292, "q8_k");

/* Sub-block j's 6-bit scale and min of a Q4_K / Q5_K block. */
static inline void quant_k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Round to nearest, ties to even, for |f| < 2^22 (the float-add trick). */
static inline int quant_nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    __builtin_memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#endif
