/* gguf_export.c - map a Hugging Face folder's tensors and config.json to llama.cpp's GGUF names
 * and keys (as its convert_hf_to_gguf.py does), or take a GGUF file's tensors as they are. */
#include "model/gguf_export.h"

#include "base/error.h"
#include "base/half.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cllm_status add(gx_model *m, const char *name, const tensor *src, int transpose,
                       int perm_heads, int layer) {
    gx_tensor *t = &m->t[m->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->src = src->data;
    t->src_type = gguf_dtype_to_type((dtype)src->dt);
    t->transpose = transpose;
    t->perm_heads = perm_heads;
    t->layer = layer;
    t->n_dims = src->ndim;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (int d = 0; d < src->ndim; d++) /* ggml order: innermost first */
        t->ne[d] = src->shape[src->ndim - 1 - d];
    if (transpose) {
        int64_t x = t->ne[0];
        t->ne[0] = t->ne[1];
        t->ne[1] = x;
    }
    if (!st_dtype_is_float(src->dt) || src->ndim < 1 || src->ndim > 2)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: tensor '%s': %s [%d dims] cannot be exported",
                       src->file, src->name, st_dtype_name(src->dt), src->ndim);
    return CLLM_OK;
}

/* The first of prefix+name found, for prefixes "model.", "transformer.", "". */
static const tensor *find(const gx_model *m, const char *name) {
    static const char *const pre[] = {"model.", "transformer.", ""};
    char full[160];
    for (int i = 0; i < 3; i++) {
        snprintf(full, sizeof full, "%s%s", pre[i], name);
        const tensor *t = st_find(&m->st, full);
        if (t) return t;
    }
    return NULL;
}

typedef struct map {
    const char *hf, *gg;
    int kind; /* 0 plain, 1 transpose, 2 permute by n_heads, 3 permute by n_kv_heads */
    int optional;
} map;

static const map llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0, 0},
    {"self_attn.q_proj.weight", "attn_q.weight", 2, 0},
    {"self_attn.q_proj.bias", "attn_q.bias", 2, 1},
    {"self_attn.k_proj.weight", "attn_k.weight", 3, 0},
    {"self_attn.k_proj.bias", "attn_k.bias", 3, 1},
    {"self_attn.v_proj.weight", "attn_v.weight", 0, 0},
    {"self_attn.v_proj.bias", "attn_v.bias", 0, 1},
    {"self_attn.o_proj.weight", "attn_output.weight", 0, 0},
    {"self_attn.o_proj.bias", "attn_output.bias", 0, 1},
    {"post_attention_layernorm.weight", "ffn_norm.weight", 0, 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0, 0},
    {"mlp.gate_proj.bias", "ffn_gate.bias", 0, 1},
    {"mlp.up_proj.weight", "ffn_up.weight", 0, 0},
    {"mlp.up_proj.bias", "ffn_up.bias", 0, 1},
    {"mlp.down_proj.weight", "ffn_down.weight", 0, 0},
    {"mlp.down_proj.bias", "ffn_down.bias", 0, 1},
};

static const map gpt2_layer[] = {
    {"ln_1.weight", "attn_norm.weight", 0, 0},
    {"ln_1.bias", "attn_norm.bias", 0, 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 1, 0},
    {"attn.c_attn.bias", "attn_qkv.bias", 0, 0},
    {"attn.c_proj.weight", "attn_output.weight", 1, 0},
    {"attn.c_proj.bias", "attn_output.bias", 0, 0},
    {"ln_2.weight", "ffn_norm.weight", 0, 0},
    {"ln_2.bias", "ffn_norm.bias", 0, 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 1, 0},
    {"mlp.c_fc.bias", "ffn_up.bias", 0, 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 1, 0},
    {"mlp.c_proj.bias", "ffn_down.bias", 0, 0},
};

static cllm_status add_hf(gx_model *m, const char *hf, const char *gg, int kind, int optional,
                          int layer) {
    const tensor *t = find(m, hf);
    if (!t) {
        if (optional) return CLLM_OK;
        return err_set(CLLM_ERR_FORMAT, "%s: missing tensor '%s'", m->path, hf);
    }
    const model_config *c = &m->cfg;
    bool llama = !strcmp(m->arch, "llama");
    int perm = !llama ? 0 : kind == 2 ? c->n_heads : kind == 3 ? c->n_kv_heads : 0;
    return add(m, gg, t, kind == 1, perm, layer);
}

/* Llama-3 RoPE scaling as llama.cpp stores it: per-pair divisors of the frequencies. */
static cllm_status llama3_factors(gx_model *m) {
    const model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->rope_freqs = malloc(sizeof(float) * (size_t)half);
    if (!m->rope_freqs) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
        double wl = 2.0 * M_PI / f, lo_wl = c->rope_orig_ctx / c->rope_low_freq,
               hi_wl = c->rope_orig_ctx / c->rope_high_freq, r = 1.0;
        if (wl > lo_wl) {
            r = c->rope_factor;
        } else if (wl >= hi_wl) {
            double s =
                (c->rope_orig_ctx / wl - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            r = 1.0 / ((1.0 - s) / c->rope_factor + s);
        }
        m->rope_freqs[i] = (float)r;
    }
    gx_tensor *t = &m->t[m->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "rope_freqs.weight");
    t->n_dims = 1;
    t->ne[0] = half;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    t->src = m->rope_freqs;
    t->src_type = 0;
    t->layer = -1;
    return CLLM_OK;
}

static cllm_status open_hf(gx_model *m) {
    model_config *c = &m->cfg;
    cllm_status s;
    if ((s = model_config_load(m->path, c)) || (s = st_open_dir(m->path, &m->st))) return s;
    m->arch = c->arch == ARCH_GPT2 ? "gpt2" : c->arch == ARCH_QWEN2 ? "qwen2" : "llama";
    m->t = calloc((size_t)c->n_layers * 16 + 8, sizeof *m->t);
    if (!m->t) return err_set(CLLM_ERR_NOMEM, "out of memory");
    char hf[160], gg[96];
    if (c->arch == ARCH_GPT2) {
        if ((s = add_hf(m, "wte.weight", "token_embd.weight", 0, 0, -1)) ||
            (s = add_hf(m, "wpe.weight", "position_embd.weight", 0, 0, -1)))
            return s;
    } else if (c->rope_scaling == ROPE_SCALING_LLAMA3 && (s = llama3_factors(m))) {
        return s;
    }
    if (c->arch != ARCH_GPT2 &&
        (s = add_hf(m, "embed_tokens.weight", "token_embd.weight", 0, 0, -1)))
        return s;
    const map *lm = c->arch == ARCH_GPT2 ? gpt2_layer : llama_layer;
    int nm = c->arch == ARCH_GPT2 ? (int)(sizeof gpt2_layer / sizeof *lm)
                                  : (int)(sizeof llama_layer / sizeof *lm);
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < nm; i++) {
            snprintf(hf, sizeof hf, "%s.%d.%s", c->arch == ARCH_GPT2 ? "h" : "layers", l, lm[i].hf);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, lm[i].gg);
            if ((s = add_hf(m, hf, gg, lm[i].kind, lm[i].optional, l))) return s;
        }
    if (c->arch == ARCH_GPT2) {
        if ((s = add_hf(m, "ln_f.weight", "output_norm.weight", 0, 0, -1)) ||
            (s = add_hf(m, "ln_f.bias", "output_norm.bias", 0, 0, -1)))
            return s;
        /* llama.cpp's converter writes GPT-2's tied output as a copy of the embedding */
        const tensor *out = st_find(&m->st, "lm_head.weight");
        return add(m, "output.weight", out ? out : find(m, "wte.weight"), 0, 0, -1);
    }
    if ((s = add_hf(m, "norm.weight", "output_norm.weight", 0, 0, -1))) return s;
    const tensor *out = st_find(&m->st, "lm_head.weight");
    return out ? add(m, "output.weight", out, 0, 0, -1) : CLLM_OK;
}

static cllm_status open_gguf(gx_model *m) {
    cllm_status s;
    if ((s = gguf_open(m->path, &m->gg)) || (s = model_config_load_gguf(m->gg, &m->cfg))) return s;
    m->arch = m->cfg.arch_name;
    size_t n = (size_t)gguf_n_tensors(m->gg);
    m->t = calloc(n ? n : 1, sizeof *m->t);
    if (!m->t) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const gguf_tensor *g = gguf_tensor_at(m->gg, i);
        gx_tensor *t = &m->t[m->n++];
        dtype dt;
        if (!gguf_type_to_dtype(g->type, &dt))
            return err_set(CLLM_ERR_UNSUPPORTED, "%s: tensor '%s': ggml type %s not supported",
                           m->path, g->name, gguf_ggml_type_name(g->type));
        memcpy(t->name, g->name, sizeof t->name);
        t->n_dims = (int)g->n_dims;
        memcpy(t->ne, g->ne, sizeof t->ne);
        t->src = g->data;
        t->src_type = g->type;
        t->layer = -1;
        sscanf(t->name, "blk.%d.", &t->layer);
    }
    return CLLM_OK;
}

cllm_status gx_open(const char *path, gx_model *m) {
    memset(m, 0, sizeof *m);
    m->path = path;
    m->from_gguf = gguf_is_file(path);
    cllm_status s = m->from_gguf ? open_gguf(m) : open_hf(m);
    if (s) gx_close(m);
    return s;
}

void gx_close(gx_model *m) {
    st_close(&m->st);
    gguf_close(m->gg);
    free(m->t);
    free(m->rope_freqs);
    memset(m, 0, sizeof *m);
}

int64_t gx_rows(const gx_tensor *t) {
    return t->ne[1] * t->ne[2] * t->ne[3];
}

bool gx_copyable(const gx_tensor *t) {
    return t->src_type == t->type && !t->transpose && !t->perm_heads;
}

static float elem(const void *src, uint32_t type, size_t i) {
    uint16_t h;
    float f;
    if (type == 0) {
        memcpy(&f, (const uint8_t *)src + 4 * i, 4);
        return f;
    }
    memcpy(&h, (const uint8_t *)src + 2 * i, 2);
    return type == 1 ? f16_to_f32(h) : bf16_to_f32(h);
}

/* Source row of output row r when rows are permuted: llama.cpp's converter maps HF row
 * h*hd + j*hd/2 + i (j = 0, 1) to h*hd + 2i + j. */
static int64_t perm_src(int64_t r, int64_t total, int heads) {
    int64_t hd = total / heads, h = r / hd, rem = r % hd;
    return h * hd + (rem % 2) * (hd / 2) + rem / 2;
}

void gx_row(const gx_tensor *t, int64_t r, float *out) {
    int64_t cols = t->ne[0], rows = gx_rows(t);
    dtype dt = DTYPE_F32;
    gguf_type_to_dtype(t->src_type, &dt);
    if (t->transpose) {
        for (int64_t k = 0; k < cols; k++)
            out[k] = elem(t->src, t->src_type, (size_t)(k * rows + r));
    } else if (t->perm_heads && t->n_dims == 1) {
        for (int64_t i = 0; i < cols; i++)
            out[i] = elem(t->src, t->src_type, (size_t)perm_src(i, cols, t->perm_heads));
    } else {
        int64_t sr = t->perm_heads ? perm_src(r, rows, t->perm_heads) : r;
        quant_dequantize_row(dt, (const uint8_t *)t->src + dtype_row_bytes(dt, cols) * (size_t)sr,
                             out, cols);
    }
}

static void key(char *k, size_t n, const char *arch, const char *name) {
    snprintf(k, n, "%s.%s", arch, name);
}

cllm_status gx_write_metadata(const gx_model *m, gguf_writer *w, uint32_t file_type,
                              bool quantized) {
    if (m->from_gguf) {
        for (size_t i = 0; i < gguf_n_kv(m->gg); i++) {
            gguf_str k = gguf_key_at(m->gg, i);
            static const char *const skip[] = {"general.file_type", "general.alignment",
                                               "general.quantization_version"};
            bool drop = false;
            for (int j = 0; j < 3; j++)
                drop |= k.len == strlen(skip[j]) && !memcmp(k.p, skip[j], k.len);
            if (drop) continue;
            const uint8_t *p;
            size_t len;
            gguf_kv_raw(m->gg, i, &p, &len);
            gguf_w_raw_kv(w, p, len);
        }
        gguf_w_u32(w, "general.file_type", file_type);
        if (quantized) gguf_w_u32(w, "general.quantization_version", 2);
        return CLLM_OK;
    }
    const model_config *c = &m->cfg;
    const char *a = m->arch;
    char k[128];
    const char *base = strrchr(m->path, '/');
    base = base && base[1] ? base + 1 : m->path;
    gguf_w_str(w, "general.architecture", a, strlen(a));
    gguf_w_str(w, "general.name", base, strlen(base));
    gguf_w_u32(w, "general.file_type", file_type);
    if (quantized) gguf_w_u32(w, "general.quantization_version", 2);
    key(k, sizeof k, a, "context_length"), gguf_w_u32(w, k, (uint32_t)c->max_ctx);
    key(k, sizeof k, a, "embedding_length"), gguf_w_u32(w, k, (uint32_t)c->hidden);
    key(k, sizeof k, a, "feed_forward_length"), gguf_w_u32(w, k, (uint32_t)c->intermediate);
    key(k, sizeof k, a, "block_count"), gguf_w_u32(w, k, (uint32_t)c->n_layers);
    key(k, sizeof k, a, "attention.head_count"), gguf_w_u32(w, k, (uint32_t)c->n_heads);
    if (c->arch == ARCH_GPT2) {
        key(k, sizeof k, a, "attention.layer_norm_epsilon"), gguf_w_f32(w, k, c->norm_eps);
    } else {
        key(k, sizeof k, a, "attention.head_count_kv"), gguf_w_u32(w, k, (uint32_t)c->n_kv_heads);
        key(k, sizeof k, a, "rope.freq_base"), gguf_w_f32(w, k, (float)c->rope_theta);
        key(k, sizeof k, a, "attention.layer_norm_rms_epsilon"), gguf_w_f32(w, k, c->norm_eps);
        key(k, sizeof k, a, "rope.dimension_count"), gguf_w_u32(w, k, (uint32_t)c->head_dim);
        if (c->head_dim * c->n_heads != c->hidden) {
            key(k, sizeof k, a, "attention.key_length"), gguf_w_u32(w, k, (uint32_t)c->head_dim);
            key(k, sizeof k, a, "attention.value_length"), gguf_w_u32(w, k, (uint32_t)c->head_dim);
        }
        if (c->rope_scaling == ROPE_SCALING_LINEAR) {
            key(k, sizeof k, a, "rope.scaling.type"), gguf_w_str(w, k, "linear", 6);
            key(k, sizeof k, a, "rope.scaling.factor"), gguf_w_f32(w, k, (float)c->rope_factor);
        }
    }
    key(k, sizeof k, a, "vocab_size"), gguf_w_u32(w, k, (uint32_t)c->vocab);
    cllm_status s = gx_write_vocab_hf(m->path, c, w);
    if (s == CLLM_ERR_NOT_FOUND) /* no tokenizer.json: llama.cpp's marker for "no vocabulary" */
        gguf_w_str(w, "tokenizer.ggml.model", "no_vocab", 8);
    return s == CLLM_ERR_NOT_FOUND ? CLLM_OK : s;
}
