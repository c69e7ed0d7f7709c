/* test_kv_cache.c - block pool accounting through token tables: allocation, exhaustion (clear
 * error, table unchanged), release, reuse, and reference counts. */
#include "check.h"
#include "kv/kv_cache.h"

int main(void) {
    kv_cache *kv;
    CHECK(kv_cache_create(2, 2, 8, 16, 4, DTYPE_BF16, &kv) == CLLM_OK);
    kv_block_manager *bm = kv->bm;
    bm->prefix_caching = false;
    CHECK(kv_bm_n_free(bm) == 4);
    CHECK(kv->head_bytes == 16 * 8 * 2 && kv->block_bytes == 2 * kv->head_bytes);
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = i + 1;
    kv_seq a = {0}, b = {0};
    int cached;
    CHECK(kv_bm_seq_alloc_prompt(bm, &a, ids, 1, &cached) == CLLM_OK && a.n_blocks == 1);
    for (int i = 1; i < 16; i++)
        CHECK(kv_bm_seq_append(bm, &a, ids[i]) == CLLM_OK);
    CHECK(a.n_blocks == 1);
    CHECK(kv_bm_seq_append(bm, &a, ids[16]) == CLLM_OK && a.n_blocks == 2);
    /* needs 3, 2 free */
    CHECK(kv_bm_seq_alloc_prompt(bm, &b, ids, 33, &cached) == CLLM_ERR_LIMIT && b.n_blocks == 0);
    CHECK(kv_bm_seq_alloc_prompt(bm, &b, ids, 32, &cached) == CLLM_OK && b.n_blocks == 2 &&
          kv_bm_n_free(bm) == 0);
    CHECK(a.blocks[0] != a.blocks[1] && b.blocks[0] != a.blocks[0] && b.blocks[1] != a.blocks[1]);
    CHECK(bm->ref[a.blocks[0]] == 1);
    kv_bm_seq_release(bm, &a);
    CHECK(kv_bm_n_free(bm) == 2 && a.n_blocks == 0);
    CHECK(kv_bm_seq_alloc_prompt(bm, &a, ids, 20, &cached) == CLLM_OK && kv_bm_n_free(bm) == 0);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    CHECK(kv_bm_n_free(bm) == 4);
    CHECK(kv_bytes_per_token(24, 2, 64, DTYPE_BF16) == 2 * 24 * 2 * 64 * 2);
    kv_cache_free(kv);
    kv_cache_free(NULL);
    CHECK(kv_cache_create(2, 2, 8, 0, 4, DTYPE_F32, &kv) == CLLM_ERR_INVALID_ARG);
    CHECK_DONE();
}
