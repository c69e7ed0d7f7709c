/* kv_cache.c - block pool allocation, reference counts and block tables. */
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
    kv->ref = calloc((size_t)n_blocks, sizeof(int32_t));
    kv->free_list = malloc((size_t)n_blocks * sizeof(int32_t));
    if (!kv->k || !kv->v || !kv->ref || !kv->free_list) {
        kv_cache_free(kv);
        return err_set(CLLM_ERR_NOMEM, "kv cache: cannot allocate %zu MiB", 2 * total >> 20);
    }
    /* pop order 0, 1, 2, ... */
    for (int i = 0; i < n_blocks; i++)
        kv->free_list[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    *out = kv;
    return CLLM_OK;
}

void kv_cache_free(kv_cache *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->ref);
    free(kv->free_list);
    free(kv);
}

cllm_status kv_seq_reserve(kv_cache *kv, kv_seq *s, int n_tokens) {
    int need = (n_tokens + kv->block_size - 1) / kv->block_size;
    if (need <= s->n_blocks) return CLLM_OK;
    if (need > s->cap) {
        int cap = s->cap ? s->cap : 8;
        while (cap < need)
            cap *= 2;
        int32_t *nb = realloc(s->blocks, (size_t)cap * sizeof(int32_t));
        if (!nb) return err_set(CLLM_ERR_NOMEM, "out of memory");
        s->blocks = nb;
        s->cap = cap;
    }
    if (need - s->n_blocks > kv->n_free)
        return err_set(CLLM_ERR_LIMIT, "kv cache full: need %d more blocks, %d free",
                       need - s->n_blocks, kv->n_free);
    while (s->n_blocks < need) {
        int32_t b = kv->free_list[--kv->n_free];
        kv->ref[b] = 1;
        s->blocks[s->n_blocks++] = b;
    }
    return CLLM_OK;
}

void kv_seq_release(kv_cache *kv, kv_seq *s) {
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        int32_t b = s->blocks[i];
        if (--kv->ref[b] == 0) kv->free_list[kv->n_free++] = b;
    }
    s->n_blocks = 0;
}

void kv_seq_free(kv_cache *kv, kv_seq *s) {
    if (!s) return;
    if (kv) kv_seq_release(kv, s);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}
