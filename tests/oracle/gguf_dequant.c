/* gguf_dequant.c - cllm's dequantization of one tensor of a GGUF file, for test_llamacpp.py.
 *   gguf_dequant FILE.gguf TENSOR_NAME OUT.f32
 * Writes the tensor as raw little-endian float32, row-major, in the file's row order (ne[0] is
 * the row length), dequantized row by row with quant_dequantize_row. Exit 1 on any error. */
#include "io/gguf.h"
#include "kernels/quant.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ggml type id -> cllm dtype, -1 if not a type cllm reads */
static int dtype_of_ggml(uint32_t t) {
    switch (t) {
    case 0:
        return DTYPE_F32;
    case 1:
        return DTYPE_F16;
    case 2:
        return DTYPE_Q4_0;
    case 3:
        return DTYPE_Q4_1;
    case 6:
        return DTYPE_Q5_0;
    case 7:
        return DTYPE_Q5_1;
    case 8:
        return DTYPE_Q8_0;
    case 12:
        return DTYPE_Q4_K;
    case 13:
        return DTYPE_Q5_K;
    case 14:
        return DTYPE_Q6_K;
    case 30:
        return DTYPE_BF16;
    default:
        return -1;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: gguf_dequant FILE.gguf TENSOR OUT.f32\n");
        return 2;
    }
    gguf_file *f;
    if (gguf_open(argv[1], &f)) {
        fprintf(stderr, "gguf_dequant: %s\n", cllm_last_error());
        return 1;
    }
    const gguf_tensor *t = gguf_find_tensor(f, argv[2]);
    int dt = t ? dtype_of_ggml(t->type) : -1;
    if (dt < 0) {
        fprintf(stderr, "gguf_dequant: no tensor %s of a known type\n", argv[2]);
        gguf_close(f);
        return 1;
    }
    int64_t cols = t->ne[0], rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        rows *= t->ne[d];
    size_t rb = dtype_row_bytes((dtype)dt, cols);
    float *row = malloc((size_t)cols * sizeof *row);
    FILE *out = fopen(argv[3], "wb");
    int ok = row && out && (uint64_t)rows * rb <= t->nbytes;
    for (int64_t r = 0; ok && r < rows; r++) {
        quant_dequantize_row((dtype)dt, t->data + (size_t)r * rb, row, cols);
        ok = fwrite(row, sizeof *row, (size_t)cols, out) == (size_t)cols;
    }
    if (out && fclose(out)) ok = 0;
    free(row);
    gguf_close(f);
    if (!ok) fprintf(stderr, "gguf_dequant: failed writing %s\n", argv[3]);
    return ok ? 0 : 1;
}
