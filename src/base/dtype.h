/* dtype.h - element types of weights, activations and the KV cache. */
#ifndef CLLM_BASE_DTYPE_H
#define CLLM_BASE_DTYPE_H
#include <stddef.h>

typedef enum dtype { DTYPE_F32 = 0, DTYPE_F16 = 1, DTYPE_BF16 = 2 } dtype;

static inline size_t dtype_size(dtype t) {
    return t == DTYPE_F32 ? 4 : 2;
}
static inline const char *dtype_name(dtype t) {
    return t == DTYPE_F32 ? "f32" : t == DTYPE_F16 ? "f16" : "bf16";
}
#endif
