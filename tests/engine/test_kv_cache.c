/* test_kv_cache.c - block pool accounting: reserve, exhaustion (clear error, table unchanged),
 * release, reuse, and reference counts. */
#include "check.h"
#include "kv/kv_cache.h"

int main(void) {
    kv_cache *kv;
    CHECK(kv_cache_create(2, 2, 8, 16, 4, DTYPE_BF16, &kv) == CLLM_OK);
    CHECK(kv_bm_n_free(kv->bm) == 4);
    CHECK(kv->head_bytes == 16 * 8 * 2 && kv->block_bytes == 2 * kv->head_bytes);
    kv_seq a = {0}, b = {0};
    CHECK(kv_seq_reserve(kv, &a, 1) == CLLM_OK && a.n_blocks == 1);
    CHECK(kv_seq_reserve(kv, &a, 16) == CLLM_OK && a.n_blocks == 1);
    CHECK(kv_seq_reserve(kv, &a, 17) == CLLM_OK && a.n_blocks == 2);
    CHECK(kv_seq_reserve(kv, &b, 33) == CLLM_ERR_LIMIT && b.n_blocks == 0); /* needs 3, 2 free */
    CHECK(kv_seq_reserve(kv, &b, 32) == CLLM_OK && b.n_blocks == 2 && kv_bm_n_free(kv->bm) == 0);
    CHECK(a.blocks[0] != a.blocks[1] && b.blocks[0] != a.blocks[0] && b.blocks[1] != a.blocks[1]);
    CHECK(kv->bm->ref[a.blocks[0]] == 1);
    kv_seq_release(kv, &a);
    CHECK(kv_bm_n_free(kv->bm) == 2 && a.n_blocks == 0);
    CHECK(kv_seq_reserve(kv, &a, 20) == CLLM_OK && kv_bm_n_free(kv->bm) == 0);
    kv_seq_free(kv, &a);
    kv_seq_free(kv, &b);
    CHECK(kv_bm_n_free(kv->bm) == 4);
    CHECK(kv_bytes_per_token(24, 2, 64, DTYPE_BF16) == 2 * 24 * 2 * 64 * 2);
    kv_cache_free(kv);
    kv_cache_free(NULL);
    CHECK(kv_cache_create(2, 2, 8, 0, 4, DTYPE_F32, &kv) == CLLM_ERR_INVALID_ARG);
    CHECK_DONE();
}
