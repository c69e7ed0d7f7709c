/* quant.h - GGUF block quantization formats (see base/dtype.h for the layouts): quantize rows of
 * f32 values into blocks and dequantize them back, bit-exact with ggml's reference
 * quantize_row_*_ref / dequantize_row_* so that files cllm writes load in llama.cpp and
 * llama.cpp's files compute the same here.
 *
 * n must be a multiple of dtype_block_elems(t). Plain types (f32/f16/bf16) are accepted too
 * (conversion with round-to-nearest-even). */
#ifndef CLLM_KERNELS_QUANT_H
#define CLLM_KERNELS_QUANT_H

#include "base/dtype.h"
#include <stdint.h>

/* Quantize n floats into dtype_row_bytes(t, n) bytes at dst. */
void quant_quantize_row(dtype t, const float *src, void *dst, int64_t n);
/* Dequantize n elements of a row in dtype t to f32. */
void quant_dequantize_row(dtype t, const void *src, float *dst, int64_t n);

#endif
