/* quant_impl.h - internals of the quantized formats: the K-quant row functions (quant_k.c) and
 * the quantized matmul (quant_mm*.c) that matmul.c dispatches to for quantized weights.
 *
 * Quantized matmul, y = x W^T: x rows are quantized on the fly (as llama.cpp does) into a
 * prepared layout in the caller's work buffer, then every output is a sum of exact integer dot
 * products scaled in float. The x quantization has one definition for all paths
 * (quant_mm_prep_rows; the SIMD versions give the same bytes): per block of 32 (legacy weight
 * types) or 256 (K-quants), d = amax / 127, q = round-half-even(x * (1 / d)) in [-127, 127]. */
#ifndef CLLM_KERNELS_QUANT_IMPL_H
#define CLLM_KERNELS_QUANT_IMPL_H

#include "base/dtype.h"
#include "base/threadpool.h"
#include "kernels/matmul_impl.h"

#include <stdint.h>

void quant_quantize_q4_k(const float *x, void *dst, int64_t nb);
void quant_quantize_q5_k(const float *x, void *dst, int64_t nb);
void quant_quantize_q6_k(const float *x, void *dst, int64_t nb);
void quant_quantize_q8_k(const float *x, void *dst, int64_t nb);
void quant_dequantize_q45_k(dtype t, const void *src, float *dst, int64_t nb);
void quant_dequantize_q6_k(const void *src, float *dst, int64_t nb);

/* Layout of one prepared x row (all offsets in bytes, multiples of 64, from the row start):
 *   qs   int8  [nbp * bl]   quantized values (bl = 32 or 256), zero blocks past K
 *   d    float [nbp]        the blocks' scales
 *   aux  legacy types: float [nbp] = d * sum(q) / 8 (Q4_1 / Q5_1: the min term, spread over the
 *        8 lanes of a block); K-quants: int16 [nbp * 16] sums of each 16 values (Q8_K bsums)
 *   corr int32 [nbp * 8] = -c * (sum of each 4 consecutive q), c = 128 (Q8_0), 8 (Q4_0),
 *        16 (Q5_0): the offset correction of the unsigned-weight dot products (legacy only)
 * nbp = blocks, for the legacy types rounded up to even (the AVX-512 kernels take 64 values at
 * once). */
typedef struct quant_mm_layout {
    int bl, nb, nbp;
    size_t off_d, off_aux, off_corr, row_bytes;
} quant_mm_layout;

quant_mm_layout quant_mm_layout_of(dtype wt, int K);
/* The offset c of the corr array (0 = not used). */
int quant_mm_corr_mult(dtype wt);

typedef struct quant_mm_args {
    const uint8_t *xq; /* prepared x: M rows of lay.row_bytes */
    quant_mm_layout lay;
    int M, K;
    const void *w; /* [N] rows of dtype_row_bytes(wt, K) bytes */
    dtype wt;
    size_t w_row;
    int N;
    const float *bias;
    float *y;
    int ldy;
    int pf_tiles; /* GEMV: prefetch weight rows this many tiles ahead (a tuned variant) */
} quant_mm_args;

/* Zero block b of a prepared row (the padding block of an odd legacy row): quants, d, aux and
 * the offset correction, as the scalar preparation writes them. */
void quant_mm_zero_block(const quant_mm_layout *l, uint8_t *row, int b, int corr);
/* Quantize x rows [m0, m1) into a->xq; the SIMD versions give the same bytes. */
void quant_mm_prep_rows(const quant_mm_args *a, const float *x, int ldx, int m0, int m1);
void quant_mm_prep_rows_avx2(const quant_mm_args *a, const float *x, int ldx, int m0, int m1);
void quant_mm_prep_rows_avx512(const quant_mm_args *a, const float *x, int ldx, int m0, int m1);

/* Outputs y[0..M)[n0..n1). The scalar path is the reference's order of operations. */
void quant_mm_rows_scalar(const quant_mm_args *a, int n0, int n1);
void quant_mm_rows_avx2(const quant_mm_args *a, int n0, int n1);
/* Needs AVX512-BW and AVX512-VNNI (without them the AVX-512 path runs the AVX2 kernels). */
void quant_mm_rows_avx512(const quant_mm_args *a, int n0, int n1);
/* True if the SIMD kernels handle wt (Q8_K weights run the scalar path everywhere). */
int quant_mm_simd_type(dtype wt);

/* Work bytes for M rows of K: enough for every quantized type (wt is not needed). */
size_t quant_mm_work_size(int M, int K, dtype wt);
void quant_mm_matmul(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                     const void *w, dtype wt, int N, const float *bias, float *y, int ldy,
                     void *work);
/* Several weight matrices of one dtype over the same x in one dispatch (kern_matmul_multi). */
void quant_mm_matmul_parts(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                           dtype wt, const kern_mm_part *parts, int n_parts, void *work);
void quant_mm_matmul_ref(const float *x, int M, int K, int ldx, const void *w, dtype wt, int N,
                         const float *bias, float *y, int ldy);

#endif
