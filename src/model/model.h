/* model.h - a loaded model (config, mapped weights, tokenizer, thread pool) and its forward pass
 * over a batch of tokens with positions and per-sequence KV block tables. */
#ifndef CLLM_MODEL_MODEL_H
#define CLLM_MODEL_MODEL_H

#include "base/threadpool.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "model/config.h"
#include "model/model_text.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

struct cllm_model {
    model_config cfg;
    st_set st;
    struct gguf_file *gguf; /* the mapped GGUF file, when loaded from one */
    model_weights w;
    tokenizer *tok;             /* NULL when the folder has none */
    struct cllm_tokenizer text; /* the public handle of tok (+ the chat template, on first use) */
    threadpool *tp;
    double *inv_freq; /* [head_dim/2] RoPE inverse frequencies (scaling applied) */
    double load_seconds;
    int amx_repacked; /* matrices have repacked copies in the AMX registry (model_kernels.c) */
};

/* A batch: n tokens, each with its position and its sequence's block table. Rows with
 * want_logits set get a row of logits, in batch order. */
typedef struct fwd_batch {
    int n;
    const int32_t *tokens;
    const int32_t *pos;
    const int32_t *const *tables;
    const uint8_t *want_logits;
} fwd_batch;

/* Activation buffers for batches of up to max_tokens tokens at positions < max_ctx; allocated
 * once, reused by every forward call. Shapes below: T = max_tokens (the batch, row t = token t
 * of the batch), H = hidden, qd = n_heads * head_dim, kvd = n_kv_heads * head_dim,
 * I = intermediate. Rows are contiguous (row t starts at t * width). */
typedef struct fwd_state {
    int max_tokens, max_ctx;
    float *x;    /* [T][H] residual stream: the embeddings, then += each block's output */
    float *xn;   /* [T][max(H, qd)] normalized x (input of the q/k/v and MLP matmuls), also the
                    output of the o and down projections before it is added to x */
    float *q;    /* [T][qd] queries, RoPE applied in place ([n_heads][head_dim] per row) */
    float *k;    /* [T][kvd] keys of this batch, RoPE applied, before they go into the KV cache */
    float *v;    /* [T][kvd] values of this batch, before they go into the KV cache */
    float *att;  /* [T][qd] attention output (softmax(q k^T) v per head), input of wo */
    float *gate; /* [T][I] gate projection, then silu(gate) * up: the down projection's input
                    (unused by GPT-2) */
    float *up;   /* [T][I] up projection (GPT-2: the MLP's hidden layer, GELU in place) */
    float *rope_cs;      /* [T][head_dim] cos/sin table for each token's position */
    float *attn_scratch; /* [n_threads][attn_scratch_per_thread] per-thread attention scratch */
    float *hlast;  /* [T][H] final-normed rows that want logits, packed (row i = i-th such token) */
    void *mm_work; /* kern_matmul_work_size() bytes: matmul scratch (prepared/quantized x, widened
                      weights per thread) */
    size_t attn_scratch_per_thread; /* floats: attn_scratch_floats(max_ctx, block_size, ...) */
} fwd_state;

/* The KV cache element type for a request: the model's own dtype unless one is asked for. */
dtype model_kv_dtype(const struct cllm_model *m, cllm_kv_type asked);
/* Choose the matmul kernels for the model's weight dtypes on this CPU (kernels/tune.h): measured
 * with its own matrices and thread pool, or from the cache / CLLM_TUNE. */
cllm_status model_tune_kernels(struct cllm_model *m);
/* Free what model_tune_kernels made (repacked copies); before the weights go. */
void model_release_kernels(struct cllm_model *m);

cllm_status fwd_state_create(const struct cllm_model *m, int max_tokens, int max_ctx,
                             int block_size, fwd_state **out);
void fwd_state_free(fwd_state *fs);

/* Run the batch through the model, writing K/V at each token's position, and logits
 * [n_logit_rows][vocab] for rows that want them. The block tables must already cover every
 * position. */
cllm_status model_forward(const struct cllm_model *m, fwd_state *fs, kv_cache *kv,
                          const fwd_batch *b, float *logits);

#endif
