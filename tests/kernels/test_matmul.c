/* test_matmul.c - every matmul path (scalar, AVX2, AVX-512) against the scalar reference on odd
 * shapes; batch invariance (bitwise, across M, row position and threads); conversions bitwise.
 *
 * Tolerance: all paths accumulate x (f32, never rounded) times the exactly widened weight in f32,
 * only in a different order than the sequential reference. Both sums are within
 * K * u * sum|x_k w_k| of the exact value (u = 2^-24, Higham's bound for any summation order), so
 * |fast - ref| <= 2 (K + 16) u sum|x_k w_k|; the +16 covers the lane tree and the bias add. */
#include "base/half.h"
#include "base/threadpool.h"
#include "check.h"
#include "base/cpu.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant_amx.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(void) {
    return (float)((rnd32() & 0xffffff) / 16777216.0 * 2.0 - 1.0);
}

static const dtype dtypes[3] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};

/* Random weights [n][k] in dtype t; wf gets their exact f32 values. */
static void *make_w(dtype t, int n, int k, float *wf) {
    void *w = malloc((size_t)n * k * dtype_size(t));
    for (size_t i = 0; i < (size_t)n * k; i++) {
        float v = rndf();
        if (t == DTYPE_F32) {
            ((float *)w)[i] = v;
        } else if (t == DTYPE_F16) {
            ((uint16_t *)w)[i] = f32_to_f16(v);
            v = f16_to_f32(((uint16_t *)w)[i]);
        } else {
            ((uint16_t *)w)[i] = f32_to_bf16(v);
            v = bf16_to_f32(((uint16_t *)w)[i]);
        }
        wf[i] = v;
    }
    return w;
}

/* The AMX family reads bf16 weights from a repacked copy that the model registers at load. */
static void amx_prepare(kern_mm_path p, dtype t, const void *w, int N, int K) {
    if (p == KERN_MM_AMX && t == DTYPE_BF16 && cpu_get()->amx_bf16)
        CHECK(quant_amx_register(w, t, N, K) == CLLM_OK);
}

static void test_vs_ref(kern_mm_path p, threadpool *tp, dtype t, int M, int K, int N,
                        int use_bias) {
    int ldx = K + 3, ldy = N + 2;
    float *x = malloc((size_t)M * ldx * sizeof(float));
    float *wf = malloc((size_t)N * K * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    float *y = malloc((size_t)M * ldy * sizeof(float));
    float *yr = malloc((size_t)M * ldy * sizeof(float));
    for (int i = 0; i < M * ldx; i++)
        x[i] = rndf();
    for (int i = 0; i < N; i++)
        bias[i] = rndf();
    void *w = make_w(t, N, K, wf);
    amx_prepare(p, t, w, N, K);
    size_t ws = kern_matmul_work_size(M, K, t, tp ? tp_size(tp) : 1);
    void *work = ws ? malloc(ws) : NULL;
    for (int i = 0; i < M * ldy; i++)
        y[i] = yr[i] = 12345.0f;

    kern_matmul_on(p, tp, x, M, K, ldx, w, t, N, use_bias ? bias : NULL, y, ldy, work);
    /* The vdpbf16ps family rounds x to bf16 (nearest even) and then multiplies exactly: its
     * reference is the f32 reference on that rounded x, with the same accumulation tolerance. */
    if ((p == KERN_MM_AVX512BF16 || (p == KERN_MM_AMX && cpu_get()->amx_bf16)) && t == DTYPE_BF16)
        for (int i = 0; i < M * ldx; i++)
            x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    kern_matmul_ref(x, M, K, ldx, w, t, N, use_bias ? bias : NULL, yr, ldy);

    int bad = 0;
    for (int m = 0; m < M && bad < 3; m++) {
        for (int n = 0; n < N && bad < 3; n++) {
            double mag = 0;
            for (int k = 0; k < K; k++)
                mag += fabs((double)x[(size_t)m * ldx + k] * wf[(size_t)n * K + k]);
            double tol = 2.0 * (K + 16) * ldexp(1.0, -24) * (mag + (use_bias ? fabs(bias[n]) : 0));
            double d = fabs((double)y[(size_t)m * ldy + n] - yr[(size_t)m * ldy + n]);
            if (!(d <= tol)) {
                bad++;
                CHECK_MSG(0, "%s %s M=%d K=%d N=%d y[%d][%d]=%.9g ref=%.9g tol=%.3g",
                          kern_mm_path_name(p), dtype_name(t), M, K, N, m, n,
                          y[(size_t)m * ldy + n], yr[(size_t)m * ldy + n], tol);
            }
        }
        for (int n = N; n < ldy; n++) /* the row padding must be untouched */
            CHECK(y[(size_t)m * ldy + n] == 12345.0f);
    }
    free(x), free(wf), free(bias), free(y), free(yr), quant_amx_unregister(w), free(w), free(work);
}

/* y[m][n] must be bitwise the same whatever M, the row's position in the batch and threads. */
static void test_invariance(kern_mm_path p, threadpool *tp2, dtype t, int K, int N, int MB) {
    float *x = malloc((size_t)MB * K * sizeof(float));
    float *wf = malloc((size_t)N * K * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    float *yfull = malloc((size_t)MB * N * sizeof(float));
    float *y2 = malloc((size_t)MB * N * sizeof(float));
    float *ysub = malloc((size_t)MB * N * sizeof(float));
    float *xsub = malloc((size_t)MB * K * sizeof(float));
    for (int i = 0; i < MB * K; i++)
        x[i] = rndf();
    for (int i = 0; i < N; i++)
        bias[i] = rndf();
    void *w = make_w(t, N, K, wf);
    amx_prepare(p, t, w, N, K);
    void *work = malloc(kern_matmul_work_size(MB, K, DTYPE_BF16, tp_size(tp2)));

    kern_matmul_on(p, NULL, x, MB, K, K, w, t, N, bias, yfull, N, work);
    kern_matmul_on(p, tp2, x, MB, K, K, w, t, N, bias, y2, N, work);
    CHECK_MSG(memcmp(yfull, y2, (size_t)MB * N * sizeof(float)) == 0, "%s %s K=%d: 1 vs 2 threads",
              kern_mm_path_name(p), dtype_name(t), K);

    /* Sub-batches of sizes 1..9 and 20 placed so that row r sits at every offset in them; each
     * sub-batch is copied to a fresh buffer so the row also moves in memory. */
    static const int sizes[] = {1, 2, 3, 4, 5, 8, 9, 20};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int sz = sizes[si];
        for (int r = 0; r < MB; r += 5) {
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

static void test_conversions(kern_mm_path p) {
    enum { NB = 65536 + 13 };
    uint16_t *h = malloc(NB * 2), *h1 = malloc(NB * 2), *h2 = malloc(NB * 2);
    float *f = malloc(NB * 4), *f1 = malloc(NB * 4), *f2 = malloc(NB * 4);
    /* every 16-bit pattern, then a few more so the length is not a multiple of the vector */
    for (int i = 0; i < NB; i++)
        h[i] = (uint16_t)i;
    for (int d = 1; d < 3; d++) {
        dtype t = dtypes[d];
        kern_to_f32_on(p, h, t, NB, f1);
        kern_to_f32_on(KERN_MM_SCALAR, h, t, NB, f2);
        for (int i = 0; i < NB; i++) {
            float r = t == DTYPE_F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
            if (memcmp(&f1[i], &r, 4) || memcmp(&f2[i], &r, 4)) {
                CHECK_MSG(0, "%s to_f32 %s 0x%04x", kern_mm_path_name(p), dtype_name(t), h[i]);
                break;
            }
        }
    }
    /* f32 -> f16/bf16: specials, every f16/bf16 rounding boundary neighbourhood, random bits */
    static const uint32_t special[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000,
                                       0xffc00000, 0x7f800001, 0xff812345, 0x7fffffff, 0x00000001,
                                       0x807fffff, 0x477ff000, 0x477fefff, 0x477fe000, 0x38800000,
                                       0x387fffff, 0x33000000, 0x33000001, 0x32ffffff, 0x7f7fffff,
                                       0x3f808000, 0x3f818000, 0x3f80c000, 0x3f807fff};
    int ns = (int)(sizeof special / sizeof *special);
    for (int i = 0; i < NB; i++) {
        uint32_t u = i < ns    ? special[i]
                     : (i & 1) ? rnd32()
                               : ((uint32_t)rnd32() & 0xffff0000u) | (i & 3 ? 0x8000 : 0x7fff);
        if (i % 7 == 0 && i >= ns)
            u = (rnd32() & 0x80000000u) | (0x33000000u + rnd32() % 0x14800000u); /* f16 range */
        memcpy(&f[i], &u, 4);
    }
    for (int d = 1; d < 3; d++) {
        dtype t = dtypes[d];
        kern_from_f32_on(p, f, t, NB, h1);
        kern_from_f32_on(KERN_MM_SCALAR, f, t, NB, h2);
        for (int i = 0; i < NB; i++) {
            uint16_t r = t == DTYPE_F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
            if (h1[i] != r || h2[i] != r) {
                uint32_t u;
                memcpy(&u, &f[i], 4);
                CHECK_MSG(0, "%s from_f32 %s 0x%08x: got 0x%04x want 0x%04x", kern_mm_path_name(p),
                          dtype_name(t), u, h1[i], r);
                break;
            }
        }
    }
    /* f32 "conversion" is a copy */
    kern_to_f32_on(p, f, DTYPE_F32, 1000, f1);
    CHECK(memcmp(f, f1, 4000) == 0);
    kern_from_f32_on(p, f, DTYPE_F32, 1000, f1);
    CHECK(memcmp(f, f1, 4000) == 0);
    free(h), free(h1), free(h2), free(f), free(f1), free(f2);
}

int main(void) {
    threadpool *tp2 = NULL;
    CHECK(tp_create(2, &tp2) == CLLM_OK);
    threadpool *tp3 = NULL;
    CHECK(tp_create(3, &tp3) == CLLM_OK);
    printf("best path: %s\n", kern_mm_path_name(kern_mm_best_path()));

    static const int Ms[] = {1, 2, 3, 4, 5, 8, 9, 17, 37};
    static const int Ks[] = {1, 7, 8, 15, 16, 31, 32, 33, 63, 100, 129, 259};
    static const int Ns[] = {1, 2, 3, 5, 17, 35};
    for (int p = 0; p < KERN_MM_NPATHS; p++) {
        if (!kern_mm_path_ok((kern_mm_path)p)) {
            printf("path %s: not supported here, skipped\n", kern_mm_path_name((kern_mm_path)p));
            continue;
        }
        for (int d = 0; d < 3; d++) {
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
                    int M = Ms[(ki + ni) % (sizeof Ms / sizeof *Ms)];
                    threadpool *tp = (ki + ni) % 3 == 0 ? NULL : (ki + ni) % 3 == 1 ? tp2 : tp3;
                    test_vs_ref((kern_mm_path)p, tp, dtypes[d], M, Ks[ki], Ns[ni], (int)(ki & 1));
                }
            test_vs_ref((kern_mm_path)p, tp2, dtypes[d], 37, 896, 70, 1);
            test_vs_ref((kern_mm_path)p, tp2, dtypes[d], 1, 896, 200, 0);
            test_invariance((kern_mm_path)p, tp2, dtypes[d], 203, 37, 37);
            test_invariance((kern_mm_path)p, tp2, dtypes[d], 896, 64, 37);
            /* Rows long enough that the AVX-512 bf16 GEMM sweeps K in slices (parking partial
             * sums) and enough of them for several widened blocks; only that path has them, and
             * the others would make this slow. */
            if (p == KERN_MM_AVX512 && dtypes[d] == DTYPE_BF16) {
                test_vs_ref((kern_mm_path)p, tp2, dtypes[d], 11, 2100, 140, 1);
                test_invariance((kern_mm_path)p, tp2, dtypes[d], 2100, 140, 37);
                /* a batch above the direct-tile limit (widened blocks) vs sub-batches below */
                test_invariance((kern_mm_path)p, tp2, dtypes[d], 2100, 50, 70);
            }
        }
        test_conversions((kern_mm_path)p);
        printf("path %s: checked\n", kern_mm_path_name((kern_mm_path)p));
    }
    /* the public entry points, on whatever CLLM_CPU selects */
    test_vs_ref(kern_mm_best_path(), tp2, DTYPE_BF16, 9, 77, 33, 1);
    {
        float x[40], wf[40 * 3], y[3], yr[3];
        for (int i = 0; i < 40; i++)
            x[i] = rndf();
        void *w = make_w(DTYPE_F16, 3, 40, wf);
        kern_matmul(tp2, x, 1, 40, 40, w, DTYPE_F16, 3, NULL, y, 3, NULL);
        kern_matmul_ref(x, 1, 40, 40, w, DTYPE_F16, 3, NULL, yr, 3);
        for (int n = 0; n < 3; n++)
            CHECK(fabsf(y[n] - yr[n]) <= 1e-5f * 40);
        free(w);
    }
    CHECK(kern_matmul_work_size(4, 33, DTYPE_F32, 2) == 0);
    CHECK(kern_matmul_work_size(4, 33, DTYPE_BF16, 2) >= 4 * 64 * sizeof(float));
    tp_free(tp2);
    tp_free(tp3);
    CHECK_DONE();
}
