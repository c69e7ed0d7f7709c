/* quantize.c - `cllm quantize IN OUT TYPE`: write a GGUF file (llama.cpp's names and keys) from a
 * Hugging Face folder or another GGUF file, with matrices in TYPE and llama.cpp's choices of
 * which tensors get more bits (q4_k_m) or fall back when rows do not fit the block size. */
#include "cli/cli.h"

#include "kernels/quant.h"
#include "model/gguf_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_quantize_help =
    "usage: cllm quantize IN OUT TYPE\n"
    "\n"
    "IN is a Hugging Face model folder or a GGUF file, OUT the GGUF file to write, TYPE one of\n"
    "  f32 f16 bf16      every matrix in that type\n"
    "  q8_0 q4_0 q6_k    every matrix in that block type (q4_0: output.weight in q6_k)\n"
    "  q4_k_m            q4_k, with q6_k for output.weight and for attn_v / ffn_down of some\n"
    "                    layers (llama.cpp's Q4_K_M recipe)\n"
    "Norms and biases stay f32. Matrices whose rows are not a multiple of the block size fall\n"
    "back to another type (q4_k -> q5_0, q6_k -> q8_0, else f16), as llama.cpp does.\n"
    "The file loads in llama.cpp and in cllm (cllm run -m OUT).\n";

typedef struct qtype {
    const char *name;
    uint32_t base;  /* ggml type of most matrices */
    uint32_t ftype; /* llama.cpp's LLAMA_FTYPE */
} qtype;

enum {
    G_F32 = 0,
    G_F16 = 1,
    G_Q4_0 = 2,
    G_Q5_0 = 6,
    G_Q5_1 = 7,
    G_Q8_0 = 8,
    G_Q4_K = 12,
    G_Q5_K = 13,
    G_Q6_K = 14,
    G_BF16 = 30
};

static const qtype k_types[] = {{"f32", G_F32, 0},   {"f16", G_F16, 1},   {"bf16", G_BF16, 32},
                                {"q8_0", G_Q8_0, 7}, {"q4_0", G_Q4_0, 2}, {"q4_k_m", G_Q4_K, 15},
                                {"q6_k", G_Q6_K, 18}};

static bool plain(uint32_t t) {
    return t == G_F32 || t == G_F16 || t == G_BF16;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int blck(uint32_t t) {
    int b;
    size_t bytes;
    return gguf_ggml_type_size(t, &b, &bytes) ? b : 1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third between */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t pick(const qtype *q, const gx_tensor *t, bool has_output, int n_layers,
                     int *i_attn_v) {
    if (t->n_dims < 2 || !ends_with(t->name, ".weight") || ends_with(t->name, "_norm.weight") ||
        !strcmp(t->name, "rope_freqs.weight"))
        return G_F32;
    if (plain(q->base)) return q->base;
    if (!strcmp(t->name, "position_embd.weight")) return G_F32;
    uint32_t ty = q->base;
    bool output =
        !strcmp(t->name, "output.weight") || (!has_output && !strcmp(t->name, "token_embd.weight"));
    if (output) {
        if (t->ne[0] % 256)
            ty = G_Q8_0;
        else if (ty != G_Q8_0)
            ty = G_Q6_K;
    } else if (q->ftype == 15) { /* q4_k_m */
        if (ends_with(t->name, "attn_v.weight")) {
            if (more_bits((*i_attn_v)++, n_layers)) ty = G_Q6_K;
        } else if (ends_with(t->name, "ffn_down.weight")) {
            if (t->layer >= 0 && more_bits(t->layer, n_layers)) ty = G_Q6_K;
        } else if (ends_with(t->name, "attn_qkv.weight")) {
            ty = G_Q5_K;
        }
    }
    if (t->ne[0] % blck(ty)) {
        ty = ty == G_Q4_K ? G_Q5_0 : ty == G_Q5_K ? G_Q5_1 : ty == G_Q6_K ? G_Q8_0 : G_F16;
        if (t->ne[0] % blck(ty)) ty = G_F16;
    }
    return ty;
}

static void progress(double done, double total, const char *name) {
    int pct = total > 0 ? (int)(100.0 * done / total) : 100, bar = pct * 30 / 100;
    fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", bar, "==============================", 30 - bar,
            "", pct, name);
}

/* Write one tensor's rows converted to its output type. */
static bool write_tensor(gguf_writer *w, const gx_tensor *t, float *row, uint8_t *qrow) {
    dtype out;
    gguf_type_to_dtype(t->type, &out);
    int64_t rows = gx_rows(t);
    if (gx_copyable(t)) {
        size_t rb = dtype_row_bytes(out, t->ne[0]);
        return gguf_writer_data(w, t->src, rb * (size_t)rows) == CLLM_OK;
    }
    size_t rb = dtype_row_bytes(out, t->ne[0]);
    for (int64_t r = 0; r < rows; r++) {
        gx_row(t, r, row);
        quant_quantize_row(out, row, qrow, t->ne[0]);
        if (gguf_writer_data(w, qrow, rb)) return false;
    }
    return true;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(k_quantize_help, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return cli_fail("quantize: unknown option '%s'", argv[i]);
        if (np == 3) return cli_fail("quantize: too many arguments (see cllm quantize --help)");
        pos[np++] = argv[i];
    }
    if (np != 3) return cli_fail("quantize: usage: cllm quantize IN OUT TYPE");
    const qtype *q = NULL;
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++)
        if (!strcmp(pos[2], k_types[i].name)) q = &k_types[i];
    if (!q)
        return cli_fail("quantize: unknown TYPE '%s' (q8_0, q4_0, q4_k_m, q6_k, bf16, f16, f32)",
                        pos[2]);
    gx_model m;
    if (gx_open(pos[0], &m)) return cli_fail("%s", cllm_last_error());
    gguf_writer *w = NULL;
    float *row = NULL;
    uint8_t *qrow = NULL;
    int rc = 1;
    if (gguf_writer_create(&w)) goto fail;
    bool has_output = false;
    int64_t max_cols = 1;
    double total = 0, done_el = 0;
    for (int i = 0; i < m.n; i++) {
        has_output |= !strcmp(m.t[i].name, "output.weight");
        if (m.t[i].ne[0] > max_cols) max_cols = m.t[i].ne[0];
        total += (double)m.t[i].ne[0] * (double)gx_rows(&m.t[i]);
    }
    int i_attn_v = 0, n_q[GGUF_GGML_TYPE_COUNT] = {0};
    bool quantized = false;
    for (int i = 0; i < m.n; i++) {
        gx_tensor *t = &m.t[i];
        t->type = pick(q, t, has_output, m.cfg.n_layers, &i_attn_v);
        quantized |= !plain(t->type);
        n_q[t->type]++;
        if (gguf_w_tensor(w, t->name, t->n_dims, t->ne, t->type, NULL)) goto fail;
    }
    if (gx_write_metadata(&m, w, q->ftype, quantized) || gguf_writer_begin(w, pos[1])) goto fail;
    row = malloc((size_t)max_cols * sizeof *row);
    qrow = malloc((size_t)max_cols * 4 + 512);
    if (!row || !qrow) {
        cli_fail("out of memory");
        goto out;
    }
    for (int i = 0; i < m.n; i++) {
        progress(done_el, total, m.t[i].name);
        if (!write_tensor(w, &m.t[i], row, qrow)) goto fail;
        done_el += (double)m.t[i].ne[0] * (double)gx_rows(&m.t[i]);
    }
    progress(total, total, "");
    fputc('\n', stderr);
    if (gguf_writer_finish(w)) goto fail;
    fprintf(stderr, "wrote %s (%s): %d tensors:", pos[1], q->name, m.n);
    for (int t = 0; t < GGUF_GGML_TYPE_COUNT; t++)
        if (n_q[t]) fprintf(stderr, " %d %s", n_q[t], gguf_ggml_type_name((uint32_t)t));
    fputc('\n', stderr);
    rc = 0;
    goto out;
fail:
    cli_fail("%s", cllm_last_error());
out:
    free(row);
    free(qrow);
    gguf_writer_free(w);
    gx_close(&m);
    return rc;
}
