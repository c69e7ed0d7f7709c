/* dtype.h - element types of weights, activations and the KV cache.
 *
 * F32/F16/BF16 are plain arrays. The quantized types are GGUF's block formats (bit-exact with
 * ggml's definitions): a row of n elements is n / dtype_block_elems(t) blocks of
 * dtype_block_bytes(t) bytes each. Activations and the KV cache are never quantized. */
#ifndef CLLM_BASE_DTYPE_H
#define CLLM_BASE_DTYPE_H
#include <stddef.h>
#include <stdint.h>

typedef enum dtype {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_BF16 = 2,
    DTYPE_Q8_0, /* 32 elems: f16 d, int8 q[32]                                      34 bytes */
    DTYPE_Q4_0, /* 32 elems: f16 d, uint8 qs[16] (low nibbles 0..15, high 16..31)   18 bytes */
    DTYPE_Q4_1, /* 32 elems: f16 d, f16 m, uint8 qs[16]                             20 bytes */
    DTYPE_Q5_0, /* 32 elems: f16 d, uint8 qh[4], uint8 qs[16]                       22 bytes */
    DTYPE_Q5_1, /* 32 elems: f16 d, f16 m, uint8 qh[4], uint8 qs[16]                24 bytes */
    DTYPE_Q4_K, /* 256 elems: f16 d, f16 dmin, uint8 scales[12], uint8 qs[128]     144 bytes */
    DTYPE_Q5_K, /* 256 elems: f16 d, f16 dmin, scales[12], qh[32], qs[128]         176 bytes */
    DTYPE_Q6_K, /* 256 elems: uint8 ql[128], qh[64], int8 scales[16], f16 d        210 bytes */
    DTYPE_Q8_K, /* 256 elems: f32 d, int8 qs[256], int16 bsums[16]                 292 bytes */
    DTYPE_COUNT
} dtype;

static inline int dtype_is_quant(dtype t) {
    return t >= DTYPE_Q8_0 && t < DTYPE_COUNT;
}
/* Elements per block (1 for the plain types). */
static inline int dtype_block_elems(dtype t) {
    return t <= DTYPE_BF16 ? 1 : t <= DTYPE_Q5_1 ? 32 : 256;
}
static inline size_t dtype_block_bytes(dtype t) {
    static const unsigned char b[DTYPE_COUNT] = {4, 2, 2, 34, 18, 20, 22, 24, 144, 176, 210, 0};
    return t == DTYPE_Q8_K ? 292 : (t < DTYPE_COUNT ? b[t] : 0);
}
/* Bytes of a row of n elements (n a multiple of the block size). */
static inline size_t dtype_row_bytes(dtype t, int64_t n) {
    return (size_t)(n / dtype_block_elems(t)) * dtype_block_bytes(t);
}
/* Bytes per element of the plain types (F32/F16/BF16) only. */
static inline size_t dtype_size(dtype t) {
    return t == DTYPE_F32 ? 4 : 2;
}
static inline const char *dtype_name(dtype t) {
    static const char *const names[DTYPE_COUNT] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1",
                                                   "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q8_k"};
    return t < DTYPE_COUNT ? names[t] : "?";
}
#endif
