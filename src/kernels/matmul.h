/* matmul.h - y = x * W^T (+ bias) for weights in their stored dtype; the hot path of the model.
 *
 * Shapes: x is f32 [M][K] (row stride ldx), W is [N][K] row-major in `wt` (f32, f16 or bf16),
 * bias f32 [N] or NULL, y f32 [M][N] (row stride ldy). M = tokens in the batch (1 for decode),
 * N = output features. Work is split over N across the pool's threads.
 *
 * Reduction-order guarantee (batch invariance): the value computed for y[m][n] depends only on
 * x[m][:], W[n][:] and the CPU path in use, never on M, on m, or on the thread count. */
#ifndef CLLM_KERNELS_MATMUL_H
#define CLLM_KERNELS_MATMUL_H

#include "base/dtype.h"
#include "base/threadpool.h"

/* Bytes of scratch `work` that kern_matmul needs for an [M][K] input with a pool of n_threads
 * threads (1 for a NULL pool): x in a prepared layout, plus per-thread room for widened weights.
 * A buffer sized for (M, K, n) serves any smaller M and K and any pool of at most n threads.
 * The caller allocates it once (no allocation in the decode loop). */
size_t kern_matmul_work_size(int M, int K, dtype wt, int n_threads);

void kern_matmul(threadpool *tp, const float *x, int M, int K, int ldx, const void *w, dtype wt,
                 int N, const float *bias, float *y, int ldy, void *work);

/* The matmul that will run after this one: while this one computes its last block of weights,
 * each thread pulls the first part of its share of the next weights into L2, so that the next
 * call does not start with a stall on DRAM (decode batches: small matrices like k/v are a
 * single block). A hint only: results never depend on it. */
typedef struct kern_mm_next {
    const void *w;
    dtype wt;
    int N, K;
} kern_mm_next;
void kern_matmul_then(threadpool *tp, const float *x, int M, int K, int ldx, const void *w,
                      dtype wt, int N, const float *bias, float *y, int ldy, void *work,
                      const kern_mm_next *next);

/* One matmul of a fused dispatch: weights [N][K] in the call's dtype, bias or NULL, y [M][ldy]. */
typedef struct kern_mm_part {
    const void *w;
    int N;
    const float *bias;
    float *y;
    int ldy;
} kern_mm_part;

/* A thread's share [lo, hi) of the concatenated outputs, restricted to the part whose outputs
 * start at off and number N: the part's local range [*n0, *n1); 0 if they do not meet. */
static inline int kern_part_share(long lo, long hi, long off, int N, int *n0, int *n1) {
    long a = lo > off ? lo : off, b = hi < off + N ? hi : off + N;
    *n0 = (int)(a - off);
    *n1 = (int)(b - off);
    return a < b;
}

/* Point a kernel's argument record (any struct with w, N, bias, y, ldy) at one part. */
#define KERN_MM_SET_PART(args, part)                                                               \
    ((args).w = (part).w, (args).N = (part).N, (args).bias = (part).bias, (args).y = (part).y,     \
     (args).ldy = (part).ldy)

/* Several matmuls of the same x and weight dtype in one parallel dispatch (q/k/v, gate/up): x is
 * prepared once and the threads split the concatenated outputs, so a decode step synchronises the
 * pool once instead of once per matrix. Every y is bitwise what kern_matmul gives. */
void kern_matmul_multi(threadpool *tp, const float *x, int M, int K, int ldx, dtype wt,
                       const kern_mm_part *parts, int n_parts, void *work,
                       const kern_mm_next *next);

/* The plain scalar reference (single-threaded), used by tests to check the fast paths. */
void kern_matmul_ref(const float *x, int M, int K, int ldx, const void *w, dtype wt, int N,
                     const float *bias, float *y, int ldy);

/* Convert n elements of a row in dtype t to f32 (embedding lookup, KV reads). */
void kern_to_f32(const void *src, dtype t, int n, float *dst);
/* Convert n f32 values to dtype t (KV writes). Rounds to nearest even. */
void kern_from_f32(const float *src, dtype t, int n, void *dst);

#endif
