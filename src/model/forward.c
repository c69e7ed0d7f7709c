/* forward.c - the transformer forward pass over a batch (prefill, decode and mixed batches are
 * the same code): embed -> N x (norm, attention over paged KV, norm, MLP) -> norm -> lm_head
 * for the rows that want logits. Matrices are multiplied for all batch tokens at once, so each
 * weight is read once per call. */
#include "model/model.h"

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant_amx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t max_sz(size_t a, size_t b) {
    return a > b ? a : b;
}

/* aligned_alloc needs a size that is a multiple of the alignment */
static void *alloc64(size_t bytes) {
    return aligned_alloc(64, (bytes + 127) / 64 * 64);
}

cllm_status fwd_state_create(const struct cllm_model *m, int max_tokens, int max_ctx,
                             int block_size, fwd_state **out) {
    const model_config *c = &m->cfg;
    *out = NULL;
    fwd_state *fs = calloc(1, sizeof *fs);
    if (!fs) return err_set(CLLM_ERR_NOMEM, "out of memory");
    fs->max_tokens = max_tokens;
    fs->max_ctx = max_ctx;
    size_t T = (size_t)max_tokens, H = (size_t)c->hidden, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, I = (size_t)c->intermediate;
    int nth = tp_size(m->tp);
    fs->attn_scratch_per_thread =
        attn_scratch_floats(max_ctx, block_size, c->head_dim, c->n_heads / c->n_kv_heads);
    size_t work = 0;
    int Ks[3] = {c->hidden, (int)qd, c->intermediate};
    /* every weight dtype of the model may need scratch (bf16: prepared x; quantized: x in Q8) */
    const dtype dts[3] = {DTYPE_BF16, m->w.layers ? m->w.layers[0].w_down.dt : DTYPE_BF16,
                          m->w.lm_head.dt};
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 3; d++)
            work = max_sz(work, kern_matmul_work_size(max_tokens, Ks[i], dts[d], nth));
    fs->x = alloc64(T * H * 4);
    fs->xn = alloc64(T * max_sz(H, qd) * 4);
    fs->q = alloc64(T * qd * 4);
    fs->k = alloc64(T * kvd * 4);
    fs->v = alloc64(T * kvd * 4);
    fs->att = alloc64(T * qd * 4);
    fs->gate = alloc64(T * I * 4);
    fs->up = alloc64(T * I * 4);
    fs->hlast = alloc64(T * H * 4);
    fs->rope_cs = alloc64(T * (size_t)c->head_dim * 4);
    fs->attn_scratch = alloc64((size_t)nth * fs->attn_scratch_per_thread * 4);
    fs->mm_work = alloc64(work);
    if (!fs->x || !fs->xn || !fs->q || !fs->k || !fs->v || !fs->att || !fs->gate || !fs->up ||
        !fs->hlast || !fs->rope_cs || !fs->attn_scratch || !fs->mm_work) {
        fwd_state_free(fs);
        return err_set(CLLM_ERR_NOMEM, "out of memory for activations (%d tokens)", max_tokens);
    }
    *out = fs;
    return CLLM_OK;
}

void fwd_state_free(fwd_state *fs) {
    if (!fs) return;
    free(fs->x);
    free(fs->xn);
    free(fs->q);
    free(fs->k);
    free(fs->v);
    free(fs->att);
    free(fs->gate);
    free(fs->up);
    free(fs->hlast);
    free(fs->rope_cs);
    free(fs->attn_scratch);
    free(fs->mm_work);
    free(fs);
}

/* ---- per-row jobs run on the pool ---- */

typedef struct row_job {
    const struct cllm_model *m;
    fwd_state *fs;
    const fwd_batch *b;
    const layer_weights *L;
    int kind; /* which step, see row_worker */
    float *a;
    const float *bsrc;
    const float *w, *wb;
    int n;
} row_job;

enum { JOB_NORM, JOB_ROPE, JOB_SILU, JOB_GELU, JOB_ADD };

static void norm_row(const struct cllm_model *m, float *y, const float *x, const float *w,
                     const float *b) {
    if (m->cfg.arch == ARCH_GPT2)
        kern_layernorm(y, x, w, b, m->cfg.hidden, m->cfg.norm_eps);
    else
        kern_rmsnorm(y, x, w, m->cfg.hidden, m->cfg.norm_eps);
}

static void row_worker(void *ctx, int ith, int nth) {
    row_job *j = ctx;
    const model_config *c = &j->m->cfg;
    long lo, hi;
    if (j->kind == JOB_SILU || j->kind == JOB_GELU || j->kind == JOB_ADD) {
        /* element-wise over n elements, chunks aligned to 16 */
        tp_split(j->n, 16, ith, nth, &lo, &hi);
        if (hi <= lo) return;
        if (j->kind == JOB_SILU)
            kern_silu_mul(j->a + lo, j->bsrc + lo, (int)(hi - lo));
        else if (j->kind == JOB_GELU)
            kern_gelu_tanh(j->a + lo, (int)(hi - lo));
        else
            kern_add(j->a + lo, j->bsrc + lo, (int)(hi - lo));
        return;
    }
    tp_split(j->n, 1, ith, nth, &lo, &hi);
    size_t H = (size_t)c->hidden, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim;
    for (long t = lo; t < hi; t++) {
        if (j->kind == JOB_NORM) {
            norm_row(j->m, j->a + t * H, j->bsrc + t * H, j->w, j->wb);
        } else { /* JOB_ROPE: cos/sin for this position, then q and k heads */
            float *cs = j->fs->rope_cs + t * (size_t)c->head_dim;
            kern_rope_table(cs, c->head_dim, j->m->inv_freq, j->b->pos[t]);
            void (*rope)(float *, int, int, const float *) =
                c->rope_adjacent ? kern_rope_adjacent : kern_rope;
            rope(j->fs->q + t * qd, c->n_heads, c->head_dim, cs);
            rope(j->fs->k + t * kvd, c->n_kv_heads, c->head_dim, cs);
        }
    }
}

static void run_rows(row_job *j, int kind, int n, float *a, const float *src, const float *w,
                     const float *wb) {
    j->kind = kind;
    j->n = n;
    j->a = a;
    j->bsrc = src;
    j->w = w;
    j->wb = wb;
    /* small jobs are not worth waking the pool (and a busy machine makes every sync costly) */
    size_t work = kind == JOB_NORM || kind == JOB_ROPE ? (size_t)n * j->m->cfg.hidden : (size_t)n;
    if (work < 16384)
        row_worker(j, 0, 1);
    else
        tp_run(j->m->tp, row_worker, j);
}

/* next: the weights of the matmul that follows (prefetched during this one's last block). */
static void matmul(const struct cllm_model *m, fwd_state *fs, const float *x, int M, const wmat *w,
                   const float *bias, float *y, const wmat *next) {
    kern_mm_next nx = {.w = next->data, .wt = next->dt, .N = next->rows, .K = next->cols};
    kern_matmul_then(m->tp, x, M, w->cols, w->cols, w->data, w->dt, w->rows, bias, y, w->rows,
                     fs->mm_work, &nx);
}

/* Matmuls of the same x in one pool dispatch when their weights share a dtype and shape of K
 * (q/k/v, gate/up; a Q4_K_M file may mix dtypes: then one dispatch per group of equal dtype).
 * Results are bitwise those of separate calls (kern_matmul_multi). */
static void matmul_fused(const struct cllm_model *m, fwd_state *fs, const float *x, int M,
                         const wmat *const *w, const float *const *bias, float *const *y, int n,
                         const wmat *next) {
    kern_mm_next nx = {.w = next->data, .wt = next->dt, .N = next->rows, .K = next->cols};
    for (int i = 0; i < n;) {
        kern_mm_part parts[3];
        int np = 0, K = w[i]->cols;
        dtype dt = w[i]->dt;
        for (; i < n && np < 3 && w[i]->dt == dt && w[i]->cols == K; i++, np++)
            parts[np] = (kern_mm_part){
                .w = w[i]->data, .N = w[i]->rows, .bias = bias[i], .y = y[i], .ldy = w[i]->rows};
        kern_matmul_multi(m->tp, x, M, K, K, dt, parts, np, fs->mm_work, i == n ? &nx : NULL);
    }
}

static void embed(const struct cllm_model *m, fwd_state *fs, const fwd_batch *b) {
    const model_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, rb = dtype_row_bytes(m->w.tok_embd.dt, c->hidden);
    /* a tied embedding that the AMX family repacked: its rows come from the copy (the file's
     * pages were given back), bitwise the same values */
    const uint8_t *amx = m->amx_repacked ? quant_amx_lookup(m->w.tok_embd.data, m->w.tok_embd.dt,
                                                            m->w.tok_embd.rows, c->hidden)
                                         : NULL;
    for (int t = 0; t < b->n; t++) {
        float *x = fs->x + t * H;
        if (amx)
            quant_amx_row_to_f32(m->w.tok_embd.dt, amx, c->hidden, b->tokens[t], x);
        else
            kern_to_f32((const uint8_t *)m->w.tok_embd.data + (size_t)b->tokens[t] * rb,
                        m->w.tok_embd.dt, (int)H, x);
        if (c->arch == ARCH_GPT2) {
            float *tmp = fs->xn + t * H;
            size_t pes = dtype_size(m->w.pos_embd.dt);
            kern_to_f32((const uint8_t *)m->w.pos_embd.data + (size_t)b->pos[t] * H * pes,
                        m->w.pos_embd.dt, (int)H, tmp);
            kern_add(x, tmp, (int)H);
        }
    }
}

/* K goes in transposed within its block ([hd][slot]) for the attention kernel; V row-major. */
static void write_kv(const struct cllm_model *m, fwd_state *fs, kv_cache *kv, int layer,
                     const fwd_batch *b) {
    const model_config *c = &m->cfg;
    int hd = c->head_dim, bs = kv->block_size;
    size_t kvd = (size_t)c->n_kv_heads * hd, es = dtype_size(kv->dt);
    for (int t = 0; t < b->n; t++) {
        int blk = b->tables[t][b->pos[t] / bs], slot = b->pos[t] % bs;
        for (int h = 0; h < c->n_kv_heads; h++) {
            const float *kr = fs->k + t * kvd + (size_t)h * hd;
            uint8_t *kd = kv_k_head(kv, layer, blk, h);
            for (int d = 0; d < hd; d++)
                kern_from_f32(&kr[d], kv->dt, 1, kd + ((size_t)d * bs + slot) * es);
            kern_from_f32(fs->v + t * kvd + (size_t)h * hd, kv->dt, hd,
                          kv_v_head(kv, layer, blk, h) + (size_t)slot * hd * es);
        }
    }
}

cllm_status model_forward(const struct cllm_model *m, fwd_state *fs, kv_cache *kv,
                          const fwd_batch *b, float *logits) {
    const model_config *c = &m->cfg;
    const int n = b->n, H = c->hidden, I = c->intermediate;
    if (n <= 0 || n > fs->max_tokens)
        return err_set(CLLM_ERR_INVALID_ARG, "batch of %d tokens (max %d)", n, fs->max_tokens);
    for (int t = 0; t < n; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= c->vocab)
            return err_set(CLLM_ERR_INVALID_ARG, "token id %d out of range (vocab %d)",
                           b->tokens[t], c->vocab);
        if (b->pos[t] < 0 || b->pos[t] >= fs->max_ctx ||
            (c->arch == ARCH_GPT2 && b->pos[t] >= c->max_ctx))
            return err_set(CLLM_ERR_LIMIT, "position %d beyond the context (%d)", b->pos[t],
                           fs->max_ctx);
    }
    row_job j = {.m = m, .fs = fs, .b = b};
    const int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    attn_batch ab = {
        .n_tokens = n,
        .q = fs->q,
        .ldq = qd,
        .out = fs->att,
        .ldo = qd,
        .pos = b->pos,
        .tables = b->tables,
        .block_bytes = kv->block_bytes,
        .head_bytes = kv->head_bytes,
        .block_size = kv->block_size,
        .dt = kv->dt,
        .n_heads = c->n_heads,
        .n_kv_heads = c->n_kv_heads,
        .hd = c->head_dim,
        .scale = 1.0f / sqrtf((float)c->head_dim),
        .window = c->sliding_window,
        .scratch = fs->attn_scratch,
        .scratch_per_thread = fs->attn_scratch_per_thread,
    };
    embed(m, fs, b);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->w.layers[l];
        j.L = L;
        run_rows(&j, JOB_NORM, n, fs->xn, fs->x, L->attn_norm, L->attn_norm_b);
        const wmat *qkv[3] = {&L->wq, &L->wk, &L->wv};
        const float *qkv_b[3] = {L->bq, L->bk, L->bv};
        float *qkv_y[3] = {fs->q, fs->k, fs->v};
        matmul_fused(m, fs, fs->xn, n, qkv, qkv_b, qkv_y, 3, &L->wo);
        if (c->arch != ARCH_GPT2) run_rows(&j, JOB_ROPE, n, NULL, NULL, NULL, NULL);
        write_kv(m, fs, kv, l, b);
        ab.k = kv->k + (size_t)l * kv->layer_bytes;
        ab.v = kv->v + (size_t)l * kv->layer_bytes;
        kern_attention(m->tp, &ab);
        matmul(m, fs, fs->att, n, &L->wo, L->bo, fs->xn,
               c->arch == ARCH_GPT2 ? &L->w_up : &L->w_gate);
        run_rows(&j, JOB_ADD, n * H, fs->x, fs->xn, NULL, NULL);
        run_rows(&j, JOB_NORM, n, fs->xn, fs->x, L->mlp_norm, L->mlp_norm_b);
        if (c->arch == ARCH_GPT2) {
            matmul(m, fs, fs->xn, n, &L->w_up, L->b_up, fs->up, &L->w_down);
            run_rows(&j, JOB_GELU, n * I, fs->up, NULL, NULL, NULL);
        } else {
            const wmat *gu[2] = {&L->w_gate, &L->w_up};
            const float *gu_b[2] = {L->b_gate, L->b_up};
            float *gu_y[2] = {fs->gate, fs->up};
            matmul_fused(m, fs, fs->xn, n, gu, gu_b, gu_y, 2, &L->w_down);
            run_rows(&j, JOB_SILU, n * I, fs->gate, fs->up, NULL, NULL);
        }
        matmul(m, fs, c->arch == ARCH_GPT2 ? fs->up : fs->gate, n, &L->w_down, L->b_down, fs->xn,
               l + 1 < c->n_layers ? &m->w.layers[l + 1].wq : &m->w.lm_head);
        run_rows(&j, JOB_ADD, n * H, fs->x, fs->xn, NULL, NULL);
    }
    (void)kvd;
    /* final norm and lm_head only for rows that want logits */
    int nl = 0;
    for (int t = 0; t < n; t++)
        if (b->want_logits[t]) {
            norm_row(m, fs->hlast + (size_t)nl * H, fs->x + (size_t)t * H, m->w.out_norm,
                     m->w.out_norm_b);
            nl++;
        }
    if (nl) matmul(m, fs, fs->hlast, nl, &m->w.lm_head, NULL, logits, &m->w.layers[0].wq);
    return CLLM_OK;
}
