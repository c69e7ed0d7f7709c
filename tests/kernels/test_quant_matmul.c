/* test_quant_matmul.c - matmul over quantized weights: every path (scalar, AVX2, AVX-512) against
 * the scalar reference, the reference against an f32 matmul over dequantized weights, bitwise
 * batch invariance (M, row position, threads, GEMV vs GEMM), odd N, bias, ldx/ldy padding.
 *
 * Tolerances. All paths quantize x identically (bitwise; test_quant_formats checks the SIMD
 * versions) and compute exact integer block dot products; they differ only in how the float
 * products of those integers with the scales are summed. Each term is rounded a few times (scale
 * product, FMA), so with S = sum_k |x_k w_k| (+ |bias|), |fast - ref| <= (nblocks + 24) * 8u * S
 * with u = 2^-24 (a loose form of Higham's summation bound; |d_x q| <= |x| (1 + 1/254) covers the
 * quantized x). Against the exact f32 matmul the only extra error is x's quantization: |x - d_x q|
 * <= d_x / 2 per element, so |ref - exact| <= sum_k |w_k| d_x(k) / 2 plus the rounding above. */
#include "base/half.h"
#include "base/threadpool.h"
#include "check.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant.h"
#include "kernels/quant_amx.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(void) {
    return (float)((rnd32() & 0xffffff) / 16777216.0 * 2.0 - 1.0);
}

static const dtype qtypes[] = {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_1, DTYPE_Q5_0, DTYPE_Q5_1,
                               DTYPE_Q4_K, DTYPE_Q5_K, DTYPE_Q6_K, DTYPE_Q8_K};
#define NQT ((int)(sizeof qtypes / sizeof *qtypes))

/* Random weights [n][k] quantized to t; wf gets their dequantized values. Rows get different
 * magnitudes and some all-zero blocks so that every scale path is exercised. */
static void *make_w(dtype t, int n, int k, float *wf) {
    size_t rb = dtype_row_bytes(t, k);
    uint8_t *w = malloc(rb * n);
    float *row = malloc((size_t)k * sizeof(float));
    for (int r = 0; r < n; r++) {
        float mag = (r % 3 == 0) ? 0.01f : (r % 3 == 1) ? 1.0f : 30.0f;
        for (int i = 0; i < k; i++)
            row[i] = (i / 32) % 7 == 3 ? 0.0f : rndf() * mag;
        quant_quantize_row(t, row, w + rb * r, k);
        quant_dequantize_row(t, w + rb * r, wf + (size_t)r * k, k);
    }
    free(row);
    return w;
}

static void make_x(float *x, int M, int K, int ldx) {
    for (int m = 0; m < M; m++)
        for (int i = 0; i < ldx; i++)
            x[(size_t)m * ldx + i] = i >= K ? 1e30f : (i / 32) % 5 == 2 ? 0.0f : rndf() * (m + 1);
}

/* |fast - ref| bound for one output (see the top): S = sum |x_k w_k| (+ |bias|). */
static double bound(const float *x, const float *wf, int K, double extra) {
    double s = extra;
    for (int i = 0; i < K; i++)
        s += fabs((double)x[i] * wf[i]);
    return (K / 32 + 24) * 8.0 * ldexp(1.0, -24) * s + 1e-30;
}

static void test_path(kern_mm_path p, threadpool *tp, dtype t, int M, int K, int N, int bias_on) {
    int ldx = K + 5, ldy = N + 3;
    float *x = malloc((size_t)M * ldx * sizeof(float)), *wf = malloc((size_t)N * K * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    float *y = malloc((size_t)M * ldy * sizeof(float)),
          *yr = malloc((size_t)M * ldy * sizeof(float));
    make_x(x, M, K, ldx);
    for (int i = 0; i < N; i++)
        bias[i] = rndf() * 4;
    void *w = make_w(t, N, K, wf);
    if (p == KERN_MM_AMX && quant_amx_type(t)) CHECK(quant_amx_register(w, t, N, K) == CLLM_OK);
    void *work = malloc(kern_matmul_work_size(M, K, t, tp ? tp_size(tp) : 1));
    for (int i = 0; i < M * ldy; i++)
        y[i] = yr[i] = 12345.0f;
    const float *b = bias_on ? bias : NULL;
    kern_matmul_on(p, tp, x, M, K, ldx, w, t, N, b, y, ldy, work);
    kern_matmul_ref(x, M, K, ldx, w, t, N, b, yr, ldy);
    int bad = 0;
    for (int m = 0; m < M; m++) {
        const float *xm = x + (size_t)m * ldx;
        for (int n = 0; n < N && bad < 3; n++) {
            const float *wn = wf + (size_t)n * K;
            double got = y[(size_t)m * ldy + n], ref = yr[(size_t)m * ldy + n];
            /* fast path vs the reference: rounding only */
            double tol = bound(xm, wn, K, b ? fabs(b[n]) : 0);
            if (!(fabs(got - ref) <= tol)) {
                bad++;
                CHECK_MSG(0, "%s %s M=%d K=%d N=%d y[%d][%d]=%.9g ref=%.9g tol=%.3g",
                          kern_mm_path_name(p), dtype_name(t), M, K, N, m, n, got, ref, tol);
            }
            /* the reference vs the exact product with dequantized weights: x quantization */
            double exact = b ? b[n] : 0, qerr = 0;
            for (int bl = 0; bl < K / 32; bl++) {
                double amax = 0, sw = 0;
                for (int i = 32 * bl; i < 32 * bl + 32; i++) {
                    exact += (double)xm[i] * wn[i];
                    amax = fmax(amax, fabs(xm[i]));
                    sw += fabs(wn[i]);
                }
                if (t >= DTYPE_Q4_K) { /* x blocks of 256: use the 256-block max */
                    double a2 = 0;
                    for (int i = bl / 8 * 256; i < bl / 8 * 256 + 256; i++)
                        a2 = fmax(a2, fabs(xm[i]));
                    amax = a2;
                }
                qerr += sw * amax / 127.0 * 0.5 * 1.0001;
            }
            if (!(fabs(ref - exact) <= qerr + tol + 1e-6)) {
                bad++;
                CHECK_MSG(0, "%s ref vs exact M=%d K=%d y[%d][%d]=%.9g exact=%.9g bound=%.3g",
                          dtype_name(t), M, K, m, n, ref, exact, qerr + tol);
            }
        }
        for (int n = N; n < ldy; n++)
            CHECK(y[(size_t)m * ldy + n] == 12345.0f);
    }
    free(x), free(wf), free(bias), free(y), free(yr), quant_amx_unregister(w), free(w), free(work);
}

/* y[m][n] bitwise the same whatever M, the row's position, the thread count. */
static void test_invariance(kern_mm_path p, threadpool *tp2, threadpool *tp3, dtype t, int K,
                            int N) {
    enum { MB = 64 };
    float *x = malloc((size_t)MB * K * sizeof(float)), *wf = malloc((size_t)N * K * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    float *yfull = malloc((size_t)MB * N * sizeof(float)),
          *y2 = malloc((size_t)MB * N * sizeof(float));
    float *ysub = malloc((size_t)MB * N * sizeof(float)),
          *xsub = malloc((size_t)MB * K * sizeof(float));
    make_x(x, MB, K, K);
    for (int i = 0; i < N; i++)
        bias[i] = rndf();
    void *w = make_w(t, N, K, wf);
    if (p == KERN_MM_AMX && quant_amx_type(t)) CHECK(quant_amx_register(w, t, N, K) == CLLM_OK);
    void *work = malloc(kern_matmul_work_size(MB, K, t, tp_size(tp3)));
    kern_matmul_on(p, NULL, x, MB, K, K, w, t, N, bias, yfull, N, work);
    kern_matmul_on(p, tp2, x, MB, K, K, w, t, N, bias, y2, N, work);
    CHECK_MSG(memcmp(yfull, y2, (size_t)MB * N * sizeof(float)) == 0, "%s %s K=%d: 1 vs 2 threads",
              kern_mm_path_name(p), dtype_name(t), K);
    kern_matmul_on(p, tp3, x, MB, K, K, w, t, N, bias, y2, N, work);
    CHECK_MSG(memcmp(yfull, y2, (size_t)MB * N * sizeof(float)) == 0, "%s %s K=%d: 1 vs 3 threads",
              kern_mm_path_name(p), dtype_name(t), K);
    static const int sizes[] = {1, 2, 3, 4, 5, 7, 9, 17};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int sz = sizes[si];
        for (int r = 0; r < MB; r += 6) {
            int off = r % sz, first = r - off;
            if (first + sz > MB) continue;
            memcpy(xsub, x + (size_t)first * K, (size_t)sz * K * sizeof(float));
            for (int th = 0; th < 2; th++) {
                kern_matmul_on(p, th ? tp2 : NULL, xsub, sz, K, K, w, t, N, bias, ysub, N, work);
                CHECK_MSG(memcmp(ysub + (size_t)off * N, yfull + (size_t)r * N,
                                 (size_t)N * sizeof(float)) == 0,
                          "%s %s K=%d N=%d: row %d in a batch of %d at %d (%d threads)",
                          kern_mm_path_name(p), dtype_name(t), K, N, r, sz, off, th + 1);
            }
        }
    }
    free(x), free(wf), free(bias), free(yfull), free(y2), free(ysub), free(xsub),
        quant_amx_unregister(w), free(w), free(work);
}

/* kern_to_f32 on a quantized row is the dequantization (embedding lookups). */
static void test_to_f32(kern_mm_path p) {
    enum { K = 512 };
    float wf[K], got[K];
    for (int i = 0; i < NQT; i++) {
        void *w = make_w(qtypes[i], 1, K, wf);
        kern_to_f32_on(p, w, qtypes[i], K, got);
        CHECK_MSG(memcmp(wf, got, sizeof wf) == 0, "to_f32 %s", dtype_name(qtypes[i]));
        free(w);
    }
}

int main(void) {
    threadpool *tp2 = NULL, *tp3 = NULL;
    CHECK(tp_create(2, &tp2) == CLLM_OK);
    CHECK(tp_create(3, &tp3) == CLLM_OK);
    /* K: one block, odd block counts, 256 multiples; N: odd and tile remainders. */
    static const int shapes[][3] = {{1, 256, 37}, {3, 512, 5},   {4, 768, 33},
                                    {7, 256, 67}, {9, 1280, 19}, {64, 512, 41}};
    static const int legacy_k[] = {32, 96, 160, 224};
    for (int p = 0; p < KERN_MM_NPATHS; p++) {
        if (!kern_mm_path_ok(p)) {
            printf("path %s not supported here, skipped\n", kern_mm_path_name(p));
            continue;
        }
        test_to_f32(p);
        for (int i = 0; i < NQT; i++) {
            dtype t = qtypes[i];
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int b = 0; b < 2; b++)
                    test_path(p, s % 2 ? tp2 : NULL, t, shapes[s][0], shapes[s][1], shapes[s][2],
                              b);
            if (t < DTYPE_Q4_K)
                for (size_t s = 0; s < sizeof legacy_k / sizeof *legacy_k; s++) {
                    test_path(p, NULL, t, 1, legacy_k[s], 13, 1);
                    test_path(p, tp2, t, 6, legacy_k[s], 29, 0);
                }
            test_invariance(p, tp2, tp3, t, 512, 45);
            if (t < DTYPE_Q4_K) { /* every GEMV step: 16, 8, 4, 2 and 1 blocks */
                test_invariance(p, tp2, tp3, t, 32 * 31, 21);
                test_invariance(p, tp2, tp3, t, 96, 21);
            }
        }
        printf("path %s done\n", kern_mm_path_name(p));
    }
    tp_free(tp2);
    tp_free(tp3);
    CHECK_DONE();
}
