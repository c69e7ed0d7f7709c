/* quant_dump.c - writes quantized rows, cllm's dequantization of them and cllm's quantized
 * matmul (reference path and the best SIMD path) to a file, for the independent numpy decoder
 * quant_oracle.py. Record: u32 dtype, u32 n, f32 x[n], bytes q[row_bytes], f32 y[n]; then
 * matmul records: u32 dtype | 0x100, u32 M, K, N, f32 x[M K], bytes W[N row_bytes],
 * f32 y_ref[M N], f32 y_fast[M N]. */
#include "kernels/matmul.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t rng = 7;
static float rndf(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

static void put(FILE *f, const void *p, size_t n) {
    if (fwrite(p, 1, n, f) != n) exit(1);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "wb");
    if (!f) return 1;
    for (uint32_t t = DTYPE_Q8_0; t < DTYPE_COUNT; t++) {
        uint32_t n = 256 * 8;
        float *x = malloc(n * 4), *y = malloc(n * 4);
        for (uint32_t i = 0; i < n; i++) /* blocks of different scale, some zero, some >= 0 */
            x[i] = (i / 256) == 3
                       ? 0.0f
                       : rndf() * powf(3.0f, (float)(i / 256)) * ((i / 32) % 3 ? 1 : 0.01f);
        for (uint32_t i = 1024; i < 1280; i++)
            x[i] = fabsf(x[i]);
        size_t rb = dtype_row_bytes(t, n);
        uint8_t *q = malloc(rb);
        quant_quantize_row(t, x, q, n);
        quant_dequantize_row(t, q, y, n);
        put(f, &t, 4), put(f, &n, 4), put(f, x, n * 4), put(f, q, rb), put(f, y, n * 4);
        free(x), free(y), free(q);
    }
    for (uint32_t t = DTYPE_Q8_0; t < DTYPE_COUNT; t++) {
        uint32_t M = 3, K = 768, N = 5, tag = t | 0x100;
        size_t rb = dtype_row_bytes(t, K);
        float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)K * 4);
        float *yr = malloc((size_t)M * N * 4), *yf = malloc((size_t)M * N * 4);
        uint8_t *W = malloc(rb * N);
        for (size_t i = 0; i < (size_t)M * K; i++)
            x[i] = rndf() * (1 + (i / 32) % 4);
        for (uint32_t r = 0; r < N; r++) {
            for (uint32_t k = 0; k < K; k++)
                w[k] = rndf();
            quant_quantize_row(t, w, W + rb * r, K);
        }
        void *work = malloc(kern_matmul_work_size(M, K, t, 1));
        kern_matmul_ref(x, M, K, K, W, t, N, NULL, yr, N);
        kern_matmul(NULL, x, M, K, K, W, t, N, NULL, yf, N, work);
        put(f, &tag, 4), put(f, &M, 4), put(f, &K, 4), put(f, &N, 4);
        put(f, x, (size_t)M * K * 4), put(f, W, rb * N), put(f, yr, M * N * 4),
            put(f, yf, M * N * 4);
        free(x), free(w), free(yr), free(yf), free(W), free(work);
    }
    return fclose(f) != 0;
}
