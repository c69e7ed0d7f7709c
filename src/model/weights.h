/* weights.h - binding a model's tensors (by Hugging Face name) to the layers of the forward pass.
 */
#ifndef CLLM_MODEL_WEIGHTS_H
#define CLLM_MODEL_WEIGHTS_H

#include "io/safetensors.h"
#include "model/config.h"

/* A weight matrix [rows][cols] row-major in its stored dtype (rows = output features). */
typedef struct wmat {
    const void *data;
    dtype dt;
    int rows, cols;
} wmat;

typedef struct layer_weights {
    const float *attn_norm, *attn_norm_b; /* [hidden]; _b only for LayerNorm (GPT-2) */
    wmat wq, wk, wv, wo; /* [n_heads*hd][hidden], [n_kv*hd][hidden] x2, [hidden][n_heads*hd] */
    const float *bq, *bk, *bv, *bo; /* NULL when absent */
    const float *mlp_norm, *mlp_norm_b;
    wmat w_gate, w_up, w_down; /* [inter][hidden] x2 (no gate for GPT-2), [hidden][inter] */
    const float *b_gate, *b_up, *b_down;
} layer_weights;

typedef struct model_weights {
    wmat tok_embd; /* [vocab][hidden] */
    wmat pos_embd; /* [max_ctx][hidden], GPT-2 only */
    layer_weights *layers;
    const float *out_norm, *out_norm_b;
    wmat lm_head; /* [vocab][hidden]; the embedding when tied */
    /* memory owned here: f32 copies of small vectors, repacked GPT-2 Conv1D matrices */
    void **owned;
    int n_owned;
    int64_t n_params, n_bytes;
    char dtypes[32];
} model_weights;

cllm_status model_weights_bind(const model_config *c, const st_set *st, model_weights *w);
void model_weights_free(model_weights *w);
/* 64-byte aligned memory owned (and freed) by w; NULL when out of memory. */
void *model_weights_own(model_weights *w, size_t bytes);

struct gguf_file;
/* Bind llama.cpp tensor names (token_embd, blk.N.attn_q, ...) of a GGUF file
 * (weights_gguf.c): matrices in place in any supported dtype, vectors converted to f32. */
cllm_status model_weights_bind_gguf(const model_config *c, const struct gguf_file *f,
                                    model_weights *w);
/* Quantize every matrix of a plain dtype whose rows fit the block size into t, in memory
 * (weights_quant.c; `cllm run --quant`). */
cllm_status model_weights_quantize(model_weights *w, int n_layers, dtype t);
/* "q8_0", "Q4_K", "f16", ... -> dtype (Q8_K excluded: an activation type). */
bool model_quant_type(const char *name, dtype *out);

#endif
