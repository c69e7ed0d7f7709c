/* matmul.c - matmul dispatch (CPU path, threads over N, x preparation), the scalar reference and
 * the scalar fallback path. The SIMD kernels live in matmul_avx2.c and matmul_avx512.c. */
#include "kernels/matmul_impl.h"

#include "base/cpu.h"
#include "base/half.h"
#include "kernels/quant_amx.h"
#include "kernels/quant_impl.h"
#include "kernels/tune.h"

#include <stdint.h>
#include <string.h>

/* Threads get output rows in multiples of this, so SIMD tiles rarely straddle a split. */
#define KERN_MM_SPLIT_ALIGN 16

static int round_up32(int k) {
    return (k + 31) & ~31;
}

size_t kern_mm_wblock_floats(int K) {
    size_t row = (size_t)round_up32(K), f = KERN_MM_WBLOCK_BYTES / sizeof(float);
    if (f < row * KERN_MM_WBLOCK_MIN_ROWS) f = row * KERN_MM_WBLOCK_MIN_ROWS;
    return f; /* a multiple of 32 either way: each slice stays 64-byte aligned */
}

size_t kern_mm_wscratch_floats(int K) {
    size_t rows = kern_mm_wblock_floats(K) / (size_t)round_up32(K);
    return kern_mm_wblock_floats(K) + rows * KERN_MM_WIDE_MR_MAX * 16;
}

size_t kern_matmul_work_size(int M, int K, dtype wt, int n_threads) {
    if (dtype_is_quant(wt)) return quant_mm_work_size(M, K, wt);
    if (wt != DTYPE_BF16 || M <= 0 || K <= 0) return 0;
    size_t xp = (size_t)M * (size_t)round_up32(K) * sizeof(float) + 64; /* + 64: room to align */
    if (M < KERN_MM_GEMM_MIN_M) return xp;
    return xp +
           (size_t)(n_threads > 1 ? n_threads : 1) * kern_mm_wscratch_floats(K) * sizeof(float);
}

kern_mm_path kern_mm_best_path(void) {
    const cpu_features *f = cpu_get();
    if (f->avx512f) return KERN_MM_AVX512;
    if (f->avx2) return KERN_MM_AVX2;
    return KERN_MM_SCALAR;
}

int kern_mm_path_ok(kern_mm_path p) {
    if (p == KERN_MM_AVX512BF16) return cpu_get()->avx512bf16;
    if (p == KERN_MM_AMX) return cpu_get()->amx_int8;
    return p >= 0 && p <= kern_mm_best_path();
}

const char *kern_mm_path_name(kern_mm_path p) {
    static const char *names[] = {"scalar", "avx2", "avx512", "avx512bf16", "amx"};
    return p >= 0 && p < KERN_MM_NPATHS ? names[p] : "?";
}

/* ---------------------------------------------------------------- reference */

static float load_w(const void *w, dtype wt, size_t i) {
    switch (wt) {
    case DTYPE_F16:
        return f16_to_f32(((const uint16_t *)w)[i]);
    case DTYPE_BF16:
        return bf16_to_f32(((const uint16_t *)w)[i]);
    default:
        return ((const float *)w)[i];
    }
}

void kern_matmul_ref(const float *x, int M, int K, int ldx, const void *w, dtype wt, int N,
                     const float *bias, float *y, int ldy) {
    if (dtype_is_quant(wt)) {
        quant_mm_matmul_ref(x, M, K, ldx, w, wt, N, bias, y, ldy);
        return;
    }
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += x[(size_t)m * ldx + k] * load_w(w, wt, (size_t)n * K + k);
            y[(size_t)m * ldy + n] = s + (bias ? bias[n] : 0.0f);
        }
}

/* ---------------------------------------------------------------- scalar path */

/* Eight partial sums (lane = k mod 8) summed as a tree: the same shape as the AVX2 path, and
 * short enough dependency chains that the fallback is not latency bound. */
void kern_mm_rows_scalar(const kern_mm_args *a, int n0, int n1) {
    const int K = a->K;
    for (int m = 0; m < a->M; m++) {
        const float *x = a->x + (size_t)m * a->ldx;
        for (int n = n0; n < n1; n++) {
            float acc[8] = {0};
            size_t base = (size_t)n * K;
            int k = 0;
            for (; k + 8 <= K; k += 8)
                for (int l = 0; l < 8; l++)
                    acc[l] += x[k + l] * load_w(a->w, a->wt, base + k + l);
            for (int l = 0; k + l < K; l++)
                acc[l] += x[k + l] * load_w(a->w, a->wt, base + k + l);
            float s =
                ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
            a->y[(size_t)m * a->ldy + n] = s + (a->bias ? a->bias[n] : 0.0f);
        }
    }
}

/* ---------------------------------------------------------------- tile sweeps (all SIMD paths) */

void kern_mm_sweep_gemv(const kern_mm_args *a, int n0, int n1, int nr_max,
                        const kern_tile_fn *gemv) {
    for (int n = n0; n < n1; n += nr_max) {
        int nr = n1 - n < nr_max ? n1 - n : nr_max;
        for (int m = 0; m < a->M; m++)
            gemv[nr](a, m, n);
    }
}

void kern_mm_sweep_tiles(const kern_mm_args *a, int n0, int n1, size_t block_bytes, int mr_max,
                         int nr_max, const kern_tile_fn *tiles) {
    size_t row_bytes = dtype_row_bytes(a->wt, a->K);
    int nb_rows = (int)(block_bytes / (row_bytes ? row_bytes : 1));
    nb_rows = nb_rows < nr_max ? nr_max : nb_rows / nr_max * nr_max;
    for (int nb = n0; nb < n1; nb += nb_rows) {
        int nbe = n1 - nb < nb_rows ? n1 : nb + nb_rows;
        for (int m = 0; m < a->M; m += mr_max) {
            int mr = a->M - m < mr_max ? a->M - m : mr_max;
            for (int n = nb; n < nbe; n += nr_max) {
                int nr = nbe - n < nr_max ? nbe - n : nr_max;
                tiles[mr * (nr_max + 1) + nr](a, m, n);
            }
        }
    }
}

/* ---------------------------------------------------------------- dispatch */

/* One dispatch computes one or more matmuls of the same x and weight dtype (q/k/v, gate/up):
 * threads split the concatenated outputs, each part is computed exactly as alone. */
#define MAX_PARTS 4

typedef struct {
    kern_mm_path path;
    kern_mm_args a; /* the first part; the others differ in w, N, bias, y, ldy */
    kern_mm_part parts[MAX_PARTS];
    const uint8_t *packed[MAX_PARTS]; /* AMX: the parts' repacked weights */
    int n_parts, N_total;
    float *xp;
} mm_job;

static void prep_rows(const mm_job *j, int m0, int m1) {
    if (j->path == KERN_MM_AVX512BF16 || j->path == KERN_MM_AMX)
        kern_mm_prep_x_dpbf16(&j->a, m0, m1, (uint16_t *)j->xp);
    else if (j->path == KERN_MM_AVX512)
        kern_mm_prep_x_avx512(&j->a, m0, m1, j->xp);
    else
        kern_mm_prep_x_avx2(&j->a, m0, m1, j->xp);
}

static void prep_task(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    long lo, hi;
    tp_split(j->a.M, 1, ith, nth, &lo, &hi);
    if (lo < hi) prep_rows(j, (int)lo, (int)hi);
}

/* Rows [lo, hi) of one part on this thread's path. */
static void part_rows(const mm_job *j, const kern_mm_args *a, const uint8_t *packed, int lo, int hi,
                      int ith, int nth) {
    switch (j->path) {
    case KERN_MM_AMX:
        kern_mm_rows_amxbf16(a, packed, lo, hi);
        break;
    case KERN_MM_AVX512BF16:
        kern_mm_rows_dpbf16(a, lo, hi);
        break;
    case KERN_MM_AVX512: {
        /* This thread's share of the next matmul (same split), up to one L2 block of it. */
        const kern_mm_next *nx = a->next;
        const char *pf = NULL;
        size_t pf_bytes = 0;
        long nlo, nhi;
        if (nx && nx->w && nx->N > 0 && nx->K > 0) {
            tp_split(nx->N, KERN_MM_SPLIT_ALIGN, ith, nth, &nlo, &nhi);
            size_t row = dtype_row_bytes(nx->wt, nx->K);
            pf = (const char *)nx->w + (size_t)nlo * row;
            pf_bytes = (size_t)(nhi - nlo) * row;
            if (pf_bytes > KERN_MM_WBLOCK_BYTES / 2) pf_bytes = KERN_MM_WBLOCK_BYTES / 2;
        }
        kern_mm_rows_avx512(a, lo, hi, a->wp ? a->wp + (size_t)ith * a->wp_stride : NULL, pf,
                            pf_bytes);
        break;
    }
    case KERN_MM_AVX2:
        kern_mm_rows_avx2(a, lo, hi);
        break;
    default:
        kern_mm_rows_scalar(a, lo, hi);
        break;
    }
}

static void rows_task(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    long lo, hi;
    tp_split(j->N_total, KERN_MM_SPLIT_ALIGN, ith, nth, &lo, &hi);
    int off = 0, n0, n1;
    for (int p = 0; p < j->n_parts && lo < hi; off += j->parts[p].N, p++) {
        if (!kern_part_share(lo, hi, off, j->parts[p].N, &n0, &n1)) continue;
        kern_mm_args a = j->a;
        KERN_MM_SET_PART(a, j->parts[p]);
        if (p + 1 < j->n_parts) a.next = NULL; /* the next matmul follows the last part */
        part_rows(j, &a, j->packed[p], n0, n1, ith, nth);
    }
}

static void matmul_parts(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                         dtype wt, const kern_mm_part *parts, int n_parts, void *work,
                         const kern_mm_next *next) {
    if (M <= 0 || n_parts <= 0) return;
    if (dtype_is_quant(wt)) {
        quant_mm_matmul_parts(p, tp, x, M, K, ldx, wt, parts, n_parts, work);
        return;
    }
    if ((p == KERN_MM_AVX512BF16 || p == KERN_MM_AMX) &&
        (wt != DTYPE_BF16 || (p == KERN_MM_AMX && !cpu_get()->amx_bf16)))
        p = KERN_MM_AVX512;
    mm_job j = {.path = p,
                .a = {.x = x,
                      .M = M,
                      .K = K,
                      .ldx = ldx,
                      .w = parts[0].w,
                      .wt = wt,
                      .N = parts[0].N,
                      .bias = parts[0].bias,
                      .y = parts[0].y,
                      .ldy = parts[0].ldy,
                      .next = next,
                      .pf_tiles = kern_tune_pf_tiles(wt)},
                .n_parts = n_parts};
    for (int i = 0; i < n_parts; i++) {
        j.parts[i] = parts[i];
        j.N_total += parts[i].N;
        if (j.path == KERN_MM_AMX) { /* registered at load (quant_amx.h); else: f32-FMA kernels */
            j.packed[i] = quant_amx_lookup(parts[i].w, wt, parts[i].N, K);
            if (!j.packed[i]) j.path = p = KERN_MM_AVX512;
        }
    }
    if (j.N_total <= 0) return;
    if (wt == DTYPE_BF16 && p != KERN_MM_SCALAR) {
        j.xp = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
        j.a.xp = j.xp;
        j.a.xp_ld = round_up32(K);
        if (p == KERN_MM_AVX512 && M >= KERN_MM_GEMM_MIN_M) {
            j.a.wp = j.xp + (size_t)M * j.a.xp_ld; /* xp_ld is a multiple of 32: aligned */
            j.a.wp_stride = kern_mm_wscratch_floats(K);
        }
        /* A second parallel phase only pays off when there is real conversion work. */
        if (tp && tp_size(tp) > 1 && (long)M * K >= 65536)
            tp_run(tp, prep_task, &j);
        else
            prep_rows(&j, 0, M);
    }
    tp_run(tp, rows_task, &j);
}

static void matmul_on(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                      const void *w, dtype wt, int N, const float *bias, float *y, int ldy,
                      void *work, const kern_mm_next *next) {
    kern_mm_part part = {.w = w, .N = N, .bias = bias, .y = y, .ldy = ldy};
    matmul_parts(p, tp, x, M, K, ldx, wt, &part, 1, work, next);
}

void kern_matmul_on(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                    const void *w, dtype wt, int N, const float *bias, float *y, int ldy,
                    void *work) {
    matmul_on(p, tp, x, M, K, ldx, w, wt, N, bias, y, ldy, work, NULL);
}

void kern_matmul_then(threadpool *tp, const float *x, int M, int K, int ldx, const void *w,
                      dtype wt, int N, const float *bias, float *y, int ldy, void *work,
                      const kern_mm_next *next) {
    matmul_on(kern_tune_family(wt), tp, x, M, K, ldx, w, wt, N, bias, y, ldy, work, next);
}

void kern_matmul(threadpool *tp, const float *x, int M, int K, int ldx, const void *w, dtype wt,
                 int N, const float *bias, float *y, int ldy, void *work) {
    kern_matmul_then(tp, x, M, K, ldx, w, wt, N, bias, y, ldy, work, NULL);
}

void kern_matmul_multi(threadpool *tp, const float *x, int M, int K, int ldx, dtype wt,
                       const kern_mm_part *parts, int n_parts, void *work,
                       const kern_mm_next *next) {
    for (int i = 0; i < n_parts; i += MAX_PARTS) /* more than MAX_PARTS: several dispatches */
        matmul_parts(kern_tune_family(wt), tp, x, M, K, ldx, wt, parts + i,
                     n_parts - i < MAX_PARTS ? n_parts - i : MAX_PARTS, work,
                     i + MAX_PARTS >= n_parts ? next : NULL);
}

void kern_matmul_multi_on(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                          dtype wt, const kern_mm_part *parts, int n_parts, void *work) {
    for (int i = 0; i < n_parts; i += MAX_PARTS)
        matmul_parts(p, tp, x, M, K, ldx, wt, parts + i,
                     n_parts - i < MAX_PARTS ? n_parts - i : MAX_PARTS, work, NULL);
}
