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
 * once, reused by every forward call. */
typedef struct fwd_state {
    int max_tokens, max_ctx;
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *rope_cs, *attn_scratch;
    float *hlast; /* [max_tokens][hidden] rows that want logits */
    void *mm_work;
    size_t attn_scratch_per_thread;
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
