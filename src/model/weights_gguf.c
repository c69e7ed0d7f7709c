/* weights_gguf.c - bind a GGUF file's tensors (llama.cpp names) to the layers. Matrices are used
 * in place in their stored type (F32/F16/BF16 or a block-quantized type); norm and bias vectors
 * are converted to f32 copies. GPT-2's fused attn_qkv is split by rows, which needs no copy
 * because rows of every type are independent. */
#include "base/error.h"
#include "io/gguf.h"
#include "kernels/quant.h"
#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gbinder {
    const gguf_file *f;
    model_weights *w;
    int seen[DTYPE_COUNT];
} gbinder;

static cllm_status find(gbinder *b, const char *name, int optional, const gguf_tensor **out) {
    *out = gguf_find_tensor(b->f, name);
    if (*out || optional) return CLLM_OK;
    return err_set(CLLM_ERR_FORMAT, "%s: missing tensor '%s'", gguf_path(b->f), name);
}

/* Type and shape check: ne = {d0, d1} (d1 = 0 for a vector). */
static cllm_status check(gbinder *b, const gguf_tensor *t, int64_t d0, int64_t d1, dtype *dt) {
    if (!gguf_type_to_dtype(t->type, dt))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: tensor '%s': ggml type %s not supported (F32, F16, BF16, Q8_0, Q4_0, "
                       "Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q8_K)",
                       gguf_path(b->f), t->name, gguf_ggml_type_name(t->type));
    int64_t want1 = d1 ? d1 : 1;
    if (t->ne[0] != d0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: tensor '%s': shape [%lld, %lld, %lld, %lld], "
                       "expected [%lld, %lld]",
                       gguf_path(b->f), t->name, (long long)t->ne[0], (long long)t->ne[1],
                       (long long)t->ne[2], (long long)t->ne[3], (long long)d0, (long long)want1);
    b->seen[*dt]++;
    b->w->n_params += d0 * want1;
    b->w->n_bytes += (int64_t)t->nbytes;
    return CLLM_OK;
}

/* Rows [r0, r0 + rows) of a [total][cols] matrix, in place (copied if misaligned). */
static cllm_status get_mat_rows(gbinder *b, const char *name, int total, int r0, int rows, int cols,
                                wmat *m) {
    const gguf_tensor *t;
    dtype dt;
    cllm_status s;
    if ((s = find(b, name, 0, &t)) || (s = check(b, t, cols, total, &dt))) return s;
    if (r0) b->seen[dt]--, b->w->n_params -= (int64_t)cols * total, b->w->n_bytes -= t->nbytes;
    size_t rb = dtype_row_bytes(dt, cols);
    m->dt = dt;
    m->rows = rows;
    m->cols = cols;
    m->data = t->data + (size_t)r0 * rb;
    if ((uintptr_t)m->data % 4) {
        void *p = model_weights_own(b->w, (size_t)rows * rb);
        if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory copying '%s'", t->name);
        memcpy(p, m->data, (size_t)rows * rb);
        m->data = p;
    }
    return CLLM_OK;
}

static cllm_status get_mat(gbinder *b, const char *name, int rows, int cols, wmat *m) {
    return get_mat_rows(b, name, rows, 0, rows, cols, m);
}

/* Elements [off, off + n) of a vector of `total` elements, as f32. */
static cllm_status get_vec_part(gbinder *b, const char *name, int total, int off, int n,
                                int optional, const float **out) {
    const gguf_tensor *t;
    dtype dt;
    cllm_status s;
    *out = NULL;
    if ((s = find(b, name, optional, &t)) || !t) return s;
    if ((s = check(b, t, total, 0, &dt))) return s;
    if (off) b->seen[dt]--, b->w->n_params -= total, b->w->n_bytes -= t->nbytes;
    int blk = dtype_block_elems(dt);
    if (off % blk || n % blk)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: tensor '%s': cannot split a %s vector",
                       gguf_path(b->f), t->name, dtype_name(dt));
    float *p = model_weights_own(b->w, (size_t)n * sizeof(float));
    if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory");
    quant_dequantize_row(dt, t->data + dtype_row_bytes(dt, off), p, n);
    *out = p;
    return CLLM_OK;
}

static cllm_status get_vec(gbinder *b, const char *name, int n, int optional, const float **out) {
    return get_vec_part(b, name, n, 0, n, optional, out);
}

#define NM(fmt) (snprintf(n, sizeof n, "blk.%d." fmt, l), n)

static cllm_status bind_llama(gbinder *b, const model_config *c) {
    model_weights *w = b->w;
    int H = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim,
        I = c->intermediate;
    cllm_status s;
    char n[96];
    if ((s = get_mat(b, "token_embd.weight", c->vocab, H, &w->tok_embd))) return s;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &w->layers[l];
        if ((s = get_vec(b, NM("attn_norm.weight"), H, 0, &L->attn_norm)) ||
            (s = get_mat(b, NM("attn_q.weight"), qd, H, &L->wq)) ||
            (s = get_mat(b, NM("attn_k.weight"), kvd, H, &L->wk)) ||
            (s = get_mat(b, NM("attn_v.weight"), kvd, H, &L->wv)) ||
            (s = get_mat(b, NM("attn_output.weight"), H, qd, &L->wo)) ||
            (s = get_vec(b, NM("ffn_norm.weight"), H, 0, &L->mlp_norm)) ||
            (s = get_mat(b, NM("ffn_gate.weight"), I, H, &L->w_gate)) ||
            (s = get_mat(b, NM("ffn_up.weight"), I, H, &L->w_up)) ||
            (s = get_mat(b, NM("ffn_down.weight"), H, I, &L->w_down)))
            return s;
        if (c->qkv_bias && ((s = get_vec(b, NM("attn_q.bias"), qd, 0, &L->bq)) ||
                            (s = get_vec(b, NM("attn_k.bias"), kvd, 0, &L->bk)) ||
                            (s = get_vec(b, NM("attn_v.bias"), kvd, 0, &L->bv))))
            return s;
        if (c->o_bias && (s = get_vec(b, NM("attn_output.bias"), H, 0, &L->bo))) return s;
        if (c->mlp_bias && ((s = get_vec(b, NM("ffn_gate.bias"), I, 1, &L->b_gate)) ||
                            (s = get_vec(b, NM("ffn_up.bias"), I, 0, &L->b_up)) ||
                            (s = get_vec(b, NM("ffn_down.bias"), H, 1, &L->b_down))))
            return s;
    }
    return get_vec(b, "output_norm.weight", H, 0, &w->out_norm);
}

static cllm_status bind_gpt2(gbinder *b, const model_config *c) {
    model_weights *w = b->w;
    int H = c->hidden, I = c->intermediate;
    cllm_status s;
    char n[96];
    if ((s = get_mat(b, "token_embd.weight", c->vocab, H, &w->tok_embd)) ||
        (s = get_mat(b, "position_embd.weight", c->max_ctx, H, &w->pos_embd)))
        return s;
    if (dtype_is_quant(w->pos_embd.dt))
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: quantized position_embd.weight not supported",
                       gguf_path(b->f));
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &w->layers[l];
        if ((s = get_vec(b, NM("attn_norm.weight"), H, 0, &L->attn_norm)) ||
            (s = get_vec(b, NM("attn_norm.bias"), H, 0, &L->attn_norm_b)) ||
            (s = get_mat_rows(b, NM("attn_qkv.weight"), 3 * H, 0, H, H, &L->wq)) ||
            (s = get_mat_rows(b, NM("attn_qkv.weight"), 3 * H, H, H, H, &L->wk)) ||
            (s = get_mat_rows(b, NM("attn_qkv.weight"), 3 * H, 2 * H, H, H, &L->wv)) ||
            (s = get_vec_part(b, NM("attn_qkv.bias"), 3 * H, 0, H, 0, &L->bq)) ||
            (s = get_vec_part(b, NM("attn_qkv.bias"), 3 * H, H, H, 0, &L->bk)) ||
            (s = get_vec_part(b, NM("attn_qkv.bias"), 3 * H, 2 * H, H, 0, &L->bv)) ||
            (s = get_mat(b, NM("attn_output.weight"), H, H, &L->wo)) ||
            (s = get_vec(b, NM("attn_output.bias"), H, 0, &L->bo)) ||
            (s = get_vec(b, NM("ffn_norm.weight"), H, 0, &L->mlp_norm)) ||
            (s = get_vec(b, NM("ffn_norm.bias"), H, 0, &L->mlp_norm_b)) ||
            (s = get_mat(b, NM("ffn_up.weight"), I, H, &L->w_up)) ||
            (s = get_vec(b, NM("ffn_up.bias"), I, 0, &L->b_up)) ||
            (s = get_mat(b, NM("ffn_down.weight"), H, I, &L->w_down)) ||
            (s = get_vec(b, NM("ffn_down.bias"), H, 0, &L->b_down)))
            return s;
    }
    if ((s = get_vec(b, "output_norm.weight", H, 0, &w->out_norm)) ||
        (s = get_vec(b, "output_norm.bias", H, 0, &w->out_norm_b)))
        return s;
    return CLLM_OK;
}

#undef NM

cllm_status model_weights_bind_gguf(const model_config *c, const gguf_file *f, model_weights *w) {
    memset(w, 0, sizeof *w);
    w->layers = calloc((size_t)c->n_layers, sizeof(layer_weights));
    if (!w->layers) return err_set(CLLM_ERR_NOMEM, "out of memory");
    gbinder b = {.f = f, .w = w};
    cllm_status s = c->arch == ARCH_GPT2 ? bind_gpt2(&b, c) : bind_llama(&b, c);
    if (!s && gguf_find_tensor(f, "output.weight"))
        s = get_mat(&b, "output.weight", c->vocab, c->hidden, &w->lm_head);
    else if (!s)
        w->lm_head = w->tok_embd;
    if (s) {
        model_weights_free(w);
        return s;
    }
    for (int i = 0; i < DTYPE_COUNT; i++)
        if (b.seen[i])
            snprintf(w->dtypes + strlen(w->dtypes), sizeof w->dtypes - strlen(w->dtypes), "%s%s",
                     w->dtypes[0] ? "+" : "", dtype_name((dtype)i));
    return CLLM_OK;
}
