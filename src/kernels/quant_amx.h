/* quant_amx.h - the AMX family for quantized weights (Q8_0, Q4_0): Intel AMX-INT8 tile dot
 * products over weights repacked at load into tile order.
 *
 * Numerics (one definition, whatever M, tile or thread): x is quantized per block of 32 exactly
 * as for the other quantized families (quant_mm_prep_rows: d = amax / 127, int8 values); per
 * output y[m][n] and block b in increasing order
 *     acc = fma((float)isum(m, n, b), dx(m, b) * dw(n, b), acc)        (acc starts at 0)
 * where isum is the exact integer dot product of the block's 32 int8 x values with the weight's
 * signed levels (Q8_0: q; Q4_0: q - 8), then y = acc + bias. This differs from the VNNI family
 * (which scales 8 partial lanes per block), so AMX is a family of its own (tune.h).
 *
 * Layout (the repacked copy): 16 weight rows form a group; for group g and block b a record of
 *   Q8_0: 512 bytes tile + 16 f32 scales = 576 bytes; Q4_0: 256 bytes nibbles + 64 = 320 bytes
 * where tile byte [r * 64 + j * 4 + i] = level of row 16 g + j at k = 32 b + 4 r + i (the B-tile
 * "VNNI" order of TDPBSSD), Q4_0 packs tile byte t (t < 256) in the low nibble of byte t and tile
 * byte t + 256 in its high nibble (as level + 8). Rows past N are zero with scale 0. Records of a
 * group are contiguous over b, groups follow each other.
 *
 * The repacked copies live in a registry keyed by the original weight pointer: matmuls keep
 * passing the model's tensor pointers and the AMX dispatch finds their copy. */
#ifndef CLLM_KERNELS_QUANT_AMX_H
#define CLLM_KERNELS_QUANT_AMX_H

#include "kernels/quant_impl.h"

/* Quantized types the AMX family handles (other quantized types run the AVX-512 VNNI kernels
 * under it). */
int quant_amx_type(dtype wt);
/* Types with an AMX layout: those and bf16 (AMX-BF16, matmul_amxbf16_amx.c; layout: per group
 * of 16 rows and chunk c of 32 values a 1 KiB B tile, word [r * 32 + j * 2 + i] = W[16 g + j]
 * [32 c + 2 r + i], zeros past K and N). */
int amx_packable(dtype wt);
/* Bytes of the repacked copy of an [N][K] matrix. */
size_t quant_amx_packed_bytes(dtype wt, int N, int K);
/* Repack w ([N][K] in the file's block format) into dst (quant_amx_packed_bytes, 64-aligned). */
void quant_amx_pack(dtype wt, const void *w, int N, int K, uint8_t *dst);

/* Row n of a repacked [N][K] matrix as f32, bitwise what the file's blocks dequantize to (the
 * embedding lookup of a tied, repacked token_embd). */
void quant_amx_row_to_f32(dtype wt, const uint8_t *packed, int K, int n, float *dst);

/* Register the repacked copy of w (made here; idempotent). CLLM_ERR_NOMEM on failure. Whoever
 * registers unregisters before the memory of w is freed or reused. */
cllm_status quant_amx_register(const void *w, dtype wt, int N, int K);
/* The same, packed by the threads of tp (or NULL); release != 0: w lies in a read-only file
 * mapping whose whole pages may be given back to the OS (madvise DONTNEED) as they are packed, so
 * the copy replaces them in memory. */
cllm_status quant_amx_register_releasing(const void *w, dtype wt, int N, int K, int release,
                                         threadpool *tp);
/* The repacked copy of w registered with this dtype and shape, or NULL. Under the AMX family an
 * unregistered matrix runs the VNNI kernels (correct results, but that family's rounding): the
 * model registers every matrix at load, tests register theirs. */
const uint8_t *quant_amx_lookup(const void *w, dtype wt, int N, int K);
/* Free w's copy (no-op if none). */
void quant_amx_unregister(const void *w);

/* Outputs y[0..M)[n0..n1) from the repacked weights (quant_amx_amx.c; needs cpu amx_int8). */
void quant_amx_rows(const quant_mm_args *a, const uint8_t *packed, int n0, int n1);

#endif
