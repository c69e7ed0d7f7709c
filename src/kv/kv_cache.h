/* kv_cache.h - the paged KV cache: one pool of fixed-size blocks (per layer, K and V) whose ids,
 * reference counts and prefix cache are managed by a kv_block_manager (block_manager.h).
 *
 * Layout: K is [layer][block][kv_head][head_dim][slot] (transposed inside a block, so attention
 * scores a whole block with broadcast FMAs) and V is [layer][block][kv_head][slot][head_dim], in
 * the cache dtype. */
#ifndef CLLM_KV_KV_CACHE_H
#define CLLM_KV_KV_CACHE_H

#include "base/dtype.h"
#include "kv/block_manager.h"
#include "cllm.h"
#include <stddef.h>
#include <stdint.h>

typedef struct kv_cache {
    int n_layers, n_kv_heads, head_dim, block_size, n_blocks;
    dtype dt;
    size_t head_bytes;  /* one kv head of one block: block_size * head_dim * elem */
    size_t block_bytes; /* one block of one layer: n_kv_heads * head_bytes */
    size_t layer_bytes; /* n_blocks * block_bytes */
    uint8_t *k, *v;
    kv_block_manager *bm; /* which blocks are free, used, cached; block tables */
} kv_cache;

/* Allocates n_blocks blocks for all layers (pages are touched lazily by the OS). */
cllm_status kv_cache_create(int n_layers, int n_kv_heads, int head_dim, int block_size,
                            int n_blocks, dtype dt, kv_cache **out);
void kv_cache_free(kv_cache *kv);
/* Bytes of K+V per token over all layers. */
size_t kv_bytes_per_token(int n_layers, int n_kv_heads, int head_dim, dtype dt);

static inline uint8_t *kv_k_head(const kv_cache *kv, int layer, int block, int head) {
    return kv->k + (size_t)layer * kv->layer_bytes + (size_t)block * kv->block_bytes +
           (size_t)head * kv->head_bytes;
}
static inline uint8_t *kv_v_head(const kv_cache *kv, int layer, int block, int head) {
    return kv->v + (size_t)layer * kv->layer_bytes + (size_t)block * kv->block_bytes +
           (size_t)head * kv->head_bytes;
}

#endif
