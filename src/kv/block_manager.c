/* block_manager.c - KV block ids: ref counts, free list, prefix cache (chained xxHash -> block map
 * verified by token ids and parent prefix), LRU eviction of cached blocks. */
#include "kv/block_manager.h"

#include "base/error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t kv_bm_default_hash(uint64_t parent_hash, const int32_t *tokens, int n_tokens) {
    return XXH3_64bits_withSeed(tokens, (size_t)n_tokens * sizeof(int32_t), parent_hash);
}

cllm_status kv_bm_create(int n_blocks, int block_size, kv_block_manager **out) {
    *out = NULL;
    if (n_blocks <= 0 || block_size <= 0 || block_size > 4096 || n_blocks > (1 << 28))
        return err_set(CLLM_ERR_INVALID_ARG, "block manager: bad geometry (blocks %d of %d tokens)",
                       n_blocks, block_size);
    kv_block_manager *bm = calloc(1, sizeof *bm);
    if (!bm) return err_set(CLLM_ERR_NOMEM, "out of memory");
    bm->n_blocks = n_blocks;
    bm->block_size = block_size;
    bm->prefix_caching = true;
    bm->hash_fn = kv_bm_default_hash;
    /* at most n_blocks entries, load factor <= 1/2 keeps probe runs short */
    bm->map_bits = 3;
    while ((1u << bm->map_bits) < 2u * (unsigned)n_blocks)
        bm->map_bits++;
    bm->map_mask = (1u << bm->map_bits) - 1;
    size_t nb = (size_t)n_blocks, cap = (size_t)bm->map_mask + 1;
    bm->ref = calloc(nb, sizeof *bm->ref);
    bm->hash = calloc(nb, sizeof *bm->hash);
    bm->parent_hash = calloc(nb, sizeof *bm->parent_hash);
    bm->uid = calloc(nb, sizeof *bm->uid);
    bm->parent_uid = calloc(nb, sizeof *bm->parent_uid);
    bm->flags = calloc(nb, sizeof *bm->flags);
    bm->tokens = calloc(nb * (size_t)block_size, sizeof *bm->tokens);
    bm->free_stack = malloc(nb * sizeof *bm->free_stack);
    bm->lru_prev = malloc(nb * sizeof *bm->lru_prev);
    bm->lru_next = malloc(nb * sizeof *bm->lru_next);
    bm->map_key = calloc(cap, sizeof *bm->map_key);
    bm->map_val = malloc(cap * sizeof *bm->map_val);
    if (!bm->ref || !bm->hash || !bm->parent_hash || !bm->uid || !bm->parent_uid || !bm->flags ||
        !bm->tokens || !bm->free_stack || !bm->lru_prev || !bm->lru_next || !bm->map_key ||
        !bm->map_val) {
        kv_bm_free(bm);
        return err_set(CLLM_ERR_NOMEM, "block manager: out of memory for %d blocks", n_blocks);
    }
    /* pop order 0, 1, 2, ... */
    for (int i = 0; i < n_blocks; i++) {
        bm->free_stack[i] = n_blocks - 1 - i;
        bm->lru_prev[i] = bm->lru_next[i] = -1;
    }
    bm->n_free = n_blocks;
    bm->lru_head = bm->lru_tail = -1;
    for (size_t i = 0; i < cap; i++)
        bm->map_val[i] = -1;
    bm->next_uid = 1;
    *out = bm;
    return CLLM_OK;
}

void kv_bm_free(kv_block_manager *bm) {
    if (!bm) return;
    free(bm->ref);
    free(bm->hash);
    free(bm->parent_hash);
    free(bm->uid);
    free(bm->parent_uid);
    free(bm->flags);
    free(bm->tokens);
    free(bm->free_stack);
    free(bm->lru_prev);
    free(bm->lru_next);
    free(bm->map_key);
    free(bm->map_val);
    free(bm);
}

void kv_bm_set_hash_fn(kv_block_manager *bm, kv_hash_fn fn) {
    bm->hash_fn = fn ? fn : kv_bm_default_hash;
}

/* ---- hash map: linear probing; several entries may share a key (collisions are legal) ---- */

/* Mix before taking bits so an injected weak hash still spreads over the table. */
static uint32_t map_home(const kv_block_manager *bm, uint64_t key) {
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bm->map_bits));
}

static void map_insert(kv_block_manager *bm, uint64_t key, int32_t b) {
    uint32_t i = map_home(bm, key);
    while (bm->map_val[i] >= 0)
        i = (i + 1) & bm->map_mask;
    bm->map_key[i] = key;
    bm->map_val[i] = b;
    bm->n_registered++;
}

/* Backward-shift deletion keeps probe runs contiguous without tombstones. */
static void map_remove(kv_block_manager *bm, uint64_t key, int32_t b) {
    uint32_t i = map_home(bm, key);
    while (!(bm->map_val[i] == b && bm->map_key[i] == key)) {
        assert(bm->map_val[i] >= 0);
        i = (i + 1) & bm->map_mask;
    }
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & bm->map_mask;
        if (bm->map_val[j] < 0) break;
        uint32_t home = map_home(bm, bm->map_key[j]);
        /* entry j may move to hole i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        bm->map_key[i] = bm->map_key[j];
        bm->map_val[i] = bm->map_val[j];
        i = j;
    }
    bm->map_val[i] = -1;
    bm->n_registered--;
}

/* A registered block equal to (parent prefix, tokens) under chain hash `key`, or -1. */
static int32_t map_find(const kv_block_manager *bm, uint64_t key, uint64_t parent_hash,
                        uint64_t parent_uid, const int32_t *tokens) {
    size_t bytes = (size_t)bm->block_size * sizeof(int32_t);
    for (uint32_t i = map_home(bm, key); bm->map_val[i] >= 0; i = (i + 1) & bm->map_mask) {
        int32_t b = bm->map_val[i];
        if (bm->map_key[i] == key && bm->parent_uid[b] == parent_uid &&
            bm->parent_hash[b] == parent_hash &&
            memcmp(bm->tokens + (size_t)b * bm->block_size, tokens, bytes) == 0)
            return b;
    }
    return -1;
}

/* ---- LRU of cached (registered, ref 0) blocks ---- */

static void lru_push_tail(kv_block_manager *bm, int32_t b) {
    bm->lru_prev[b] = bm->lru_tail;
    bm->lru_next[b] = -1;
    if (bm->lru_tail >= 0)
        bm->lru_next[bm->lru_tail] = b;
    else
        bm->lru_head = b;
    bm->lru_tail = b;
    bm->n_cached++;
}

static void lru_remove(kv_block_manager *bm, int32_t b) {
    int32_t p = bm->lru_prev[b], n = bm->lru_next[b];
    if (p >= 0)
        bm->lru_next[p] = n;
    else
        bm->lru_head = n;
    if (n >= 0)
        bm->lru_prev[n] = p;
    else
        bm->lru_tail = p;
    bm->lru_prev[b] = bm->lru_next[b] = -1;
    bm->n_cached--;
}

/* ---- blocks ---- */

static void clear_hash(kv_block_manager *bm, int32_t b) {
    bm->flags[b] = 0;
    bm->hash[b] = bm->parent_hash[b] = bm->uid[b] = bm->parent_uid[b] = 0;
}

/* A block with ref 1 and no hash: free list first, else evict the least recently freed cached
 * block. The caller has checked availability. */
static int32_t take_fresh(kv_block_manager *bm) {
    int32_t b;
    if (bm->n_free > 0) {
        b = bm->free_stack[--bm->n_free];
    } else {
        b = bm->lru_head;
        assert(b >= 0);
        lru_remove(bm, b);
        map_remove(bm, bm->hash[b], b);
        clear_hash(bm, b);
        bm->stats.evictions++;
    }
    bm->ref[b] = 1;
    return b;
}

static void drop_ref(kv_block_manager *bm, int32_t b) {
    assert(bm->ref[b] > 0);
    if (--bm->ref[b] > 0) return;
    if (bm->flags[b] & KV_BM_REGISTERED) {
        lru_push_tail(bm, b);
    } else {
        clear_hash(bm, b);
        bm->free_stack[bm->n_free++] = b;
    }
}

static cllm_status ensure_cap(kv_seq *s, int need) {
    if (need <= s->cap) return CLLM_OK;
    int cap = s->cap ? s->cap : 8;
    while (cap < need)
        cap *= 2;
    int32_t *nb = realloc(s->blocks, (size_t)cap * sizeof(int32_t));
    if (!nb) return err_set(CLLM_ERR_NOMEM, "out of memory");
    s->blocks = nb;
    s->cap = cap;
    return CLLM_OK;
}

/* Longest run of matching cached full blocks for a prompt (capped by the prefix-cache rule);
 * the matched ids go to out[] if non-NULL. Returns the count; *n_revive = how many are ref 0. */
static int match_prefix(const kv_block_manager *bm, const int32_t *tokens, int n, int32_t *out,
                        int *n_revive) {
    *n_revive = 0;
    if (!bm->prefix_caching || n <= 1 || bm->n_registered == 0) return 0;
    int bs = bm->block_size, max_blocks = (n - 1) / bs, m = 0;
    uint64_t ph = kv_bm_root_hash, puid = 0;
    for (; m < max_blocks; m++) {
        const int32_t *t = tokens + (size_t)m * bs;
        uint64_t h = bm->hash_fn(ph, t, bs);
        int32_t b = map_find(bm, h, ph, puid, t);
        if (b < 0) break;
        if (out) out[m] = b;
        if (bm->ref[b] == 0) (*n_revive)++;
        ph = h;
        puid = bm->uid[b];
    }
    return m;
}

int kv_bm_prompt_blocks_needed(const kv_block_manager *bm, const int32_t *tokens, int n,
                               int *n_cached_tokens) {
    int n_revive, bs = bm->block_size;
    int m = match_prefix(bm, tokens, n, NULL, &n_revive);
    if (n_cached_tokens) *n_cached_tokens = m * bs;
    return (n + bs - 1) / bs - m + n_revive;
}

cllm_status kv_bm_seq_alloc_prompt(kv_block_manager *bm, kv_seq *s, const int32_t *tokens, int n,
                                   int *n_cached_tokens) {
    if (n_cached_tokens) *n_cached_tokens = 0;
    if (s->n_blocks != 0 || s->n_tokens != 0)
        return err_set(CLLM_ERR_INVALID_ARG, "kv: prompt allocation needs an empty sequence");
    if (n <= 0) return err_set(CLLM_ERR_INVALID_ARG, "kv: empty prompt");
    int bs = bm->block_size, total = (n + bs - 1) / bs;
    cllm_status st = ensure_cap(s, total);
    if (st) return st;
    /* match straight into the table: nothing else changes until the capacity check passes */
    int n_revive, m = match_prefix(bm, tokens, n, s->blocks, &n_revive);
    int fresh = total - m;
    if (fresh + n_revive > bm->n_free + bm->n_cached)
        return err_set(CLLM_ERR_LIMIT,
                       "kv cache full: prompt of %d tokens needs %d blocks (%d cached), %d free "
                       "+ %d evictable of %d",
                       n, fresh + n_revive, m, bm->n_free, bm->n_cached - n_revive, bm->n_blocks);
    /* revive before taking fresh blocks, so eviction cannot take a block just matched */
    for (int i = 0; i < m; i++) {
        int32_t b = s->blocks[i];
        if (bm->ref[b]++ == 0) lru_remove(bm, b);
    }
    for (int i = m; i < total; i++) {
        int32_t b = take_fresh(bm);
        s->blocks[i] = b;
        int len = i == total - 1 ? n - i * bs : bs;
        memcpy(bm->tokens + (size_t)b * bs, tokens + (size_t)i * bs, (size_t)len * sizeof(int32_t));
    }
    s->n_blocks = total;
    s->n_tokens = n;
    s->n_hashed = m;
    bm->stats.prompt_tokens += n;
    bm->stats.hit_tokens += (int64_t)m * bs;
    if (n_cached_tokens) *n_cached_tokens = m * bs;
    return CLLM_OK;
}

cllm_status kv_bm_seq_append(kv_block_manager *bm, kv_seq *s, int32_t token) {
    int bs = bm->block_size, bi = s->n_tokens / bs;
    if (bi == s->n_blocks) {
        cllm_status st = ensure_cap(s, bi + 1);
        if (st) return st;
        if (bm->n_free + bm->n_cached == 0)
            return err_set(CLLM_ERR_LIMIT, "kv cache full: no block left for position %d of %d",
                           s->n_tokens, bm->n_blocks);
        s->blocks[s->n_blocks++] = take_fresh(bm);
    }
    int32_t b = s->blocks[bi];
    /* sharing invariant: only committed full blocks are shared, and this one is neither */
    assert(bm->ref[b] == 1 && !(bm->flags[b] & KV_BM_HASHED) && bi >= s->n_hashed);
    bm->tokens[(size_t)b * bs + s->n_tokens % bs] = token;
    s->n_tokens++;
    return CLLM_OK;
}

void kv_bm_seq_commit(kv_block_manager *bm, kv_seq *s, int n_computed) {
    if (!bm->prefix_caching) return;
    int bs = bm->block_size;
    if (n_computed > s->n_tokens) n_computed = s->n_tokens;
    for (int i = s->n_hashed; (i + 1) * bs <= n_computed; i++) {
        int32_t b = s->blocks[i];
        uint64_t ph = kv_bm_root_hash, puid = 0;
        if (i > 0) {
            ph = bm->hash[s->blocks[i - 1]];
            puid = bm->uid[s->blocks[i - 1]];
        }
        const int32_t *t = bm->tokens + (size_t)b * bs;
        uint64_t h = bm->hash_fn(ph, t, bs);
        bm->hash[b] = h;
        bm->parent_hash[b] = ph;
        bm->parent_uid[b] = puid;
        bm->flags[b] = KV_BM_HASHED;
        int32_t twin = map_find(bm, h, ph, puid, t);
        if (twin >= 0) {
            /* an identical block is registered: keep ours private, but let our children chain
             * to the registered one so they stay matchable */
            bm->uid[b] = bm->uid[twin];
        } else {
            bm->uid[b] = bm->next_uid++;
            bm->flags[b] |= KV_BM_REGISTERED;
            map_insert(bm, h, b);
        }
        s->n_hashed = i + 1;
    }
}

int kv_bm_seq_blocks_needed(const kv_block_manager *bm, const kv_seq *s, int n_new_tokens) {
    int bs = bm->block_size, need = (s->n_tokens + n_new_tokens + bs - 1) / bs - s->n_blocks;
    return need > 0 ? need : 0;
}

void kv_bm_seq_release(kv_block_manager *bm, kv_seq *s) {
    for (int i = s->n_blocks - 1; i >= 0; i--)
        drop_ref(bm, s->blocks[i]);
    s->n_blocks = s->n_tokens = s->n_hashed = 0;
}

void kv_bm_seq_free(kv_block_manager *bm, kv_seq *s) {
    if (!s) return;
    if (bm) kv_bm_seq_release(bm, s);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}

/* ---- consistency check ---- */

/* the message is formatted (reading cnt) before cnt is freed */
static cllm_status free_and(int32_t *cnt, cllm_status st) {
    free(cnt);
    return st;
}
#define BAD(...) free_and(cnt, err_set(CLLM_ERR_INTERNAL, "kv invariant: " __VA_ARGS__))

cllm_status kv_bm_check(const kv_block_manager *bm, const kv_seq *const *seqs, int n_seqs) {
    int nb = bm->n_blocks, bs = bm->block_size;
    int32_t *cnt = calloc((size_t)nb, sizeof *cnt);
    if (!cnt) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_seqs; k++) {
        const kv_seq *s = seqs[k];
        if (s->n_blocks < 0 || s->n_blocks > s->cap || s->n_hashed > s->n_blocks ||
            s->n_tokens > s->n_blocks * bs || s->n_hashed * bs > s->n_tokens)
            return BAD("seq %d: bad counters (blocks %d, tokens %d, hashed %d)", k, s->n_blocks,
                       s->n_tokens, s->n_hashed);
        for (int i = 0; i < s->n_blocks; i++) {
            int32_t b = s->blocks[i];
            if (b < 0 || b >= nb) return BAD("seq %d: block id %d out of range", k, b);
            cnt[b]++;
            bool hashed = bm->flags[b] & KV_BM_HASHED;
            if (i < s->n_hashed && !hashed) return BAD("seq %d block %d: not hashed", k, i);
            /* sharing invariant: the writable part is exclusively owned and unhashed */
            if (i >= s->n_hashed && (hashed || bm->ref[b] != 1))
                return BAD("seq %d block %d (id %d): writable but ref %d / hashed %d", k, i, b,
                           bm->ref[b], hashed);
            if (i > 0 && i < s->n_hashed && bm->parent_uid[b] != bm->uid[s->blocks[i - 1]])
                return BAD("seq %d block %d: parent chain broken", k, i);
        }
    }
    int used = 0, reg = 0;
    for (int b = 0; b < nb; b++) {
        if (bm->ref[b] != cnt[b])
            return BAD("block %d: ref %d but %d table references", b, bm->ref[b], cnt[b]);
        if (bm->ref[b] > 0) used++;
        if (bm->ref[b] > 1 && !(bm->flags[b] & KV_BM_REGISTERED))
            return BAD("block %d: shared (ref %d) but not registered", b, bm->ref[b]);
        if (bm->flags[b] & KV_BM_REGISTERED) {
            reg++;
            if (!(bm->flags[b] & KV_BM_HASHED)) return BAD("block %d: registered, no hash", b);
            if (map_find(bm, bm->hash[b], bm->parent_hash[b], bm->parent_uid[b],
                         bm->tokens + (size_t)b * bs) != b)
                return BAD("block %d: registered but not found in the map", b);
        }
    }
    if (reg != bm->n_registered)
        return BAD("%d registered blocks, map holds %d", reg, bm->n_registered);
    int in_map = 0;
    for (uint32_t i = 0; i <= bm->map_mask; i++) {
        int32_t b = bm->map_val[i];
        if (b < 0) continue;
        in_map++;
        if (b >= nb || !(bm->flags[b] & KV_BM_REGISTERED) || bm->map_key[i] != bm->hash[b])
            return BAD("map slot %u: stale entry for block %d", i, b);
    }
    if (in_map != reg) return BAD("map has %d entries, %d registered blocks", in_map, reg);
    memset(cnt, 0, (size_t)nb * sizeof *cnt); /* now: membership in free stack / LRU */
    for (int i = 0; i < bm->n_free; i++) {
        int32_t b = bm->free_stack[i];
        if (b < 0 || b >= nb || cnt[b]++) return BAD("free list: bad or repeated block %d", b);
        if (bm->ref[b] != 0 || bm->flags[b])
            return BAD("free block %d: ref %d, flags %d", b, bm->ref[b], bm->flags[b]);
    }
    int n_lru = 0;
    for (int32_t b = bm->lru_head, prev = -1; b >= 0; prev = b, b = bm->lru_next[b]) {
        if (b >= nb || cnt[b]++ || bm->lru_prev[b] != prev || n_lru > nb)
            return BAD("LRU list corrupt at block %d", b);
        if (bm->ref[b] != 0 || !(bm->flags[b] & KV_BM_REGISTERED))
            return BAD("cached block %d: ref %d, flags %d", b, bm->ref[b], bm->flags[b]);
        n_lru++;
        if (bm->lru_next[b] < 0 && bm->lru_tail != b) return BAD("LRU tail mismatch");
    }
    if (n_lru != bm->n_cached)
        return BAD("LRU holds %d blocks, count says %d", n_lru, bm->n_cached);
    if (used + bm->n_free + bm->n_cached != nb)
        return BAD("used %d + free %d + cached %d != %d blocks", used, bm->n_free, bm->n_cached,
                   nb);
    for (int b = 0; b < nb; b++)
        if (bm->ref[b] == 0 && !cnt[b])
            return BAD("block %d: ref 0 but neither free nor cached", b);
    free(cnt);
    return CLLM_OK;
}
