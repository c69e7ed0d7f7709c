/* bench_quant.c - matmul over quantized weights on Qwen2.5-0.5B shapes (f32/bf16 for comparison):
 * GEMV (M=1) GB/s of weights read from DRAM, GEMM (M=512) GFLOP/s, the read bandwidth of a
 * plain streaming sum measured in the same run, and the GEMV's compute ceiling (one thread,
 * weights in L2, timed by CPU time: what the kernel could stream if memory were free).
 *
 * usage: bench_quant [-p scalar|avx2|avx512] [-d TYPE] [-t threads] [-m M] [-r reps] [-q]
 * (default: best path, every type, 2 threads, M=512; -q: quick, fewer reps, no lm_head GEMM) */
#include "base/clock.h"
#include "base/threadpool.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant_amx.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const size_t WS_BYTES = (size_t)1 << 30; /* decode working set: far beyond the L3 */

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* A quantized [N][K] matrix of small random values: 256 distinct rows, repeated (the K-quant
 * quantizers are slow, and the kernels' speed does not depend on the values). */
static void make_matrix(dtype t, int N, int K, uint8_t *dst) {
    float *row = malloc((size_t)K * sizeof(float));
    uint32_t s = 12345;
    size_t rb = dtype_row_bytes(t, K);
    for (int n = 0; n < N; n++) {
        if (n >= 256) {
            memcpy(dst + rb * n, dst + rb * (n % 256), rb);
            continue;
        }
        for (int k = 0; k < K; k++) {
            s = s * 1664525u + 1013904223u;
            row[k] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        }
        quant_quantize_row(t, row, dst + rb * n, K);
    }
    free(row);
}

/* The AMX family reads a repacked copy of each matrix (registered by the model at load). */
static void amx_prepare(kern_mm_path p, dtype t, const void *w, int N, int K) {
    if (p == KERN_MM_AMX && quant_amx_type(t) && quant_amx_register(w, t, N, K) != CLLM_OK) {
        fprintf(stderr, "out of memory repacking for AMX\n");
        exit(1);
    }
}

typedef struct {
    const float *p;
    size_t n;
    float out[64];
} rd_job;
__attribute__((target("avx2"))) static void rd_task(void *ctx, int ith, int nth) {
    rd_job *j = ctx;
    long lo, hi;
    tp_split((long)j->n, 64, ith, nth, &lo, &hi);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long i = lo; i < hi; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(j->p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(j->p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(j->p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(j->p + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    j->out[ith] = s[0];
}

/* Best of reps: GB/s of a streaming read of the whole working set. */
static double read_bw(threadpool *tp, void *buf, int reps) {
    rd_job j = {.p = buf, .n = WS_BYTES / sizeof(float)};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = clock_now();
        tp_run(tp, rd_task, &j);
        double gbs = (double)WS_BYTES / (clock_now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* GEMV: weights from DRAM (a different copy each call, round robin over the working set). Each
 * repetition is preceded by a streaming read of a second buffer; *ratio = best GEMV rate / best
 * read rate of those repetitions (the machine is noisy: compare only side by side). */
static double bench_gemv(kern_mm_path p, threadpool *tp, dtype t, int K, int N, uint8_t *ws,
                         uint8_t *rd, int reps, double *ratio) {
    size_t mb = dtype_row_bytes(t, K) * (size_t)N, copies = WS_BYTES / mb;
    if (copies < 1) copies = 1;
    make_matrix(t, N, K, ws);
    for (size_t c = 1; c < copies; c++)
        memcpy(ws + c * mb, ws, mb);
    for (size_t c = 0; c < copies; c++)
        amx_prepare(p, t, ws + c * mb, N, K);
    float *x = xmalloc((size_t)K * 4), *y = xmalloc((size_t)N * 4);
    for (int k = 0; k < K; k++)
        x[k] = (float)(k % 17) * 0.1f - 0.8f;
    void *work = xmalloc(kern_matmul_work_size(1, K, t, tp_size(tp)) + 64);
    double best = 0, best_bw = 0;
    for (int r = 0; r < reps; r++) {
        double bw = read_bw(tp, rd, 1);
        double t0 = clock_now();
        for (size_t c = 0; c < copies; c++)
            kern_matmul_on(p, tp, x, 1, K, K, ws + c * mb, t, N, NULL, y, N, work);
        double gbs = (double)(mb * copies) / (clock_now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        if (bw > best_bw) best_bw = bw;
    }
    *ratio = best / best_bw;
    for (size_t c = 0; c < copies; c++)
        quant_amx_unregister(ws + c * mb);
    free(x), free(y), free(work);
    return best;
}

/* Compute ceiling of the GEMV: 128 rows of K=4864 (L2-resident), the calling thread alone, timed
 * by its own CPU clock (time stolen by other processes does not count). */
static double bench_hot(kern_mm_path p, dtype t, uint8_t *ws, int reps) {
    enum { K = 4864, N = 128, IT = 200 };
    size_t mb = dtype_row_bytes(t, K) * N;
    make_matrix(t, N, K, ws);
    amx_prepare(p, t, ws, N, K);
    float *x = xmalloc((size_t)K * 4), *y = xmalloc((size_t)N * 4);
    for (int k = 0; k < K; k++)
        x[k] = (float)(k % 17) * 0.1f - 0.8f;
    void *work = xmalloc(kern_matmul_work_size(1, K, t, 1) + 64);
    double best = 0;
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        for (int i = 0; i < IT; i++)
            kern_matmul_on(p, NULL, x, 1, K, K, ws, t, N, NULL, y, N, work);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        double gbs = (double)mb * IT / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    quant_amx_unregister(ws);
    free(x), free(y), free(work);
    return best;
}

static double bench_gemm(kern_mm_path p, threadpool *tp, dtype t, int M, int K, int N, uint8_t *ws,
                         int reps) {
    make_matrix(t, N, K, ws);
    amx_prepare(p, t, ws, N, K);
    float *x = xmalloc((size_t)M * K * 4), *y = xmalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++)
        x[i] = (float)(i % 23) * 0.05f - 0.5f;
    void *work = xmalloc(kern_matmul_work_size(M, K, t, tp_size(tp)) + 64);
    kern_matmul_on(p, tp, x, M, K, K, ws, t, N, NULL, y, N, work); /* warm up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = clock_now();
        kern_matmul_on(p, tp, x, M, K, K, ws, t, N, NULL, y, N, work);
        double dt = clock_now() - t0;
        if (dt < best) best = dt;
    }
    quant_amx_unregister(ws);
    free(x), free(y), free(work);
    return 2.0 * M * K * (double)N / best / 1e9;
}

int main(int argc, char **argv) {
    kern_mm_path path = kern_mm_best_path();
    int threads = 2, M = 512, reps = 5, quick = 0, only = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            const char *s = argv[++i];
            path = !strcmp(s, "scalar") ? KERN_MM_SCALAR
                   : !strcmp(s, "avx2") ? KERN_MM_AVX2
                   : !strcmp(s, "amx")  ? KERN_MM_AMX
                                        : KERN_MM_AVX512;
        } else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            M = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            for (int t = 0; t < DTYPE_COUNT; t++)
                if (!strcmp(argv[i + 1], dtype_name(t))) only = t;
            i++;
        } else if (!strcmp(argv[i], "-q")) {
            quick = 1, reps = 2;
        } else {
            fprintf(stderr, "usage: bench_quant [-p scalar|avx2|avx512|amx] [-d TYPE] [-t threads] "
                            "[-m M] [-r reps] [-q]\n");
            return 2;
        }
    }
    if (!kern_mm_path_ok(path)) {
        fprintf(stderr, "path %s not supported on this CPU\n", kern_mm_path_name(path));
        return 1;
    }
    threadpool *tp = NULL;
    if (tp_create(threads, &tp) != CLLM_OK) return 1;
    uint8_t *ws = xmalloc(WS_BYTES), *rd = xmalloc(WS_BYTES);
    memset(ws, 1, WS_BYTES);
    memset(rd, 1, WS_BYTES);
    double bw = read_bw(tp, rd, 5);
    printf("path %s, %d threads; streaming read %.1f GB/s\n", kern_mm_path_name(path), threads, bw);
    printf("%-5s | GEMV GB/s (%% of read, same reps): 4864x896  896x4864  151936x896 | GEMM "
           "M=%d GFLOP/s: "
           "4864x896  896x4864%s | 1-thread GEMV ceiling GB/s (L2, CPU time)\n",
           "type", M, quick ? "" : "  151936x896");
    static const dtype types[] = {DTYPE_F32,  DTYPE_BF16, DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1,
                                  DTYPE_Q5_0, DTYPE_Q5_1, DTYPE_Q4_K, DTYPE_Q5_K, DTYPE_Q6_K};
    static const int shapes[3][2] = {{896, 4864}, {4864, 896}, {896, 151936}}; /* K, N */
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        dtype t = types[ti];
        if (only >= 0 && (int)t != only) continue;
        printf("%-5s |", dtype_name(t));
        for (int s = 0; s < 3; s++) {
            double ratio,
                g = bench_gemv(path, tp, t, shapes[s][0], shapes[s][1], ws, rd, reps, &ratio);
            printf(" %5.1f (%3.0f%%)", g, 100.0 * ratio);
            fflush(stdout);
        }
        printf(" |");
        for (int s = 0; s < (quick ? 2 : 3); s++) {
            printf(" %7.1f",
                   bench_gemm(path, tp, t, M, shapes[s][0], shapes[s][1], ws, s == 2 ? 1 : reps));
            fflush(stdout);
        }
        printf(" | %5.1f\n", bench_hot(path, t, ws, reps));
    }
    free(ws), free(rd);
    tp_free(tp);
    return 0;
}
