/* kv_cache.c - KV pool memory; block ids and tables are delegated to the block manager. */
#include "kv/kv_cache.h"

#include "base/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t kv_bytes_per_token(int n_layers, int n_kv_heads, int head_dim, dtype dt) {
    return 2 * (size_t)n_layers * (size_t)n_kv_heads * (size_t)head_dim * dtype_size(dt);
}

cllm_status kv_cache_create(int n_layers, int n_kv_heads, int head_dim, int block_size,
                            int n_blocks, dtype dt, kv_cache **out) {
    *out = NULL;
    if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0 || block_size <= 0 || n_blocks <= 0 ||
        block_size > 4096)
        return err_set(CLLM_ERR_INVALID_ARG, "kv cache: bad geometry (blocks %d of %d tokens)",
                       n_blocks, block_size);
    kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return err_set(CLLM_ERR_NOMEM, "out of memory");
    kv->n_layers = n_layers;
    kv->n_kv_heads = n_kv_heads;
    kv->head_dim = head_dim;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->dt = dt;
    kv->head_bytes = (size_t)block_size * head_dim * dtype_size(dt);
    kv->block_bytes = kv->head_bytes * n_kv_heads;
    kv->layer_bytes = kv->block_bytes * n_blocks;
    size_t total = kv->layer_bytes * n_layers;
    if (total / n_layers != kv->layer_bytes || total > ((size_t)1 << 40)) {
        free(kv);
        return err_set(CLLM_ERR_LIMIT, "kv cache: size overflow");
    }
    total = (total + 63) / 64 * 64;
    kv->k = aligned_alloc(64, total);
    kv->v = aligned_alloc(64, total);
    if (!kv->k || !kv->v) {
        kv_cache_free(kv);
        return err_set(CLLM_ERR_NOMEM, "kv cache: cannot allocate %zu MiB", 2 * total >> 20);
    }
    cllm_status st = kv_bm_create(n_blocks, block_size, &kv->bm);
    if (st) {
        kv_cache_free(kv);
        return st;
    }
    *out = kv;
    return CLLM_OK;
}

void kv_cache_free(kv_cache *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    kv_bm_free(kv->bm);
    free(kv);
}
