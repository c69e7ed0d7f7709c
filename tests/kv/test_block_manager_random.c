/* test_block_manager_random.c - 10,000 random operations per configuration against a plain
 * reference model (linear scans, timestamps instead of lists and maps), plus a ground-truth check
 * that every cache hit serves a block computed under exactly the same token prefix. */
#include "check.h"
#include "kv/block_manager.h"

#include <string.h>

#define NB 24
#define BS 4
#define NSEQ 6
#define MAXT 64
#define N_OPS 10000

/* the reference model: one entry per block id, the same decisions made the obvious way */
typedef struct mblock {
    int ref, registered, hashed;
    uint64_t uid, parent_uid;
    int32_t tok[BS];
    long freed_at; /* LRU: smallest = least recently freed */
} mblock;
typedef struct model {
    mblock b[NB];
    int32_t free_stack[NB];
    int n_free;
    uint64_t next_uid;
    long clock;
} model;

typedef struct mseq {
    int live;
    int32_t tok[MAXT];
    int n_tok, n_blocks, n_hashed;
    int32_t blocks[MAXT / BS + 1];
} mseq;

static uint64_t rng_state = 0x1234567;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int m_cached(const model *m) {
    int n = 0;
    for (int i = 0; i < NB; i++)
        n += m->b[i].ref == 0 && m->b[i].registered;
    return n;
}

static int m_find(const model *m, uint64_t parent_uid, const int32_t *t) {
    for (int i = 0; i < NB; i++)
        if (m->b[i].registered && m->b[i].parent_uid == parent_uid &&
            memcmp(m->b[i].tok, t, sizeof m->b[i].tok) == 0)
            return i;
    return -1;
}

static int m_take(model *m) {
    int b;
    if (m->n_free) {
        b = m->free_stack[--m->n_free];
    } else {
        b = -1;
        for (int i = 0; i < NB; i++)
            if (m->b[i].ref == 0 && m->b[i].registered &&
                (b < 0 || m->b[i].freed_at < m->b[b].freed_at))
                b = i;
        memset(&m->b[b], 0, sizeof m->b[b]);
    }
    m->b[b].ref = 1;
    return b;
}

static void m_release(model *m, mseq *s) {
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        mblock *b = &m->b[s->blocks[i]];
        if (--b->ref) continue;
        if (b->registered) {
            b->freed_at = m->clock++;
        } else {
            memset(b, 0, sizeof *b);
            m->free_stack[m->n_free++] = s->blocks[i];
        }
    }
    s->n_blocks = s->n_hashed = s->n_tok = 0;
    s->live = 0;
}

/* returns 1 on success, 0 on "out of blocks"; *cached = tokens served from cache */
static int m_alloc(model *m, mseq *s, const int32_t *t, int n, int caching, int *cached) {
    int match[MAXT / BS + 1], nm = 0, revive = 0;
    uint64_t puid = 0;
    for (; caching && nm < (n - 1) / BS; nm++) {
        int b = m_find(m, puid, t + nm * BS);
        if (b < 0) break;
        match[nm] = b;
        revive += m->b[b].ref == 0;
        puid = m->b[b].uid;
    }
    int total = (n + BS - 1) / BS;
    if (total - nm + revive > m->n_free + m_cached(m)) return 0;
    for (int i = 0; i < nm; i++) {
        m->b[match[i]].ref++;
        s->blocks[i] = match[i];
    }
    for (int i = nm; i < total; i++) {
        s->blocks[i] = m_take(m);
        int len = i == total - 1 ? n - i * BS : BS;
        memcpy(m->b[s->blocks[i]].tok, t + i * BS, (size_t)len * 4);
    }
    memcpy(s->tok, t, (size_t)n * 4);
    s->n_tok = n;
    s->n_blocks = total;
    s->n_hashed = nm;
    s->live = 1;
    *cached = nm * BS;
    return 1;
}

static int m_append(model *m, mseq *s, int32_t tok) {
    if (s->n_tok / BS == s->n_blocks) {
        if (m->n_free + m_cached(m) == 0) return 0;
        s->blocks[s->n_blocks++] = m_take(m);
    }
    m->b[s->blocks[s->n_tok / BS]].tok[s->n_tok % BS] = tok;
    s->tok[s->n_tok++] = tok;
    return 1;
}

static void m_commit(model *m, mseq *s, int n_computed, int caching) {
    if (!caching) return;
    for (int i = s->n_hashed; (i + 1) * BS <= n_computed; i++) {
        mblock *b = &m->b[s->blocks[i]];
        uint64_t puid = i ? m->b[s->blocks[i - 1]].uid : 0;
        int twin = m_find(m, puid, b->tok);
        b->hashed = 1;
        b->parent_uid = puid;
        if (twin >= 0) {
            b->uid = m->b[twin].uid;
        } else {
            b->uid = m->next_uid++;
            b->registered = 1;
        }
        s->n_hashed = i + 1;
    }
}

static uint64_t weak_hash(uint64_t parent, const int32_t *t, int n) {
    uint64_t h = parent;
    for (int i = 0; i < n; i++)
        h += (uint64_t)t[i];
    return h % 3; /* collisions everywhere */
}

/* truth[b]: the token prefix block b's KV was computed under (set at commit) */
static int32_t truth[NB][MAXT];
static int truth_len[NB];

static void run(kv_hash_fn fn, int caching, uint64_t seed) {
    rng_state = seed;
    kv_block_manager *bm;
    CHECK(kv_bm_create(NB, BS, &bm) == CLLM_OK);
    if (fn) kv_bm_set_hash_fn(bm, fn);
    bm->prefix_caching = caching;
    static model m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < NB; i++)
        m.free_stack[i] = NB - 1 - i;
    m.n_free = NB;
    m.next_uid = 1;
    kv_seq seq[NSEQ];
    mseq ms[NSEQ];
    memset(seq, 0, sizeof seq);
    memset(ms, 0, sizeof ms);
    /* a few "documents" whose prefixes make up the prompts, so hits are common */
    int32_t docs[4][MAXT];
    for (int d = 0; d < 4; d++)
        for (int i = 0; i < MAXT; i++)
            docs[d][i] = (int32_t)rnd(3);
    int hits = 0, limits = 0, fails = 0, dedup_seen = 0;
    for (int op = 0; op < N_OPS && fails < 5; op++) {
        int k = (int)rnd(NSEQ), r = (int)rnd(10);
        kv_seq *s = &seq[k];
        mseq *q = &ms[k];
        if (!q->live) {
            int32_t t[MAXT];
            int n = 1 + (int)rnd(40);
            memcpy(t, docs[rnd(4)], sizeof t);
            if (rnd(3) == 0) t[rnd((uint32_t)n)] = (int32_t)rnd(3);
            int c1 = -1, c2 = -1;
            int pred = kv_bm_prompt_blocks_needed(bm, t, n, NULL);
            int avail = kv_bm_n_free(bm) + kv_bm_n_cached(bm);
            int ok = m_alloc(&m, q, t, n, caching, &c2);
            cllm_status st = kv_bm_seq_alloc_prompt(bm, s, t, n, &c1);
            CHECK(st == (ok ? CLLM_OK : CLLM_ERR_LIMIT));
            CHECK(ok == (pred <= avail)); /* the admission check predicts the outcome */
            if (ok) {
                CHECK(c1 == c2);
                hits += c1 > 0;
                /* ground truth: a hit serves only KV computed under this very prefix */
                for (int i = 0; i < c1 / BS; i++)
                    CHECK(truth_len[s->blocks[i]] == (i + 1) * BS &&
                          memcmp(truth[s->blocks[i]], t, (size_t)(i + 1) * BS * 4) == 0);
                if (rnd(2)) {
                    int nc = c1 + (int)rnd((uint32_t)(n - c1 + 1));
                    kv_bm_seq_commit(bm, s, nc);
                    m_commit(&m, q, nc, caching);
                }
            } else {
                limits++;
                CHECK(s->n_blocks == 0);
            }
        } else if (r < 6 && q->n_tok < MAXT) {
            int32_t tok = (int32_t)rnd(3);
            int ok = m_append(&m, q, tok);
            CHECK(kv_bm_seq_append(bm, s, tok) == (ok ? CLLM_OK : CLLM_ERR_LIMIT));
            limits += !ok;
        } else if (r < 8) {
            int nc = q->n_hashed * BS + (int)rnd((uint32_t)(q->n_tok - q->n_hashed * BS + 1));
            kv_bm_seq_commit(bm, s, nc);
            m_commit(&m, q, nc, caching);
        } else {
            kv_bm_seq_release(bm, s);
            m_release(&m, q);
        }
        /* a hashed block in a live table holds that table's prefix (hits were verified above
         * before this overwrite); cached blocks keep what they were computed under */
        for (int j = 0; j < NSEQ; j++)
            for (int i = 0; i < seq[j].n_hashed; i++) {
                truth_len[seq[j].blocks[i]] = (i + 1) * BS;
                memcpy(truth[seq[j].blocks[i]], ms[j].tok, (size_t)(i + 1) * BS * 4);
            }
        /* same tables, counts and per-block state as the model */
        int used = 0;
        for (int i = 0; i < NB; i++) {
            dedup_seen += (bm->flags[i] & KV_BM_HASHED) && !(bm->flags[i] & KV_BM_REGISTERED);
            used += m.b[i].ref > 0;
            CHECK(bm->ref[i] == m.b[i].ref);
            CHECK(!!(bm->flags[i] & KV_BM_REGISTERED) == m.b[i].registered);
        }
        CHECK(kv_bm_n_free(bm) == m.n_free && kv_bm_n_cached(bm) == m_cached(&m) &&
              kv_bm_n_used(bm) == used);
        CHECK(kv_bm_n_free(bm) + kv_bm_n_cached(bm) + kv_bm_n_used(bm) == NB);
        for (int j = 0; j < NSEQ; j++) {
            CHECK(seq[j].n_blocks == ms[j].n_blocks && seq[j].n_tokens == ms[j].n_tok &&
                  seq[j].n_hashed == ms[j].n_hashed);
            if (seq[j].n_blocks == ms[j].n_blocks && ms[j].n_blocks > 0)
                CHECK(memcmp(seq[j].blocks, ms[j].blocks, (size_t)ms[j].n_blocks * 4) == 0);
        }
        const kv_seq *v[NSEQ];
        for (int j = 0; j < NSEQ; j++)
            v[j] = &seq[j];
        cllm_status st = kv_bm_check(bm, v, NSEQ);
        CHECK_MSG(st == CLLM_OK, "op %d: %s", op, cllm_last_error());
        if (check_failures) fails++;
    }
    printf("hash %s, caching %d: %d prompt hits, %d out-of-blocks, %lld evictions, %d dedup\n",
           fn ? "weak" : "xxh3", caching, hits, limits, (long long)bm->stats.evictions, dedup_seen);
    if (caching) CHECK(hits > 100 && bm->stats.evictions > 100 && dedup_seen > 0);
    CHECK(limits > 0);
    for (int j = 0; j < NSEQ; j++)
        kv_bm_seq_free(bm, &seq[j]);
    CHECK(kv_bm_n_used(bm) == 0);
    kv_bm_free(bm);
}

int main(void) {
    run(NULL, 1, 0x9e3779b97f4a7c15ull);
    run(weak_hash, 1, 0x1234567ull);
    run(NULL, 0, 0x7777ull);
    CHECK_DONE();
}
