/* test_quant_formats.c - the GGUF block formats: known answers for hand-built blocks of every
 * type (expected values worked out by hand from the format definitions, written as literals),
 * quantize -> dequantize error bounds, the plain types, and the x quantization of the quantized
 * matmul (every SIMD version must produce the scalar version's bytes).
 *
 * f16 bit patterns used below: 0x3400 = 0.25, 0x3800 = 0.5, 0x3c00 = 1, 0x4000 = 2,
 * 0xbc00 = -1. */
#include "base/cpu.h"
#include "base/half.h"
#include "check.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int idx;
    float val;
} kv;

/* Dequantize the block and compare the listed elements (exact: all are representable). */
static void expect(dtype t, const uint8_t *blk, const kv *e, int ne) {
    float y[256];
    quant_dequantize_row(t, blk, y, dtype_block_elems(t));
    for (int i = 0; i < ne; i++)
        CHECK_MSG(y[e[i].idx] == e[i].val, "%s: element %d = %g, expected %g", dtype_name(t),
                  e[i].idx, y[e[i].idx], e[i].val);
}

static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

static void test_known_answers(void) {
    uint8_t b[292];

    /* Q8_0: d = 0.5, q[j] = j - 16, q[5] = -128: y = 0.5 q */
    put16(b, 0x3800);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j - 16);
    b[2 + 5] = 0x80;
    const kv q8_0[] = {{0, -8.0f}, {5, -64.0f}, {16, 0.0f}, {17, 0.5f}, {31, 7.5f}};
    expect(DTYPE_Q8_0, b, q8_0, 5);

    /* Q4_0: d = 2, qs[j] = j | (15 - j) << 4: y[j] = 2 (j - 8), y[j + 16] = 2 (7 - j) */
    put16(b, 0x4000);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    const kv q4_0[] = {{0, -16.0f}, {8, 0.0f}, {15, 14.0f}, {16, 14.0f}, {23, 0.0f}, {31, -16.0f}};
    expect(DTYPE_Q4_0, b, q4_0, 6);

    /* Q4_1: d = 1, m = -1, qs = 0x5a: y = 10 - 1 (low nibbles), 5 - 1 (high) */
    put16(b, 0x3c00), put16(b + 2, 0xbc00);
    memset(b + 4, 0x5a, 16);
    const kv q4_1[] = {{0, 9.0f}, {15, 9.0f}, {16, 4.0f}, {31, 4.0f}};
    expect(DTYPE_Q4_1, b, q4_1, 4);

    /* Q5_0: d = 0.5, qh = bits 0 and 31, qs = 0xf0: element 0 = 0 | 16, 1..15 = 0,
     * 16..30 = 15, 31 = 15 | 16; y = 0.5 (q - 16) */
    put16(b, 0x3800);
    b[2] = 0x01, b[3] = 0, b[4] = 0, b[5] = 0x80;
    memset(b + 6, 0xf0, 16);
    const kv q5_0[] = {{0, 0.0f}, {1, -8.0f}, {15, -8.0f}, {16, -0.5f}, {30, -0.5f}, {31, 7.5f}};
    expect(DTYPE_Q5_0, b, q5_0, 6);

    /* Q5_1: d = 1, m = 0.5, qh = 0x0000ffff, qs = 0x21: elements 0..15 = 1 + 16, 16..31 = 2 */
    put16(b, 0x3c00), put16(b + 2, 0x3800);
    b[4] = 0xff, b[5] = 0xff, b[6] = 0, b[7] = 0;
    memset(b + 8, 0x21, 16);
    const kv q5_1[] = {{0, 17.5f}, {15, 17.5f}, {16, 2.5f}, {31, 2.5f}};
    expect(DTYPE_Q5_1, b, q5_1, 4);

    /* Q4_K: d = 1, dmin = 0.5; sub-block scales 1 2 3 4 33 40 50 63, mins 0 1 2 3 17 20 31 62,
     * packed by hand (j < 4: scales[j] = sc | (sc[j+4] >> 4) << 6, scales[j+4] = mn |
     * (mn[j+4] >> 4) << 6; scales[j+8] = (sc[j+4] & 15) | (mn[j+4] & 15) << 4); qs = 0x73: even
     * sub-blocks (low nibbles) q = 3, odd ones q = 7; y = sc q - 0.5 mn:
     * 3, 13.5, 8, 26.5, 90.5, 270, 134.5, 410 */
    static const uint8_t k_scales[12] = {0x81, 0x82, 0xc3, 0xc4, 0x40, 0x41,
                                         0x42, 0xc3, 0x11, 0x48, 0xf2, 0xef};
    put16(b, 0x3c00), put16(b + 2, 0x3800);
    memcpy(b + 4, k_scales, 12);
    memset(b + 16, 0x73, 128);
    const kv q4_k[] = {{0, 3.0f},    {31, 3.0f},    {32, 13.5f},   {64, 8.0f},    {96, 26.5f},
                       {128, 90.5f}, {160, 270.0f}, {192, 134.5f}, {224, 410.0f}, {255, 410.0f}};
    expect(DTYPE_Q4_K, b, q4_k, 10);

    /* Q5_K: same head and qs, qh[l] = 0xaa: odd sub-blocks get +16 (q = 23):
     * 3, 45.5, 8, 90.5, 90.5, 910, 134.5, 1418 */
    memset(b + 16, 0xaa, 32);
    memset(b + 48, 0x73, 128);
    const kv q5_k[] = {{0, 3.0f},    {32, 45.5f},   {64, 8.0f},    {96, 90.5f},
                       {128, 90.5f}, {160, 910.0f}, {192, 134.5f}, {255, 1418.0f}};
    expect(DTYPE_Q5_K, b, q5_k, 8);

    /* Q6_K: ql = 0x21 (low nibble 1, high 2), qh = 0xe4 (2-bit fields 0, 1, 2, 3), scales[g] =
     * g - 8, d = 0.25 (at byte 208). Element e: s = (e / 32) % 4 picks the nibble (s < 2: low)
     * and qh field s: q = 1, 17, 34, 50 for s = 0..3; y = 0.25 (g - 8) (q - 32), g = e / 16. */
    memset(b, 0x21, 128);
    memset(b + 128, 0xe4, 64);
    for (int g = 0; g < 16; g++)
        b[192 + g] = (uint8_t)(int8_t)(g - 8);
    put16(b + 208, 0x3400);
    const kv q6_k[] = {{0, 62.0f},  {40, 22.5f}, {70, -2.0f},  {100, -9.0f},
                       {130, 0.0f}, {200, 2.0f}, {255, 31.5f}, {15, 62.0f}};
    expect(DTYPE_Q6_K, b, q6_k, 8);

    /* Q8_K: d = 0.5 (f32), q[j] = j - 128 */
    const float d8 = 0.5f;
    memcpy(b, &d8, 4);
    for (int j = 0; j < 256; j++)
        b[4 + j] = (uint8_t)(int8_t)(j - 128);
    const kv q8_k[] = {{0, -64.0f}, {128, 0.0f}, {255, 63.5f}};
    expect(DTYPE_Q8_K, b, q8_k, 3);
}

/* quantize: the stored layout of a few hand-checkable inputs. */
static void test_quantize_layout(void) {
    float x[256];
    uint8_t b[292];
    /* Q8_0 of x[j] = j - 16 (amax 16): d = 16/127, q = round(127 (j - 16) / 16) */
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    quant_quantize_row(DTYPE_Q8_0, x, b, 32);
    uint16_t d;
    memcpy(&d, b, 2);
    CHECK(d == f32_to_f16(16.0f / 127.0f));
    CHECK((int8_t)b[2] == -127 && (int8_t)b[2 + 16] == 0 && (int8_t)b[2 + 20] == 32); /* 31.75 */
    /* Q4_0 of the same: max = -16 -> d = 2, levels trunc(x / 2 + 8.5) clamped to 15 */
    quant_quantize_row(DTYPE_Q4_0, x, b, 32);
    memcpy(&d, b, 2);
    CHECK(d == 0x4000);
    CHECK(b[2] == (0 | 8 << 4));       /* x[0] = -16 -> trunc(0.5) = 0, x[16] = 0 -> 8 */
    CHECK(b[2 + 15] == (8 | 15 << 4)); /* x[15] = -1 -> trunc(8) = 8, x[31] = 15 -> 16 -> 15 */
}

/* RMS error / RMS of x after a round trip, for smooth random data. */
static double roundtrip_rel_rms(dtype t, const float *x, int n, double *max_abs_per_block) {
    uint8_t *q = malloc(dtype_row_bytes(t, n));
    float *y = malloc((size_t)n * sizeof(float));
    quant_quantize_row(t, x, q, n);
    quant_dequantize_row(t, q, y, n);
    double e2 = 0, x2 = 0, worst = 0;
    const int bl = dtype_block_elems(t);
    for (int b = 0; b < n / bl; b++) {
        double amax = 0, emax = 0;
        for (int i = b * bl; i < b * bl + bl; i++) {
            e2 += (double)(y[i] - x[i]) * (y[i] - x[i]);
            x2 += (double)x[i] * x[i];
            amax = fmax(amax, fabs(x[i]));
            emax = fmax(emax, fabs(y[i] - x[i]));
        }
        if (amax > 0) worst = fmax(worst, emax / amax);
    }
    *max_abs_per_block = worst;
    free(q), free(y);
    return sqrt(e2 / x2);
}

static void test_roundtrip(void) {
    enum { N = 256 * 64 };
    static float x[N];
    uint64_t s = 42;
    for (int i = 0; i < N; i++) { /* roughly gaussian: sum of 4 uniforms, varying scale */
        double g = 0;
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            g += (double)(s >> 11) / 9007199254740992.0 - 0.5;
        }
        x[i] = (float)(g * (1 + (i / 256) % 5));
    }
    /* bound on RMS error relative to RMS(x) (measured values are about 2/3 of these), and on
     * the largest error in a block relative to its max |x|: half a step, plus the f16 rounding
     * of the scale (2^-11 relative) times the largest level, for the 8-bit/symmetric types;
     * a full step where the top level is clamped (Q4_0 / Q5_0: +8 / +16 has no level). */
    static const struct {
        dtype t;
        double rms, blockmax;
    } cases[] = {
        {DTYPE_Q8_0, 0.0075, 0.5 / 127 + 127.0 / 127 / 2048 + 1e-6},
        {DTYPE_Q8_K, 0.009, 0.5 / 127 + 1e-6},
        {DTYPE_Q4_0, 0.12, 1.0 / 8 + 8.0 / 8 / 2048 + 1e-6},
        {DTYPE_Q5_0, 0.06, 1.0 / 16 + 16.0 / 16 / 2048 + 1e-6},
        {DTYPE_Q4_1, 0.11, 1.0 / 15 + 0.005}, /* half a step of 2 max|x| / 15 */
        {DTYPE_Q5_1, 0.054, 1.0 / 31 + 0.003},
        {DTYPE_Q4_K, 0.10, 0.16}, /* no simple bound (6-bit scales): about 2x measured */
        {DTYPE_Q5_K, 0.05, 0.09},
        {DTYPE_Q6_K, 0.025, 0.035},
        {DTYPE_F16, 0.001, 1.0},
        {DTYPE_BF16, 0.005, 1.0},
    };
    double r[DTYPE_COUNT] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        double bm;
        r[cases[c].t] = roundtrip_rel_rms(cases[c].t, x, N, &bm);
        printf("round trip %-5s rel. RMS error %.5f, worst block max error / max|x| %.5f\n",
               dtype_name(cases[c].t), r[cases[c].t], bm);
        CHECK_MSG(r[cases[c].t] <= cases[c].rms, "%s: %g", dtype_name(cases[c].t), r[cases[c].t]);
        CHECK_MSG(bm <= cases[c].blockmax, "%s: block max %g", dtype_name(cases[c].t), bm);
    }
    /* The K-quants' scale search must beat the plain formats of the same bits. */
    CHECK(r[DTYPE_Q4_K] < r[DTYPE_Q4_0]);
    CHECK(r[DTYPE_Q5_K] < r[DTYPE_Q5_0]);
    CHECK(r[DTYPE_Q6_K] < r[DTYPE_Q5_K]);
    /* f32 is a copy; all-zero input gives all-zero output for every type */
    float z[256] = {0}, y[256];
    uint8_t q[1024];
    for (int t = 0; t < DTYPE_COUNT; t++) {
        quant_quantize_row(t, z, q, 256);
        for (int i = 0; i < 256; i++)
            y[i] = 1.0f;
        quant_dequantize_row(t, q, y, 256);
        for (int i = 0; i < 256; i++)
            CHECK_MSG(y[i] == 0.0f, "%s zero block", dtype_name(t));
    }
    quant_quantize_row(DTYPE_F32, x, q, 256);
    CHECK(memcmp(q, x, 1024) == 0);
}

/* The x quantization of every SIMD path gives the scalar bytes. */
static void test_prep(void) {
    static const int ks[] = {32, 96, 256, 896, 4864};
    for (int t = DTYPE_Q8_0; t <= DTYPE_Q6_K; t++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            const int K = ks[ki], M = 3;
            if (K % dtype_block_elems(t)) continue;
            float *x = malloc((size_t)M * K * sizeof(float));
            for (int i = 0; i < M * K; i++) /* includes ties x / d = n + 0.5 and zero blocks */
                x[i] = (i / 32) % 4 == 1 ? 0.0f : (float)((i * 7919) % 255 - 127) * 0.5f;
            quant_mm_args a = {.lay = quant_mm_layout_of(t, K), .M = M, .K = K, .wt = t};
            size_t bytes = (size_t)M * a.lay.row_bytes;
            uint8_t *ref = aligned_alloc(64, bytes), *got = aligned_alloc(64, bytes);
            memset(ref, 0xcd, bytes);
            a.xq = ref;
            quant_mm_prep_rows(&a, x, K, 0, M);
            const cpu_features *f = cpu_get();
            for (int p = 1; p <= 2; p++) {
                if (p == 1 && !f->avx2) continue;
                if (p == 2 && !(f->avx512bw && f->avx512vnni)) continue;
                memset(got, 0xcd, bytes);
                a.xq = got;
                if (p == 1)
                    quant_mm_prep_rows_avx2(&a, x, K, 0, M);
                else
                    quant_mm_prep_rows_avx512(&a, x, K, 0, M);
                /* compare the meaningful bytes: values, scales, sums, corrections */
                int same = 1;
                for (int m = 0; m < M; m++) {
                    const uint8_t *r = ref + m * a.lay.row_bytes, *g = got + m * a.lay.row_bytes;
                    size_t nbp = (size_t)a.lay.nbp;
                    same &= !memcmp(r, g, nbp * a.lay.bl);
                    same &= !memcmp(r + a.lay.off_d, g + a.lay.off_d, nbp * 4);
                    same &= !memcmp(r + a.lay.off_aux, g + a.lay.off_aux,
                                    a.lay.bl == 256 ? nbp * 32 : nbp * 4);
                    if (quant_mm_corr_mult(t))
                        same &= !memcmp(r + a.lay.off_corr, g + a.lay.off_corr, nbp * 32);
                }
                CHECK_MSG(same, "prep %s K=%d: path %d differs from scalar", dtype_name(t), K, p);
            }
            free(x), free(ref), free(got);
        }
}

int main(void) {
    test_known_answers();
    test_quantize_layout();
    test_roundtrip();
    test_prep();
    CHECK_DONE();
}
