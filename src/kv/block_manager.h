/* block_manager.h - KV block bookkeeping with prefix caching: reference counts, a free list,
 * chained block hashes (xxHash) with a hash -> block map, and an LRU of cached ref-0 blocks.
 *
 * It manages block ids only (no KV memory), so it can be tested without a model.
 *
 * Life of a block: free -> used (ref >= 1) -> [full and committed: hashed, registered in the map]
 * -> ref 0: registered blocks become "cached" (evictable, LRU order, still matchable by later
 * prompts), unregistered ones go straight back to the free list. A fresh block comes from the free
 * list first, then by evicting the least recently freed cached block.
 *
 * Sharing invariant (copy-on-write safety): only full, committed (registered) blocks are ever
 * shared, so a block with ref > 1 is never written. A sequence writes KV only into blocks past
 * its hashed prefix (index >= n_hashed), and those always have ref 1 and no hash. kv_bm_check()
 * verifies this; kv_bm_seq_append() asserts it. */
#ifndef CLLM_KV_BLOCK_MANAGER_H
#define CLLM_KV_BLOCK_MANAGER_H

#include "cllm.h"
#include <stdbool.h>
#include <stdint.h>

/* A sequence's block table. blocks[i] holds positions [i*block_size, (i+1)*block_size).
 * n_tokens: token ids recorded with the sequence; n_hashed: leading full blocks whose hash is set
 * (matched from the cache or committed). Zero-initialise before first use. */
typedef struct kv_seq {
    int32_t *blocks;
    int n_blocks, cap;
    int n_tokens, n_hashed;
} kv_seq;

/* Hash of one full block given its parent block's hash (kv_bm_root_hash for the first block).
 * Injectable so tests can force collisions. */
typedef uint64_t (*kv_hash_fn)(uint64_t parent_hash, const int32_t *tokens, int n_tokens);

typedef struct kv_bm_stats {
    int64_t prompt_tokens; /* prompt tokens passed to kv_bm_seq_alloc_prompt */
    int64_t hit_tokens;    /* of those, served from the prefix cache */
    int64_t evictions;     /* cached blocks evicted to make fresh ones */
} kv_bm_stats;

typedef struct kv_block_manager {
    int n_blocks, block_size;
    bool prefix_caching; /* false: nothing is matched or registered (--no-prefix-cache) */
    kv_hash_fn hash_fn;
    int32_t *ref;
    /* Per block, valid once hashed: chain hash, parent's chain hash, and "prefix uids". A uid
     * names one registered block for one life (never reused, unlike block ids): uid[b] is b's own
     * uid if registered, or the uid of the identical registered block it deduplicated against.
     * parent_uid[b] is the uid of the parent prefix (0 = empty prefix). A hit must match tokens
     * AND parent uid, so even a full 64-bit collision of the chain hash cannot serve a block
     * computed under a different prefix. */
    uint64_t *hash, *parent_hash, *uid, *parent_uid;
    uint8_t *flags;  /* KV_BM_HASHED, KV_BM_REGISTERED */
    int32_t *tokens; /* [n_blocks][block_size] token ids written into each block */
    int32_t *free_stack;
    int n_free;
    int32_t *lru_prev, *lru_next; /* doubly linked: head = least recently freed */
    int32_t lru_head, lru_tail;
    int n_cached;
    uint64_t *map_key; /* open addressing, linear probing, capacity >= 2 * n_blocks */
    int32_t *map_val;  /* block id, -1 = empty slot */
    uint32_t map_mask;
    int map_bits, n_registered;
    uint64_t next_uid;
    kv_bm_stats stats;
} kv_block_manager;

enum { KV_BM_HASHED = 1, KV_BM_REGISTERED = 2 };

/* The parent hash used for a sequence's first block. */
#define kv_bm_root_hash ((uint64_t)0x6b765f726f6f7421ull)

/* All allocation happens here (no allocation per operation except growing block tables). */
cllm_status kv_bm_create(int n_blocks, int block_size, kv_block_manager **out);
void kv_bm_free(kv_block_manager *bm);
/* Default: XXH3_64bits with the parent hash as seed. Pass NULL to restore the default. Only
 * while no block is hashed (tests). */
void kv_bm_set_hash_fn(kv_block_manager *bm, kv_hash_fn fn);
uint64_t kv_bm_default_hash(uint64_t parent_hash, const int32_t *tokens, int n_tokens);

/* Counts: free + cached + used == n_blocks. "cached" blocks are ref 0 but still matchable;
 * they are evicted on demand, so free + cached blocks are available for allocation. */
static inline int kv_bm_n_free(const kv_block_manager *bm) {
    return bm->n_free;
}
static inline int kv_bm_n_cached(const kv_block_manager *bm) {
    return bm->n_cached;
}
static inline int kv_bm_n_used(const kv_block_manager *bm) {
    return bm->n_blocks - bm->n_free - bm->n_cached;
}
static inline bool kv_bm_can_allocate(const kv_block_manager *bm, int n_blocks) {
    return n_blocks <= bm->n_free + bm->n_cached;
}

/* Prefix-cache rule: a prompt of n tokens takes at most (n - 1) / block_size leading full blocks
 * from the cache, so at least the last prompt token is always recomputed (the caller needs its
 * logits) and it lands in a fresh, exclusively owned block. Returns how many blocks
 * kv_bm_seq_alloc_prompt would draw from free + cached ones (fresh blocks plus revived cached
 * ones); *n_cached_tokens (may be NULL) gets the prompt tokens that would be served from cache. */
int kv_bm_prompt_blocks_needed(const kv_block_manager *bm, const int32_t *tokens, int n,
                               int *n_cached_tokens);

/* Give an empty sequence blocks for its n-token prompt: the longest run of matching cached full
 * blocks (ref +1, cached ref-0 ones revived out of the LRU), then fresh blocks for the rest; the
 * token ids are recorded. *n_cached_tokens = tokens whose KV is already there (a multiple of
 * block_size, <= n - 1): the caller prefills positions n_cached_tokens .. n-1 only.
 * CLLM_ERR_LIMIT when blocks run out, CLLM_ERR_NOMEM: state unchanged in both cases. */
cllm_status kv_bm_seq_alloc_prompt(kv_block_manager *bm, kv_seq *s, const int32_t *tokens, int n,
                                   int *n_cached_tokens);

/* Record one more token id (the next position). Takes a fresh block when the last one is full.
 * Does not hash: see kv_bm_seq_commit. CLLM_ERR_LIMIT when no block is left (state unchanged). */
cllm_status kv_bm_seq_append(kv_block_manager *bm, kv_seq *s, int32_t token);

/* The KV of the first n_computed tokens has been written: hash every full block within them
 * (chained) and register it in the map, unless an identical block (same tokens, same parent
 * prefix) is registered already, in which case this one stays private (no double registration).
 * Hashing waits for this call, not for the block to fill, so no other sequence can match a block
 * whose KV is still unwritten. Never fails. */
void kv_bm_seq_commit(kv_block_manager *bm, kv_seq *s, int n_computed);

/* Fresh blocks needed to hold n_new_tokens more tokens after s->n_tokens (and after what the
 * table already covers). */
int kv_bm_seq_blocks_needed(const kv_block_manager *bm, const kv_seq *s, int n_new_tokens);

/* Drop all the sequence's blocks (ref -1 each, last block first, so the tail of a prefix is
 * evicted before its head); registered blocks reaching 0 become cached, others free. The table
 * is emptied but keeps its memory. */
void kv_bm_seq_release(kv_block_manager *bm, kv_seq *s);
/* Release and free the table's memory. */
void kv_bm_seq_free(kv_block_manager *bm, kv_seq *s);

/* Full consistency check against every live sequence: ref counts equal block-table references,
 * free/cached/used partition the pool, the map holds exactly the registered blocks, LRU holds
 * exactly the registered ref-0 blocks, and the sharing invariant holds. CLLM_ERR_INTERNAL with a
 * message naming the first violation. O(n_blocks + table sizes); for tests and debug builds. */
cllm_status kv_bm_check(const kv_block_manager *bm, const kv_seq *const *seqs, int n_seqs);

#endif
