/* attention.h - causal softmax attention of a batch of query tokens over a paged KV cache.
 * Each token reads its own sequence's blocks through that sequence's block table, so tokens of
 * different sequences (and positions) can share one call. */
#ifndef CLLM_KERNELS_ATTENTION_H
#define CLLM_KERNELS_ATTENTION_H

#include "base/dtype.h"
#include "base/threadpool.h"
#include <stddef.h>
#include <stdint.h>

typedef struct attn_batch {
    int n_tokens;
    const float *q; /* [n_tokens][n_heads*hd], RoPE applied */
    int ldq;
    float *out; /* [n_tokens][n_heads*hd] */
    int ldo;
    const int32_t *pos;           /* [n_tokens] position of each query token */
    const int32_t *const *tables; /* [n_tokens] block table of the token's sequence */
    const uint8_t *k, *v;         /* this layer's K pool ([block][kv_head][hd][slot], transposed)
                                     and V pool ([block][kv_head][slot][hd]) */
    size_t block_bytes, head_bytes;
    int block_size;
    dtype dt;
    int n_heads, n_kv_heads, hd;
    float scale;
    int window;                /* > 0: attend only to the last `window` positions */
    float *scratch;            /* per thread: scratch_per_thread floats */
    size_t scratch_per_thread; /* >= attn_scratch_floats(max_pos + 1, block_size, hd, G) */
} attn_batch;

/* Scratch floats per thread for contexts up to n_ctx; group = query heads per KV head. */
size_t attn_scratch_floats(int n_ctx, int block_size, int hd, int group);
void kern_attention(threadpool *tp, const attn_batch *a);

#endif
