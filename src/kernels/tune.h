/* tune.h - which matmul kernel runs for each weight dtype, chosen by measuring the candidates on
 * this CPU with the model's own matrices and thread count.
 *
 * A choice has two levels:
 *  - the family (kern_mm_path): the numerics. AVX2 (8 f32 lanes), AVX512 (16 f32 lanes, x in
 *    f32), AVX512BF16 (bf16 weights only: x rounded to bf16, vdpbf16ps), for quantized weights
 *    the AVX2 or AVX-512 VNNI integer kernels, and AMX (Q8_0 / Q4_0: AMX-INT8 tiles over weights
 *    repacked at load, quant_amx.h). Families round differently, so a dtype's family is
 *    fixed for the whole process the first time it is used or tuned: every batch size runs the
 *    same family and the batch-invariance guarantee holds whatever was chosen.
 *  - variants inside the family that never change a result: today the GEMV prefetch distance
 *    (pf_tiles: weight rows this many tiles ahead are prefetched).
 *
 * kern_tune_model() runs at model load. Per dtype not yet fixed it uses, in this order:
 * CLLM_TUNE=off -> the built-in defaults (kern_mm_best_path(), pf 1 for float / 2 for quantized
 * weights); a choice forced by CLLM_TUNE=DTYPE=FAMILY[/pfN],... (tests); the cache
 * $XDG_CACHE_HOME/cllm/kernels.txt (default ~/.cache/cllm/) keyed by the CPU signature (cpuid
 * vendor, family/model/stepping, brand, online cores, cllm version, CLLM_CPU mask), thread count
 * and dtype; else it measures (CLLM_TUNE=force always measures and rewrites the cache entry):
 * GEMV (M = 1) sweeps over the model's matrices of that dtype (weights streamed from DRAM, as in
 * decode) and a GEMM (M = 64) on one of its largest layer matrices, for every candidate family
 * and prefetch distance, two rounds, best of each. The family with the lowest sum of GEMV and GEMM
 * time relative to the fastest is chosen (the more exact family wins ties within 2%), then the
 * fastest prefetch distance of that family. */
#ifndef CLLM_KERNELS_TUNE_H
#define CLLM_KERNELS_TUNE_H

#include "base/dtype.h"
#include "base/threadpool.h"
#include "kernels/matmul_impl.h"

/* The family that matmuls over wt weights use (fixes it for the process on first use). */
kern_mm_path kern_tune_family(dtype wt);
/* The GEMV prefetch distance for wt weights, in tiles (>= 1). */
int kern_tune_pf_tiles(dtype wt);

typedef struct kern_tune_mat {
    const void *w; /* [N][K] */
    dtype wt;
    int N, K;
} kern_tune_mat;

/* Choose the kernels for every dtype among mats that is not fixed yet (see above). Fails only on
 * a malformed CLLM_TUNE or a forced family this CPU cannot run (CLLM_ERR_INVALID_ARG) or when
 * scratch memory cannot be had (CLLM_ERR_NOMEM). */
cllm_status kern_tune_model(threadpool *tp, const kern_tune_mat *mats, int n);

/* How the choice for wt was made. */
typedef enum kern_tune_source {
    KERN_TUNE_DEFAULT = 0,
    KERN_TUNE_FORCED,
    KERN_TUNE_CACHED,
    KERN_TUNE_MEASURED
} kern_tune_source;

typedef struct kern_tune_info {
    kern_mm_path family;
    int pf_tiles;
    kern_tune_source source;
    int threads;        /* thread count it was measured with (0: not measured) */
    double gemv_gbs;    /* measured GEMV weight bandwidth of the chosen kernel (0: not measured) */
    double gemm_gflops; /* measured M = 64 GEMM speed of the chosen family */
    double seconds;     /* calibration time spent on this dtype */
} kern_tune_info;
void kern_tune_get(dtype wt, kern_tune_info *out);
const char *kern_tune_source_name(kern_tune_source s);

/* The CPU's brand string (cpuid), e.g. "Intel(R) Xeon(R) Processor"; "unknown" elsewhere. */
const char *kern_cpu_model(void);

/* Tests: forget every choice (the next use or kern_tune_model decides again). Not thread-safe. */
void kern_tune_reset(void);

#endif
