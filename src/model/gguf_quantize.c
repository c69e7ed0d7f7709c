/* gguf_quantize.c - cllm_quantize: write a GGUF file (llama.cpp's names and keys) from a Hugging
 * Face folder or another GGUF file, with matrices in the asked type and llama.cpp's choices of
 * which tensors get more bits (q4_k_m) or fall back when rows do not fit the block size. */
#include "base/error.h"
#include "kernels/quant.h"
#include "model/gguf_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Write one tensor's rows converted to its output type. */
static cllm_status write_tensor(gguf_writer *w, const gx_tensor *t, float *row, uint8_t *qrow) {
    dtype out;
    gguf_type_to_dtype(t->type, &out);
    int64_t rows = gx_rows(t);
    size_t rb = dtype_row_bytes(out, t->ne[0]);
    if (gx_copyable(t)) return gguf_writer_data(w, t->src, rb * (size_t)rows);
    cllm_status st = CLLM_OK;
    for (int64_t r = 0; r < rows && !st; r++) {
        gx_row(t, r, row);
        quant_quantize_row(out, row, qrow, t->ne[0]);
        st = gguf_writer_data(w, qrow, rb);
    }
    return st;
}

cllm_status cllm_quantize(const char *in, const char *out, const char *type,
                          const cllm_quantize_params *p, cllm_quantize_stats *stats) {
    cllm_quantize_params dp = {0};
    if (!p) p = &dp;
    if (stats) memset(stats, 0, sizeof *stats);
    if (!in || !out || !type)
        return err_set(CLLM_ERR_INVALID_ARG, "cllm_quantize: missing argument");
    const qtype *q = NULL;
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++)
        if (!strcmp(type, k_types[i].name)) q = &k_types[i];
    if (!q)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "quantize: unknown TYPE '%s' (q8_0, q4_0, q4_k_m, q6_k, bf16, f16, f32)",
                       type);
    gx_model m;
    cllm_status st = gx_open(in, &m);
    if (st) return st;
    gguf_writer *w = NULL;
    float *row = NULL;
    uint8_t *qrow = NULL;
    if ((st = gguf_writer_create(&w))) goto out;
    bool has_output = false;
    int64_t max_cols = 1;
    double total = 0, done = 0;
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
        if ((st = gguf_w_tensor(w, t->name, t->n_dims, t->ne, t->type, NULL))) goto out;
    }
    if ((st = gx_write_metadata(&m, w, q->ftype, quantized)) || (st = gguf_writer_begin(w, out)))
        goto out;
    row = malloc((size_t)max_cols * sizeof *row);
    qrow = malloc((size_t)max_cols * 4 + 512);
    if (!row || !qrow) {
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < m.n; i++) {
        if (p->progress) p->progress(p->user, total > 0 ? done / total : 0, m.t[i].name);
        if ((st = write_tensor(w, &m.t[i], row, qrow))) goto out;
        done += (double)m.t[i].ne[0] * (double)gx_rows(&m.t[i]);
    }
    if (p->progress) p->progress(p->user, 1.0, "");
    if ((st = gguf_writer_finish(w))) goto out;
    if (stats) {
        stats->n_tensors = m.n;
        size_t k = 0;
        for (int t = 0; t < GGUF_GGML_TYPE_COUNT; t++)
            if (n_q[t] && k < sizeof stats->types)
                k += (size_t)snprintf(stats->types + k, sizeof stats->types - k, "%s%d %s",
                                      k ? " " : "", n_q[t], gguf_ggml_type_name((uint32_t)t));
    }
out:
    free(row);
    free(qrow);
    gguf_writer_free(w);
    gx_close(&m);
    return st;
}
