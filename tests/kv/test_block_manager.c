/* test_block_manager.c - directed tests of the KV block manager: prefix hits and misses, the
 * cached-token cap, partial blocks, chained hashes, forced collisions, LRU, revival, dedup. */
#include "check.h"
#include "kv/block_manager.h"

#include <string.h>

#define BS 4

static int n_seq_checks;
/* kv_bm_check over the given live sequences */
static void check_all(const kv_block_manager *bm, const kv_seq *a, const kv_seq *b, const kv_seq *c,
                      const kv_seq *d) {
    const kv_seq *v[4];
    int n = 0;
    if (a) v[n++] = a;
    if (b) v[n++] = b;
    if (c) v[n++] = c;
    if (d) v[n++] = d;
    cllm_status st = kv_bm_check(bm, v, n);
    CHECK_MSG(st == CLLM_OK, "%s", cllm_last_error());
    n_seq_checks++;
}

static void fill(int32_t *t, int n, int32_t base) {
    for (int i = 0; i < n; i++)
        t[i] = base + i;
}

/* allocate + "prefill" (commit everything computed) like the engine will */
static int run_prompt(kv_block_manager *bm, kv_seq *s, const int32_t *t, int n) {
    int cached = -1;
    cllm_status st = kv_bm_seq_alloc_prompt(bm, s, t, n, &cached);
    CHECK_MSG(st == CLLM_OK, "%s", cllm_last_error());
    kv_bm_seq_commit(bm, s, n);
    return cached;
}

static void test_hit_miss_and_cap(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(16, BS, &bm) == CLLM_OK);
    int32_t p[12];
    fill(p, 12, 100);
    kv_seq a = {0}, b = {0}, c = {0}, d = {0};
    CHECK(run_prompt(bm, &a, p, 10) == 0); /* cold */
    CHECK(a.n_blocks == 3 && a.n_tokens == 10 && a.n_hashed == 2);
    CHECK(bm->n_registered == 2 && kv_bm_n_used(bm) == 3);
    int cached;
    CHECK(kv_bm_prompt_blocks_needed(bm, p, 10, &cached) == 1 && cached == 8);
    CHECK(run_prompt(bm, &b, p, 10) == 8); /* 2 full blocks hit, the partial one is fresh */
    CHECK(b.blocks[0] == a.blocks[0] && b.blocks[1] == a.blocks[1] && b.blocks[2] != a.blocks[2]);
    CHECK(bm->ref[a.blocks[0]] == 2 && bm->ref[a.blocks[2]] == 1);
    check_all(bm, &a, &b, NULL, NULL);
    /* miss from the second block on */
    int32_t q[10];
    memcpy(q, p, sizeof q);
    q[5] = 7;
    CHECK(run_prompt(bm, &c, q, 10) == 4);
    CHECK(c.blocks[0] == a.blocks[0] && c.blocks[1] != a.blocks[1]);
    CHECK(bm->ref[a.blocks[0]] == 3);
    kv_bm_seq_release(bm, &c);
    /* cap: a prompt that is entirely cached still recomputes its last block's token(s) */
    CHECK(run_prompt(bm, &c, p, 8) == 4); /* (8-1)/4 = 1 block */
    CHECK(c.blocks[0] == a.blocks[0] && c.blocks[1] != a.blocks[1]);
    CHECK(bm->ref[c.blocks[1]] == 1);
    CHECK(run_prompt(bm, &d, p, 9) == 8); /* 9 tokens: 2 full blocks may be reused */
    kv_bm_seq_release(bm, &d);
    CHECK(run_prompt(bm, &d, p, 1) == 0);
    kv_bm_seq_release(bm, &d);
    CHECK(run_prompt(bm, &d, p, 4) == 0); /* one full block: recompute it */
    CHECK(d.blocks[0] != a.blocks[0]);
    check_all(bm, &a, &b, &c, &d);
    CHECK(bm->stats.hit_tokens == 8 + 4 + 4 + 8 &&
          bm->stats.prompt_tokens == 10 + 10 + 10 + 8 + 9 + 1 + 4);
    /* bad calls */
    CHECK(kv_bm_seq_alloc_prompt(bm, &a, p, 4, &cached) == CLLM_ERR_INVALID_ARG); /* not empty */
    kv_seq e = {0};
    CHECK(kv_bm_seq_alloc_prompt(bm, &e, p, 0, &cached) == CLLM_ERR_INVALID_ARG);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_seq_free(bm, &d);
    kv_bm_seq_free(bm, &e);
    CHECK(kv_bm_n_used(bm) == 0 && kv_bm_n_free(bm) + kv_bm_n_cached(bm) == 16);
    check_all(bm, NULL, NULL, NULL, NULL);
    kv_bm_free(bm);
}

static void test_partial_and_append(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(8, BS, &bm) == CLLM_OK);
    int32_t p[16];
    fill(p, 16, 1);
    kv_seq a = {0}, b = {0}, c = {0};
    CHECK(run_prompt(bm, &a, p, 6) == 0);
    CHECK(a.n_hashed == 1 && bm->n_registered == 1); /* the partial block is not hashed */
    /* a partial block is never shared, even for the same tokens */
    CHECK(run_prompt(bm, &b, p, 7) == 4 && b.blocks[1] != a.blocks[1]);
    CHECK(bm->ref[a.blocks[1]] == 1 && bm->ref[b.blocks[1]] == 1);
    check_all(bm, &a, &b, NULL, NULL);
    /* decode into a: filling block 1 does not hash it until its KV is committed */
    CHECK(kv_bm_seq_append(bm, &a, p[6]) == CLLM_OK);
    CHECK(kv_bm_seq_append(bm, &a, p[7]) == CLLM_OK && a.n_blocks == 2 && a.n_tokens == 8);
    CHECK(a.n_hashed == 1);
    CHECK(kv_bm_seq_blocks_needed(bm, &a, 1) == 1 && kv_bm_seq_blocks_needed(bm, &a, 4) == 1 &&
          kv_bm_seq_blocks_needed(bm, &a, 5) == 2);
    CHECK(kv_bm_seq_append(bm, &a, p[8]) == CLLM_OK && a.n_blocks == 3); /* new block */
    kv_bm_seq_commit(bm, &a, 7); /* block 1 not fully computed yet */
    CHECK(a.n_hashed == 1);
    check_all(bm, &a, &b, NULL, NULL);
    kv_bm_seq_commit(bm, &a, 9);
    CHECK(a.n_hashed == 2 && bm->n_registered == 2);
    CHECK(run_prompt(bm, &c, p, 12) == 8);
    CHECK(c.blocks[0] == a.blocks[0] && c.blocks[1] == a.blocks[1]);
    CHECK(bm->ref[a.blocks[1]] == 2);
    check_all(bm, &a, &b, &c, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_free(bm);
}

static void test_chained(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(16, BS, &bm) == CLLM_OK);
    /* same second block [5 6 7 8] under different first blocks */
    int32_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[9] = {9, 2, 3, 4, 5, 6, 7, 8, 9};
    kv_seq a = {0}, b = {0}, c = {0};
    CHECK(run_prompt(bm, &a, x, 9) == 0);
    CHECK(run_prompt(bm, &b, y, 9) == 0);
    CHECK(b.blocks[1] != a.blocks[1] && bm->n_registered == 4);
    CHECK(bm->hash[a.blocks[1]] != bm->hash[b.blocks[1]]); /* chain hash covers the parent */
    CHECK(run_prompt(bm, &c, y, 9) == 8 && c.blocks[1] == b.blocks[1]);
    check_all(bm, &a, &b, &c, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_free(bm);
}

static uint64_t const_hash(uint64_t parent, const int32_t *t, int n) {
    return 42;
}
static uint64_t tokens_only_hash(uint64_t parent, const int32_t *t, int n) {
    return kv_bm_default_hash(0, t, n);
}

static void test_collisions(void) {
    /* every block hashes to the same value: only token + parent-prefix verification separates
     * them */
    kv_block_manager *bm;
    CHECK(kv_bm_create(32, BS, &bm) == CLLM_OK);
    kv_bm_set_hash_fn(bm, const_hash);
    int32_t p1[9] = {1, 2, 3, 4, 5, 6, 7, 8, 0}, p2[9] = {11, 12, 13, 14, 15, 16, 17, 18, 0};
    int32_t mix[9] = {1, 2, 3, 4, 15, 16, 17, 18, 0};
    kv_seq a = {0}, b = {0}, c = {0}, d = {0};
    CHECK(run_prompt(bm, &a, p1, 9) == 0);
    CHECK(run_prompt(bm, &b, p2, 9) == 0); /* same hash, other tokens: miss */
    CHECK(bm->n_registered == 4);          /* several entries under one key */
    CHECK(run_prompt(bm, &c, p2, 9) == 8);
    CHECK(c.blocks[0] == b.blocks[0] && c.blocks[1] == b.blocks[1]);
    /* mix's block 1 equals p2's block 1 in tokens and in hash (and parent hash), but was
     * computed under another prefix: must not be served */
    CHECK(run_prompt(bm, &d, mix, 9) == 4);
    CHECK(d.blocks[0] == a.blocks[0] && d.blocks[1] != b.blocks[1]);
    CHECK(bm->n_registered == 5);
    check_all(bm, &a, &b, &c, &d);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_seq_free(bm, &d);
    /* evicting colliding entries out of the map keeps the others findable */
    check_all(bm, NULL, NULL, NULL, NULL);
    int32_t big[32 * BS];
    fill(big, 32 * BS, 1000);
    CHECK(run_prompt(bm, &a, big, 29 * BS) == 0); /* 27 free + 2 of the 5 cached evicted */
    CHECK(bm->stats.evictions == 2);
    check_all(bm, &a, NULL, NULL, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_free(bm);

    /* a hash that ignores the parent: same block tokens under different parents collide */
    CHECK(kv_bm_create(16, BS, &bm) == CLLM_OK);
    kv_bm_set_hash_fn(bm, tokens_only_hash);
    int32_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[9] = {9, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(run_prompt(bm, &a, x, 9) == 0);
    CHECK(run_prompt(bm, &b, y, 9) == 0 && b.blocks[1] != a.blocks[1]);
    CHECK(run_prompt(bm, &c, y, 9) == 8 && c.blocks[1] == b.blocks[1]);
    CHECK(run_prompt(bm, &d, x, 9) == 8 && d.blocks[1] == a.blocks[1]);
    check_all(bm, &a, &b, &c, &d);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_seq_free(bm, &d);
    kv_bm_free(bm);
}

static void test_lru_and_revive(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(9, BS, &bm) == CLLM_OK);
    int32_t p[9], q[9], big[8 * BS];
    fill(p, 9, 100);
    fill(q, 9, 200);
    fill(big, 8 * BS, 300);
    kv_seq a = {0}, b = {0}, c = {0};
    CHECK(run_prompt(bm, &a, p, 9) == 0);
    CHECK(run_prompt(bm, &b, q, 9) == 0);
    int32_t a0 = a.blocks[0], a1 = a.blocks[1], a2 = a.blocks[2];
    int32_t b0 = b.blocks[0], b1 = b.blocks[1];
    kv_bm_seq_release(bm, &a); /* a2 (no hash) -> free; a1, a0 -> LRU in that order */
    CHECK(kv_bm_n_cached(bm) == 2 && kv_bm_n_free(bm) == 4 && kv_bm_n_used(bm) == 3);
    CHECK(bm->ref[a0] == 0 && bm->lru_head == a1 && bm->lru_tail == a0);
    kv_bm_seq_release(bm, &b); /* LRU: a1 a0 b1 b0 */
    CHECK(kv_bm_n_cached(bm) == 4 && kv_bm_n_free(bm) == 5);
    CHECK(kv_bm_can_allocate(bm, 9) && !kv_bm_can_allocate(bm, 10));
    check_all(bm, NULL, NULL, NULL, NULL);
    /* 6 fresh blocks: 5 free first, then evict a1 (least recently freed) */
    CHECK(run_prompt(bm, &c, big, 6 * BS) == 0);
    CHECK(bm->stats.evictions == 1 && kv_bm_n_cached(bm) == 3 && bm->lru_head == a0);
    int has_a2 = 0, has_a1 = 0, has_a0 = 0;
    for (int i = 0; i < c.n_blocks; i++) {
        has_a2 += c.blocks[i] == a2;
        has_a1 += c.blocks[i] == a1;
        has_a0 += c.blocks[i] == a0;
    }
    CHECK(has_a2 && has_a1 && !has_a0);
    int cached;
    CHECK(kv_bm_prompt_blocks_needed(bm, p, 9, &cached) == 3 && cached == 4); /* a1 is gone */
    CHECK(kv_bm_prompt_blocks_needed(bm, q, 9, &cached) == 3 && cached == 8); /* 1 + 2 revived */
    /* revive q's blocks out of the LRU first; the fresh block then evicts a0, not them */
    CHECK(run_prompt(bm, &a, q, 9) == 8 && a.blocks[0] == b0 && a.blocks[1] == b1);
    CHECK(a.blocks[2] == a0 && bm->stats.evictions == 2);
    CHECK(bm->ref[b0] == 1 && kv_bm_n_cached(bm) == 0 && kv_bm_n_free(bm) == 0);
    CHECK(kv_bm_seq_append(bm, &a, 5) == CLLM_OK); /* fits in the partial block */
    check_all(bm, &a, &c, NULL, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_free(bm);
}

static void test_shared_refs(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(32, BS, &bm) == CLLM_OK);
    int32_t sys[12];
    fill(sys, 12, 50);
    kv_seq s[4] = {{0}};
    for (int k = 0; k < 4; k++) {
        int32_t t[12];
        memcpy(t, sys, sizeof t);
        t[9] = 1000 + k; /* shared 8-token prefix, distinct tails */
        CHECK(run_prompt(bm, &s[k], t, 12) == (k ? 8 : 0));
        for (int j = 0; j < 4; j++)
            CHECK(kv_bm_seq_append(bm, &s[k], 2000 + j) == CLLM_OK);
        kv_bm_seq_commit(bm, &s[k], s[k].n_tokens);
    }
    int32_t b0 = s[0].blocks[0], b1 = s[0].blocks[1];
    CHECK(bm->ref[b0] == 4 && bm->ref[b1] == 4);
    check_all(bm, &s[0], &s[1], &s[2], &s[3]);
    for (int k = 0; k < 4; k++) {
        kv_bm_seq_release(bm, &s[k]);
        CHECK(bm->ref[b0] == 3 - k);
        check_all(bm, k < 1 ? &s[1] : NULL, k < 2 ? &s[2] : NULL, k < 3 ? &s[3] : NULL, NULL);
    }
    /* 2 shared + 4 x 2 own tail blocks, all committed full -> all cached */
    CHECK(kv_bm_n_cached(bm) == 10 && kv_bm_n_used(bm) == 0);
    for (int k = 0; k < 4; k++)
        kv_bm_seq_free(bm, &s[k]);
    kv_bm_free(bm);
}

typedef struct snap {
    int32_t ref[16], fr[16], lru[16], mv[64];
    uint64_t mk[64];
    int n_free, n_cached, n_reg, n_lru;
    kv_bm_stats stats;
} snap;
static void take(const kv_block_manager *bm, snap *x) {
    memset(x, 0, sizeof *x);
    memcpy(x->ref, bm->ref, (size_t)bm->n_blocks * 4);
    memcpy(x->fr, bm->free_stack, (size_t)bm->n_free * 4);
    for (int32_t b = bm->lru_head; b >= 0; b = bm->lru_next[b])
        x->lru[x->n_lru++] = b;
    memcpy(x->mv, bm->map_val, (bm->map_mask + 1) * 4);
    memcpy(x->mk, bm->map_key, (bm->map_mask + 1) * 8);
    x->n_free = bm->n_free;
    x->n_cached = bm->n_cached;
    x->n_reg = bm->n_registered;
    x->stats = bm->stats;
}

static void test_exhaustion(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(8, BS, &bm) == CLLM_OK);
    int32_t p[40], q[40];
    fill(p, 40, 1);
    fill(q, 40, 500);
    kv_seq a = {0}, b = {0}, c = {0};
    CHECK(run_prompt(bm, &a, p, 13) == 0); /* 4 blocks, 3 registered */
    kv_bm_seq_release(bm, &a);             /* 3 cached, 5 free */
    CHECK(run_prompt(bm, &b, q, 12) == 0); /* 3 blocks from free: 2 free + 3 cached left */
    snap before, after;
    take(bm, &before);
    int cached = -1;
    /* p reuses 3 cached blocks (revived, count against the pool) + needs 4 fresh = 7 > 5 */
    CHECK(kv_bm_prompt_blocks_needed(bm, p, 28, NULL) == 7);
    CHECK(kv_bm_seq_alloc_prompt(bm, &a, p, 28, &cached) == CLLM_ERR_LIMIT);
    CHECK(strstr(cllm_last_error(), "kv cache full") != NULL);
    CHECK(a.n_blocks == 0 && a.n_tokens == 0 && cached == 0);
    take(bm, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    CHECK(kv_bm_seq_alloc_prompt(bm, &c, q, 40, &cached) == CLLM_ERR_LIMIT); /* 3 hit + 7 > 5 */
    take(bm, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0 && c.n_blocks == 0);
    /* exactly fitting works: 3 revived + 2 fresh */
    CHECK(run_prompt(bm, &a, p, 20) == 12 && kv_bm_n_free(bm) == 0 && kv_bm_n_cached(bm) == 0);
    check_all(bm, &a, &b, NULL, NULL);
    /* append at a block boundary with nothing left */
    take(bm, &before);
    CHECK(kv_bm_seq_append(bm, &b, 9) == CLLM_ERR_LIMIT && b.n_tokens == 12 && b.n_blocks == 3);
    take(bm, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    check_all(bm, &a, &b, NULL, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_free(bm);
}

static void test_dedup(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(16, BS, &bm) == CLLM_OK);
    int32_t p[16];
    fill(p, 16, 1);
    kv_seq a = {0}, b = {0}, c = {0};
    int cached;
    /* both admitted before either computed: both miss */
    CHECK(kv_bm_seq_alloc_prompt(bm, &a, p, 6, &cached) == CLLM_OK && cached == 0);
    CHECK(kv_bm_seq_alloc_prompt(bm, &b, p, 6, &cached) == CLLM_OK && cached == 0);
    kv_bm_seq_commit(bm, &a, 6);
    kv_bm_seq_commit(bm, &b, 6);
    CHECK(bm->n_registered == 1); /* b's copy is not registered twice */
    CHECK(!(bm->flags[b.blocks[0]] & KV_BM_REGISTERED));
    CHECK(bm->uid[b.blocks[0]] == bm->uid[a.blocks[0]]);
    check_all(bm, &a, &b, NULL, NULL);
    /* b's next block chains to the registered twin, so it is matchable through a's block 0 */
    CHECK(kv_bm_seq_append(bm, &b, p[6]) == CLLM_OK && kv_bm_seq_append(bm, &b, p[7]) == CLLM_OK);
    kv_bm_seq_commit(bm, &b, 8);
    CHECK(bm->n_registered == 2);
    CHECK(run_prompt(bm, &c, p, 9) == 8);
    CHECK(c.blocks[0] == a.blocks[0] && c.blocks[1] == b.blocks[1]);
    check_all(bm, &a, &b, &c, NULL);
    int32_t bcopy = b.blocks[0];
    kv_bm_seq_release(bm, &b);
    CHECK(bm->ref[bcopy] == 0 && bm->flags[bcopy] == 0); /* the private copy goes to free */
    check_all(bm, &a, &c, NULL, NULL);
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_seq_free(bm, &c);
    kv_bm_free(bm);
}

static void test_disabled_and_checker(void) {
    kv_block_manager *bm;
    CHECK(kv_bm_create(8, BS, &bm) == CLLM_OK);
    bm->prefix_caching = false;
    int32_t p[9];
    fill(p, 9, 1);
    kv_seq a = {0}, b = {0};
    CHECK(run_prompt(bm, &a, p, 9) == 0 && a.n_hashed == 0 && bm->n_registered == 0);
    CHECK(run_prompt(bm, &b, p, 9) == 0 && b.blocks[0] != a.blocks[0]);
    kv_bm_seq_release(bm, &b);
    CHECK(kv_bm_n_cached(bm) == 0 && kv_bm_n_free(bm) == 5);
    check_all(bm, &a, NULL, NULL, NULL);
    /* the checker notices broken invariants */
    bm->ref[a.blocks[0]]++;
    const kv_seq *v[1] = {&a};
    CHECK(kv_bm_check(bm, v, 1) == CLLM_ERR_INTERNAL);
    bm->ref[a.blocks[0]]--;
    CHECK(kv_bm_check(bm, v, 1) == CLLM_OK);
    CHECK(kv_bm_check(bm, NULL, 0) == CLLM_ERR_INTERNAL); /* a's references are missing */
    kv_bm_seq_free(bm, &a);
    kv_bm_seq_free(bm, &b);
    kv_bm_free(bm);
    kv_bm_free(NULL);
    CHECK(kv_bm_create(0, BS, &bm) == CLLM_ERR_INVALID_ARG && bm == NULL);
    CHECK(kv_bm_create(4, 0, &bm) == CLLM_ERR_INVALID_ARG);
}

int main(void) {
    test_hit_miss_and_cap();
    test_partial_and_append();
    test_chained();
    test_collisions();
    test_lru_and_revive();
    test_shared_refs();
    test_exhaustion();
    test_dedup();
    test_disabled_and_checker();
    CHECK(n_seq_checks > 20);
    CHECK_DONE();
}
