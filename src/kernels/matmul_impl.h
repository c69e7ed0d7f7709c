/* matmul_impl.h - internal interface between the matmul dispatcher (matmul.c) and the per-ISA
 * kernels (matmul_avx2.c, matmul_avx512.c); also lets tests and benches pick a path explicitly. */
#ifndef CLLM_KERNELS_MATMUL_IMPL_H
#define CLLM_KERNELS_MATMUL_IMPL_H

#include "kernels/matmul.h"

#include <stdint.h>

/* One code path = one numerics family: a fixed accumulation order per output element (see
 * matmul.h). AVX512BF16 is a family for bf16 weights only: x is rounded to bf16 (round to nearest
 * even) and multiplied with vdpbf16ps (llama.cpp's numerics); for every other weight dtype it
 * runs the AVX512 kernels. Which family a dtype uses in a process is chosen once (tune.h). */
typedef enum kern_mm_path {
    KERN_MM_SCALAR = 0,
    KERN_MM_AVX2 = 1,
    KERN_MM_AVX512 = 2,
    KERN_MM_AVX512BF16 = 3,
    KERN_MM_AMX = 4, /* Q8_0 / Q4_0 / bf16 weights (quant_amx.h); AVX-512 kernels for the rest */
    KERN_MM_NPATHS
} kern_mm_path;

/* The default path of this CPU (after the CLLM_CPU mask): the widest f32-FMA family. */
kern_mm_path kern_mm_best_path(void);
/* True if this CPU can run path p. */
int kern_mm_path_ok(kern_mm_path p);
const char *kern_mm_path_name(kern_mm_path p);

/* kern_matmul / kern_to_f32 / kern_from_f32 on an explicit path (p must be supported). */
void kern_matmul_on(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                    const void *w, dtype wt, int N, const float *bias, float *y, int ldy,
                    void *work);
void kern_matmul_multi_on(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                          dtype wt, const kern_mm_part *parts, int n_parts, void *work);
void kern_to_f32_on(kern_mm_path p, const void *src, dtype t, int n, float *dst);
void kern_from_f32_on(kern_mm_path p, const float *src, dtype t, int n, void *dst);

/* bf16 weights are widened to f32 by bit shifts that split each 32-bit lane into its even and
 * odd element; x is therefore prepared once per call in a matching de-interleaved layout:
 * per chunk of 16 (AVX2) or 32 (AVX-512) elements, the even-indexed values then the odd-indexed
 * ones, in f32, rows padded with zeros to xp_ld (a multiple of 32) floats. */
typedef struct kern_mm_args {
    const float *x; /* [M][ldx] */
    int M, K, ldx;
    const float *xp; /* prepared x for bf16 weights: [M][xp_ld], or NULL */
    int xp_ld;
    const void *w; /* [N][K] */
    dtype wt;
    int N;
    const float *bias; /* [N] or NULL */
    float *y;          /* [M][ldy] */
    int ldy;
    /* AVX-512 bf16 GEMM: per-thread scratch (thread i at wp + i * wp_stride floats, 64-byte
     * aligned) into which blocks of weight rows are widened to f32 once per call, or NULL. */
    float *wp;
    size_t wp_stride;
    const kern_mm_next *next; /* the following matmul, or NULL */
    int pf_tiles;             /* GEMV: prefetch weight rows this many tiles ahead (>= 1) */
} kern_mm_args;

/* The AVX-512 path's GEMM (M >= this) widens each L2 block of bf16 weight rows to f32 once per
 * call instead of once per token tile: the shift/AND then no longer compete with the FMAs. */
#define KERN_MM_GEMM_MIN_M 4
/* Target bytes of one widened block (f32); it is reused from L2 by every token tile. 1 MiB
 * measured best against 512 KiB and 1.5 MiB (2 MiB L2). */
#define KERN_MM_WBLOCK_BYTES ((size_t)1 << 20)
/* Rows of a widened block are never fewer than this (very long rows exceed the target). */
#define KERN_MM_WBLOCK_MIN_ROWS 8
/* Largest token tile of that GEMM: with long rows, the tile's partial sums for a whole block
 * are parked in the scratch (KERN_MM_WIDE_MR_MAX 16-float vectors per weight row). */
#define KERN_MM_WIDE_MR_MAX 8
/* Floats of the widened rows of one block for rows of K elements (a multiple of 32). */
size_t kern_mm_wblock_floats(int K);
/* Floats of one thread's scratch: the widened block, then the parked partial sums. */
size_t kern_mm_wscratch_floats(int K);

/* A register tile: outputs y[m0 .. m0 + mr)[n0 .. n0 + nr) for its compiled mr x nr. */
typedef void (*kern_tile_fn)(const kern_mm_args *a, int m0, int n0);
/* Decode: columns [n0, n1) for each token with 1 x nr tiles, gemv[nr] for nr <= nr_max. */
void kern_mm_sweep_gemv(const kern_mm_args *a, int n0, int n1, int nr_max,
                        const kern_tile_fn *gemv);
/* GEMM: columns [n0, n1) in blocks of block_bytes of weight rows (reused from L2 by every token
 * tile), covered by mr x nr tiles: tiles[mr * (nr_max + 1) + nr] for mr <= mr_max, nr <= nr_max. */
void kern_mm_sweep_tiles(const kern_mm_args *a, int n0, int n1, size_t block_bytes, int mr_max,
                         int nr_max, const kern_tile_fn *tiles);

/* Compute y rows' columns [n0, n1) for all M tokens. */
void kern_mm_rows_scalar(const kern_mm_args *a, int n0, int n1);
void kern_mm_rows_avx2(const kern_mm_args *a, int n0, int n1);
/* wp: this thread's widened-block scratch (a->wp slice), or NULL; [pf, pf + pf_bytes): bytes of
 * the next matmul's weights to prefetch during the last block (pf_bytes 0: none). */
void kern_mm_rows_avx512(const kern_mm_args *a, int n0, int n1, float *wp, const char *pf,
                         size_t pf_bytes);

/* The vdpbf16ps family (matmul_dpbf16_avx512.c): x rows [m0, m1) rounded to bf16 into xb
 * ([M][xp_ld] uint16, zero padded), then outputs y[0..M)[n0..n1) from a->xp read as that. */
void kern_mm_prep_x_dpbf16(const kern_mm_args *a, int m0, int m1, uint16_t *xb);
void kern_mm_rows_dpbf16(const kern_mm_args *a, int n0, int n1);
/* The AMX family for bf16 weights (matmul_amxbf16_amx.c): x prepared as for dpbf16, weights in
 * their repacked copy (quant_amx.h). */
void kern_mm_rows_amxbf16(const kern_mm_args *a, const uint8_t *packed, int n0, int n1);

/* Prepare rows [m0, m1) of x into xp for bf16 weights (layout above; chunk of 16 elements for
 * AVX2, 32 for AVX-512). The scalar path reads x directly. */
void kern_mm_prep_x_avx2(const kern_mm_args *a, int m0, int m1, float *xp);
void kern_mm_prep_x_avx512(const kern_mm_args *a, int m0, int m1, float *xp);

/* SIMD conversions; bit-identical to base/half.h. */
void kern_to_f32_avx2(const void *src, dtype t, int n, float *dst);
void kern_from_f32_avx2(const float *src, dtype t, int n, void *dst);
void kern_to_f32_avx512(const void *src, dtype t, int n, float *dst);
void kern_from_f32_avx512(const float *src, dtype t, int n, void *dst);

#endif
