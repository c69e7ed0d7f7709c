/* weights.c - look up every tensor an architecture needs, check dtype and shape, and bind views.
 * Matrices stay in the mapped file in their stored dtype; only norm/bias vectors (tiny) are
 * converted to f32, and GPT-2's Conv1D matrices (stored [in][out]) are repacked once. */
#include "model/weights.h"

#include "base/error.h"
#include "base/half.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    const st_set *st;
    model_weights *w;
    const char *prefix; /* "model." / "transformer." / "" */
    int seen_dt[3];
} binder;

void *model_weights_own(model_weights *w, size_t bytes) {
    void **no = realloc(w->owned, (size_t)(w->n_owned + 1) * sizeof(void *));
    if (!no) return NULL;
    w->owned = no;
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p) w->owned[w->n_owned++] = p;
    return p;
}

static cllm_status find(binder *b, const char *name, int optional, const tensor **out) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    *out = st_find(b->st, full);
    if (*out || optional) return CLLM_OK;
    const char *file = b->st->n_files ? b->st->files[0].path : "model.safetensors";
    return err_set(CLLM_ERR_FORMAT, "%s: missing tensor '%s'", file, full);
}

static cllm_status check(binder *b, const tensor *t, int ndim, int64_t d0, int64_t d1) {
    if (!st_dtype_is_float(t->dt))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: tensor '%s': dtype %s not supported (F32, F16, BF16)", t->file, t->name,
                       st_dtype_name(t->dt));
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim > 1 && t->shape[1] != d1)) {
        char got[64] = "", want[64];
        for (int i = 0; i < t->ndim && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        if (ndim == 1)
            snprintf(want, sizeof want, "%lld", (long long)d0);
        else
            snprintf(want, sizeof want, "%lld,%lld", (long long)d0, (long long)d1);
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': shape [%s], expected [%s]", t->file,
                       t->name, got, want);
    }
    b->seen_dt[t->dt]++;
    b->w->n_params += t->nelem;
    b->w->n_bytes += (int64_t)t->nbytes;
    return CLLM_OK;
}

/* A [rows][cols] matrix used in place (copied only if the file leaves it misaligned). */
static cllm_status get_mat(binder *b, const char *name, int rows, int cols, wmat *m) {
    const tensor *t;
    cllm_status s = find(b, name, 0, &t);
    if (s || (s = check(b, t, 2, rows, cols))) return s;
    m->dt = (dtype)t->dt;
    m->rows = rows;
    m->cols = cols;
    m->data = t->data;
    if ((uintptr_t)t->data % dtype_size(m->dt)) {
        void *p = model_weights_own(b->w, t->nbytes);
        if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory copying '%s'", t->name);
        memcpy(p, t->data, t->nbytes);
        m->data = p;
    }
    return CLLM_OK;
}

/* GPT-2 Conv1D weight stored [cols][rows_total] (in x out): repack columns [c0, c0+rows) to a
 * row-major [rows][cols] matrix in the same dtype. */
static cllm_status get_conv1d(binder *b, const char *name, int in, int out_total, int c0, int rows,
                              const tensor **tp, wmat *m) {
    const tensor *t = *tp;
    cllm_status s;
    if (!t) {
        if ((s = find(b, name, 0, &t)) || (s = check(b, t, 2, in, out_total))) return s;
        *tp = t;
    }
    size_t es = dtype_size((dtype)t->dt);
    uint8_t *p = model_weights_own(b->w, (size_t)rows * in * es);
    if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory repacking '%s'", t->name);
    const uint8_t *src = t->data;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < in; k++)
            memcpy(p + ((size_t)r * in + k) * es, src + ((size_t)k * out_total + c0 + r) * es, es);
    m->data = p;
    m->dt = (dtype)t->dt;
    m->rows = rows;
    m->cols = in;
    return CLLM_OK;
}

/* A vector converted to f32; elements [off, off+n) of a tensor of length total. */
static cllm_status get_vec_part(binder *b, const char *name, int total, int off, int n,
                                int optional, const tensor **tp, const float **out) {
    const tensor *t = tp ? *tp : NULL;
    cllm_status s;
    *out = NULL;
    if (!t) {
        if ((s = find(b, name, optional, &t))) return s;
        if (!t) return CLLM_OK;
        if ((s = check(b, t, 1, total, 0))) return s;
        if (tp) *tp = t;
    }
    float *p = model_weights_own(b->w, (size_t)n * sizeof(float));
    if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory");
    const uint8_t *src = (const uint8_t *)t->data + (size_t)off * dtype_size((dtype)t->dt);
    for (int i = 0; i < n; i++) {
        uint16_t h;
        switch (t->dt) {
        case ST_F32:
            memcpy(&p[i], src + 4 * (size_t)i, 4);
            break;
        case ST_F16:
            memcpy(&h, src + 2 * (size_t)i, 2);
            p[i] = f16_to_f32(h);
            break;
        default:
            memcpy(&h, src + 2 * (size_t)i, 2);
            p[i] = bf16_to_f32(h);
            break;
        }
    }
    *out = p;
    return CLLM_OK;
}

static cllm_status get_vec(binder *b, const char *name, int n, int optional, const float **out) {
    return get_vec_part(b, name, n, 0, n, optional, NULL, out);
}

static cllm_status bind_llama(binder *b, const model_config *c) {
    model_weights *w = b->w;
    int H = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim,
        I = c->intermediate;
    cllm_status s;
    char n[160];
    b->prefix = "model.";
    if ((s = get_mat(b, "embed_tokens.weight", c->vocab, H, &w->tok_embd))) return s;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &w->layers[l];
#define NM(fmt) (snprintf(n, sizeof n, "layers.%d." fmt, l), n)
        if ((s = get_vec(b, NM("input_layernorm.weight"), H, 0, &L->attn_norm)) ||
            (s = get_mat(b, NM("self_attn.q_proj.weight"), qd, H, &L->wq)) ||
            (s = get_mat(b, NM("self_attn.k_proj.weight"), kvd, H, &L->wk)) ||
            (s = get_mat(b, NM("self_attn.v_proj.weight"), kvd, H, &L->wv)) ||
            (s = get_mat(b, NM("self_attn.o_proj.weight"), H, qd, &L->wo)) ||
            (s = get_vec(b, NM("post_attention_layernorm.weight"), H, 0, &L->mlp_norm)) ||
            (s = get_mat(b, NM("mlp.gate_proj.weight"), I, H, &L->w_gate)) ||
            (s = get_mat(b, NM("mlp.up_proj.weight"), I, H, &L->w_up)) ||
            (s = get_mat(b, NM("mlp.down_proj.weight"), H, I, &L->w_down)))
            return s;
        if (c->qkv_bias && ((s = get_vec(b, NM("self_attn.q_proj.bias"), qd, 0, &L->bq)) ||
                            (s = get_vec(b, NM("self_attn.k_proj.bias"), kvd, 0, &L->bk)) ||
                            (s = get_vec(b, NM("self_attn.v_proj.bias"), kvd, 0, &L->bv))))
            return s;
        if (c->o_bias && (s = get_vec(b, NM("self_attn.o_proj.bias"), H, 0, &L->bo))) return s;
        if (c->mlp_bias && ((s = get_vec(b, NM("mlp.gate_proj.bias"), I, 0, &L->b_gate)) ||
                            (s = get_vec(b, NM("mlp.up_proj.bias"), I, 0, &L->b_up)) ||
                            (s = get_vec(b, NM("mlp.down_proj.bias"), H, 0, &L->b_down))))
            return s;
#undef NM
    }
    if ((s = get_vec(b, "norm.weight", H, 0, &w->out_norm))) return s;
    b->prefix = "";
    const tensor *lm = st_find(b->st, "lm_head.weight");
    if (lm) return get_mat(b, "lm_head.weight", c->vocab, H, &w->lm_head);
    if (!c->tied) {
        const char *file = b->st->n_files ? b->st->files[0].path : "model.safetensors";
        return err_set(
            CLLM_ERR_FORMAT,
            "%s: missing tensor 'lm_head.weight' (config says tie_word_embeddings false)", file);
    }
    w->lm_head = w->tok_embd;
    return CLLM_OK;
}

static cllm_status bind_gpt2(binder *b, const model_config *c) {
    model_weights *w = b->w;
    int H = c->hidden, I = c->intermediate;
    cllm_status s;
    char n[160];
    b->prefix = st_find(b->st, "transformer.wte.weight") ? "transformer." : "";
    if ((s = get_mat(b, "wte.weight", c->vocab, H, &w->tok_embd)) ||
        (s = get_mat(b, "wpe.weight", c->max_ctx, H, &w->pos_embd)))
        return s;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &w->layers[l];
        const tensor *qkv = NULL, *qkvb = NULL, *t = NULL;
#define NM(fmt) (snprintf(n, sizeof n, "h.%d." fmt, l), n)
        if ((s = get_vec(b, NM("ln_1.weight"), H, 0, &L->attn_norm)) ||
            (s = get_vec(b, NM("ln_1.bias"), H, 0, &L->attn_norm_b)) ||
            (s = get_conv1d(b, NM("attn.c_attn.weight"), H, 3 * H, 0, H, &qkv, &L->wq)) ||
            (s = get_conv1d(b, NM("attn.c_attn.weight"), H, 3 * H, H, H, &qkv, &L->wk)) ||
            (s = get_conv1d(b, NM("attn.c_attn.weight"), H, 3 * H, 2 * H, H, &qkv, &L->wv)) ||
            (s = get_vec_part(b, NM("attn.c_attn.bias"), 3 * H, 0, H, 0, &qkvb, &L->bq)) ||
            (s = get_vec_part(b, NM("attn.c_attn.bias"), 3 * H, H, H, 0, &qkvb, &L->bk)) ||
            (s = get_vec_part(b, NM("attn.c_attn.bias"), 3 * H, 2 * H, H, 0, &qkvb, &L->bv)) ||
            (s = get_conv1d(b, NM("attn.c_proj.weight"), H, H, 0, H, &t, &L->wo)) ||
            (s = get_vec(b, NM("attn.c_proj.bias"), H, 0, &L->bo)) ||
            (s = get_vec(b, NM("ln_2.weight"), H, 0, &L->mlp_norm)) ||
            (s = get_vec(b, NM("ln_2.bias"), H, 0, &L->mlp_norm_b)) ||
            (t = NULL, s = get_conv1d(b, NM("mlp.c_fc.weight"), H, I, 0, I, &t, &L->w_up)) ||
            (s = get_vec(b, NM("mlp.c_fc.bias"), I, 0, &L->b_up)) ||
            (t = NULL, s = get_conv1d(b, NM("mlp.c_proj.weight"), I, H, 0, H, &t, &L->w_down)) ||
            (s = get_vec(b, NM("mlp.c_proj.bias"), H, 0, &L->b_down)))
            return s;
#undef NM
    }
    if ((s = get_vec(b, "ln_f.weight", H, 0, &w->out_norm)) ||
        (s = get_vec(b, "ln_f.bias", H, 0, &w->out_norm_b)))
        return s;
    b->prefix = "";
    if (st_find(b->st, "lm_head.weight"))
        return get_mat(b, "lm_head.weight", c->vocab, H, &w->lm_head);
    w->lm_head = w->tok_embd;
    return CLLM_OK;
}

cllm_status model_weights_bind(const model_config *c, const st_set *st, model_weights *w) {
    memset(w, 0, sizeof *w);
    w->layers = calloc((size_t)c->n_layers, sizeof(layer_weights));
    if (!w->layers) return err_set(CLLM_ERR_NOMEM, "out of memory");
    binder b = {.st = st, .w = w};
    cllm_status s = c->arch == ARCH_GPT2 ? bind_gpt2(&b, c) : bind_llama(&b, c);
    if (s) {
        model_weights_free(w);
        return s;
    }
    w->dtypes[0] = 0;
    for (int i = 0; i < 3; i++)
        if (b.seen_dt[i])
            snprintf(w->dtypes + strlen(w->dtypes), sizeof w->dtypes - strlen(w->dtypes), "%s%s",
                     w->dtypes[0] ? "+" : "", dtype_name((dtype)i));
    return CLLM_OK;
}

void model_weights_free(model_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n_owned; i++)
        free(w->owned[i]);
    free(w->owned);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
