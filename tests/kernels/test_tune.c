/* test_tune.c - the kernel choice (kernels/tune.h) and the fused dispatch it relies on:
 *  - kern_matmul_multi gives bitwise what separate kern_matmul calls give, for every family and
 *    weight dtype kind (float, legacy and K quants), decode and prefill shapes, 1 and 2 threads;
 *  - CLLM_TUNE: off -> defaults, DTYPE=FAMILY[/pfN] -> forced, malformed -> a clear error;
 *  - the cache: a measured choice is written under $XDG_CACHE_HOME/cllm and read back by the next
 *    load, malformed or foreign lines are ignored, a family the CPU cannot run is never taken;
 *  - a dtype's family is fixed for the process once used (batch invariance needs one family). */
#include "check.h"

#include "base/half.h"
#include "kernels/matmul_impl.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"
#include "kernels/quant_amx.h"
#include "kernels/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned g_seed = 7;
static float rndf(void) {
    g_seed = g_seed * 1103515245u + 12345u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* N x K weights of dtype t from random values (quantized through the library's quantizer). */
static void *make_w(dtype t, int N, int K) {
    float *f = malloc((size_t)N * K * sizeof(float));
    for (size_t i = 0; i < (size_t)N * K; i++)
        f[i] = rndf() * 0.1f;
    void *w = malloc(dtype_row_bytes(t, K) * (size_t)N + 64);
    if (t == DTYPE_F32) {
        memcpy(w, f, (size_t)N * K * sizeof(float));
    } else if (t == DTYPE_BF16) {
        for (size_t i = 0; i < (size_t)N * K; i++)
            ((uint16_t *)w)[i] = f32_to_bf16(f[i]);
    } else {
        for (int n = 0; n < N; n++)
            quant_quantize_row(t, f + (size_t)n * K, (char *)w + dtype_row_bytes(t, K) * n, K);
    }
    free(f);
    return w;
}

static void test_multi(kern_mm_path p, threadpool *tp, dtype t, int M, int K) {
    const int Ns[3] = {96, 32, 40}; /* q/k/v-like: unequal parts, not multiples of the split */
    void *w[3];
    float *bias[3], *ya[3], *yb[3];
    float *x = malloc((size_t)M * K * sizeof(float));
    for (int i = 0; i < M * K; i++)
        x[i] = rndf();
    size_t ws = kern_matmul_work_size(M, K, t, 2);
    void *work = malloc(ws + 64);
    kern_mm_part parts[3];
    for (int i = 0; i < 3; i++) {
        w[i] = make_w(t, Ns[i], K);
        bias[i] = malloc(Ns[i] * sizeof(float));
        for (int n = 0; n < Ns[i]; n++)
            bias[i][n] = rndf();
        ya[i] = calloc((size_t)M * Ns[i], sizeof(float));
        yb[i] = calloc((size_t)M * Ns[i], sizeof(float));
        if (p == KERN_MM_AMX && quant_amx_type(t))
            CHECK(quant_amx_register(w[i], t, Ns[i], K) == CLLM_OK);
        parts[i] = (kern_mm_part){
            .w = w[i], .N = Ns[i], .bias = i == 1 ? NULL : bias[i], .y = yb[i], .ldy = Ns[i]};
        kern_matmul_on(p, tp, x, M, K, K, w[i], t, Ns[i], parts[i].bias, ya[i], Ns[i], work);
    }
    kern_matmul_multi_on(p, tp, x, M, K, K, t, parts, 3, work);
    for (int i = 0; i < 3; i++)
        CHECK_MSG(memcmp(ya[i], yb[i], (size_t)M * Ns[i] * sizeof(float)) == 0,
                  "%s %s M=%d K=%d part %d: fused differs from alone", kern_mm_path_name(p),
                  dtype_name(t), M, K, i);
    for (int i = 0; i < 3; i++) {
        quant_amx_unregister(w[i]);
        free(w[i]);
        free(bias[i]);
        free(ya[i]);
        free(yb[i]);
    }
    free(x);
    free(work);
}

/* The AMX family against its documented numerics (quant_amx.h), computed here in scalar code
 * from the GGUF block definitions: per output, acc = fma((float)isum_b, dx_b * dw_b, acc) over
 * the blocks in order, then + bias. Bitwise; the VNNI kernels would round differently. */
static void test_amx_formula(threadpool *tp, dtype t, int M, int K, int N) {
    float *x = malloc((size_t)M * K * sizeof(float)), *bias = malloc(N * sizeof(float));
    float *y = malloc((size_t)M * N * sizeof(float)), *yr = malloc((size_t)M * N * sizeof(float));
    for (int i = 0; i < M * K; i++)
        x[i] = rndf() * (i % 7 == 0 ? 20.0f : 1.0f);
    for (int n = 0; n < N; n++)
        bias[n] = rndf();
    uint8_t *w = make_w(t, N, K);
    CHECK(quant_amx_register(w, t, N, K) == CLLM_OK);
    quant_mm_layout lay = quant_mm_layout_of(t, K);
    uint8_t *xq = aligned_alloc(64, (size_t)M * lay.row_bytes + 64);
    quant_mm_args qa = {.xq = xq, .lay = lay, .M = M, .K = K, .wt = t};
    quant_mm_prep_rows(&qa, x, K, 0, M); /* the one definition of x's quantization */
    const size_t wrow = dtype_row_bytes(t, K);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int b = 0; b < K / 32; b++) {
                const uint8_t *blk = w + (size_t)n * wrow + (size_t)b * dtype_block_bytes(t);
                uint16_t dh;
                memcpy(&dh, blk, 2); /* both formats start with the f16 scale */
                int isum = 0;
                for (int k = 0; k < 32; k++) {
                    int lv = t == DTYPE_Q8_0 ? (int8_t)blk[2 + k]
                             : k < 16        ? (blk[2 + k] & 15) - 8
                                             : (blk[2 + k - 16] >> 4) - 8;
                    isum += lv * (int8_t)xq[(size_t)m * lay.row_bytes + (size_t)b * 32 + k];
                }
                float dx;
                memcpy(&dx, xq + (size_t)m * lay.row_bytes + lay.off_d + 4 * (size_t)b, 4);
                acc = fmaf((float)isum, dx * f16_to_f32(dh), acc);
            }
            yr[(size_t)m * N + n] = acc + bias[n];
        }
    void *work = malloc(kern_matmul_work_size(M, K, t, 2) + 64);
    kern_matmul_on(KERN_MM_AMX, tp, x, M, K, K, w, t, N, bias, y, N, work);
    int bad = 0;
    for (int i = 0; i < M * N && bad < 3; i++)
        if (memcmp(&y[i], &yr[i], 4) != 0) {
            bad++;
            CHECK_MSG(0, "amx %s M=%d K=%d N=%d y[%d]=%.9g want %.9g", dtype_name(t), M, K, N, i,
                      y[i], yr[i]);
        }
    quant_amx_unregister(w);
    free(x), free(bias), free(y), free(yr), free(w), free(xq), free(work);
}

/* A repacked row reads back bitwise as the file's block dequantizes it (tied embeddings). */
static void test_amx_rows(dtype t, int N, int K) {
    uint8_t *w = make_w(t, N, K);
    uint8_t *packed = aligned_alloc(64, quant_amx_packed_bytes(t, N, K) + 64);
    quant_amx_pack(t, w, N, K, packed);
    float *a = malloc(K * sizeof(float)), *b = malloc(K * sizeof(float));
    for (int n = 0; n < N; n++) {
        quant_amx_row_to_f32(t, packed, K, n, a);
        quant_dequantize_row(t, w + (size_t)n * dtype_row_bytes(t, K), b, K);
        CHECK_MSG(memcmp(a, b, K * sizeof(float)) == 0, "%s row %d of %dx%d", dtype_name(t), n, N,
                  K);
    }
    free(w), free(packed), free(a), free(b);
}

static kern_tune_mat g_mats[4];
static void *g_w[4];

static void make_model_mats(void) {
    const int N[4] = {256, 64, 512, 256}, K[4] = {256, 256, 256, 512};
    for (int i = 0; i < 4; i++) {
        g_w[i] = make_w(DTYPE_BF16, N[i], K[i]);
        g_mats[i] = (kern_tune_mat){.w = g_w[i], .wt = DTYPE_BF16, .N = N[i], .K = K[i]};
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void test_env_and_cache(threadpool *tp) {
    kern_tune_info in;
    char dir[] = "/tmp/cllm_tune_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    setenv("XDG_CACHE_HOME", dir, 1);
    snprintf(path, sizeof path, "%s/cllm/kernels.txt", dir);
    make_model_mats();

    /* malformed settings: a clear error, nothing fixed */
    const char *bad[] = {"bf16",           "bf16=",        "bf16=avx9",
                         "nope=avx2",      "bf16=avx2/pf", "bf16=avx2/pf0",
                         "bf16=avx2/pf99", "bf16=avx2/x2", "bf16=avx2,,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kern_tune_reset();
        setenv("CLLM_TUNE", bad[i], 1);
        CHECK_MSG(kern_tune_model(tp, g_mats, 4) == CLLM_ERR_INVALID_ARG, "CLLM_TUNE=%s accepted",
                  bad[i]);
        CHECK(strstr(cllm_last_error(), "CLLM_TUNE") != NULL);
    }

    /* off: the defaults, nothing measured or written */
    kern_tune_reset();
    setenv("CLLM_TUNE", "off", 1);
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_get(DTYPE_BF16, &in);
    CHECK(in.source == KERN_TUNE_DEFAULT && in.family == kern_mm_best_path() && in.pf_tiles == 1);
    CHECK(access(path, F_OK) != 0);

    /* forced, with a prefetch distance */
    kern_tune_reset();
    setenv("CLLM_TUNE", "q4_0=avx2,bf16=avx2/pf3", 1);
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_get(DTYPE_BF16, &in);
    CHECK(in.source == KERN_TUNE_FORCED && in.family == KERN_MM_AVX2 && in.pf_tiles == 3);
    CHECK(kern_tune_family(DTYPE_BF16) == KERN_MM_AVX2 && kern_tune_pf_tiles(DTYPE_BF16) == 3);

    /* fixed for the process: a later load cannot switch the family of a dtype in use */
    setenv("CLLM_TUNE", "bf16=scalar", 1);
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    CHECK(kern_tune_family(DTYPE_BF16) == KERN_MM_AVX2);
    kern_tune_reset();
    CHECK(kern_tune_family(DTYPE_BF16) == kern_mm_best_path()); /* first use fixes the default */
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_get(DTYPE_BF16, &in);
    CHECK(in.source == KERN_TUNE_DEFAULT && in.family == kern_mm_best_path());

    /* measured (force), written to the cache, read back by the next load */
    kern_tune_reset();
    setenv("CLLM_TUNE", "force", 1);
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_info measured;
    kern_tune_get(DTYPE_BF16, &measured);
    CHECK(measured.source == KERN_TUNE_MEASURED && kern_mm_path_ok(measured.family));
    CHECK(measured.gemv_gbs > 0 && measured.gemm_gflops > 0 && measured.pf_tiles >= 1);
    CHECK_MSG(count_lines(path, " bf16 ") == 1, "cache %s: one bf16 line", path);
    kern_tune_reset();
    unsetenv("CLLM_TUNE");
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_get(DTYPE_BF16, &in);
    CHECK(in.source == KERN_TUNE_CACHED && in.family == measured.family &&
          in.pf_tiles == measured.pf_tiles);

    /* a second measurement replaces the line instead of adding one */
    kern_tune_reset();
    setenv("CLLM_TUNE", "force", 1);
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    CHECK(count_lines(path, " bf16 ") == 1);

    /* untrusted cache content: garbage, other CPUs, impossible values are ignored -> measured */
    char sig[17] = {0};
    FILE *f = fopen(path, "r");
    CHECK(f && fscanf(f, "%16s", sig) == 1);
    if (f) fclose(f);
    char text[1024];
    snprintf(text, sizeof text,
             "garbage line\n"
             "%s 2 bf16 avx9000 1 1 1\n" /* unknown family */
             "%s 2 bf16 avx512 0 1 1\n"  /* prefetch out of range */
             "%s 2 bf16 avx512 99 1 1\n"
             "0123456789abcdef 2 bf16 avx2 1 1 1\n" /* another CPU */
             "%s 2 bf16\n",                         /* truncated */
             sig, sig, sig, sig);
    write_file(path, text);
    kern_tune_reset();
    unsetenv("CLLM_TUNE");
    CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
    kern_tune_get(DTYPE_BF16, &in);
    CHECK_MSG(in.source == KERN_TUNE_MEASURED, "a malformed cache entry was used (%s)",
              kern_tune_source_name(in.source));
    CHECK(count_lines(path, "0123456789abcdef") == 1); /* other CPUs' lines are kept */

    /* a cached family this CPU cannot run (e.g. copied from another machine) is not taken */
    if (!kern_mm_path_ok(KERN_MM_AVX512BF16)) {
        snprintf(text, sizeof text, "%s %d bf16 avx512bf16 1 1 1\n", sig, tp_size(tp));
        write_file(path, text);
        kern_tune_reset();
        CHECK(kern_tune_model(tp, g_mats, 4) == CLLM_OK);
        kern_tune_get(DTYPE_BF16, &in);
        CHECK(in.family != KERN_MM_AVX512BF16);
    }
    kern_tune_reset();
    unlink(path);
    snprintf(path, sizeof path, "%s/cllm", dir);
    rmdir(path);
    rmdir(dir);
    for (int i = 0; i < 4; i++)
        free(g_w[i]);
}

int main(void) {
    threadpool *tp1 = NULL, *tp2 = NULL;
    CHECK(tp_create(1, &tp1) == CLLM_OK && tp_create(2, &tp2) == CLLM_OK);
    const dtype types[] = {DTYPE_F32, DTYPE_BF16, DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q4_K, DTYPE_Q6_K};
    for (int p = 0; p < KERN_MM_NPATHS; p++) {
        if (!kern_mm_path_ok((kern_mm_path)p)) {
            printf("family %s: not supported here, skipped\n", kern_mm_path_name(p));
            continue;
        }
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            for (int M = 1; M <= 70; M += 23) {
                int K = dtype_is_quant(types[t]) ? 512 : 200;
                test_multi((kern_mm_path)p, tp2, types[t], M, K);
                test_multi((kern_mm_path)p, tp1, types[t], M, K);
            }
        printf("family %s: fused dispatch checked\n", kern_mm_path_name(p));
    }
    if (kern_mm_path_ok(KERN_MM_AMX)) {
        const int Ms[] = {1, 5, 16, 17, 40};
        for (int i = 0; i < 5; i++) {
            test_amx_formula(tp1, DTYPE_Q8_0, Ms[i], 96, 37);
            test_amx_formula(tp2, DTYPE_Q8_0, Ms[i], 256, 50);
            test_amx_formula(tp2, DTYPE_Q4_0, Ms[i], 96, 37);
            test_amx_formula(tp1, DTYPE_Q4_0, Ms[i], 256, 50);
        }
        printf("amx: documented numerics checked\n");
    }
    test_amx_rows(DTYPE_Q8_0, 37, 96);
    test_amx_rows(DTYPE_Q4_0, 37, 256);
    test_env_and_cache(tp2);
    tp_free(tp1);
    tp_free(tp2);
    CHECK_DONE();
}
