/* bench_matmul.c - matmul speed on Qwen2.5-0.5B shapes, per CPU path and dtype, 1 and 2 threads:
 * GB/s of weights for decode (M=1, weights not in cache) and GFLOP/s for prefill (M=512).
 *
 * usage: bench_matmul [-p scalar|avx2|avx512|avx512bf16|amx] [-d f32|f16|bf16] [-t threads] [-m M]
 * [-q]
 * [-c] [-s]
 * (-q: quick, smaller working set and fewer repetitions; default: every supported path, bf16 f16
 * f32, 1 and 2 threads; the scalar path only runs the decode shapes; -c: 1 thread timed by its own
 * CPU clock, which ignores time stolen by other processes on a shared machine; -s: GEMM weights
 * streamed from a 1 GiB buffer, a different matrix each call, as in a real step) */
#include "base/clock.h"
#include "base/cpu.h"
#include "base/half.h"
#include "base/threadpool.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant_amx.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t g_ws_bytes = (size_t)1 << 30; /* decode working set: far beyond the L3 */
static int g_reps = 3;
static int g_stream = 0; /* -s: GEMM weights streamed from DRAM */
static unsigned long g_iter = 0;
static int g_cputime = 0; /* -c: time on the calling thread's CPU clock (1 thread only) */

static double now(void) {
    if (!g_cputime) return clock_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void fill(void *buf, size_t bytes, dtype t) {
    /* small random values, valid in every dtype */
    uint32_t s = 12345;
    size_t n = bytes / dtype_size(t);
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float v = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        if (t == DTYPE_F32)
            ((float *)buf)[i] = v;
        else if (t == DTYPE_BF16)
            ((uint16_t *)buf)[i] = f32_to_bf16(v);
        else
            ((uint16_t *)buf)[i] = f32_to_f16(v);
    }
}

/* Reading bandwidth baseline: every thread sums its share of a 1 GB buffer. */
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

static double read_bw(threadpool *tp, void *buf, size_t bytes) {
    if (!cpu_get()->avx2) return 0; /* the baseline loop is AVX2 */
    rd_job j = {.p = buf, .n = bytes / 4};
    double best = 1e30;
    for (int r = 0; r < g_reps + 1; r++) {
        double t0 = now();
        tp_run(tp, rd_task, &j);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return (double)bytes / best / 1e9;
}

/* The AMX family reads a repacked copy of each matrix (the model registers them at load). */
static void amx_set(kern_mm_path p, dtype t, const void *w, int N, int K, int on) {
    if (p != KERN_MM_AMX || t != DTYPE_BF16 || !cpu_get()->amx_bf16) return;
    if (!on) quant_amx_unregister(w);
    if (on && quant_amx_register(w, t, N, K) != CLLM_OK) exit(1);
}

/* M=1 over as many distinct [N][K] matrices as fit in the working set, round robin; the best
 * of many rounds of 24 calls (short rounds, so a shared machine shows its unloaded speed). */
static double bench_gemv(kern_mm_path p, threadpool *tp, dtype t, int N, int K, void *wbuf,
                         const float *x, float *y, void *work) {
    size_t mat = (size_t)N * K * dtype_size(t);
    int nmat = (int)(g_ws_bytes / mat);
    if (nmat < 1) return 0; /* does not fit the working set */
    int per = nmat < 24 ? nmat : 24, rounds = 4 * g_reps * (nmat + per - 1) / per, c = 0;
    if (mat > ((size_t)64 << 20)) per = 1;
    for (int i = 0; i < nmat; i++)
        amx_set(p, t, (const char *)wbuf + (size_t)i * mat, N, K, 1);
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < per; i++, c++)
            kern_matmul_on(p, tp, x, 1, K, K, (const char *)wbuf + (size_t)(c % nmat) * mat, t, N,
                           NULL, y, N, work);
        double el = now() - t0;
        if (el < best) best = el;
    }
    for (int i = 0; i < nmat; i++)
        amx_set(p, t, (const char *)wbuf + (size_t)i * mat, N, K, 0);
    return (double)mat * per / best / 1e9;
}

typedef struct {
    const char *name;
    int N, K;
} shape;
static const shape layer[] = {{"q", 896, 896},    {"k", 128, 896},     {"v", 128, 896},
                              {"o", 896, 896},    {"gate", 4864, 896}, {"up", 4864, 896},
                              {"down", 896, 4864}};
#define NLAYER ((int)(sizeof layer / sizeof *layer))

static void bench_gemm(kern_mm_path p, threadpool *tp, dtype t, int M, void *wbuf, float *x,
                       float *y, void *work) {
    double tot_flop = 0, tot_time = 0;
    printf("  GEMM M=%d:", M);
    for (int s = 0; s < NLAYER; s++) {
        const shape *sh = &layer[s];
        size_t mat = (size_t)sh->N * sh->K * dtype_size(t), nmat = g_ws_bytes / mat;
        for (size_t i = 0; i < (g_stream ? nmat : 1); i++)
            amx_set(p, t, (const char *)wbuf + i * mat, sh->N, sh->K, 1);
        double best = 1e30;
        for (int r = 0; r < 5 * g_reps; r++) { /* best of several: the machine may be shared */
            /* -s: a different matrix of the 1 GiB buffer each time, so W comes from DRAM as in
             * a real step (by default the same matrix, warm in the caches) */
            const char *w = (const char *)wbuf + (g_stream ? (size_t)(g_iter++ % nmat) * mat : 0);
            double t0 = now();
            kern_matmul_on(p, tp, x, M, sh->K, sh->K, w, t, sh->N, NULL, y, sh->N, work);
            double el = now() - t0;
            if (el < best) best = el;
        }
        for (size_t i = 0; i < (g_stream ? nmat : 1); i++)
            amx_set(p, t, (const char *)wbuf + i * mat, sh->N, sh->K, 0);
        double flop = 2.0 * M * sh->N * sh->K;
        tot_flop += flop;
        tot_time += best;
        printf(" %s %.0f", sh->name, flop / best / 1e9);
    }
    /* Qwen2.5-0.5B has 24 such layers; tokens/s counts these matmuls only */
    printf(" | layer set %.1f GFLOP/s = %.0f tok/s (24 layers, matmuls only)\n",
           tot_flop / tot_time / 1e9, M / (tot_time * 24));
}

int main(int argc, char **argv) {
    int only_path = -1, only_dt = -1, only_th = 0, M = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-q")) {
            g_ws_bytes = (size_t)600 << 20;
            g_reps = 2;
        } else if (!strcmp(argv[i], "-s")) {
            g_stream = 1;
        } else if (!strcmp(argv[i], "-c")) {
            g_cputime = 1;
            only_th = 1;
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            const char *v = argv[++i];
            only_path = 2;
            for (int q = 0; q < KERN_MM_NPATHS; q++)
                if (!strcmp(v, kern_mm_path_name((kern_mm_path)q))) only_path = q;
        } else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            const char *v = argv[++i];
            only_dt = !strcmp(v, "f32") ? DTYPE_F32 : !strcmp(v, "f16") ? DTYPE_F16 : DTYPE_BF16;
        } else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            only_th = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            M = atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [-p scalar|avx2|avx512] [-d f32|f16|bf16] [-t n] [-m M] [-q]\n",
                    argv[0]);
            return 2;
        }
    }
    threadpool *tps[3] = {NULL, NULL, NULL};
    for (int th = 1; th <= 2; th++)
        if (tp_create(th, &tps[th]) != CLLM_OK) return 1;

    const int maxK = 4864;
    void *wbuf = xmalloc(g_ws_bytes);
    float *x = xmalloc((size_t)M * maxK * sizeof(float));
    float *y = xmalloc((size_t)(M > 1 ? M : 1) * 151936 * sizeof(float));
    void *work = xmalloc(kern_matmul_work_size(M, maxK, DTYPE_BF16, 2));
    fill(x, (size_t)M * maxK * sizeof(float), DTYPE_F32);
    memset(wbuf, 0, g_ws_bytes);

    printf("cpu: %s\n", kern_mm_path_name(kern_mm_best_path()));
    for (int th = 1; th <= 2; th++)
        if (!only_th || only_th == th)
            printf("read bandwidth, %d thread(s): %.1f GB/s\n", th,
                   read_bw(tps[th], wbuf, g_ws_bytes));

    static const dtype dts[3] = {DTYPE_BF16, DTYPE_F16, DTYPE_F32};
    for (int pi = KERN_MM_NPATHS - 1; pi >= 0; pi--) {
        kern_mm_path p = (kern_mm_path)pi;
        if (!kern_mm_path_ok(p) || (only_path >= 0 && only_path != pi)) continue;
        for (int di = 0; di < 3; di++) {
            dtype t = dts[di];
            if (only_dt >= 0 && only_dt != (int)t) continue;
            fill(wbuf, g_ws_bytes, t);
            for (int th = 1; th <= 2; th++) {
                if (only_th && only_th != th) continue;
                printf("%s %s %d thread(s):\n", kern_mm_path_name(p), dtype_name(t), th);
                printf("  GEMV M=1 GB/s: 4864x896 %.1f | 896x4864 %.1f | 896x896 %.1f | 151936x896 "
                       "%.1f\n",
                       bench_gemv(p, tps[th], t, 4864, 896, wbuf, x, y, work),
                       bench_gemv(p, tps[th], t, 896, 4864, wbuf, x, y, work),
                       bench_gemv(p, tps[th], t, 896, 896, wbuf, x, y, work),
                       bench_gemv(p, tps[th], t, 151936, 896, wbuf, x, y, work));
                if (p != KERN_MM_SCALAR) bench_gemm(p, tps[th], t, M, wbuf, x, y, work);
            }
        }
    }
    free(wbuf), free(x), free(y), free(work);
    tp_free(tps[1]);
    tp_free(tps[2]);
    return 0;
}
